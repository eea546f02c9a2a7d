//! `/v1/manifests`: look records up in the configured manifests.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::Extension;
use serde::Serialize;
use serde_json::value::RawValue;
use tessera_formats::ResultFormat;
use utoipa::ToSchema;

use super::{json_body, raw};
use crate::auth::Identity;
use crate::error::{ApiResult, ErrorBody};
use crate::format;
use crate::params::Params;
use crate::state::AppState;

/// One configured manifest.
#[derive(Serialize, ToSchema)]
pub struct ManifestInfo {
    name: String,
    location: String,
}

/// The manifests the caller may query.
#[utoipa::path(get, path = "/v1/manifests", tag = "manifests",
    responses((status = 200, body = ManifestList)))]
pub async fn list_manifests(
    State(state): State<AppState>,
    Extension(id): Extension<Identity>,
) -> ApiResult<Response> {
    let list: Vec<ManifestInfo> = state
        .config
        .manifests
        .iter()
        .filter(|(_, c)| c.namespace.as_deref().is_none_or(|ns| ns == id.namespace))
        .map(|(n, c)| ManifestInfo {
            name: n.clone(),
            location: c.location.clone(),
        })
        .collect();
    json_body(&ManifestList { manifests: list })
}

/// The manifests a caller may query.
#[derive(Serialize, ToSchema)]
pub struct ManifestList {
    /// Name and location of each.
    manifests: Vec<ManifestInfo>,
}

/// A lookup's answer.
#[derive(Serialize, ToSchema)]
pub struct LookupResponse {
    /// Records matching every `field=value`.
    count: usize,
    /// The records (fields and location).
    #[schema(value_type = Vec<Object>)]
    records: Box<RawValue>,
}

/// Records of a manifest matching `field=value` conditions (all of them;
/// typed comparison: `045` matches int 45). The parameters are the
/// manifest's own fields, so they are taken as they come.
#[utoipa::path(get, path = "/v1/manifests/{manifest}/lookup", tag = "manifests",
    params(("manifest" = String, Path)),
    responses((status = 200, body = LookupResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn manifest_lookup(
    State(state): State<AppState>,
    Extension(id): Extension<Identity>,
    Path(manifest): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
    let m = state.manifest(&id, &manifest).await?;
    let conds: Vec<(&str, &str)> = p
        .pairs()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let _permit = state.query_permit()?;
    let batch = m.records(&conds)?;
    json_body(&LookupResponse {
        count: batch.num_rows(),
        records: raw(format::encode(
            ResultFormat::Json,
            &batch.schema(),
            &[batch],
        )?)?,
    })
}

/// The distinct values of one field of a manifest, sorted.
#[utoipa::path(get, path = "/v1/manifests/{manifest}/unique/{field}", tag = "manifests",
    params(("manifest" = String, Path), ("field" = String, Path)),
    responses((status = 200, description = "{field, values}"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn manifest_unique(
    State(state): State<AppState>,
    Extension(id): Extension<Identity>,
    Path((manifest, field)): Path<(String, String)>,
) -> ApiResult<Response> {
    let m = state.manifest(&id, &manifest).await?;
    let values = m.unique(&field)?;
    json_body(&serde_json::json!({ "field": field, "values": values }))
}

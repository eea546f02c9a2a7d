//! Slicing endpoints: plan slices of an indexed object under the store, and
//! serve one slice's records.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use tessera_slice::{AnySlice, Registry, Strategy};
use tessera_store::Location;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Identity;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::format::truncate;
use crate::params::Query;
use crate::state::AppState;

/// Which object to slice, and how.
#[derive(Debug, Deserialize, ToSchema, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    /// The object's key under the server's store (indexed with `tessera index`).
    /// With authentication on, keys start with the caller's namespace: `NAMESPACE/...`.
    #[schema(min_length = 1)]
    pub object: String,
    /// About this many slices of even size.
    #[schema(minimum = 1)]
    pub count: Option<usize>,
    /// Slices of about this many stored bytes.
    #[schema(minimum = 1)]
    pub bytes: Option<u64>,
    /// Slices of this many records (FASTA: sequences).
    #[schema(minimum = 1)]
    pub records: Option<u64>,
    /// Tile-aligned windows of a COG in a grid of `COLSxROWS` (e.g. `4x4`).
    #[schema(pattern = "^[0-9]+x[0-9]+$")]
    pub grid: Option<String>,
    /// A COG's overview level to cut into `count` windows (0: full resolution).
    pub level: Option<u32>,
    /// MeasurementSets: slices of whole timestamps spanning less than this
    /// long each (e.g. `30s`, `10min`).
    pub interval: Option<String>,
}

/// A plan request plus the slice to serve.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DataRequest {
    /// The object's key under the server's store.
    #[param(min_length = 1)]
    pub object: String,
    /// About this many slices of even size.
    #[param(minimum = 1)]
    pub count: Option<usize>,
    /// Slices of about this many stored bytes.
    #[param(minimum = 1)]
    pub bytes: Option<u64>,
    /// Slices of this many records.
    #[param(minimum = 1)]
    pub records: Option<u64>,
    /// Tile-aligned windows of a COG in a grid of `COLSxROWS` (e.g. `4x4`).
    #[param(pattern = "^[0-9]+x[0-9]+$")]
    pub grid: Option<String>,
    /// A COG's overview level to cut into `count` windows (0: full resolution).
    pub level: Option<u32>,
    /// MeasurementSets: slices of whole timestamps spanning less than this
    /// long each (e.g. `30s`, `10min`).
    pub interval: Option<String>,
    /// The slice to serve (0-based).
    pub slice: usize,
}

impl From<tessera_slice::Error> for ApiError {
    fn from(e: tessera_slice::Error) -> Self {
        use tessera_slice::Error as E;
        match &e {
            E::NotFound { .. } | E::NoIndex { .. } | E::NoSuchSlice { .. } => {
                ApiError::NotFound(e.to_string())
            }
            E::UnknownFormat { .. }
            | E::NoSuchFormat { .. }
            | E::InvalidFile { .. }
            | E::InvalidRecord { .. }
            | E::Corrupt { .. }
            | E::Truncated { .. }
            | E::Unsupported { .. }
            | E::InvalidSlicesFile { .. }
            | E::InvalidSlice { .. }
            | E::InvalidStrategy { .. } => ApiError::BadRequest(e.to_string()),
            E::StaleIndex { .. } => ApiError::Conflict(e.to_string()),
            E::Store(tessera_store::Error::NotFound { .. }) => ApiError::NotFound(e.to_string()),
            E::InvalidIndex { .. } | E::Store(_) | E::Io { .. } => ApiError::Store(e.to_string()),
            _ => ApiError::Internal(e.to_string()),
        }
    }
}

fn strategy(
    count: Option<usize>,
    bytes: Option<u64>,
    records: Option<u64>,
    grid: Option<&str>,
    level: Option<u32>,
    interval: Option<&str>,
) -> ApiResult<Strategy> {
    if let Some(d) = interval {
        if count.is_some()
            || bytes.is_some()
            || records.is_some()
            || grid.is_some()
            || level.is_some()
        {
            return Err(ApiError::BadRequest(
                "give exactly one of count, bytes, records, grid, level or interval".into(),
            ));
        }
        return tessera_store::units::parse_duration(d)
            .map(Strategy::Interval)
            .map_err(|e| {
                ApiError::BadRequest(format!("interval: {}", truncate(&e.to_string(), 80)))
            });
    }
    match (count, bytes, records, grid, level) {
        (n, None, None, None, Some(level)) => Ok(Strategy::Level {
            level,
            count: n.unwrap_or(1),
        }),
        (Some(n), None, None, None, None) => Ok(Strategy::Count(n)),
        (None, Some(b), None, None, None) => Ok(Strategy::Bytes(b)),
        (None, None, Some(n), None, None) => Ok(Strategy::Records(n)),
        (None, None, None, Some(g), None) => g
            .split_once('x')
            .and_then(|(c, r)| Some((c.parse().ok()?, r.parse().ok()?)))
            .map(|(columns, rows)| Strategy::Grid { columns, rows })
            .ok_or_else(|| {
                ApiError::BadRequest(format!("grid '{}' is not COLSxROWS", truncate(g, 40)))
            }),
        _ => Err(ApiError::BadRequest(
            "give exactly one of count, bytes, records, grid, level or interval (level may come with count)"
                .into(),
        )),
    }
}

/// The media type of a slice of `format`: a tar stream for the formats
/// whose slices are several files (imzML, MeasurementSets).
fn media_type(format: &str) -> &'static str {
    let archive = Registry::builtin()
        .format(format)
        .is_ok_and(|(f, _)| f.archive());
    match format {
        _ if archive => "application/x-tar",
        "las" | "laz" | "copc" => "application/octet-stream",
        "cog" | "tiff" => "image/tiff",
        _ => "text/plain; charset=utf-8",
    }
}

/// The object a caller may slice: a plain key under the store (no URL, no
/// `..`), inside the caller's namespace when authentication is on.
fn object(state: &AppState, id: &Identity, key: &str) -> ApiResult<Location> {
    let bad = |why: &str| ApiError::BadRequest(format!("object '{}': {why}", truncate(key, 120)));
    if key.is_empty() || key.len() > 1024 {
        return Err(bad("a key of 1 to 1024 bytes is expected"));
    }
    if key.contains("://") || key.starts_with('/') || key.contains('\\') {
        return Err(bad(
            "give a key under the server's store, not a URL or absolute path",
        ));
    }
    if key
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return Err(bad("empty, '.' and '..' path segments are not allowed"));
    }
    if state.auth.is_some() && !key.starts_with(&format!("{}/", id.namespace)) {
        return Err(ApiError::Forbidden(format!(
            "object '{}' is outside your namespace '{}/'",
            truncate(key, 120),
            id.namespace
        )));
    }
    Ok(state.store.join(key)?)
}

async fn planned(
    state: &AppState,
    id: &Identity,
    key: &str,
    s: Strategy,
) -> ApiResult<(Location, Vec<AnySlice>)> {
    let obj = object(state, id, key)?;
    let registry = Registry::builtin();
    let index = registry.open_index(&obj, None).await?;
    let slices = registry.plan(&index, s)?;
    Ok((obj, slices))
}

/// Plan slices of an indexed object: a JSON list of self-contained slice
/// descriptors (no credentials), as `tessera slice` writes.
#[utoipa::path(post, path = "/v1/slices/plan", tag = "slices",
    request_body = PlanRequest,
    responses((status = 200, description = "the slice descriptors"), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn plan_slices(
    State(state): State<AppState>,
    Extension(id): Extension<Identity>,
    body: Result<Json<PlanRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Response> {
    let Json(req) = body.map_err(|e| ApiError::BadRequest(format!("body: {}", e.body_text())))?;
    let s = strategy(
        req.count,
        req.bytes,
        req.records,
        req.grid.as_deref(),
        req.level,
        req.interval.as_deref(),
    )?;
    let (_, slices) = planned(&state, &id, &req.object, s).await?;
    Ok(Json(slices).into_response())
}

/// The records of one slice in the source format (with its header), as
/// `tessera slice get` writes them: text for the text formats, a
/// standalone LAS/LAZ file for point clouds, a GeoTIFF for a COG window,
/// a tar of the `.imzML` and `.ibd` pair for imzML, a tar of the table
/// folder for a MeasurementSet.
#[utoipa::path(get, path = "/v1/slices/data", tag = "slices",
    params(DataRequest),
    responses((status = 200, description = "the slice's records", content(
            (String = "text/plain"),
            (Vec<u8> = "application/octet-stream"),
            (Vec<u8> = "image/tiff"),
            (Vec<u8> = "application/x-tar"))),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn slice_data(
    State(state): State<AppState>,
    Extension(id): Extension<Identity>,
    Query(req): Query<DataRequest>,
) -> ApiResult<Response> {
    let s = strategy(
        req.count,
        req.bytes,
        req.records,
        req.grid.as_deref(),
        req.level,
        req.interval.as_deref(),
    )?;
    let (obj, slices) = planned(&state, &id, &req.object, s).await?;
    let Some(slice) = slices.get(req.slice) else {
        return Err(ApiError::NotFound(format!(
            "the plan has {} slices; there is no slice {}",
            slices.len(),
            req.slice
        )));
    };
    let _permit = state.query_permit()?;
    let data = Registry::builtin().fetch(slice, &obj).await?;
    let mut resp = data.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(media_type(&slice.format)),
    );
    for (k, v) in [
        ("x-tessera-first-record", slice.first_record),
        ("x-tessera-record-count", slice.record_count),
    ] {
        resp.headers_mut().insert(k, HeaderValue::from(v));
    }
    Ok(resp)
}

//! `/query-parquet`: pages of one Parquet file, in the reference app's shape.

use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tessera_formats::ResultFormat;
use utoipa::{IntoParams, ToSchema};

use super::{json_body, raw};
use crate::auth::Identity;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::format::{self, truncate};
use crate::params::{bounded, Query};
use crate::state::AppState;

/// Which file, and which page of it.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueryParquetParams {
    /// State, [a-z0-9_-]+
    #[param(pattern = r"^[a-z0-9_-]+$")]
    statename: String,
    /// Data name, [a-z0-9_-]+
    #[param(pattern = r"^[a-z0-9_-]+$")]
    dname: String,
    /// 0-indexed page (default 0)
    page: Option<u64>,
    /// 1…10000 (default 10)
    #[param(minimum = 1, maximum = 10000)]
    page_size: Option<u64>,
}

/// The `/query-parquet` answer, in the reference app's shape.
#[derive(Serialize, ToSchema)]
pub struct QueryParquetResponse {
    /// The rows of the page, as objects.
    #[schema(value_type = Vec<Object>)]
    data: Box<RawValue>,
    /// Rows in the file (from its footer).
    total_rows: u64,
    /// The page (0-indexed).
    page: u64,
    /// Rows per page.
    page_size: u64,
}

fn check_segment(key: &str, v: &str) -> ApiResult<()> {
    if v.is_empty()
        || v.len() > 128
        || !v
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(ApiError::bad(format!(
            "{key}='{}' is not valid: use 1 to 128 of a-z, 0-9, '_' and '-' (lowercase)",
            truncate(v, 60)
        )));
    }
    Ok(())
}

/// Rows of `state={statename}/dname={dname}/{dname}.parquet`, a page at a
/// time, in file order. Compatible with the reference app; pages are
/// 0-indexed and cost the same however deep.
#[utoipa::path(get, path = "/query-parquet", tag = "tables",
    params(QueryParquetParams),
    responses(
        (status = 200, body = QueryParquetResponse),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub async fn query_parquet(
    State(state): State<AppState>,
    Extension(_id): Extension<Identity>,
    Query(q): Query<QueryParquetParams>,
) -> ApiResult<Response> {
    let QueryParquetParams {
        statename,
        dname,
        page,
        page_size,
    } = q;
    check_segment("statename", &statename)?;
    check_segment("dname", &dname)?;
    let max = state.config.limits.max_page_size as u64;
    let page_size = bounded("page_size", page_size, 10, 1, max)?;
    let page = bounded("page", page, 0, 0, u64::MAX / max.max(1))?;
    let key = state
        .config
        .query_parquet
        .template
        .replace("{statename}", &statename)
        .replace("{dname}", &dname);
    let loc = state.store.join(&key)?;
    let _permit = state.query_permit()?;
    let file = state.files.open(&loc).await.map_err(|e| match e {
        ApiError::NotFound(_) => ApiError::NotFound(format!(
            "no Parquet file for statename='{statename}', dname='{dname}' ({key})"
        )),
        e => e,
    })?;
    let batches = file.read_rows(page * page_size, page_size, None).await?;
    json_body(&QueryParquetResponse {
        data: raw(format::encode(ResultFormat::Json, file.schema(), &batches)?)?,
        total_rows: file.num_rows(),
        page,
        page_size,
    })
}

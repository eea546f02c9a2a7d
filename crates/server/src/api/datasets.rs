//! `/v1/datasets`: list, read, load and delete the datasets of the caller's
//! namespace.

use std::time::Instant;

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use axum::Extension;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use utoipa::{IntoParams, ToSchema};

use super::json_body;
use crate::auth::{Identity, Role};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::format::{self, truncate, StreamOptions};
use crate::params::{bounded, Query};
use crate::state::AppState;

/// Which datasets to list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only names starting with this.
    prefix: Option<String>,
}

/// The datasets of the caller's namespace.
#[derive(Serialize, ToSchema)]
pub struct DatasetsResponse {
    /// The namespace listed.
    namespace: String,
    /// Each dataset: name, version, files, bytes, rows, partition columns.
    #[schema(value_type = Vec<Object>)]
    datasets: Vec<tessera_datasets::DatasetInfo>,
}

/// List the datasets of the caller's namespace (`prefix=` narrows).
#[utoipa::path(get, path = "/v1/datasets", tag = "datasets",
    params(ListParams),
    responses((status = 200, body = DatasetsResponse), (status = 400, body = ErrorBody)))]
pub async fn list_datasets(
    State(state): State<AppState>,
    Extension(id): Extension<Identity>,
    Query(p): Query<ListParams>,
) -> ApiResult<Response> {
    let ds = state.datasets(&id)?;
    let datasets = ds.list(p.prefix.as_deref().unwrap_or("")).await?;
    json_body(&DatasetsResponse {
        namespace: id.namespace.clone(),
        datasets,
    })
}

/// What to read of a dataset, and how it is encoded.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GetParams {
    /// rows (default), history or info
    view: Option<String>,
    /// rows of the load with this version key
    version: Option<String>,
    /// rows of the most recent load
    #[serde(default)]
    #[param(required = false)]
    last: bool,
    /// Delta version number or time
    as_of: Option<String>,
    /// SQL predicate
    #[serde(rename = "where")]
    filter: Option<String>,
    /// a,b,c
    columns: Option<String>,
    /// history entries (view=history)
    limit: Option<u64>,
    /// json, csv, arrow or parquet
    format: Option<String>,
}

/// Read a dataset (rows, streamed), or its `view=history` / `view=info`.
#[utoipa::path(get, path = "/v1/datasets/{name}", tag = "datasets",
    params(("name" = String, Path, description = "dataset name, may contain '/'"), GetParams),
    responses((status = 200, description = "rows, history or info"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_dataset(
    State(state): State<AppState>,
    Extension(id): Extension<Identity>,
    Path(name): Path<String>,
    Query(p): Query<GetParams>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let ds = state.datasets(&id)?;
    match p.view.as_deref().unwrap_or("rows") {
        "history" => {
            let limit = bounded("limit", p.limit, 100, 1, 100_000)? as usize;
            return json_body(&serde_json::json!({
                "name": name,
                "history": ds.history(&name).with_limit(limit).await?,
            }));
        }
        "info" => return json_body(&ds.info(&name).await?),
        "rows" => {}
        v => {
            return Err(ApiError::bad(format!(
                "view='{}': use rows, history or info",
                truncate(v, 40)
            )))
        }
    }
    let format = format::negotiate(p.format.as_deref(), &headers)?;
    let permit = state.query_permit()?;
    let started = Instant::now();
    let mut g = ds.get(&name).with_last(p.last);
    if let Some(v) = &p.version {
        g = g.with_version(v);
    }
    if let Some(a) = &p.as_of {
        g = g.with_as_of(a.parse()?);
    }
    if let Some(w) = &p.filter {
        g = g.with_filter(w);
    }
    if let Some(c) = &p.columns {
        g = g.with_columns(c.split(',').map(|s| s.trim().to_string()).collect());
    }
    let rows = g.await?;
    let stats = rows.stats();
    let mut resp = format::stream_response(
        rows.into_stream(),
        format,
        StreamOptions {
            deadline: Some(started + state.config.limits.request_timeout),
            permit: Some(permit),
            tail: Box::new(move |n| {
                format!(
                    "\"rows\":{n},\"table_version\":{},\"files_total\":{},\"bytes_total\":{}",
                    stats.table_version, stats.files_total, stats.bytes_total
                )
            }),
        },
    )
    .await?;
    resp.headers_mut()
        .insert("x-table-version", HeaderValue::from(stats.table_version));
    Ok(resp)
}

/// How to load an upload.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PutParams {
    /// parquet, csv, tsv, jsonl (+.gz/.zst); else from Content-Type
    format: Option<String>,
    /// COL[:day|month|year]
    date_key: Option<String>,
    /// COL[:WIDTH]
    id_key: Option<String>,
    /// version key (default NOW)
    version: Option<String>,
    /// replace all earlier data
    #[serde(default)]
    #[param(required = false)]
    keep_last: bool,
}

/// Load the request body (Parquet, CSV, TSV or JSON Lines; gzip/zstd
/// allowed) into a dataset of the caller's namespace. Needs the write role.
#[utoipa::path(post, path = "/v1/datasets/{name}", tag = "datasets",
    params(("name" = String, Path), PutParams),
    request_body(content = Vec<u8>, description = "the file"),
    responses((status = 200, description = "what the load did"), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn put_dataset(
    State(state): State<AppState>,
    Extension(id): Extension<Identity>,
    Path(name): Path<String>,
    params: ApiResult<Query<PutParams>>,
    headers: HeaderMap,
    req: Request,
) -> ApiResult<Response> {
    id.require(Role::Write)?;
    let Query(p) = params?;
    tessera_datasets::name::check_name(&name)?;
    let fmt_name = match p.format {
        Some(f) => f,
        None => match headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
        {
            Some(ct) if ct.contains("parquet") => "parquet".into(),
            Some(ct) if ct.contains("csv") => "csv".into(),
            Some(ct) if ct.contains("tab-separated") => "tsv".into(),
            Some(ct) if ct.contains("ndjson") || ct.contains("jsonl") || ct.contains("json") => {
                "jsonl".into()
            }
            _ => {
                return Err(ApiError::bad(
                    "say what the body is: format=parquet|csv|tsv|jsonl or a Content-Type",
                ))
            }
        },
    };
    let format = tessera_formats::FileFormat::from_extension(&fmt_name)
        .map_err(|e| ApiError::bad(format!("format: {e}")))?;
    // Spool the body to a temporary file (bounded by max_body), then load.
    let tmp = tempfile::Builder::new()
        .prefix("tessera-upload-")
        .suffix(&format!(".{}", fmt_name.trim_start_matches('.')))
        .tempfile()
        .map_err(|e| ApiError::Internal(format!("cannot spool the upload: {e}")))?;
    let max = state.config.limits.max_body;
    let mut file = tokio::fs::File::create(tmp.path())
        .await
        .map_err(|e| ApiError::Internal(format!("cannot spool the upload: {e}")))?;
    let mut body = req.into_body().into_data_stream();
    let mut total = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad(format!("reading the body: {e}")))?;
        total += chunk.len() as u64;
        if total > max {
            return Err(ApiError::PayloadTooLarge(format!(
                "the body is larger than the server's limit of {max} bytes"
            )));
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| ApiError::Internal(format!("cannot spool the upload: {e}")))?;
    }
    file.flush()
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    drop(file);
    if total == 0 {
        return Err(ApiError::bad("the body is empty"));
    }
    let ds = state.datasets(&id)?;
    let loc = tessera_store::Location::local(tmp.path())?;
    let mut put = ds
        .put(&name)
        .with_files(vec![loc])
        .with_input_format(format)
        .with_sources(vec![format!("upload ({total} bytes)")])
        .with_keep_last(p.keep_last);
    if let Some(k) = &p.date_key {
        put = put.with_date_key(k.parse()?);
    }
    if let Some(k) = &p.id_key {
        put = put.with_id_key(k.parse()?);
    }
    if let Some(v) = &p.version {
        put = put.with_version(v);
    }
    let report = put.await?;
    json_body(&report)
}

/// Delete a dataset of the caller's namespace. Needs the admin role.
#[utoipa::path(delete, path = "/v1/datasets/{name}", tag = "datasets",
    params(("name" = String, Path)),
    responses((status = 200, description = "what was deleted"), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_dataset(
    State(state): State<AppState>,
    Extension(id): Extension<Identity>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    id.require(Role::Admin)?;
    let ds = state.datasets(&id)?;
    json_body(&ds.remove(&name).await?)
}

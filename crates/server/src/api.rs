//! The HTTP handlers.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use deltalake::datafusion::execution::context::SQLOptions;
use deltalake::datafusion::prelude::DataFrame;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::io::AsyncWriteExt;
use utoipa::ToSchema;

use crate::auth::{Identity, Role};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::format::{self, truncate, OutFormat, StreamOptions};
use crate::params::Params;
use crate::query;
use crate::state::AppState;
use crate::tables::{session_config, TableKind, Tables};

fn json_body(v: &impl Serialize) -> ApiResult<Response> {
    let body = serde_json::to_vec(v).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(format::response(OutFormat::Json, body))
}

fn raw(v: Vec<u8>) -> ApiResult<Box<RawValue>> {
    let s = String::from_utf8(v).map_err(|e| ApiError::Internal(e.to_string()))?;
    RawValue::from_string(s).map_err(|e| ApiError::Internal(e.to_string()))
}

fn df_err(what: &str, e: impl std::fmt::Display) -> ApiError {
    let msg = e.to_string();
    // DataFusion prefixes its messages with the phase; keep the substance.
    let msg = msg
        .trim_start_matches("Error during planning: ")
        .trim_start_matches("SQL error: ")
        .to_string();
    ApiError::bad(format!("{what}: {}", truncate(&msg, 600)))
}

fn exec_err(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::Store(format!("{what}: {}", truncate(&e.to_string(), 600)))
}

/// Liveness.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    status: &'static str,
    /// The server's version.
    version: &'static str,
}

/// Liveness check (no auth).
#[utoipa::path(get, path = "/healthz", tag = "service",
    responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// Prometheus metrics (no auth): request counts and latency histograms by
/// method, route and status.
#[utoipa::path(get, path = "/metrics", tag = "service",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut r = Response::new(Body::from(state.metrics.render()));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
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

fn check_segment(key: &str, v: Option<&str>) -> ApiResult<String> {
    let Some(v) = v else {
        return Err(ApiError::bad(format!("{key} is required")));
    };
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
    Ok(v.to_string())
}

/// Rows of `state={statename}/dname={dname}/{dname}.parquet`, a page at a
/// time, in file order. Compatible with the reference app; pages are
/// 0-indexed and cost the same however deep.
#[utoipa::path(get, path = "/query-parquet", tag = "tables",
    params(
        ("statename" = String, Query, description = "State, [a-z0-9_-]+"),
        ("dname" = String, Query, description = "Data name, [a-z0-9_-]+"),
        ("page" = Option<u64>, Query, description = "0-indexed page (default 0)"),
        ("page_size" = Option<u64>, Query, description = "1…10000 (default 10)"),
    ),
    responses(
        (status = 200, body = QueryParquetResponse),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub async fn query_parquet(
    State(state): State<AppState>,
    Extension(_id): Extension<Identity>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
    p.only(&["statename", "dname", "page", "page_size"])?;
    let statename = check_segment("statename", p.get("statename"))?;
    let dname = check_segment("dname", p.get("dname"))?;
    let max = state.config.limits.max_page_size as u64;
    let page_size = p.uint("page_size", 10, 1, max)?;
    let page = p.uint("page", 0, 0, u64::MAX / max.max(1))?;
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
        data: raw(format::json_rows(&batches)?)?,
        total_rows: file.num_rows(),
        page,
        page_size,
    })
}

/// One registered table.
#[derive(Serialize, ToSchema)]
pub struct TableInfo {
    /// Its name (a plain SQL identifier).
    name: String,
    /// file, folder, dataset or manifest.
    kind: TableKind,
    /// Where it is read from.
    source: String,
    /// The configured description.
    description: Option<String>,
}

/// The tables list.
#[derive(Serialize, ToSchema)]
pub struct TablesResponse {
    /// The tables the caller may read.
    tables: Vec<TableInfo>,
}

/// The tables registered in the config that the caller may read.
#[utoipa::path(get, path = "/v1/tables", tag = "tables",
    responses((status = 200, body = TablesResponse)))]
pub async fn list_tables(
    State(state): State<AppState>,
    Extension(id): Extension<Identity>,
) -> ApiResult<Response> {
    let tables = state
        .tables
        .visible(&id)
        .map(|(name, c)| TableInfo {
            name: name.to_string(),
            kind: Tables::kind(c),
            source: c
                .location
                .clone()
                .or_else(|| c.dataset.as_ref().map(|d| format!("dataset {d}")))
                .or_else(|| c.manifest.clone())
                .unwrap_or_default(),
            description: c.description.clone(),
        })
        .collect();
    json_body(&TablesResponse { tables })
}

/// One column.
#[derive(Serialize, ToSchema)]
pub struct ColumnInfo {
    name: String,
    /// The Arrow type, e.g. `Int64`, `Utf8`, `Date32`.
    r#type: String,
    nullable: bool,
}

/// A table's schema.
#[derive(Serialize, ToSchema)]
pub struct SchemaResponse {
    table: String,
    columns: Vec<ColumnInfo>,
}

/// The columns of a table.
#[utoipa::path(get, path = "/v1/tables/{table}/schema", tag = "tables",
    params(("table" = String, Path)),
    responses((status = 200, body = SchemaResponse), (status = 404, body = ErrorBody)))]
pub async fn table_schema(
    State(state): State<AppState>,
    Extension(id): Extension<Identity>,
    Path(table): Path<String>,
) -> ApiResult<Response> {
    let provider = state.tables.provider(&state, &id, &table).await?;
    let schema = provider.schema();
    json_body(&SchemaResponse {
        table,
        columns: schema
            .fields()
            .iter()
            .map(|f| ColumnInfo {
                name: f.name().clone(),
                r#type: f.data_type().to_string(),
                nullable: f.is_nullable(),
            })
            .collect(),
    })
}

/// A page of a table.
#[derive(Serialize, ToSchema)]
pub struct RowsResponse {
    /// The rows, as objects.
    #[schema(value_type = Vec<Object>)]
    data: Box<RawValue>,
    /// Rows matching the filters (all rows when there are none).
    total_rows: u64,
    /// The page (0-indexed) this is, when paging by page number.
    page: u64,
    /// Rows per page.
    limit: u64,
    /// Pass as `cursor=` for the next page; absent on the last page.
    next_cursor: Option<String>,
}

/// A page of rows with optional columns, filters and sort.
///
/// Filters are `filter=column:op:value` (repeatable; ops `eq ne lt lte gt
/// gte in like`; `in` takes `a,b,c` or a JSON list). `sort=a,-b`. Paging by
/// `page` (0-indexed) or by the `cursor` of the previous answer. Without
/// `sort`, rows come in file order, which is stable.
#[utoipa::path(get, path = "/v1/tables/{table}/rows", tag = "tables",
    params(
        ("table" = String, Path),
        ("columns" = Option<String>, Query, description = "a,b,c"),
        ("filter" = Option<String>, Query, description = "column:op:value, repeatable"),
        ("sort" = Option<String>, Query, description = "a,-b"),
        ("limit" = Option<u64>, Query, description = "rows per page (default 100)"),
        ("page" = Option<u64>, Query, description = "0-indexed page"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
        ("format" = Option<String>, Query, description = "json, csv, arrow or parquet"),
    ),
    responses((status = 200, body = RowsResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn table_rows(
    State(state): State<AppState>,
    Extension(id): Extension<Identity>,
    Path(table): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
    p.only(&[
        "columns", "filter", "sort", "limit", "page", "cursor", "format",
    ])?;
    let format = OutFormat::negotiate(p.get("format"), &headers)?;
    let cfg = state.tables.get(&id, &table)?.clone();
    let max = state.config.limits.max_page_size as u64;
    let limit = p.uint("limit", 100.min(max), 1, max)?;
    let filters: Vec<&str> = p.all("filter").collect();
    if filters.len() > query::MAX_FILTERS {
        return Err(ApiError::bad(format!(
            "{} filters; at most {} are allowed",
            filters.len(),
            query::MAX_FILTERS
        )));
    }
    let fp = query::fingerprint(&[
        table.as_str(),
        p.get("columns").unwrap_or(""),
        &filters.join("\u{1}"),
        p.get("sort").unwrap_or(""),
        &limit.to_string(),
    ]);
    let offset = match (p.get("cursor"), p.get("page")) {
        (Some(_), Some(_)) => return Err(ApiError::bad("give page or cursor, not both")),
        (Some(c), None) => query::parse_cursor(c, &fp)?,
        _ => p
            .uint("page", 0, 0, u64::MAX / limit)?
            .checked_mul(limit)
            .ok_or_else(|| ApiError::bad("page is too large"))?,
    };
    let page = offset / limit;
    let _permit = state.query_permit()?;

    let single_file =
        Tables::kind(&cfg) == TableKind::File && filters.is_empty() && p.get("sort").is_none();
    let (batches, schema, total) = if single_file {
        let loc = state
            .resolve(cfg.location.as_deref().unwrap_or_default())
            .await?;
        let file = state.files.open(&loc).await?;
        let schema = file.schema().clone();
        let cols = match p.get("columns") {
            Some(c) => Some(
                query::columns(&schema, c)?
                    .iter()
                    .map(|n| schema.index_of(n).expect("checked"))
                    .collect::<Vec<_>>(),
            ),
            None => None,
        };
        let batches = file.read_rows(offset, limit, cols.as_deref()).await?;
        let schema = match &cols {
            Some(c) => std::sync::Arc::new(
                schema
                    .project(c)
                    .map_err(|e| ApiError::Internal(e.to_string()))?,
            ),
            None => schema,
        };
        (batches, schema, file.num_rows())
    } else {
        let provider = state.tables.provider(&state, &id, &table).await?;
        let mut config = session_config();
        if p.get("sort").is_none() {
            // One partition keeps file order: stable pages without a sort.
            config = config.with_target_partitions(1);
        }
        let ctx = state.tables.session(config);
        let mut df: DataFrame = ctx
            .read_table(provider)
            .map_err(|e| exec_err(&format!("table '{table}'"), e))?;
        let schema = df.schema().as_arrow().clone();
        for f in &filters {
            df = df
                .filter(query::filter(&schema, f)?)
                .map_err(|e| df_err(&format!("filter '{}'", truncate(f, 80)), e))?;
        }
        let counted = df.clone();
        if let Some(s) = p.get("sort") {
            df = df
                .sort(query::sort(&schema, s)?)
                .map_err(|e| df_err("sort", e))?;
        }
        if let Some(c) = p.get("columns") {
            let cols = query::columns(&schema, c)?;
            df = df
                .select_columns(&cols.iter().map(String::as_str).collect::<Vec<_>>())
                .map_err(|e| df_err("columns", e))?;
        }
        let df = df
            .limit(offset as usize, Some(limit as usize))
            .map_err(|e| df_err("limit", e))?;
        let out_schema = std::sync::Arc::new(df.schema().as_arrow().clone());
        let timeout = state.config.limits.request_timeout;
        let (batches, total) = tokio::time::timeout(timeout, async {
            let b = df
                .collect()
                .await
                .map_err(|e| exec_err(&format!("table '{table}'"), e))?;
            let t = counted
                .count()
                .await
                .map_err(|e| exec_err(&format!("table '{table}'"), e))?;
            Ok::<_, ApiError>((b, t as u64))
        })
        .await
        .map_err(|_| {
            ApiError::Timeout(format!(
                "the query on '{table}' took longer than {timeout:?}"
            ))
        })??;
        (batches, out_schema, total)
    };
    let returned: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
    let next =
        (returned == limit && offset + limit < total).then(|| query::cursor(offset + limit, &fp));
    if format == OutFormat::Json {
        return json_body(&RowsResponse {
            data: raw(format::json_rows(&batches)?)?,
            total_rows: total,
            page,
            limit,
            next_cursor: next,
        });
    }
    let mut r = format::response(format, format::encode_batches(&schema, &batches, format)?);
    r.headers_mut()
        .insert("x-total-rows", HeaderValue::from(total));
    if let Some(n) = next.and_then(|n| HeaderValue::from_str(&n).ok()) {
        r.headers_mut().insert("x-next-cursor", n);
    }
    Ok(r)
}

/// A SQL request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlRequest {
    /// One query (SELECT / WITH / VALUES / EXPLAIN) over the registered tables.
    sql: String,
    /// Most rows to return (capped by the server's `sql_row_limit`).
    limit: Option<usize>,
}

/// Run a read-only SQL query over the registered tables (DataFusion SQL).
/// Anything but a query (DDL, DML, COPY, SET) is refused. The answer
/// streams; JSON is `{"data":[…],"rows":n,"row_limit":m}`.
#[utoipa::path(post, path = "/v1/sql", tag = "sql",
    request_body = SqlRequest,
    params(("format" = Option<String>, Query, description = "json, csv, arrow or parquet")),
    responses((status = 200, description = "rows"), (status = 400, body = ErrorBody)))]
pub async fn sql(
    State(state): State<AppState>,
    Extension(id): Extension<Identity>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Result<Json<SqlRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Response> {
    let Json(req) = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge("the SQL body is larger than 1 MiB".into())
        } else {
            ApiError::bad(format!("body: {}", e.body_text()))
        }
    })?;
    let p = Params::parse(q.as_deref());
    p.only(&["format"])?;
    let format = OutFormat::negotiate(p.get("format"), &headers)?;
    let permit = state.query_permit()?;
    let started = Instant::now();
    let ctx = state.tables.session(session_config());
    // Only the tables this caller may see exist for its query.
    let names: Vec<String> = state
        .tables
        .visible(&id)
        .map(|(n, _)| n.to_string())
        .collect();
    let lower = req.sql.to_ascii_lowercase();
    for n in names {
        if !lower.contains(&n.to_ascii_lowercase()) {
            continue; // not mentioned: do not pay for registering it
        }
        let provider = state.tables.provider(&state, &id, &n).await?;
        ctx.register_table(n.as_str(), provider)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    }
    let opts = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let limit = req
        .limit
        .unwrap_or(state.config.limits.sql_row_limit)
        .min(state.config.limits.sql_row_limit);
    let timeout = state.config.limits.request_timeout;
    let df = tokio::time::timeout(timeout, ctx.sql_with_options(&req.sql, opts))
        .await
        .map_err(|_| ApiError::Timeout(format!("planning took longer than {timeout:?}")))?
        .map_err(|e| {
            let s = e.to_string();
            if s.contains("not supported")
                || s.contains("DDL")
                || s.contains("DML")
                || s.contains("Statement")
            {
                ApiError::bad(format!(
                    "only queries are allowed (SELECT, WITH, VALUES, EXPLAIN): {}",
                    truncate(&s, 300)
                ))
            } else {
                df_err("sql", e)
            }
        })?;
    let df = df.limit(0, Some(limit)).map_err(|e| df_err("sql", e))?;
    let stream = df.execute_stream().await.map_err(|e| exec_err("sql", e))?;
    format::stream_response(
        stream,
        format,
        StreamOptions {
            deadline: Some(started + timeout),
            permit: Some(permit),
            tail: Box::new(move |rows| format!("\"rows\":{rows},\"row_limit\":{limit}")),
        },
    )
    .await
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
    params(("prefix" = Option<String>, Query)),
    responses((status = 200, body = DatasetsResponse)))]
pub async fn list_datasets(
    State(state): State<AppState>,
    Extension(id): Extension<Identity>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
    p.only(&["prefix"])?;
    let ds = state.datasets(&id)?;
    let datasets = ds.list(p.get("prefix").unwrap_or("")).await?;
    json_body(&DatasetsResponse {
        namespace: id.namespace.clone(),
        datasets,
    })
}

/// Read a dataset (rows, streamed), or its `view=history` / `view=info`.
#[utoipa::path(get, path = "/v1/datasets/{name}", tag = "datasets",
    params(
        ("name" = String, Path, description = "dataset name, may contain '/'"),
        ("view" = Option<String>, Query, description = "rows (default), history or info"),
        ("version" = Option<String>, Query, description = "rows of the load with this version key"),
        ("last" = Option<bool>, Query, description = "rows of the most recent load"),
        ("as_of" = Option<String>, Query, description = "Delta version number or time"),
        ("where" = Option<String>, Query, description = "SQL predicate"),
        ("columns" = Option<String>, Query, description = "a,b,c"),
        ("limit" = Option<u64>, Query, description = "history entries (view=history)"),
        ("format" = Option<String>, Query, description = "json, csv, arrow or parquet"),
    ),
    responses((status = 200, description = "rows, history or info"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_dataset(
    State(state): State<AppState>,
    Extension(id): Extension<Identity>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
    p.only(&[
        "view", "version", "last", "as_of", "where", "columns", "limit", "format",
    ])?;
    let ds = state.datasets(&id)?;
    match p.get("view").unwrap_or("rows") {
        "history" => {
            let limit = p.uint("limit", 100, 1, 100_000)? as usize;
            return json_body(&serde_json::json!({
                "name": name,
                "history": ds.history(&name, Some(limit)).await?,
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
    let format = OutFormat::negotiate(p.get("format"), &headers)?;
    let permit = state.query_permit()?;
    let started = Instant::now();
    let mut g = ds.get(&name);
    if let Some(v) = p.get("version") {
        g = g.version(v);
    }
    if p.flag("last")? {
        g = g.last();
    }
    if let Some(a) = p.get("as_of") {
        g = g.as_of(a.parse()?);
    }
    if let Some(w) = p.get("where") {
        g = g.filter(w);
    }
    if let Some(c) = p.get("columns") {
        g = g.columns(c.split(',').map(|s| s.trim().to_string()).collect());
    }
    let rows = g.execute().await?;
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

/// Load the request body (Parquet, CSV, TSV or JSON Lines; gzip/zstd
/// allowed) into a dataset of the caller's namespace. Needs the write role.
#[utoipa::path(post, path = "/v1/datasets/{name}", tag = "datasets",
    params(
        ("name" = String, Path),
        ("format" = Option<String>, Query, description = "parquet, csv, tsv, jsonl (+.gz/.zst); else from Content-Type"),
        ("date_key" = Option<String>, Query, description = "COL[:day|month|year]"),
        ("id_key" = Option<String>, Query, description = "COL[:WIDTH]"),
        ("version" = Option<String>, Query, description = "version key (default NOW)"),
        ("keep_last" = Option<bool>, Query, description = "replace all earlier data"),
    ),
    request_body(content = Vec<u8>, description = "the file"),
    responses((status = 200, description = "what the load did"), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn put_dataset(
    State(state): State<AppState>,
    Extension(id): Extension<Identity>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    req: Request,
) -> ApiResult<Response> {
    id.require(Role::Write)?;
    let p = Params::parse(q.as_deref());
    p.only(&["format", "date_key", "id_key", "version", "keep_last"])?;
    tessera_datasets::name::check_name(&name)?;
    let fmt_name = match p.get("format") {
        Some(f) => f.to_string(),
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
    let format = tessera_formats::Format::from_extension(&fmt_name)
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
    let mut put = ds
        .put(&name)
        .input_format(Some(format))
        .sources(vec![format!("upload ({total} bytes)")]);
    if let Some(k) = p.get("date_key") {
        put = put.date_key(k.parse()?);
    }
    if let Some(k) = p.get("id_key") {
        put = put.id_key(k.parse()?);
    }
    if let Some(v) = p.get("version") {
        put = put.version(v);
    }
    if p.flag("keep_last")? {
        put = put.keep_last(true);
    }
    let loc = tessera_store::Location::local(tmp.path())?;
    let report = put.execute_files(&[loc]).await?;
    json_body(&report)
}

/// Delete a dataset of the caller's namespace. Needs the admin role.
#[utoipa::path(delete, path = "/v1/datasets/{name}", tag = "datasets",
    params(("name" = String, Path)),
    responses((status = 200, description = "what was deleted"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_dataset(
    State(state): State<AppState>,
    Extension(id): Extension<Identity>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    id.require(Role::Admin)?;
    let ds = state.datasets(&id)?;
    json_body(&ds.remove(&name).await?)
}

/// One configured manifest.
#[derive(Serialize, ToSchema)]
pub struct ManifestInfo {
    name: String,
    location: String,
}

/// The manifests the caller may query.
#[utoipa::path(get, path = "/v1/manifests", tag = "manifests",
    responses((status = 200, body = Vec<ManifestInfo>)))]
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
    json_body(&serde_json::json!({ "manifests": list }))
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
/// typed comparison: `045` matches int 45).
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
        records: raw(format::json_rows(&[batch])?)?,
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

/// 404 for every path no route serves.
pub async fn not_found(req: Request) -> ApiError {
    ApiError::NotFound(format!(
        "no such endpoint: {} {} (see /docs)",
        req.method(),
        truncate(req.uri().path(), 100)
    ))
}

/// 405 as JSON.
pub async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(ErrorBody {
            error: "method_not_allowed",
            message: "this endpoint does not take that method (see /docs)".into(),
        }),
    )
        .into_response()
}

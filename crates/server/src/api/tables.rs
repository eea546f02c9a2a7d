//! `/v1/tables`: the tables registered in the config, their schemas and
//! pages of their rows.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use axum::Extension;
use deltalake::datafusion::prelude::DataFrame;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tessera_formats::ResultFormat;
use utoipa::{IntoParams, ToSchema};

use super::{df_err, exec_err, json_body, raw};
use crate::auth::Identity;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::format::{self, truncate};
use crate::params::{bounded, Query};
use crate::query;
use crate::state::AppState;
use crate::tables::{session_config, TableKind, Tables};

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

/// Which rows of a table, and how they are encoded.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RowsParams {
    /// a,b,c
    columns: Option<String>,
    /// column:op:value, repeatable
    #[serde(default)]
    #[param(required = false)]
    filter: Vec<String>,
    /// a,-b
    sort: Option<String>,
    /// rows per page (default 100)
    limit: Option<u64>,
    /// 0-indexed page
    page: Option<u64>,
    /// next_cursor of the previous page
    cursor: Option<String>,
    /// json, csv, arrow or parquet
    format: Option<String>,
}

/// A table's rows filtered, sorted and projected as a rows request asks;
/// also the filtered rows alone (to count them). Every mistake in the
/// request is a 400 here: what comes out runs.
pub(crate) fn shape_rows(
    mut df: DataFrame,
    filters: &[String],
    sort: Option<&str>,
    columns: Option<&str>,
) -> ApiResult<(DataFrame, DataFrame)> {
    let schema = df.schema().as_arrow().clone();
    for f in filters {
        df = df
            .filter(query::filter(&schema, f)?)
            .map_err(|e| df_err(&format!("filter '{}'", truncate(f, 80)), e))?;
    }
    let counted = df.clone();
    if let Some(s) = sort {
        let by = query::sort(&schema, s)?;
        if !by.is_empty() {
            df = df.sort(by).map_err(|e| df_err("sort", e))?;
        }
    }
    if let Some(c) = columns {
        let cols = query::columns(&schema, c)?;
        df = df
            .select_columns(&cols.iter().map(String::as_str).collect::<Vec<_>>())
            .map_err(|e| df_err("columns", e))?;
    }
    Ok((df, counted))
}

#[cfg(feature = "fuzzing")]
impl RowsParams {
    /// Filters, sort (none when blank, as the handler takes it), columns
    /// and cursor.
    pub(crate) fn request(&self) -> (&[String], Option<&str>, Option<&str>, Option<&str>) {
        (
            &self.filter,
            self.sort.as_deref().filter(|s| !s.trim().is_empty()),
            self.columns.as_deref(),
            self.cursor.as_deref(),
        )
    }
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
    params(("table" = String, Path), RowsParams),
    responses((status = 200, body = RowsResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn table_rows(
    State(state): State<AppState>,
    Extension(id): Extension<Identity>,
    Path(table): Path<String>,
    Query(mut p): Query<RowsParams>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    // `sort=` with nothing to sort by is no sort (an empty ORDER BY is a
    // query engine fault, not an answer).
    p.sort = p.sort.filter(|s| !s.trim().is_empty());
    let format = format::negotiate(p.format.as_deref(), &headers)?;
    let cfg = state.tables.get(&id, &table)?.clone();
    let max = state.config.limits.max_page_size as u64;
    let limit = bounded("limit", p.limit, 100.min(max), 1, max)?;
    let filters = &p.filter;
    if filters.len() > query::MAX_FILTERS {
        return Err(ApiError::bad(format!(
            "{} filters; at most {} are allowed",
            filters.len(),
            query::MAX_FILTERS
        )));
    }
    let fp = query::fingerprint(&[
        table.as_str(),
        p.columns.as_deref().unwrap_or(""),
        &filters.join("\u{1}"),
        p.sort.as_deref().unwrap_or(""),
        &limit.to_string(),
    ]);
    let offset = match (&p.cursor, p.page) {
        (Some(_), Some(_)) => return Err(ApiError::bad("give page or cursor, not both")),
        (Some(c), None) => query::parse_cursor(c, &fp)?,
        (None, page) => bounded("page", page, 0, 0, u64::MAX / limit)?
            .checked_mul(limit)
            .ok_or_else(|| ApiError::bad("page is too large"))?,
    };
    let page = offset / limit;
    let _permit = state.query_permit()?;

    let single_file =
        Tables::kind(&cfg) == TableKind::File && filters.is_empty() && p.sort.is_none();
    let (batches, schema, total) = if single_file {
        let loc = state
            .resolve(cfg.location.as_deref().unwrap_or_default())
            .await?;
        let file = state.files.open(&loc).await?;
        let schema = file.schema().clone();
        let cols = match &p.columns {
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
            Some(c) => Arc::new(
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
        if p.sort.is_none() {
            // One partition keeps file order: stable pages without a sort.
            config = config.with_target_partitions(1);
        }
        let ctx = state.tables.session(config);
        let df: DataFrame = ctx
            .read_table(provider)
            .map_err(|e| exec_err(&format!("table '{table}'"), e))?;
        let (df, counted) = shape_rows(df, filters, p.sort.as_deref(), p.columns.as_deref())?;
        let df = df
            .limit(offset as usize, Some(limit as usize))
            .map_err(|e| df_err("limit", e))?;
        let out_schema = Arc::new(df.schema().as_arrow().clone());
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
    if format == ResultFormat::Json {
        return json_body(&RowsResponse {
            data: raw(format::encode(format, &schema, &batches)?)?,
            total_rows: total,
            page,
            limit,
            next_cursor: next,
        });
    }
    let mut r = format::response(format, format::encode(format, &schema, &batches)?);
    r.headers_mut()
        .insert("x-total-rows", HeaderValue::from(total));
    if let Some(n) = next.and_then(|n| HeaderValue::from_str(&n).ok()) {
        r.headers_mut().insert("x-next-cursor", n);
    }
    Ok(r)
}

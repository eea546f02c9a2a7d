//! `/v1/sql`: read-only SQL over the registered tables.

use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Json};
use deltalake::datafusion::execution::context::SQLOptions;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{df_err, exec_err};
use crate::auth::Identity;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::format::{self, truncate, StreamOptions};
use crate::params::Query;
use crate::state::AppState;
use crate::tables::session_config;

/// What `/v1/sql` lets a statement do: query, never define, change or
/// set anything.
pub(crate) fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// A SQL request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlRequest {
    /// One query (SELECT / WITH / VALUES / EXPLAIN) over the registered tables.
    #[schema(min_length = 1)]
    sql: String,
    /// Most rows to return (capped by the server's `sql_row_limit`).
    limit: Option<usize>,
}

/// How the answer is encoded.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SqlParams {
    /// json, csv, arrow or parquet
    #[param(pattern = "^(json|csv|arrow|parquet)$")]
    format: Option<String>,
}

/// Run a read-only SQL query over the registered tables (DataFusion SQL).
/// Anything but a query (DDL, DML, COPY, SET) is refused. The answer
/// streams; JSON is `{"data":[…],"rows":n,"row_limit":m}`.
#[utoipa::path(post, path = "/v1/sql", tag = "sql",
    request_body = SqlRequest,
    params(SqlParams),
    responses((status = 200, description = "rows"), (status = 400, body = ErrorBody)))]
pub async fn sql(
    State(state): State<AppState>,
    Extension(id): Extension<Identity>,
    params: ApiResult<Query<SqlParams>>,
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
    let Query(p) = params?;
    let format = format::negotiate(p.format.as_deref(), &headers)?;
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
    let opts = read_only();
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

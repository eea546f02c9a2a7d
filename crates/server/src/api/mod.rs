//! The HTTP API: one module per resource, and here the one table of every
//! route with its OpenAPI description.
//!
//! Each endpoint declares its query parameters once, as a typed struct read
//! by [`crate::params::Query`]; the OpenAPI document is generated from the
//! same structs.

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;
use serde_json::value::RawValue;
use tessera_formats::ResultFormat;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::app::{authenticate, timeout};
use crate::error::{ApiError, ApiResult};
use crate::format::{self, truncate};
use crate::state::AppState;

pub mod datasets;
pub mod manifests;
pub mod query_parquet;
pub mod service;
pub mod slices;
pub mod sql;
pub mod tables;

/// The full router over `state`: every route the server answers.
pub fn router(state: AppState) -> Router {
    let limits = state.config.limits.clone();
    let api = Router::new()
        .route("/query-parquet", get(query_parquet::query_parquet))
        .route("/v1/tables", get(tables::list_tables))
        .route("/v1/tables/{table}/schema", get(tables::table_schema))
        .route("/v1/tables/{table}/rows", get(tables::table_rows))
        .route(
            "/v1/sql",
            post(sql::sql).layer(DefaultBodyLimit::max(1 << 20)),
        )
        .route("/v1/datasets", get(datasets::list_datasets))
        .route(
            "/v1/datasets/{*name}",
            get(datasets::get_dataset)
                .post(datasets::put_dataset)
                .delete(datasets::delete_dataset)
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/v1/manifests", get(manifests::list_manifests))
        .route(
            "/v1/manifests/{manifest}/lookup",
            get(manifests::manifest_lookup),
        )
        .route(
            "/v1/manifests/{manifest}/unique/{field}",
            get(manifests::manifest_unique),
        )
        .route("/v1/slices/plan", post(slices::plan_slices))
        .route("/v1/slices/data", get(slices::slice_data))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    let public = Router::new()
        .route("/healthz", get(service::healthz))
        .route("/metrics", get(service::metrics))
        .route(
            "/",
            get(|| async { axum::response::Redirect::temporary("/docs/") }),
        )
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi(state.auth.is_some())));
    Router::new()
        .merge(api)
        .merge(public)
        .fallback(service::not_found)
        .method_not_allowed_fallback(service::method_not_allowed)
        .layer(middleware::from_fn_with_state(
            limits.request_timeout,
            timeout,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::track,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                ApiError::Internal("the server hit a bug handling this request".into())
                    .into_response()
            },
        ))
        .with_state(state)
}

/// The OpenAPI description, generated from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(title = "tessera", description = "Queries over Parquet files, tables, datasets and manifests in object storage."),
    paths(
        service::healthz, service::metrics, query_parquet::query_parquet,
        tables::list_tables, tables::table_schema, tables::table_rows, sql::sql,
        datasets::list_datasets, datasets::get_dataset, datasets::put_dataset,
        datasets::delete_dataset, manifests::list_manifests, manifests::manifest_lookup,
        manifests::manifest_unique, slices::plan_slices, slices::slice_data,
    ),
    components(schemas(crate::error::ErrorBody, slices::PlanRequest)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

/// The OpenAPI description of a server: with auth on, every `/v1`
/// operation requires a bearer token; with auth off none does (the document
/// must not declare a credential the server never asks for). The health,
/// metrics and documentation routes never need one.
pub fn openapi(auth: bool) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};
    let mut doc = ApiDoc::openapi();
    if !auth {
        doc.security = None;
        return doc;
    }
    let error = |what: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(what)
                .content(
                    "application/json",
                    Content::new(Some(Ref::from_schema_name("ErrorBody"))),
                )
                .build(),
        )
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        let public = matches!(path.as_str(), "/healthz" | "/metrics");
        for op in [
            item.get.as_mut(),
            item.post.as_mut(),
            item.put.as_mut(),
            item.delete.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            if public {
                op.security = Some(Vec::new());
                continue;
            }
            let r = &mut op.responses.responses;
            r.entry("401".into())
                .or_insert_with(|| error("no token, or a token the server does not accept"));
            r.entry("403".into())
                .or_insert_with(|| error("the token's role or namespace does not allow this"));
        }
    }
    doc
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        openapi.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
    }
}

fn json_body(v: &impl Serialize) -> ApiResult<Response> {
    let body = serde_json::to_vec(v).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(format::response(ResultFormat::Json, body))
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

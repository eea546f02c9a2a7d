//! The application: router, middleware, listener and shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tessera_store::Location;
use tokio::net::TcpListener;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::api;
use crate::auth::{Auth, Identity, Role};
use crate::config::Config;
use crate::error::ApiError;
use crate::state::AppState;

/// The OpenAPI description, generated from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(title = "tessera", description = "Queries over Parquet files, tables, datasets and manifests in object storage."),
    paths(
        api::healthz, api::metrics, api::query_parquet, api::list_tables, api::table_schema,
        api::table_rows, api::sql, api::list_datasets, api::get_dataset, api::put_dataset,
        api::delete_dataset, api::list_manifests, api::manifest_lookup, api::manifest_unique,
        crate::slices::plan_slices, crate::slices::slice_data,
    ),
    components(schemas(crate::error::ErrorBody, crate::slices::PlanRequest)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

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

/// A built server, bound to its address, not yet serving.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("addr", &self.listener.local_addr().ok())
            .finish()
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

impl Application {
    /// Check the config, open the store and auth, bind the address.
    /// Refuses a non-loopback address without auth unless `insecure`.
    pub async fn build(config: Config) -> Result<Application, StartError> {
        config.validate().map_err(|e| StartError(e.to_string()))?;
        let addr = config.bind_addr().map_err(|e| StartError(e.to_string()))?;
        if config.auth.is_none() && !addr.ip().is_loopback() && !config.insecure {
            return Err(StartError(format!(
                "refusing to serve {addr} without auth: anyone on the network could read and write the store. \
                 Give --auth FILE, bind to 127.0.0.1, or pass --insecure if that is really what you want"
            )));
        }
        let store = Location::open(&config.store, &config.store_options)
            .await
            .map_err(|e| StartError(format!("store: {e}")))?;
        let auth = match &config.auth {
            Some(p) => Some(Arc::new(Auth::load(p).await.map_err(StartError)?)),
            None => None,
        };
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| StartError(format!("cannot listen on {addr}: {e}")))?;
        let state = AppState::new(config, store, auth);
        let router = router(state.clone());
        Ok(Application {
            listener,
            router,
            state,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The shared state (for tests and embedding).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serve until SIGTERM or Ctrl-C; in-flight requests finish first.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serve until `stop` completes; in-flight requests finish first.
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(stop)
            .await
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// The full router over `state`.
pub fn router(state: AppState) -> Router {
    let limits = state.config.limits.clone();
    let api = Router::new()
        .route("/query-parquet", get(api::query_parquet))
        .route("/v1/tables", get(api::list_tables))
        .route("/v1/tables/{table}/schema", get(api::table_schema))
        .route("/v1/tables/{table}/rows", get(api::table_rows))
        .route(
            "/v1/sql",
            post(api::sql).layer(DefaultBodyLimit::max(1 << 20)),
        )
        .route("/v1/datasets", get(api::list_datasets))
        .route(
            "/v1/datasets/{*name}",
            get(api::get_dataset)
                .post(api::put_dataset)
                .delete(api::delete_dataset)
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/v1/manifests", get(api::list_manifests))
        .route("/v1/manifests/{manifest}/lookup", get(api::manifest_lookup))
        .route(
            "/v1/manifests/{manifest}/unique/{field}",
            get(api::manifest_unique),
        )
        .route("/v1/slices/plan", post(crate::slices::plan_slices))
        .route("/v1/slices/data", get(crate::slices::slice_data))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    let public = Router::new()
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(api::metrics))
        .route(
            "/",
            get(|| async { axum::response::Redirect::temporary("/docs/") }),
        )
        .merge(SwaggerUi::new("/docs").url("/openapi.json", ApiDoc::openapi()));
    Router::new()
        .merge(api)
        .merge(public)
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
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

async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let id = match &state.auth {
        None => Identity {
            namespace: state.config.default_namespace.clone(),
            role: Role::Admin,
            subject: "anonymous".into(),
        },
        Some(auth) => {
            let h = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            match auth.authenticate(h).await {
                Ok(id) => id,
                Err(e) => return e.into_response(),
            }
        }
    };
    tracing::debug!(subject = %id.subject, namespace = %id.namespace, "request");
    req.extensions_mut().insert(id);
    next.run(req).await
}

async fn timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    // An upload takes as long as the client takes to send it; its size is
    // bounded by max_body instead.
    if req.method() == axum::http::Method::POST && req.uri().path().starts_with("/v1/datasets/") {
        return next.run(req).await;
    }
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => {
            ApiError::Timeout(format!("the request took longer than {limit:?}")).into_response()
        }
    }
}

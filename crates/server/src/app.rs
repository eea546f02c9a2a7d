//! The application: middleware, listener and shutdown (the routes are in
//! [`crate::api`]).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use tessera_store::Location;
use tokio::net::TcpListener;

use crate::api::router;
use crate::auth::{Auth, Identity, Role};
use crate::config::{Config, ConfigError};
use crate::error::ApiError;
use crate::state::AppState;

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
#[non_exhaustive]
pub enum StartError {
    /// The configuration cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A non-loopback address without auth, and `insecure` is not set.
    #[error(
        "refusing to serve {addr} without auth: anyone on the network could read and write the store. \
         Configure an auth file, bind to a loopback address such as 127.0.0.1, \
         or set `insecure` if that is really what you want"
    )]
    Unprotected {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The store cannot be opened.
    #[error("store: {0}")]
    Store(#[from] tessera_store::Error),
    /// The auth file cannot be loaded.
    #[error("{0}")]
    Auth(String),
    /// The address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl Application {
    /// Check the config, open the store and auth, bind the address.
    /// Refuses a non-loopback address without auth unless `insecure`.
    pub async fn build(config: Config) -> Result<Application, StartError> {
        config.validate()?;
        let addr = config.bind_addr()?;
        if config.auth.is_none() && !addr.ip().is_loopback() && !config.insecure {
            return Err(StartError::Unprotected { addr });
        }
        let store = Location::open(&config.store, &config.store_options).await?;
        let auth = match &config.auth {
            Some(p) => Some(Arc::new(Auth::load(p).await.map_err(StartError::Auth)?)),
            None => None,
        };
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
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
    ///
    /// The signal handlers are installed when this is called (in a tokio
    /// runtime), not when the future is first polled, so a caller can
    /// announce the address after calling it without a window in which a
    /// signal would end the process undrained.
    pub fn run_until_stopped(self) -> impl Future<Output = std::io::Result<()>> {
        let stop = shutdown_signal();
        self.run_until(stop)
    }

    /// Serve until `stop` completes; in-flight requests finish first, for
    /// at most the configured `shutdown_timeout` (then their connections
    /// are closed).
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let grace = self.state.config.limits.shutdown_timeout;
        let (stopped, on_stop) = tokio::sync::oneshot::channel::<()>();
        let stop = async move {
            stop.await;
            let _ = stopped.send(());
        };
        let serve = crate::listen::serve(self.listener, self.router, stop);
        tokio::pin!(serve);
        let deadline = async move {
            if on_stop.await.is_err() {
                // The server ended without being asked to stop.
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            () = &mut serve => Ok(()),
            _ = deadline => {
                tracing::warn!(
                    "shutting down: requests still running after {grace:?} were cut off"
                );
                Ok(())
            }
        }
    }
}

/// SIGTERM or Ctrl-C. The handlers are installed here, before the future
/// is first polled: a signal that arrives while the server is still
/// starting to serve is not the default action (which would end the
/// process with no drain and a failure status).
fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    let (term, int) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(term) => {},
                () = wait(int) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutting down");
    }
}

pub(crate) async fn authenticate(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
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

pub(crate) async fn timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
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

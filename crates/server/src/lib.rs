//! The tessera HTTP server: the reference `/query-parquet` endpoint, tables
//! registered in a config, read-only SQL, datasets, manifests and slices over
//! REST, with API-token and JWT auth, namespaces, limits and metrics.
//!
//! The library holds everything; `tessera serve` is a few lines over it. A
//! [`Config`] is plain data: [`Config::default`] reads no environment, and
//! [`Config::from_env`] is the one constructor that applies the `TESSERA_*`
//! variables (a binary calls it on purpose).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tessera_server::{Application, Config, StartError};
//!
//! let config = Config {
//!     bind: "127.0.0.1:0".into(),
//!     store: "./tessera-data".into(),
//!     ..Config::default()
//! };
//! let app = match Application::build(config).await {
//!     Ok(app) => app,
//!     Err(StartError::Unprotected { addr }) => {
//!         return Err(format!("{addr} is not a loopback address: configure auth").into())
//!     }
//!     Err(e) => return Err(e.into()),
//! };
//! println!("listening on http://{}", app.local_addr());
//! app.run_until_stopped().await?;
//! # Ok(()) }
//! ```
//!
//! The routes are listed in one place, [`api`], one module per resource;
//! each endpoint's query parameters are one typed struct, from which the
//! OpenAPI document at `/openapi.json` is generated too. Results are
//! encoded by [`tessera_formats::ResultEncoder`] in the format negotiated by
//! `format=` or `Accept` (see [`format`]).
//!
//! Every failure of a request is an [`ApiError`], answered as
//! `{"error": code, "message": text}` with a 4xx status for client mistakes
//! and 5xx for faults of the server or its store.

#![warn(missing_docs)]

pub mod api;
mod app;
pub mod auth;
pub mod config;
mod error;
pub mod format;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod listen;
mod metrics;
pub mod pages;
mod params;
mod query;
mod state;
pub mod tables;

pub use api::{router, ApiDoc};
pub use app::{Application, StartError};
pub use auth::{new_token, Auth, Identity, Role};
pub use config::{Config, ConfigError, Limits};
pub use error::{ApiError, ApiResult, ErrorBody};
pub use state::AppState;

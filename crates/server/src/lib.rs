//! The tessera HTTP server: the reference `/query-parquet` endpoint, tables
//! registered in a config, read-only SQL, datasets and manifests over REST,
//! with API-token and JWT auth, namespaces, limits and metrics.
//!
//! The library holds everything; `tessera serve` is a few lines over it:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tessera_server::{Application, Config};
//!
//! let mut config = Config::default();
//! config.bind = "127.0.0.1:0".into();
//! config.store = "./tessera-data".into();
//! let app = Application::build(config).await?;
//! println!("listening on http://{}", app.local_addr());
//! app.run_until_stopped().await?;
//! # Ok(()) }
//! ```
//!
//! Every failure is an [`ApiError`], answered as `{"error": code,
//! "message": text}` with a 4xx status for client mistakes.

#![warn(missing_docs)]

pub mod api;
mod app;
pub mod auth;
pub mod config;
mod error;
pub mod format;
mod metrics;
pub mod pages;
mod params;
mod query;
pub mod slices;
mod state;
pub mod tables;

pub use app::{router, ApiDoc, Application, StartError};
pub use auth::{new_token, Auth, Identity, Role};
pub use config::{Config, ConfigError, Limits};
pub use error::{ApiError, ApiResult, ErrorBody};
pub use state::AppState;

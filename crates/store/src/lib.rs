//! # tessera-store
//!
//! The storage layer of tessera: one URL model over every object store
//! (`s3://`, `gs://`, `az://`, `file://`, plain paths and `memory://`), built
//! on the [`object_store`] crate, plus what the rest of tessera needs on top
//! of it:
//!
//! * [`Location::open`] parses a location into a store and a key, with the
//!   settings of [`StoreOptions`]: endpoint (S3-compatible servers,
//!   path-style), region, profile, access keys, retries. The options are
//!   plain values; [`StoreOptions::from_env`] takes them from the
//!   environment the way the AWS CLI does (`AWS_PROFILE`, `AWS_ENDPOINT_URL`,
//!   `AWS_ACCESS_KEY_ID`, …), and nothing else in this crate reads it;
//! * listing of every page, and [`Location::list_all`], which lists large
//!   prefixes in parallel by splitting on sub-prefixes;
//! * ranged reads, streaming multipart writes, and [`Location::publish`], an
//!   atomic publish with an optional create-if-absent mode;
//! * [`Location::capabilities`], a probe that finds out whether a store really
//!   enforces conditional writes (Garage, for one, silently ignores them);
//! * [`Cache`], a local cache of objects keyed by URL and ETag;
//! * [`units`]: the sizes, durations and times people type.
//!
//! Errors are one [`Error`], whose messages name the object and never hold a
//! secret the options know ([`StoreOptions::redact`]).
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use tessera_store::{Location, PublishMode, StoreOptions};
//!
//! // In a program run by people, StoreOptions::from_env() instead.
//! let opts = StoreOptions::default().with_max_retries(2);
//! let dir = Location::open("memory://example/data", &opts).await?;
//! let obj = dir.join("a/b.txt")?;
//! obj.publish("hello", PublishMode::CreateNew).await?;
//! assert_eq!(obj.read().await?.as_ref(), b"hello");
//! let listed = dir.list_all(8).await?;
//! assert_eq!(listed.len(), 1);
//! assert!(dir.capabilities().await?.conditional_create);
//! # Ok::<(), tessera_store::Error>(())
//! # }).unwrap();
//! ```

mod aws;
pub mod cache;
mod error;
mod location;
mod ops;
mod options;
pub mod units;

pub use cache::Cache;
pub use error::{redact, Error, Result};
pub use location::{Location, StoreKind};
pub use object_store::{self, path::Path as ObjectPath, ObjectMeta};
pub use ops::{Capabilities, PublishMode, MULTIPART_CHUNK};
pub use options::{StoreOptions, DEFAULT_MAX_RETRIES};
pub use units::{format_size, parse_size, UnitError};

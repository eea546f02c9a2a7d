//! # tessera-store
//!
//! The storage layer of tessera: one URL model over every object store
//! (`s3://`, `gs://`, `az://`, `file://`, plain paths and `memory://`), built
//! on the [`object_store`] crate, plus what the rest of tessera needs on top
//! of it:
//!
//! * [`Location::open`] parses a location into a store and a key, taking S3
//!   settings from the standard AWS chain (environment, `--profile` /
//!   `AWS_PROFILE` profile files, web identity, instance metadata) and
//!   `--endpoint` / `AWS_ENDPOINT_URL` for S3-compatible servers (path-style);
//! * listing of every page, and [`Location::list_all`], which lists large
//!   prefixes in parallel by splitting on sub-prefixes;
//! * ranged reads, streaming multipart writes, and [`Location::publish`], an
//!   atomic publish with an optional create-if-absent mode;
//! * [`Location::capabilities`], a probe that finds out whether a store really
//!   enforces conditional writes (Garage, for one, silently ignores them);
//! * [`Cache`], a local cache of objects keyed by URL and ETag.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use tessera_store::{Location, PublishMode, StoreOptions};
//!
//! let dir = Location::open("memory://example/data", &StoreOptions::default()).await?;
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
mod size;

pub use cache::Cache;
pub use error::{redact, Error, Result};
pub use location::{Location, StoreKind, StoreOptions};
pub use object_store::{self, path::Path as ObjectPath, ObjectMeta};
pub use ops::{Capabilities, PublishMode, MULTIPART_CHUNK};
pub use size::{format_size, parse_size};

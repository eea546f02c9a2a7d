//! # tessera-manifest
//!
//! Manifests index the objects of a store by fields extracted from their
//! keys, so that "where is the file for gene X in tissue 45?" is answered
//! from memory in well under a microsecond instead of by listing a bucket.
//!
//! * [`Template`] parses path templates such as
//!   `**/v1/ad/{gene_id}/model_tissue_{tissue_id:int32}.tl` and matches keys;
//! * [`BuildManifest`] matches a listing (one key or URL per line) in
//!   parallel and sorts the records by the fields: [`run`](BuildManifest::run)
//!   gives the [`BuiltManifest`] in memory, and
//!   [`write_to`](BuildManifest::write_to) publishes it as one Parquet file
//!   (dictionary-encoded strings, statistics, snappy), readable by any engine;
//! * [`OpenManifest`] (or [`Manifest::open`]) opens such a file and the
//!   [`Manifest`] answers `exists`, `location`, `records`, `unique` and
//!   `fetch` (download through the local cache) from an in-memory index.
//!
//! Operations follow the workspace's builder rule: `Operation::new(required…)`,
//! optional `with_*` setters, then `run()` for synchronous work or `.await`
//! for work that touches a store.
//!
//! ```
//! use tessera_manifest::{BuildManifest, LoadManifest, Template};
//!
//! # fn main() -> Result<(), tessera_manifest::Error> {
//! let paths = "s3://b/v1/ad/G1/model_tissue_4.tl\ns3://b/v1/ad/G2/model_tissue_45.tl\nREADME.md\n";
//! let template = Template::parse("**/v1/ad/{gene_id}/model_tissue_{tissue_id:int32}.tl")?;
//! let built = BuildManifest::new(template, paths)
//!     .with_row_group_rows(1 << 20)
//!     .run()?;
//! assert_eq!((built.summary.matched, built.summary.skipped), (2, 1));
//!
//! let bytes = built.to_parquet()?;
//! let m = LoadManifest::new("demo.parquet", bytes).run()?;
//! assert!(m.exists(&[("gene_id", "G2"), ("tissue_id", "45")])?);
//! assert_eq!(m.location(&[("gene_id", "G1"), ("tissue_id", "004")])?, Some("s3://b/v1/ad/G1/model_tissue_4.tl"));
//! assert!(m.exists(&[("tissue_id", "abc")]).is_err(), "not an int32");
//! # Ok(())
//! # }
//! ```
//!
//! Writing to a store and opening from it are awaited on the caller's
//! runtime:
//!
//! ```
//! # use tessera_manifest::{BuildManifest, OpenManifest, Template};
//! # use tessera_store::{Location, StoreOptions};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tessera_manifest::Error> {
//! let out = Location::open("memory://demo/manifest.parquet", &StoreOptions::default()).await?;
//! let template = Template::parse("**/{gene_id}/{tissue_id:int32}.tl")?;
//! let summary = BuildManifest::new(template, "s3://b/G1/4.tl\n")
//!     .with_strict(true)
//!     .write_to(&out)
//!     .await?;
//! assert_eq!(summary.matched, 1);
//! let m = OpenManifest::new(&out).await?;
//! assert_eq!(m.len(), 1);
//! # Ok(())
//! # }
//! ```

mod build;
mod columns;
mod error;
mod listing;
mod lookup;
#[allow(unsafe_code)] // SSE2 intrinsics for scanning 16 bytes at a time
mod scan;
mod template;

pub use build::{BuildManifest, BuildSummary, BuiltManifest, WriteManifest, ROW_GROUP_ROWS};
pub use error::{Error, Result};
pub use listing::read_listing;
pub use lookup::{describe, LoadManifest, Manifest, OpenManifest, Query, Value};
pub use template::{
    format_date, key_offset, parse_date_days, Captures, Field, FieldType, MatchScratch, Template,
};

/// Default name of the column holding each object's location.
pub const DEFAULT_LOCATION_COLUMN: &str = "file_path";

/// Key of the Parquet key-value metadata entry describing a tessera manifest.
pub const META_KEY: &str = "tessera.manifest";

/// What tessera stores in a manifest's Parquet metadata.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ManifestMeta {
    /// Format version (1).
    pub version: u32,
    /// The template the manifest was built with.
    pub template: String,
    /// The location column.
    pub location_column: String,
    /// (name, type) of each field, in sort order.
    pub fields: Vec<(String, String)>,
}

//! # tessera-manifest
//!
//! Manifests index the objects of a store by fields extracted from their
//! keys, so that "where is the file for gene X in tissue 45?" is answered
//! from memory in well under a microsecond instead of by listing a bucket.
//!
//! * [`Template`] parses path templates such as
//!   `**/v1/ad/{gene_id}/model_tissue_{tissue_id:int32}.tl` and matches keys;
//! * [`ManifestBuilder`] matches a list of paths (a paths file or a listing)
//!   in parallel, sorts the records by the fields and writes one Parquet file
//!   (dictionary-encoded strings, statistics, snappy), readable by any engine;
//! * [`Manifest`] opens such a file and answers `exists`, `location`,
//!   `records`, `unique` and `fetch` (download through the local cache)
//!   from an in-memory index.
//!
//! ```
//! use tessera_manifest::{Manifest, ManifestBuilder, Template};
//!
//! let paths = "s3://b/v1/ad/G1/model_tissue_4.tl\ns3://b/v1/ad/G2/model_tissue_45.tl\nREADME.md\n";
//! let template = Template::parse("**/v1/ad/{gene_id}/model_tissue_{tissue_id:int32}.tl")?;
//! let built = ManifestBuilder::new(template).build(paths)?;
//! assert_eq!((built.summary.matched, built.summary.skipped), (2, 1));
//!
//! let bytes = built.to_parquet(1 << 20)?;
//! let m = Manifest::from_bytes("demo.parquet", bytes.into(), None)?;
//! assert!(m.exists(&[("gene_id", "G2"), ("tissue_id", "45")])?);
//! assert_eq!(m.location(&[("gene_id", "G1"), ("tissue_id", "004")])?, Some("s3://b/v1/ad/G1/model_tissue_4.tl"));
//! assert!(m.exists(&[("tissue_id", "abc")]).is_err(), "not an int32");
//! # Ok::<(), tessera_manifest::Error>(())
//! ```

mod build;
mod columns;
mod error;
mod lookup;
mod scan;
mod template;

pub use build::{BuildSummary, BuiltManifest, ManifestBuilder, ROW_GROUP_ROWS};
pub use error::{Error, Result};
pub use lookup::{describe, Manifest, Query, Value};
pub use template::{
    format_date, key_offset, parse_date, Captures, Field, FieldType, MatchScratch, Template,
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

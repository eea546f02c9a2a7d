//! # tessera-slice
//!
//! Cut raw files in object storage into byte-range slices that parallel
//! workers fetch independently, without ever splitting or losing a record.
//!
//! 1. [`Index::build`] reads an object once and records where slices may
//!    start: record boundaries for CSV/TSV (quoted newlines respected),
//!    text, JSON Lines, FASTQ (4-line records) and VCF; record and line
//!    boundaries for FASTA (so long sequences can be split between lines);
//!    and for gzip, deflate checkpoints with their 32 KiB windows (BGZF:
//!    block starts). The index is a JSON sidecar holding the object's size
//!    and ETag; [`Index::open`] refuses an index whose object changed.
//! 2. [`Index::plan`] cuts the object from the index alone ([`Strategy`]: a
//!    count, a byte size, or a number of records per slice) into [`Slice`]
//!    descriptors: self-contained JSON with the URL, ETag, byte ranges,
//!    what decoding needs (header, checkpoint window) and no credentials.
//! 3. [`Slice::fetch`] reads a slice's ranges (in parallel ranged GETs),
//!    decodes them and returns whole records in the source format, with the
//!    header (CSV/TSV/VCF) or the sequence's header line (FASTA) first.
//!
//! Concatenating every slice's records gives the object's records exactly
//! once, in order.
//!
//! Every operation is a builder in the workspace's one dialect: started by
//! a constructor or a handle ([`Index::build`], [`Index::open`],
//! [`Index::plan`], [`Slice::fetch`]), optional settings as `with_*`
//! setters, run by `.await` (store I/O) or `run()` (planning, which reads
//! nothing). Errors are one [`Error`] whose variants a program can match
//! ([`Error::StaleIndex`], [`Error::InvalidRecord`], ...).
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use tessera_slice::{Index, Strategy};
//! use tessera_store::{Location, PublishMode, StoreOptions};
//!
//! let obj = Location::open("memory://demo/reads.fastq", &StoreOptions::default()).await?;
//! let reads: String = (0..1000).map(|i| format!("@r{i}\nACGT\n+\nIIII\n")).collect();
//! obj.publish(reads.clone(), PublishMode::Overwrite).await?;
//!
//! // Index once (the format comes from the name) and save the sidecar.
//! let (index, _stats) = Index::build(&obj).with_spacing(1024).await?;
//! assert_eq!(index.records, 1000);
//! index.save(&Index::location_for(&obj, None)?).await?;
//!
//! // Later, anywhere: open the index (refused if the object changed) and plan.
//! let index = Index::open(&obj).await?;
//! let slices = index.plan(Strategy::Count(4)).run()?;
//!
//! // Each worker fetches its own slice; together they are the object.
//! let mut all = Vec::new();
//! for s in &slices {
//!     all.extend(s.fetch(&obj).with_part_size(64 << 10).await?);
//! }
//! assert_eq!(all, reads.as_bytes());
//! # Ok::<(), tessera_slice::Error>(())
//! # }).unwrap();
//! ```
//!
//! The scientific formats go through the [`Registry`] of [`SliceFormat`]s,
//! with the same three steps: LAS/LAZ/COPC point clouds ([`LasFormat`]),
//! tiled GeoTIFFs ([`CogFormat`]), imzML mass-spectrometry images
//! ([`ImzmlFormat`]: a slice is a standalone `.imzML` + `.ibd` pair) and
//! radio-astronomy MeasurementSets ([`MsFormat`]: indexed by the table
//! folder's URL, cut over whole timestamps, a slice is a standalone table
//! folder); those whose slices are several files fetch a tar stream
//! ([`unpack`] writes it out).

mod cog;
mod error;
mod format;
#[allow(unsafe_code)] // the zlib FFI, every block with its SAFETY note
mod gz;
mod imzml;
mod index;
mod las;
mod ms;
mod plugin;
mod records;
mod scan;
mod slice;
mod text;

pub use cog::CogFormat;
pub use error::{Error, Result};
pub use format::{Compression, RecordFormat};
pub use imzml::{spectra_to_arrow, ImzmlFormat};
pub use index::{
    sidecar, BuildIndex, Checkpoint, Header, Index, IndexStats, OpenIndex, DEFAULT_GZIP_SPACING,
    DEFAULT_SPACING, INDEX_SUFFIX, INDEX_VERSION,
};
pub use las::{points_to_arrow, LasFormat};
pub use ms::MsFormat;
pub use plugin::{
    pick_any_slice, unpack, write_files, AnyIndex, AnySlice, BoxFuture, Detail, FetchAny, IndexAny,
    IndexRequest, Registry, SliceFile, SliceFormat,
};
pub use records::record_spans;
pub use scan::Sequence;
pub use slice::{
    parse_slices, pick_slice, ByteRange, Decode, FastaPart, FetchSlice, PlanSlices, Prefix, Slice,
    Strategy, Take, DEFAULT_PART_SIZE, SLICE_VERSION,
};
pub use text::RecordFormats;

//! # tessera-pack
//!
//! Packs every file under `INPUT_BASE/TABLE/` — CSV, TSV, JSON Lines,
//! Parquet, gzip or zstd text — into evenly sized files of one format under
//! `OUTPUT_BASE/TABLE/`, named `{TABLE}_{N}.{EXT}` (or
//! `{TABLE}_{SUFFIX}_{N}.{EXT}`):
//!
//! * the latest file of the folder (highest `N`), if under the size limit,
//!   is rewritten holding its rows followed by new rows; then `N+1`, `N+2`, …
//!   each filled to the limit (within a few percent, measured on the written
//!   bytes);
//! * [`Pack::with_partition`] packs into one Hive partition folder,
//!   [`Pack::with_partition_by`] splits rows into one folder per value;
//! * [`Compact`] rebalances an existing table;
//! * crash safety and exactly-once: see [`journal`] — a run killed at any
//!   instant and run again leaves every input row in the output exactly once,
//!   inputs already packed (same URL and ETag) are skipped, and readers never
//!   see a half-written file.
//!
//! Data streams through: memory holds a few MiB of text chunks per core and
//! one Parquet row group per open output file, whatever the input size.
//!
//! ## Operations
//!
//! Both operations are builders: `new` takes what is required, `with_*`
//! setters take the rest (not calling one keeps the default), `plan()` shows
//! what would be done without writing anything, and awaiting the builder
//! runs it and returns its report. [`Pack::progress`] and
//! [`Compact::progress`] give counters to poll while it runs. Errors are
//! [`Error`]s a program can match on.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use tessera_pack::{Compact, Pack};
//! use tessera_store::{Location, PublishMode, StoreOptions};
//!
//! let o = StoreOptions::default();
//! let land = Location::open("memory://pack-doc/land", &o).await?;
//! land.join("sales/jan.csv")?.publish("id,amount\n1,9.5\n2,3.0\n", PublishMode::Overwrite).await?;
//! let db = Location::open("memory://pack-doc/db", &o).await?;
//!
//! let pack = Pack::new(land, db.clone(), "sales").with_max_file_size(1 << 20);
//! let plan = pack.plan().await?;
//! assert_eq!(plan.inputs.len(), 1);
//!
//! let report = pack.await?;
//! assert_eq!(report.rows, 2);
//! assert_eq!(report.outputs[0].path, "sales_0.snappy.parquet");
//! assert!(db.join("sales/sales_0.snappy.parquet")?.exists().await?);
//!
//! let compacted = Compact::new(db, "sales").with_max_file_size(1 << 20).await?;
//! assert!(compacted.seq.is_none(), "one small file is balanced");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! ## Features
//!
//! * `fault-injection` (off by default): makes
//!   [`Pack::with_fault_point`] and [`Compact::with_fault_point`] abort the
//!   process at the chosen point of the journal protocol, for crash tests.
//!   Without it they do nothing.

mod compact;
mod error;
pub mod journal;
pub mod naming;
mod pack;
mod plan;
mod run;
mod writers;

pub use compact::{Compact, CompactFolder, CompactPlan, CompactReport};
pub use error::{Error, Result};
pub use journal::{InputRecord, OutputRecord, PackTarget, RunRecord};
pub use pack::{Pack, PackReport};
pub use plan::{ExistingFile, PackPlan, PlannedInput};
pub use run::{Progress, DEFAULT_MAX_FILE_SIZE, FULL_FRACTION};

//! # tessera-datasets
//!
//! Versioned, partitioned datasets: named tables that loads append to (or
//! replace), read back whole, by version key, as of an earlier version, or
//! filtered, with partitions pruned. Each dataset is a [Delta Lake] table
//! under `STORE/datasets/<namespace>/<name>/`, so DuckDB, Polars, Spark and
//! pandas read it without tessera.
//!
//! * Names are hierarchical (`project/dataset/subset`), see [`name`].
//! * Every load is tagged with a *version key* (`NOW` by default, the UTC
//!   time of the load), stored in the column [`VERSION_COLUMN`] and in the
//!   commit; `get` can return the rows of one key or of the last load.
//! * Partitions: a date key (`day`, `month`, `year`) and/or an ID-range key,
//!   see [`keys`].
//! * Writers: files of about 128 MB, Parquet with zstd; concurrent writers
//!   all succeed (Delta's optimistic commits, conflicts retried) on stores
//!   that enforce create-if-absent writes. On a store that does not (found by
//!   [`tessera_store::Location::capabilities`]) writing is refused unless the
//!   caller promises a single writer ([`Datasets::with_single_writer`]).
//!
//! Every operation is a builder in the style of delta-rs: started from the
//! [`Datasets`] handle, given optional settings with `with_*` setters, and
//! run by `.await` (the builders implement [`IntoFuture`]). Builders own
//! what they need, so they can be sent to other tasks.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use arrow::array::{Int64Array, RecordBatch, StringArray};
//! use arrow::datatypes::{DataType, Field, Schema};
//! use tessera_datasets::{AsOf, DateKey, Datasets, Granularity, IdKey};
//! use tessera_store::StoreOptions;
//!
//! let ds = Datasets::open("memory://datasets-doc", &StoreOptions::default()).await?;
//! let schema = Arc::new(Schema::new(vec![
//!     Field::new("day", DataType::Utf8, true),
//!     Field::new("user id", DataType::Int64, true),
//! ]));
//! let batch = RecordBatch::try_new(schema, vec![
//!     Arc::new(StringArray::from(vec!["2024-03-01", "2024-03-02"])),
//!     Arc::new(Int64Array::from(vec![7, 250_000])),
//! ])?;
//! let put = ds
//!     .put("shop/visits")
//!     .with_batches(vec![batch])
//!     .with_date_key(DateKey::new("day", Granularity::Day))
//!     .with_id_key(IdKey::new("user id", 100_000))
//!     .with_version("v1")
//!     .await?;
//! assert_eq!(put.rows, 2);
//!
//! // Streamed batch by batch, or collected.
//! let mut rows = ds.get("shop/visits").with_filter(r#""user id" < 1000"#).await?;
//! while let Some(batch) = rows.next().await {
//!     assert_eq!(batch?.num_rows(), 1);
//! }
//! let last = ds.get("shop/visits").with_last(true).collect().await?;
//! assert_eq!(last.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
//! let first = ds.get("shop/visits").with_as_of(AsOf::Version(0)).collect().await?;
//! assert_eq!(first.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
//! let history = ds.history("shop/visits").with_limit(10).await?;
//! assert_eq!(history[0].version_key.as_deref(), Some("v1"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! Errors are [`Error`]s, whose variants say what a program can act on
//! (`NotFound`, `SchemaMismatch`, `InvalidRecord`, `UnsafeStore`, …).
//!
//! The partition keys a dataset was created with are recorded in its Delta
//! table's configuration under `tessera.partition.*`; [`keys`] lists the
//! entries.
//!
//! [Delta Lake]: https://delta.io

//! [`IntoFuture`]: std::future::IntoFuture

mod admin;
mod error;
pub mod files;
mod get;
pub mod keys;
mod log;
pub mod name;
mod partition;
mod put;
pub mod sql;
mod stream;
mod write;

use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use tessera_store::{Location, StoreOptions};
use url::Url;

pub use admin::{
    Compact, CompactReport, DatasetInfo, History, HistoryEntry, RemoveReport, Vacuum, VacuumReport,
};
pub use error::{Error, Result};
pub use get::{AsOf, Get, ReadStats, Rows};
pub use keys::{DateKey, Granularity, IdKey, PartitionLayout, VERSION_COLUMN};
pub use put::{Put, PutReport};
pub use write::DEFAULT_MEMORY_BUDGET;

/// Default target size of data files: 128 MB.
pub const DEFAULT_TARGET_SIZE: u64 = 128 * 1024 * 1024;

/// Namespace used when none is given.
pub const DEFAULT_NAMESPACE: &str = "default";

/// The datasets of one namespace of a store. Cheap to clone; each
/// operation's builder holds a clone.
#[derive(Clone, Debug)]
pub struct Datasets {
    store: Location,
    namespace: String,
    single_writer: bool,
}

impl Datasets {
    /// The datasets of namespace `default` in the store at `store` (any URL
    /// tessera accepts, or a local path).
    pub async fn open(store: &str, opts: &StoreOptions) -> Result<Datasets> {
        Ok(Datasets::new(Location::open(store, opts).await?))
    }

    /// The datasets of namespace `default` in `store`.
    pub fn new(store: Location) -> Datasets {
        log::register_log_stores();
        Datasets {
            store,
            namespace: DEFAULT_NAMESPACE.to_string(),
            single_writer: false,
        }
    }

    /// The same store, another namespace (one name segment).
    pub fn with_namespace(mut self, namespace: &str) -> Result<Datasets> {
        name::check_namespace(namespace)?;
        self.namespace = namespace.to_string();
        Ok(self)
    }

    /// Promise that only this process writes to these datasets, which
    /// allows writing on stores that do not enforce conditional writes
    /// (default: no promise; writing there fails with [`Error::UnsafeStore`]).
    pub fn with_single_writer(mut self, yes: bool) -> Datasets {
        self.single_writer = yes;
        self
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The folder holding this namespace's datasets.
    pub fn root(&self) -> Result<Location> {
        Ok(self.store.join(&format!("datasets/{}", self.namespace))?)
    }

    /// The folder of dataset `name` (checked).
    pub fn location(&self, name: &str) -> Result<Location> {
        name::check_name(name)?;
        self.root()?.join(name).map_err(Error::from)
    }

    /// Start a load into dataset `name`.
    pub fn put(&self, name: &str) -> Put {
        Put::new(self.clone(), name)
    }

    /// Start a read of dataset `name`.
    pub fn get(&self, name: &str) -> Get {
        Get::new(self.clone(), name)
    }

    /// Start a read of the history of dataset `name`.
    pub fn history(&self, name: &str) -> History {
        History::new(self.clone(), name)
    }

    /// Start a vacuum of dataset `name`.
    pub fn vacuum(&self, name: &str) -> Vacuum {
        Vacuum::new(self.clone(), name)
    }

    /// Start a compaction of dataset `name`.
    pub fn compact(&self, name: &str) -> Compact {
        Compact::new(self.clone(), name)
    }

    /// Refuse to write where a lost commit would go unnoticed.
    pub(crate) async fn check_writable(&self) -> Result<()> {
        if self.single_writer {
            return Ok(());
        }
        let root = self.root()?;
        let caps = root.capabilities().await?;
        if caps.conditional_create {
            Ok(())
        } else {
            Err(Error::UnsafeStore { url: root.url() })
        }
    }

    /// A Delta table handle for dataset `name`, not loaded.
    pub(crate) fn table_handle(&self, name: &str) -> Result<(Location, DeltaTableBuilder)> {
        let loc = self.location(name)?;
        let url = table_url(&loc)?;
        let builder = DeltaTableBuilder::from_url(url.clone())
            .map_err(|e| Error::delta(name, e))?
            .with_storage_backend(loc.store().clone(), url);
        Ok((loc, builder))
    }

    /// Whether dataset `name` exists.
    pub async fn try_exists(&self, name: &str) -> Result<bool> {
        put::is_table(&self.location(name)?).await
    }

    /// Dataset `name`, loaded at its latest version; `NotFound` if absent.
    pub(crate) async fn load(&self, name: &str) -> Result<DeltaTable> {
        match self.try_load(name).await? {
            Some(t) => Ok(t),
            None => Err(Error::NotFound {
                name: name.to_string(),
                url: self.location(name)?.url(),
            }),
        }
    }

    /// Dataset `name` at its latest version, or `None` if there is none.
    pub(crate) async fn try_load(&self, name: &str) -> Result<Option<DeltaTable>> {
        let (loc, builder) = self.table_handle(name)?;
        if !put::is_table(&loc).await? {
            return Ok(None);
        }
        let mut table = builder.build().map_err(|e| Error::delta(name, e))?;
        match table.load().await {
            Ok(()) => Ok(Some(table)),
            Err(e) if not_a_table(&e) => Ok(None),
            Err(e) => Err(Error::delta(name, e)),
        }
    }
}

/// The URL deltalake uses for a location.
pub(crate) fn table_url(loc: &Location) -> Result<Url> {
    let s = loc.url();
    let s = if s.ends_with('/') { s } else { format!("{s}/") };
    Url::parse(&s).map_err(|e| Error::internal(format!("the store URL {s} does not parse: {e}")))
}

pub(crate) fn not_a_table(e: &DeltaTableError) -> bool {
    match e {
        DeltaTableError::NotATable(_) => true,
        DeltaTableError::InvalidTableLocation(_) => true,
        DeltaTableError::ObjectStore { source } => {
            matches!(source, deltalake::ObjectStoreError::NotFound { .. })
        }
        DeltaTableError::KernelError(k) => {
            let s = k.to_string();
            s.contains("No files in log segment")
                || s.contains("not found")
                || s.contains("Path does not exist")
        }
        _ => false,
    }
}

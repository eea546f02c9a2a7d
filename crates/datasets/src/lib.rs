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
//!   caller promises a single writer.
//!
//! Operations are builders, run with `.execute()`:
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use arrow::array::{Int64Array, RecordBatch, StringArray};
//! use arrow::datatypes::{DataType, Field, Schema};
//! use tessera_datasets::Datasets;
//! use tessera_store::StoreOptions;
//!
//! let ds = Datasets::open("memory://datasets-doc", &StoreOptions::default()).await?;
//! let schema = Arc::new(Schema::new(vec![
//!     Field::new("day", DataType::Utf8, true),
//!     Field::new("user_id", DataType::Int64, true),
//! ]));
//! let batch = RecordBatch::try_new(schema, vec![
//!     Arc::new(StringArray::from(vec!["2024-03-01", "2024-03-02"])),
//!     Arc::new(Int64Array::from(vec![7, 250_000])),
//! ])?;
//! let put = ds.put("shop/visits")
//!     .date_key("day".parse()?)
//!     .id_key("user_id".parse()?)
//!     .version("v1")
//!     .execute(vec![batch])
//!     .await?;
//! assert_eq!(put.rows, 2);
//!
//! let rows = ds.get("shop/visits").filter("user_id < 1000").collect().await?;
//! assert_eq!(rows.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
//! let last = ds.get("shop/visits").last().collect().await?;
//! assert_eq!(last.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! [Delta Lake]: https://delta.io

mod admin;
mod error;
pub mod files;
mod get;
pub mod keys;
pub mod name;
mod put;
mod stream;

use std::sync::{Arc, Once};

use deltalake::logstore::{
    default_logstore, logstore_factories, LogStore, LogStoreFactory, ObjectStoreRef, StorageConfig,
};
use deltalake::{DeltaResult, DeltaTable, DeltaTableBuilder, DeltaTableError};
use tessera_store::{Location, StoreOptions};
use url::Url;

pub use admin::{
    parse_duration, Compact, CompactReport, DatasetInfo, HistoryEntry, RemoveReport, Vacuum,
    VacuumReport,
};
pub use error::{Error, Result};
pub use get::{AsOf, Get, ReadStats, Rows};
pub use keys::{DateKey, Granularity, IdKey, Layout, VERSION_COLUMN};
pub use put::{Put, PutReport};

/// Default target size of data files: 128 MB.
pub const DEFAULT_TARGET_SIZE: u64 = 128 * 1024 * 1024;

/// Namespace used when none is given.
pub const DEFAULT_NAMESPACE: &str = "default";

/// The datasets of one namespace of a store.
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
        register_log_stores();
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
    /// allows writing on stores that do not enforce conditional writes.
    pub fn single_writer(mut self, yes: bool) -> Datasets {
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
    pub fn put(&self, name: &str) -> Put<'_> {
        Put::new(self, name)
    }

    /// Start a read of dataset `name`.
    pub fn get(&self, name: &str) -> Get<'_> {
        Get::new(self, name)
    }

    /// Start a vacuum of dataset `name`.
    pub fn vacuum(&self, name: &str) -> Vacuum<'_> {
        Vacuum::new(self, name)
    }

    /// Start a compaction of dataset `name`.
    pub fn compact(&self, name: &str) -> Compact<'_> {
        Compact::new(self, name)
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
    Url::parse(&s).map_err(|e| Error::InvalidInput(format!("{s}: {e}")))
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

/// Delta's commits go through the same object store tessera uses for every
/// scheme; deltalake itself only knows `file://` and `memory://` without
/// its cloud crates. Its default log store commits with create-if-absent
/// writes, which is safe wherever the store enforces them (checked by the
/// capability probe before any write).
#[derive(Debug, Default)]
struct SharedStoreLogs;

impl LogStoreFactory for SharedStoreLogs {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}

fn register_log_stores() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let reg = logstore_factories();
        for scheme in ["s3", "s3a", "gs", "az", "abfs", "abfss", "azure", "adl"] {
            let url = Url::parse(&format!("{scheme}://")).expect("valid scheme URL");
            if !reg.contains_key(&url) {
                reg.insert(url, Arc::new(SharedStoreLogs));
            }
        }
    });
}

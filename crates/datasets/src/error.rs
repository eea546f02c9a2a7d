//! The error type of datasets.

use deltalake::datafusion::error::DataFusionError;
use deltalake::DeltaTableError;

/// Everything that can go wrong with a dataset. Messages name the dataset,
/// and where known the object, row and column.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A dataset or namespace name that breaks the naming rules.
    #[error("invalid dataset name '{name}': {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// The rule it breaks.
        reason: String,
    },
    /// A bad option (unknown column, bad duration, bad predicate, …).
    #[error("{0}")]
    InvalidInput(String),
    /// A value that cannot be used: a non-date value in a date key, a
    /// non-integer ID, …
    #[error("{context}: {message}")]
    Data {
        /// The source object and row.
        context: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// The load's columns do not fit the dataset's schema.
    #[error("dataset '{name}': {message}")]
    Schema {
        /// The dataset.
        name: String,
        /// The columns at fault.
        message: String,
    },
    /// No dataset of that name.
    #[error("dataset '{name}' does not exist (no Delta table at {url})")]
    NotFound {
        /// The dataset.
        name: String,
        /// Where it was looked for.
        url: String,
    },
    /// `--last` on a dataset that has never been loaded by `put`.
    #[error("dataset '{name}' has no loads yet, so there is no last version")]
    NoLoads {
        /// The dataset.
        name: String,
    },
    /// A Delta version or time the table does not have (before its first
    /// commit, after its last, or its log was cleaned up).
    #[error("dataset '{name}': {message}")]
    NoSuchVersion {
        /// The dataset.
        name: String,
        /// Which version was asked for and which exist.
        message: String,
    },
    /// Time travel to a version whose files vacuum removed.
    #[error("dataset '{name}': version {version} is no longer readable: its data files were removed by vacuum ({detail})")]
    Vacuumed {
        /// The dataset.
        name: String,
        /// The Delta version asked for.
        version: u64,
        /// The missing object.
        detail: String,
    },
    /// The name is taken by something else (a dataset inside another one).
    #[error("dataset '{name}': {message}")]
    Conflict {
        /// The dataset.
        name: String,
        /// What is in the way.
        message: String,
    },
    /// Other writers kept committing; the operation gave up after retries.
    #[error("dataset '{name}': gave up after {attempts} attempts because other writers kept committing conflicting changes; run again")]
    TooManyConflicts {
        /// The dataset.
        name: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The store cannot guarantee that concurrent writers do not lose commits.
    #[error("{url}: this store does not enforce conditional writes (create-if-absent), so two writers committing to one dataset at the same time could silently lose a commit; if only one process writes to these datasets at a time, pass --single-writer")]
    UnsafeStore {
        /// The datasets root.
        url: String,
    },
    /// Reading input files failed (bad rows, wrong types, …).
    #[error(transparent)]
    Format(#[from] tessera_formats::Error),
    /// The storage layer failed.
    #[error(transparent)]
    Store(#[from] tessera_store::Error),
    /// The Delta Lake library failed.
    #[error("dataset '{name}': {source}")]
    Delta {
        /// The dataset.
        name: String,
        /// The cause.
        #[source]
        source: Box<DeltaTableError>,
    },
    /// The query engine failed.
    #[error("dataset '{name}': {source}")]
    Query {
        /// The dataset.
        name: String,
        /// The cause.
        #[source]
        source: Box<DataFusionError>,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn delta(name: &str, e: DeltaTableError) -> Error {
        // Our own errors travel through the Delta writer inside DataFusion
        // errors; bring them back out.
        if let Some(ours) = find_ours(&e) {
            return ours;
        }
        Error::Delta {
            name: name.to_string(),
            source: Box::new(e),
        }
    }

    pub(crate) fn query(name: &str, e: DataFusionError) -> Error {
        if let Some(ours) = find_ours(&e) {
            return ours;
        }
        Error::Query {
            name: name.to_string(),
            source: Box::new(e),
        }
    }
}

/// A copy of an [`Error`] carried (as an `Arc`) somewhere in `e`'s source chain.
fn find_ours(e: &(dyn std::error::Error + 'static)) -> Option<Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(x) = cur {
        if let Some(c) = x.downcast_ref::<Carried>() {
            return c.0.lock().ok().and_then(|mut g| g.take());
        }
        if let Some(DataFusionError::External(inner)) = x.downcast_ref::<DataFusionError>() {
            if let Some(c) = inner.downcast_ref::<Carried>() {
                return c.0.lock().ok().and_then(|mut g| g.take());
            }
        }
        cur = x.source();
    }
    None
}

/// An [`Error`] wrapped so it can cross the query engine (which wants
/// `Send + Sync + 'static` errors) and be recovered on the other side.
#[derive(Debug)]
pub(crate) struct Carried(pub std::sync::Mutex<Option<Error>>);

impl std::fmt::Display for Carried {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.lock().ok().as_ref().and_then(|g| g.as_ref()) {
            Some(e) => write!(f, "{e}"),
            None => f.write_str("input failed"),
        }
    }
}

impl std::error::Error for Carried {}

impl Carried {
    pub(crate) fn wrap(e: Error) -> DataFusionError {
        DataFusionError::External(Box::new(Carried(std::sync::Mutex::new(Some(e)))))
    }
}

//! The error type of datasets.

use deltalake::datafusion::error::DataFusionError;
use deltalake::DeltaTableError;

use crate::get::AsOf;

/// Everything that can go wrong with a dataset. Messages name the dataset,
/// and where known the object, row and column; they never name a
/// command-line flag (front ends add their own vocabulary).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A dataset or namespace name that breaks the naming rules.
    #[error("invalid dataset name '{name}': {rule}")]
    InvalidName {
        /// The name as given (control characters escaped).
        name: String,
        /// The rule it breaks.
        rule: String,
    },
    /// A setting of an operation that cannot be used: a version key, a
    /// partition key, a point in time, a combination of settings.
    #[error("invalid {option} '{value}': {reason}")]
    InvalidOption {
        /// Which setting (`version key`, `date key`, `ID key`, `as of`, …).
        option: &'static str,
        /// The value given.
        value: String,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// A filter that is not a valid predicate over the dataset's columns.
    #[error("dataset '{dataset}': invalid filter '{predicate}': {reason}")]
    InvalidPredicate {
        /// The dataset.
        dataset: String,
        /// The predicate as given.
        predicate: String,
        /// What the query engine found wrong.
        reason: String,
    },
    /// A column the dataset (or the data of a load) does not have.
    #[error("dataset '{dataset}': no column '{column}' (columns: {})", .available.join(", "))]
    NoSuchColumn {
        /// The dataset.
        dataset: String,
        /// The column asked for.
        column: String,
        /// The columns there are.
        available: Vec<String>,
    },
    /// A partition key on a column whose type the key cannot use.
    #[error("dataset '{dataset}': the {key} column '{column}' is {found}; {expected}")]
    InvalidKeyColumn {
        /// The dataset.
        dataset: String,
        /// `date key` or `ID key`.
        key: &'static str,
        /// The key column.
        column: String,
        /// Its type.
        found: String,
        /// The types the key can use.
        expected: &'static str,
    },
    /// A column named like one tessera adds itself (the version key
    /// column, a derived partition column).
    #[error("dataset '{dataset}': column '{column}' {reason}; rename it")]
    ReservedColumn {
        /// The dataset.
        dataset: String,
        /// The column.
        column: String,
        /// What tessera uses the name for.
        reason: String,
    },
    /// A column whose type Delta Lake cannot store.
    #[error("dataset '{dataset}': column '{column}' has type {data_type}, which Delta Lake cannot store; convert it to text, a number or a timestamp first")]
    UnsupportedType {
        /// The dataset.
        dataset: String,
        /// The column.
        column: String,
        /// Its type.
        data_type: String,
    },
    /// A column of a load whose type does not fit the dataset's.
    #[error("dataset '{dataset}': column '{column}' is {found} in {object} but {expected} in the dataset")]
    SchemaMismatch {
        /// The dataset.
        dataset: String,
        /// The input holding the column.
        object: String,
        /// The column.
        column: String,
        /// Its type in the dataset.
        expected: String,
        /// Its type in the input.
        found: String,
    },
    /// A load asks for partitions other than the dataset's.
    #[error("dataset '{dataset}' is partitioned by {table}; this load asks for {requested}")]
    LayoutMismatch {
        /// The dataset.
        dataset: String,
        /// The dataset's partitioning.
        table: String,
        /// The load's.
        requested: String,
    },
    /// A value that cannot be used: a non-date value in a date key, a
    /// non-integer ID, a value that does not convert to its column's type.
    #[error("{object}{}: column '{column}': {reason}", row_suffix(.row))]
    InvalidRecord {
        /// The input object.
        object: String,
        /// The row (1-based, the header not counted), when known.
        row: Option<u64>,
        /// The column.
        column: String,
        /// What is wrong and what was expected.
        reason: String,
    },
    /// An input file whose format its name does not tell.
    #[error("{object}: cannot tell the file format from the name; give the format explicitly ({formats})")]
    UnknownFormat {
        /// The input object.
        object: String,
        /// The formats there are.
        formats: String,
    },
    /// A load with no input.
    #[error("nothing to load into '{dataset}': the input is empty")]
    EmptyInput {
        /// The dataset.
        dataset: String,
    },
    /// A dataset whose recorded partition layout cannot be read.
    #[error("dataset '{dataset}': its table configuration has {key} = '{value}': {reason}")]
    InvalidLayout {
        /// The dataset.
        dataset: String,
        /// The configuration key.
        key: String,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No dataset of that name.
    #[error("dataset '{name}' does not exist (no Delta table at {url})")]
    NotFound {
        /// The dataset.
        name: String,
        /// Where it was looked for.
        url: String,
    },
    /// A read by version key, or of the last load, on a dataset that no
    /// `put` has loaded yet.
    #[error(
        "dataset '{name}' has no loads by tessera yet, so it has no version keys and no last load"
    )]
    NoLoads {
        /// The dataset.
        name: String,
    },
    /// A Delta version or time the table does not have (before its first
    /// commit, after its last, or its log was cleaned up).
    #[error("dataset '{name}' has no {}: {reason}", describe_as_of(.as_of))]
    NoSuchVersion {
        /// The dataset.
        name: String,
        /// The version or time asked for.
        as_of: AsOf,
        /// Which versions exist, or what the log says.
        reason: String,
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
    /// The store cannot guarantee that concurrent writers do not lose
    /// commits, and the caller did not promise a single writer
    /// ([`crate::Datasets::with_single_writer`]).
    #[error("{url}: this store does not enforce conditional writes (create-if-absent), so two writers committing to one dataset at the same time could silently lose a commit; writing here needs the promise that only one process writes to these datasets at a time (single-writer mode)")]
    UnsafeStore {
        /// The datasets root.
        url: String,
    },
    /// A fault of tessera itself (a broken invariant, a task that failed),
    /// not of the input.
    #[error("internal error: {message}")]
    Internal {
        /// What went wrong.
        message: String,
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
    /// A file or folder that cannot be read as a table (SQL sources).
    #[error("cannot read {url} as a table: {reason}")]
    InvalidSource {
        /// The file or folder.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// A SQL query that is not valid, not allowed (only queries are:
    /// SELECT, WITH, VALUES, EXPLAIN) or failed while running.
    #[error("SQL: {reason}")]
    InvalidQuery {
        /// What the query engine found wrong.
        reason: String,
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

fn row_suffix(row: &Option<u64>) -> String {
    row.map(|r| format!(": row {r}")).unwrap_or_default()
}

fn describe_as_of(at: &AsOf) -> String {
    match at {
        AsOf::Version(v) => format!("version {v}"),
        AsOf::Time(t) => format!("version as of {}", t.to_rfc3339()),
    }
}

impl Error {
    pub(crate) fn internal(message: impl Into<String>) -> Error {
        Error::Internal {
            message: message.into(),
        }
    }

    pub(crate) fn delta(name: &str, e: DeltaTableError) -> Error {
        Error::Delta {
            name: name.to_string(),
            source: Box::new(e),
        }
    }

    pub(crate) fn query(name: &str, e: DataFusionError) -> Error {
        Error::Query {
            name: name.to_string(),
            source: Box::new(e),
        }
    }
}

//! The one error type of the manifest crate.

/// Result alias for manifests.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong building or querying a manifest.
///
/// Messages name the template, the listing and line, the manifest and
/// column; they never name a command-line flag (front ends add their own
/// vocabulary).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The template is malformed; `position` is the 1-based character where.
    #[error("invalid template at character {position}: {message}\n  {template}\n  {caret:>width$}", caret = "^", width = position)]
    InvalidTemplate {
        /// The template as given.
        template: String,
        /// 1-based character position of the problem.
        position: usize,
        /// What is wrong.
        message: String,
    },
    /// A column name cannot be used: the location column's name is empty, or
    /// it is also the name of a template field.
    #[error("invalid column name '{name}': {rule}")]
    InvalidName {
        /// The name given.
        name: String,
        /// The rule it breaks.
        rule: String,
    },
    /// A line of the listing cannot be indexed: it is not valid UTF-8, it
    /// follows gigabytes without a line break, or (in a strict build) it
    /// does not match the template. Nothing was written.
    #[error("line {line} of {object}: {message}")]
    InvalidRecord {
        /// The listing, as named by the caller.
        object: String,
        /// The 1-based line number (blank lines count).
        line: u64,
        /// What is wrong with it; for a strict build, how many lines did
        /// not match and the first of them.
        message: String,
    },
    /// No line of the listing matched the template (nothing was written).
    #[error("no path matched the template '{template}' ({read} paths read){examples}")]
    EmptyMatch {
        /// The template.
        template: String,
        /// How many paths were read.
        read: u64,
        /// A few of the paths that did not match, formatted for display.
        examples: String,
    },
    /// The input is larger than a manifest holds.
    #[error("{0}")]
    Unsupported(String),
    /// The file is not a manifest: not Parquet, or without field columns,
    /// or with nulls or metadata tessera cannot read.
    #[error("{url} is not a manifest: {reason}")]
    NotAManifest {
        /// The file.
        url: String,
        /// Why not.
        reason: String,
    },
    /// A manifest file lacks a column the query or the template needs.
    #[error("manifest {url} has no column '{column}' (it has: {available})")]
    MissingColumn {
        /// The manifest.
        url: String,
        /// The missing column.
        column: String,
        /// The columns it has.
        available: String,
    },
    /// A manifest column does not have the type its role needs.
    #[error("manifest {url}: column '{column}' has type {found}, expected {expected}")]
    SchemaMismatch {
        /// The manifest.
        url: String,
        /// The column.
        column: String,
        /// The type it needs.
        expected: String,
        /// The type it has.
        found: String,
    },
    /// A query names a field the manifest does not have.
    #[error("unknown field '{field}' (the manifest has: {available})")]
    UnknownField {
        /// The field asked for.
        field: String,
        /// The fields available.
        available: String,
    },
    /// A query value does not parse as its field's type.
    #[error("invalid value '{value}' for field '{field}': expected {expected}")]
    InvalidValue {
        /// The field.
        field: String,
        /// The value given.
        value: String,
        /// What was expected.
        expected: String,
    },
    /// No record matches the query (for operations that need one).
    #[error("no record matches {conditions}")]
    NotFound {
        /// The conditions, as `field=value, …`.
        conditions: String,
    },
    /// The manifest or source could not be read or written.
    #[error(transparent)]
    Store(#[from] tessera_store::Error),
    /// The Parquet file could not be decoded or encoded.
    #[error("parquet error in {url}: {source}")]
    Parquet {
        /// The manifest.
        url: String,
        /// The underlying error.
        source: parquet::errors::ParquetError,
    },
    /// An Arrow error while assembling results.
    #[error("arrow error: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// A fault of tessera itself (a task that panicked, …), not of the input.
    #[error("internal error: {0}")]
    Internal(String),
}

//! The one error type of the manifest crate.

/// Result alias for manifests.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong building or querying a manifest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The template is malformed; `position` is the 1-based character where.
    #[error("invalid template at character {position}: {message}\n  {template}\n  {caret:>width$}", caret = "^", width = position)]
    Template {
        /// The template as given.
        template: String,
        /// 1-based character position of the problem.
        position: usize,
        /// What is wrong.
        message: String,
    },
    /// No input path matched the template (nothing was written).
    #[error("no path matched the template '{template}' ({read} paths read){examples}")]
    EmptyMatch {
        /// The template.
        template: String,
        /// How many paths were read.
        read: u64,
        /// A few of the paths that did not match, formatted for display.
        examples: String,
    },
    /// `--strict`: some paths did not match (nothing was written).
    #[error("{count} of {read} paths did not match the template '{template}' (--strict); first: {examples}")]
    Skipped {
        /// The template.
        template: String,
        /// Paths read.
        read: u64,
        /// Paths that did not match.
        count: u64,
        /// The first skipped lines, with line numbers.
        examples: String,
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
    /// Other invalid input (bad arguments, unreadable manifest, ...).
    #[error("{0}")]
    InvalidInput(String),
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
}

//! The error type of the formats layer.

/// Everything that can go wrong reading, writing or encoding data. Messages
/// name the object and, where known, the line and the column.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file extension or format name that tessera does not know.
    #[error("unknown format '{name}': expected one of {expected}")]
    UnknownFormat {
        /// The name or extension given.
        name: String,
        /// What is accepted.
        expected: String,
    },
    /// A record that does not parse: a row with the wrong number of fields,
    /// a value that is not of its column's type, invalid UTF-8, a truncated
    /// compressed stream.
    #[error("{object}{}: {message}", .line.map(|l| format!(": line {l}")).unwrap_or_default())]
    InvalidRecord {
        /// The object being read.
        object: String,
        /// 1-based line of the file (physical line, header included), when known.
        line: Option<u64>,
        /// The column of the bad value, when known.
        column: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// Data whose columns or types do not fit the schema they must have.
    #[error("{object}: {message}")]
    SchemaMismatch {
        /// The object or table concerned.
        object: String,
        /// Every column at fault.
        columns: Vec<ColumnMismatch>,
        /// The columns and types at fault, for a human.
        message: String,
    },
    /// A declared schema that cannot be used: not a list of columns, a
    /// column declared twice, a type tessera does not know.
    #[error("{object}: {message}")]
    InvalidSchema {
        /// Where the schema came from.
        object: String,
        /// What is wrong.
        message: String,
    },
    /// Something tessera does not do, such as writing a format it only reads.
    #[error("{0}")]
    Unsupported(String),
    /// The storage layer failed.
    #[error(transparent)]
    Store(#[from] tessera_store::Error),
    /// Reading or writing bytes failed.
    #[error("{object}: {source}")]
    Io {
        /// The object concerned.
        object: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The Parquet library failed.
    #[error("{object}: {source}")]
    Parquet {
        /// The object concerned.
        object: String,
        /// The cause.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// The Arrow library failed (other than on bad data, which is
    /// [`Error::InvalidRecord`]).
    #[error("{object}: {source}")]
    Arrow {
        /// The object concerned.
        object: String,
        /// The cause.
        #[source]
        source: arrow::error::ArrowError,
    },
    /// A fault of tessera itself (a broken invariant, a worker that stopped
    /// without a result), not of the data or the caller.
    #[error("internal error: {0}")]
    Internal(String),
}

/// One column that does not fit the schema it must have.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ColumnMismatch {
    /// The column's name.
    pub column: String,
    /// What the schema wants: a type, `present` or `not null`.
    pub expected: String,
    /// What the data has: a type, `absent`, `missing` or `nulls`.
    pub found: String,
}

impl ColumnMismatch {
    pub(crate) fn new(
        column: impl Into<String>,
        expected: impl ToString,
        found: impl ToString,
    ) -> ColumnMismatch {
        ColumnMismatch {
            column: column.into(),
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(object: impl Into<String>, source: std::io::Error) -> Error {
        // Errors of the inner reader (a store error, a decompression error)
        // travel inside io::Error; bring them back out.
        match source.downcast::<Error>() {
            Ok(e) => e,
            Err(source) => Error::Io {
                object: object.into(),
                source,
            },
        }
    }

    pub(crate) fn invalid_record(
        object: impl Into<String>,
        line: Option<u64>,
        message: impl Into<String>,
    ) -> Error {
        Error::InvalidRecord {
            object: object.into(),
            line,
            column: None,
            message: message.into(),
        }
    }

    pub(crate) fn invalid_schema(object: impl Into<String>, message: impl Into<String>) -> Error {
        Error::InvalidSchema {
            object: object.into(),
            message: message.into(),
        }
    }

    pub(crate) fn parquet(
        object: &str,
    ) -> impl Fn(parquet::errors::ParquetError) -> Error + Copy + '_ {
        move |source| match source {
            // A store failure the Parquet writer or reader passed on (an
            // upload or a ranged read) is a store error, which programs
            // (and the CLI's hints) tell apart from bad data.
            parquet::errors::ParquetError::External(e) => {
                match e.downcast::<tessera_store::object_store::Error>() {
                    Ok(e) => Error::Store(tessera_store::Error::from_object_store(object, *e)),
                    Err(e) => Error::Parquet {
                        object: object.to_string(),
                        source: parquet::errors::ParquetError::External(e),
                    },
                }
            }
            source => Error::Parquet {
                object: object.to_string(),
                source,
            },
        }
    }

    pub(crate) fn arrow(object: &str) -> impl Fn(arrow::error::ArrowError) -> Error + Copy + '_ {
        move |source| Error::Arrow {
            object: object.to_string(),
            source,
        }
    }
}

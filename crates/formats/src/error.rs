//! The error type of the formats layer.

/// Everything that can go wrong reading or writing data files. Messages name
/// the object and, where known, the line and the column.
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
    /// Malformed data: a row that does not parse, a bad value, invalid UTF-8,
    /// a truncated compressed stream.
    #[error("{url}{}: {message}", .line.map(|l| format!(": line {l}")).unwrap_or_default())]
    Malformed {
        /// The object being read.
        url: String,
        /// 1-based line of the file (physical line, header included), when known.
        line: Option<u64>,
        /// What is wrong.
        message: String,
    },
    /// Data whose columns or types do not fit the schema they must have.
    #[error("{context}: {message}")]
    Schema {
        /// The object or table concerned.
        context: String,
        /// The columns and types at fault.
        message: String,
    },
    /// A caller mistake: a bad schema file, a bad option.
    #[error("{0}")]
    InvalidInput(String),
    /// The storage layer failed.
    #[error(transparent)]
    Store(#[from] tessera_store::Error),
    /// Reading or writing bytes failed.
    #[error("{url}: {source}")]
    Io {
        /// The object concerned.
        url: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The Parquet library failed.
    #[error("{url}: {source}")]
    Parquet {
        /// The object concerned.
        url: String,
        /// The cause.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// The Arrow library failed (other than a data error, which is `Malformed`).
    #[error("{url}: {source}")]
    Arrow {
        /// The object concerned.
        url: String,
        /// The cause.
        #[source]
        source: arrow::error::ArrowError,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(url: impl Into<String>, source: std::io::Error) -> Error {
        // Errors of the inner reader (a store error, a decompression error)
        // travel inside io::Error; bring them back out.
        match source.get_ref().and_then(|e| e.downcast_ref::<Error>()) {
            Some(_) => *source.into_inner().unwrap().downcast::<Error>().unwrap(),
            None => Error::Io {
                url: url.into(),
                source,
            },
        }
    }

    pub(crate) fn malformed(
        url: impl Into<String>,
        line: Option<u64>,
        message: impl Into<String>,
    ) -> Error {
        Error::Malformed {
            url: url.into(),
            line,
            message: message.into(),
        }
    }
}

//! The one error type of the slicing crate.

use thiserror::Error;

/// Everything that can go wrong while indexing, planning or fetching slices.
#[derive(Debug, Error)]
pub enum Error {
    /// The data object, its index or a slice file does not exist.
    #[error("not found: {what}")]
    NotFound {
        /// What was missing (a URL, usually).
        what: String,
    },
    /// The data is not what its declared format says, or it is damaged.
    #[error("{object}: {message}")]
    InvalidData {
        /// The object (URL) at fault.
        object: String,
        /// What was wrong, with the line or byte offset.
        message: String,
    },
    /// A request that cannot be carried out as asked (a bad option, a bad
    /// slice number, a slice file edited by hand).
    #[error("{0}")]
    InvalidInput(String),
    /// The object changed after it was indexed or sliced.
    #[error("{url}: the object changed since it was indexed (index: {indexed}; now: {now}); run `tessera index` again")]
    StaleIndex {
        /// The data object.
        url: String,
        /// Size and ETag the index recorded.
        indexed: String,
        /// Size and ETag the store reports now.
        now: String,
    },
    /// An index or slice file this version cannot read.
    #[error("{url}: {message}")]
    BadIndex {
        /// The index or slice file.
        url: String,
        /// What was wrong with it.
        message: String,
    },
    /// The object store failed.
    #[error(transparent)]
    Store(#[from] tessera_store::Error),
    /// A local file could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the file.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn data(object: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidData {
            object: object.into(),
            message: message.into(),
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

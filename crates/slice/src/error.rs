//! The one error type of the slicing crate.

use crate::format::{Compression, RecordFormat};
use crate::slice::Strategy;

/// Everything that can go wrong while indexing, planning or fetching slices.
///
/// Messages name the object (a URL), the slice and the line or byte
/// offset where that helps; they never name a command-line flag.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The data object does not exist.
    #[error("not found: {object}")]
    NotFound {
        /// The object's URL.
        object: String,
    },
    /// The object has no index where one was looked for.
    #[error("no index at {index}")]
    NoIndex {
        /// Where the index was looked for.
        index: String,
    },
    /// No format was given and the object's name does not tell it.
    #[error("{object}: cannot tell the format from the name")]
    UnknownFormat {
        /// The object's URL.
        object: String,
    },
    /// No format of the registry answers to this name.
    #[error("unknown format `{format}` (known: {known})")]
    NoSuchFormat {
        /// The name asked for.
        format: String,
        /// The names the registry knows, comma-separated.
        known: String,
    },
    /// A binary file that is not valid in its format (a damaged header, a
    /// missing table, offsets past the end).
    #[error("{object}: not a valid {format} file: {message}")]
    InvalidFile {
        /// The object's URL.
        object: String,
        /// The format's name.
        format: String,
        /// What is wrong, and where.
        message: String,
    },
    /// The data is not valid in its declared record format.
    #[error("{object}: not valid {format}: {}{message}", at_line(*.line))]
    InvalidRecord {
        /// The object's URL.
        object: String,
        /// The format the data was read as.
        format: RecordFormat,
        /// The 1-based line of the object where the problem is, when known.
        line: Option<u64>,
        /// What is wrong.
        message: String,
    },
    /// The compressed stream is damaged.
    #[error("{object}: corrupt {compression} data: {message}")]
    Corrupt {
        /// The object's URL.
        object: String,
        /// The compression whose stream is damaged.
        compression: Compression,
        /// Where and what, as the decoder reports it.
        message: String,
    },
    /// The data ends too early: a truncated object, or a slice that does
    /// not match it.
    #[error("{object}: {message}")]
    Truncated {
        /// The object's URL.
        object: String,
        /// What ended where.
        message: String,
    },
    /// A request this object cannot satisfy (a `.fai` of a FASTQ, a `.gzi`
    /// of plain gzip, a FASTA a `.fai` cannot describe).
    #[error("{object}: {reason}")]
    Unsupported {
        /// The object's URL.
        object: String,
        /// Why not.
        reason: String,
    },
    /// The object changed after it was indexed or sliced.
    #[error("{object}: the object changed since it was indexed (index: {indexed}; now: {now})")]
    StaleIndex {
        /// The data object's URL.
        object: String,
        /// Size and ETag the index recorded.
        indexed: String,
        /// Size and ETag the store reports now.
        now: String,
    },
    /// An index this version cannot read (not an index, a newer format
    /// version, a missing window).
    #[error("{index}: {message}")]
    InvalidIndex {
        /// The index (its URL, or the object it indexes).
        index: String,
        /// What is wrong with it.
        message: String,
    },
    /// A slices file that is not a JSON list of slice descriptors.
    #[error("{file}: not a slices file (a JSON list of slice descriptors): {message}")]
    InvalidSlicesFile {
        /// The slices file.
        file: String,
        /// What the JSON parser reported.
        message: String,
    },
    /// A slice number past the end of a slices file.
    #[error(
        "{file} has {count} slices (0 to {}); there is no slice {slice}",
        .count.saturating_sub(1)
    )]
    NoSuchSlice {
        /// The slices file.
        file: String,
        /// The slice asked for.
        slice: usize,
        /// How many slices the file has.
        count: usize,
    },
    /// A slice descriptor that is not internally consistent (edited by
    /// hand, a newer descriptor version, a damaged header or window).
    #[error("slice {slice} of {object}: {message}")]
    InvalidSlice {
        /// The data object's URL.
        object: String,
        /// The slice's number.
        slice: usize,
        /// What is wrong with it.
        message: String,
    },
    /// A slicing strategy with a zero count or size.
    #[error(
        "cannot plan {strategy}: the slice count, byte size or record count must be at least 1"
    )]
    InvalidStrategy {
        /// The strategy asked for.
        strategy: Strategy,
    },
    /// The object store failed.
    #[error(transparent)]
    Store(#[from] tessera_store::Error),
    /// A local file or the output of a slice could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the file.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A fault of tessera itself (a worker task that panicked, a broken
    /// invariant), not of the input.
    #[error("internal error: {message}")]
    Internal {
        /// What went wrong.
        message: String,
    },
}

fn at_line(line: Option<u64>) -> String {
    line.map(|l| format!("line {l}: ")).unwrap_or_default()
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Error::Internal {
            message: message.into(),
        }
    }

    pub(crate) fn unsupported(object: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Unsupported {
            object: object.into(),
            reason: reason.into(),
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

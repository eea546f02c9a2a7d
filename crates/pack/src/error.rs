//! The error type of packing.

/// Everything that can stop a pack. Messages name the objects concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A bad option or name.
    #[error("{0}")]
    InvalidInput(String),
    /// No input files were found.
    #[error("no input files under {url}")]
    NoInput {
        /// The input folder.
        url: String,
    },
    /// Inputs of several formats without `--input-ext`.
    #[error("the input folder {url} mixes formats ({formats}); choose one with --input-ext")]
    MixedInputs {
        /// The input folder.
        url: String,
        /// The formats found, with an example of each.
        formats: String,
    },
    /// The output folder holds something that cannot be part of the table.
    #[error("{url}: {message}")]
    OutputFolder {
        /// The offending object.
        url: String,
        /// Why.
        message: String,
    },
    /// Another pack committed to the same table while this one ran (after retries).
    #[error("another pack kept committing to {table} while this one ran; run again")]
    Conflict {
        /// The table folder.
        table: String,
    },
    /// The store cannot guarantee that concurrent packs do not lose data.
    #[error("{url}: this store does not enforce conditional writes (create-if-absent), so two packs into one table at the same time could silently lose a commit; if only one pack writes to this table at a time, pass --single-writer")]
    UnsafeStore {
        /// The table folder.
        url: String,
    },
    /// The journal is damaged.
    #[error("{url}: {message}")]
    Journal {
        /// The journal object.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing data failed (bad rows, schema conflicts, …).
    #[error(transparent)]
    Format(#[from] tessera_formats::Error),
    /// The storage layer failed.
    #[error(transparent)]
    Store(#[from] tessera_store::Error),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

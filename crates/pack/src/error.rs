//! The error type of packing and compaction.

use arrow::datatypes::DataType;

/// Everything that can stop a pack or a compaction. Messages name the
/// objects concerned; variants carry them as fields for programs to match.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A table name, suffix, partition key or partition value that cannot
    /// name a file or folder.
    #[error("invalid {what} {}: {rule}", shown(.name))]
    InvalidName {
        /// What the name is for: `table name`, `suffix`, `partition`,
        /// `partition key` or `partition value`.
        what: &'static str,
        /// The name given.
        name: String,
        /// The rule it breaks.
        rule: String,
    },
    /// A setting out of range or in conflict with another one.
    #[error("{option}: {message}")]
    InvalidOption {
        /// The setting, named as its setter without `with_`
        /// (`max_file_size`, `partition_by`, …).
        option: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The column to split rows by is not a column of the data.
    #[error("no column '{column}' to partition by (columns: {})", .columns.join(", "))]
    NoSuchColumn {
        /// The column asked for.
        column: String,
        /// The columns there are.
        columns: Vec<String>,
    },
    /// An input's columns do not fit the table it is appended to.
    #[error("{object}: schema conflict: {}", mismatch(.column, .expected.as_ref(), .found.as_ref()))]
    SchemaMismatch {
        /// The input concerned.
        object: String,
        /// The first column at fault.
        column: String,
        /// Its type in the table (`None`: the table has no such column).
        expected: Option<DataType>,
        /// Its type in the input (`None`: the input lacks this required column).
        found: Option<DataType>,
    },
    /// Something tessera cannot do, such as naming folders by the values of
    /// a column of nested type.
    #[error("{0}")]
    Unsupported(String),
    /// No input files were found (for a compaction: no table files).
    #[error("no input files under {url}")]
    NoInput {
        /// The input folder.
        url: String,
    },
    /// An input file whose format is not known from its name.
    #[error("{url}: unknown file format (expected {expected}); choose the input format to read only files of that format")]
    UnknownInputFormat {
        /// The input file.
        url: String,
        /// The formats tessera reads.
        expected: String,
    },
    /// Inputs of several formats and no input format chosen.
    #[error("the input folder {url} mixes formats ({}); choose one input format", .formats.join(", "))]
    MixedInputs {
        /// The input folder.
        url: String,
        /// The extensions found.
        formats: Vec<String>,
    },
    /// The input folder contains the table folder or lies inside it.
    #[error("the input folder {input} and the output folder {output} overlap; to rebalance a table in place, compact it")]
    InputOverlapsOutput {
        /// The input folder.
        input: String,
        /// The table folder.
        output: String,
    },
    /// A file in the table folder that is not part of the table's series.
    #[error("{url}: this file breaks the naming convention {table}_[SUFFIX_]N.EXT of the table folder: {reason}; move it away")]
    ForeignFile {
        /// The file.
        url: String,
        /// The table name.
        table: String,
        /// How it breaks the convention.
        reason: String,
    },
    /// A table file of another format than the one written.
    #[error("{url}: an existing {found} file, but this pack writes {expected}: a table folder holds one format")]
    FormatMismatch {
        /// The file.
        url: String,
        /// Its format (extension).
        found: String,
        /// The format written (extension).
        expected: String,
    },
    /// Another run kept committing to the same table while this one ran
    /// (after retries).
    #[error("another pack kept committing to {table} while this one ran; run again")]
    Conflict {
        /// The table folder.
        table: String,
    },
    /// The store cannot guarantee that concurrent runs do not lose data, and
    /// the caller did not promise to be the only writer.
    #[error("{url}: this store does not enforce conditional writes (create-if-absent), so two packs into one table at the same time could silently lose a commit")]
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
    /// A fault of tessera itself: a broken invariant, a task that panicked.
    #[error("internal error: {0}")]
    Internal(String),
    /// Reading or writing data failed (bad rows, unconvertible values, …).
    #[error(transparent)]
    Format(#[from] tessera_formats::Error),
    /// The storage layer failed.
    #[error(transparent)]
    Store(#[from] tessera_store::Error),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A name as messages show it: quoted, cut after 60 characters.
fn shown(name: &str) -> String {
    let cut: String = name.chars().take(60).collect();
    if cut.len() < name.len() {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}

fn mismatch(column: &str, expected: Option<&DataType>, found: Option<&DataType>) -> String {
    match (expected, found) {
        (Some(e), Some(f)) => {
            format!("column '{column}' is {f} in the new data but {e} in the existing file")
        }
        (None, Some(f)) => format!("column '{column}' ({f}) is not in the existing file"),
        (Some(e), None) => {
            format!("column '{column}' ({e}) of the existing file is missing in the new data")
        }
        (None, None) => format!("column '{column}' does not fit the existing file"),
    }
}

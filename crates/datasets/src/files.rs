//! How dataset files are written: Parquet, zstd, and per column an encoding
//! chosen for its type.
//!
//! The Parquet writer dictionary-encodes every column until the dictionary
//! outgrows its page limit (1 MiB by default). Dataset files hold one
//! partition each, often a few tens of thousands of rows, so with the default
//! even a column of unique ids or prices was a dictionary as large as the
//! values: decoded, decompressed and then looked up again on every read.
//! Here the dictionary stops at [`DICTIONARY_LIMIT`], which keeps it for
//! low-cardinality columns (categories, flags, version keys), and the other
//! values fall back to an encoding that suits their type: integers and dates
//! as deltas (a sorted or sequential column takes a few bits per value),
//! floats split by byte (zstd then finds the repeated exponent bytes),
//! strings as lengths followed by the bytes.

use arrow::datatypes::{DataType, Schema};
use deltalake::parquet::basic::{Compression, Encoding, ZstdLevel};
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::parquet::schema::types::ColumnPath;

/// Dictionary page limit per column chunk; past it, a column falls back to
/// the encoding of its type.
pub const DICTIONARY_LIMIT: usize = 64 * 1024;

/// The zstd level of dataset files.
pub const ZSTD_LEVEL: i32 = 3;

/// The encoding used once a column of `ty` leaves its dictionary; `None`
/// keeps the writer's default (plain).
pub fn fallback_encoding(ty: &DataType) -> Option<Encoding> {
    use DataType::*;
    Some(match ty {
        Int8
        | Int16
        | Int32
        | Int64
        | UInt8
        | UInt16
        | UInt32
        | UInt64
        | Date32
        | Date64
        | Time32(_)
        | Time64(_)
        | Timestamp(_, _)
        | Duration(_) => Encoding::DELTA_BINARY_PACKED,
        Float32 | Float64 => Encoding::BYTE_STREAM_SPLIT,
        Utf8 | LargeUtf8 | Binary | LargeBinary => Encoding::DELTA_LENGTH_BYTE_ARRAY,
        _ => return None,
    })
}

/// Writer settings for the data files of a table with `schema` (top-level
/// columns get their type's fallback encoding; nested ones the default).
pub fn writer_properties(schema: &Schema) -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(ZSTD_LEVEL).expect("valid zstd level"),
        ))
        .set_dictionary_page_size_limit(DICTIONARY_LIMIT);
    for f in schema.fields() {
        if let Some(e) = fallback_encoding(f.data_type()) {
            b = b.set_column_encoding(ColumnPath::from(f.name().as_str()), e);
        }
    }
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::Field;

    #[test]
    fn each_type_gets_an_encoding_it_supports() {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("day", DataType::Date32, true),
            Field::new("price", DataType::Float64, true),
            Field::new("note", DataType::Utf8, true),
            Field::new("ok", DataType::Boolean, true),
        ]);
        let p = writer_properties(&schema);
        let enc = |c: &str| p.encoding(&ColumnPath::from(c));
        assert_eq!(enc("id"), Some(Encoding::DELTA_BINARY_PACKED));
        assert_eq!(enc("day"), Some(Encoding::DELTA_BINARY_PACKED));
        assert_eq!(enc("price"), Some(Encoding::BYTE_STREAM_SPLIT));
        assert_eq!(enc("note"), Some(Encoding::DELTA_LENGTH_BYTE_ARRAY));
        assert_eq!(enc("ok"), None);
        assert_eq!(p.dictionary_page_size_limit(), DICTIONARY_LIMIT);
    }
}

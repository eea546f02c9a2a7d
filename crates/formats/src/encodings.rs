//! Parquet encodings chosen per column type, shared by every Parquet file
//! tessera writes through the Arrow writer (packed tables and dataset files).
//!
//! The Parquet writer dictionary-encodes every column until the dictionary
//! outgrows its page limit (1 MiB by default). With that default even a
//! column of unique ids or prices becomes a dictionary as large as the values
//! (in a small file), or is hashed value by value until the dictionary fills
//! (in a large one: about a tenth of a pack's encoding time on unique text
//! columns). Here the dictionary stops at [`DICTIONARY_LIMIT`], which keeps
//! it for low-cardinality columns (categories, flags, version keys), and the
//! other values fall back to an encoding that suits their type: integers and
//! dates as deltas (a sorted or sequential column takes a few bits per
//! value), floats split by byte (the compressor then finds the repeated
//! exponent bytes), strings as lengths followed by the bytes. pyarrow,
//! DuckDB, Polars and Spark 3.3+ read all of them.

use arrow::datatypes::{DataType, Schema};
use parquet::basic::Encoding;
use parquet::file::properties::WriterPropertiesBuilder;
use parquet::schema::types::ColumnPath;

/// Dictionary page limit per column chunk; past it, a column falls back to
/// the encoding of its type.
pub const DICTIONARY_LIMIT: usize = 64 * 1024;

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

/// `builder` with the dictionary limit and, for each top-level column of
/// `schema`, its type's fallback encoding (nested columns keep the default).
pub fn with_type_encodings(
    builder: WriterPropertiesBuilder,
    schema: &Schema,
) -> WriterPropertiesBuilder {
    let mut b = builder.set_dictionary_page_size_limit(DICTIONARY_LIMIT);
    for f in schema.fields() {
        if let Some(e) = fallback_encoding(f.data_type()) {
            b = b.set_column_encoding(ColumnPath::from(f.name().as_str()), e);
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::Field;
    use parquet::file::properties::WriterProperties;

    #[test]
    fn each_type_gets_an_encoding_it_supports() {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("day", DataType::Date32, true),
            Field::new("price", DataType::Float64, true),
            Field::new("note", DataType::Utf8, true),
            Field::new("ok", DataType::Boolean, true),
        ]);
        let p = with_type_encodings(WriterProperties::builder(), &schema).build();
        let enc = |c: &str| p.encoding(&ColumnPath::from(c));
        assert_eq!(enc("id"), Some(Encoding::DELTA_BINARY_PACKED));
        assert_eq!(enc("day"), Some(Encoding::DELTA_BINARY_PACKED));
        assert_eq!(enc("price"), Some(Encoding::BYTE_STREAM_SPLIT));
        assert_eq!(enc("note"), Some(Encoding::DELTA_LENGTH_BYTE_ARRAY));
        assert_eq!(enc("ok"), None);
        assert_eq!(p.dictionary_page_size_limit(), DICTIONARY_LIMIT);
    }
}

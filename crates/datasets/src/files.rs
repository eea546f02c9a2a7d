//! How dataset files are written: Parquet, zstd, and per column an encoding
//! chosen for its type ([`tessera_formats::encodings`]: dictionaries only for
//! low-cardinality columns, deltas for integers and dates, byte-split floats,
//! length-prefixed strings). Dataset files hold one partition each, often a
//! few tens of thousands of rows, where the writer's default 1 MiB
//! dictionary made even unique ids a dictionary as large as the values.

use arrow::datatypes::Schema;
use deltalake::parquet::basic::{Compression, ZstdLevel};
use deltalake::parquet::file::properties::WriterProperties;

/// The zstd level of dataset files.
pub const ZSTD_LEVEL: i32 = 3;

/// Writer settings for the data files of a table with `schema` (top-level
/// columns get their type's fallback encoding; nested ones the default).
pub fn writer_properties(schema: &Schema) -> WriterProperties {
    tessera_formats::encodings::with_type_encodings(
        WriterProperties::builder().set_compression(Compression::ZSTD(
            ZstdLevel::try_new(ZSTD_LEVEL).expect("valid zstd level"),
        )),
        schema,
    )
    .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, Field};
    use deltalake::parquet::basic::Encoding;
    use deltalake::parquet::schema::types::ColumnPath;

    #[test]
    fn dataset_files_are_zstd_with_type_encodings() {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("note", DataType::Utf8, true),
        ]);
        let p = writer_properties(&schema);
        let id = ColumnPath::from("id");
        assert_eq!(
            p.compression(&id),
            Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL).unwrap())
        );
        assert_eq!(p.encoding(&id), Some(Encoding::DELTA_BINARY_PACKED));
        assert_eq!(
            p.encoding(&ColumnPath::from("note")),
            Some(Encoding::DELTA_LENGTH_BYTE_ARRAY)
        );
        assert_eq!(
            p.dictionary_page_size_limit(),
            tessera_formats::encodings::DICTIONARY_LIMIT
        );
    }
}

//! Schemas: declared (a JSON schema file), inferred and merged, and making a
//! batch fit the schema of the table it goes into.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use arrow::array::{new_null_array, Array, ArrayRef, RecordBatch, RecordBatchOptions};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::error::{ColumnMismatch, Error, Result};

/// Parse a schema file: a JSON list of `{"name": …, "type": …}` objects
/// (optionally `"nullable": false`). Types are Arrow type names as Arrow
/// prints them (`Int64`, `Utf8`, `Timestamp(Microsecond, None)`,
/// `Decimal128(10, 2)`) or the usual short names (`int64`, `string`,
/// `double`, `bool`, `date`, `timestamp`, `timestamp[ms]`).
///
/// ```
/// use tessera_formats::parse_schema;
/// let s = parse_schema(r#"[{"name": "id", "type": "int64"}, {"name": "when", "type": "Date32"}]"#, "schema.json").unwrap();
/// assert_eq!(s.field(0).data_type(), &arrow::datatypes::DataType::Int64);
/// assert!(parse_schema(r#"[{"name": "id", "type": "integer-ish"}]"#, "schema.json").is_err());
/// ```
pub fn parse_schema(json: &str, source: &str) -> Result<Schema> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Col {
        name: String,
        #[serde(rename = "type")]
        ty: String,
        #[serde(default = "yes")]
        nullable: bool,
    }
    fn yes() -> bool {
        true
    }
    let cols: Vec<Col> = serde_json::from_str(json).map_err(|e| {
        Error::invalid_schema(
            source,
            format!("not a schema ({e}); expected a JSON list of {{\"name\": ..., \"type\": ...}}"),
        )
    })?;
    if cols.is_empty() {
        return Err(Error::invalid_schema(source, "the schema has no columns"));
    }
    let mut seen = HashMap::new();
    let mut fields = Vec::with_capacity(cols.len());
    for (i, c) in cols.into_iter().enumerate() {
        if c.name.is_empty() {
            return Err(Error::invalid_schema(
                source,
                format!("column {} has an empty name", i + 1),
            ));
        }
        if seen.insert(c.name.clone(), i).is_some() {
            return Err(Error::invalid_schema(
                source,
                format!("column '{}' is declared twice", c.name),
            ));
        }
        let ty = parse_type(&c.ty).ok_or_else(|| {
            Error::invalid_schema(
                source,
                format!(
                    "column '{}': unknown type '{}' (use an Arrow type name such as Int64, Float64, Utf8, Boolean, Date32, Timestamp(Microsecond, None), Decimal128(10, 2))",
                    c.name, c.ty
                ),
            )
        })?;
        fields.push(Field::new(c.name, ty, c.nullable));
    }
    Ok(Schema::new(fields))
}

/// An Arrow type from its name (see [`parse_schema`]).
pub fn parse_type(name: &str) -> Option<DataType> {
    let t = name.trim();
    let short = match t.to_ascii_lowercase().as_str() {
        "string" | "str" | "utf8" | "text" | "varchar" => Some(DataType::Utf8),
        "large_string" | "large_utf8" => Some(DataType::LargeUtf8),
        "bool" | "boolean" => Some(DataType::Boolean),
        "int8" | "tinyint" => Some(DataType::Int8),
        "int16" | "smallint" => Some(DataType::Int16),
        "int32" | "int" | "integer" => Some(DataType::Int32),
        "int64" | "bigint" | "long" => Some(DataType::Int64),
        "uint8" => Some(DataType::UInt8),
        "uint16" => Some(DataType::UInt16),
        "uint32" => Some(DataType::UInt32),
        "uint64" => Some(DataType::UInt64),
        "float16" | "halffloat" => Some(DataType::Float16),
        "float32" | "float" | "real" => Some(DataType::Float32),
        "float64" | "double" => Some(DataType::Float64),
        "date" | "date32" => Some(DataType::Date32),
        "date64" => Some(DataType::Date64),
        "binary" | "bytes" => Some(DataType::Binary),
        "timestamp" | "timestamp[us]" => Some(DataType::Timestamp(TimeUnit::Microsecond, None)),
        "timestamp[s]" => Some(DataType::Timestamp(TimeUnit::Second, None)),
        "timestamp[ms]" => Some(DataType::Timestamp(TimeUnit::Millisecond, None)),
        "timestamp[ns]" => Some(DataType::Timestamp(TimeUnit::Nanosecond, None)),
        _ => None,
    };
    short.or_else(|| DataType::from_str(t).ok())
}

/// The type two inferred columns share: the same type, the non-null one,
/// the wider of two numbers (`Float64` for integers mixed with floats),
/// `Timestamp` for dates mixed with timestamps, else `Utf8` (text holds anything).
pub fn widen(a: &DataType, b: &DataType) -> DataType {
    use DataType::*;
    if lossless(a, b) && !matches!(b, Utf8 | LargeUtf8 | Utf8View) {
        return b.clone();
    }
    if lossless(b, a) && !matches!(a, Utf8 | LargeUtf8 | Utf8View) {
        return a.clone();
    }
    match (a, b) {
        _ if a == b => a.clone(),
        (Null, x) | (x, Null) => x.clone(),
        (Int64, Float64) | (Float64, Int64) => Float64,
        (Date32, Timestamp(u, z)) | (Timestamp(u, z), Date32) => Timestamp(*u, z.clone()),
        (Timestamp(u1, z1), Timestamp(u2, z2)) if z1 == z2 => {
            Timestamp(if finer(*u1, *u2) { *u1 } else { *u2 }, z1.clone())
        }
        _ => Utf8,
    }
}

fn finer(a: TimeUnit, b: TimeUnit) -> bool {
    let rank = |u: TimeUnit| match u {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 1,
        TimeUnit::Microsecond => 2,
        TimeUnit::Nanosecond => 3,
    };
    rank(a) >= rank(b)
}

/// Merge inferred schemas of several files: columns by name in order of
/// first appearance, types widened with [`widen`], all nullable.
pub fn merge_inferred<'a>(schemas: impl IntoIterator<Item = &'a Schema>) -> Schema {
    let mut order: Vec<String> = Vec::new();
    let mut types: HashMap<String, DataType> = HashMap::new();
    for s in schemas {
        for f in s.fields() {
            match types.get_mut(f.name()) {
                Some(t) => *t = widen(t, f.data_type()),
                None => {
                    order.push(f.name().clone());
                    types.insert(f.name().clone(), f.data_type().clone());
                }
            }
        }
    }
    Schema::new(
        order
            .into_iter()
            .map(|n| {
                let t = match types.remove(&n).unwrap() {
                    // A column with no values in the sample: text holds anything.
                    DataType::Null => DataType::Utf8,
                    t => t,
                };
                Field::new(n, t, true)
            })
            .collect::<Vec<_>>(),
    )
}

/// How strictly [`conform`] treats a type difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cast {
    /// Only conversions that lose nothing (wider integers, integers to
    /// floats, finer timestamps, dictionaries to values, anything to text).
    Lossless,
    /// Any conversion Arrow can do; a value that does not convert is an
    /// error (the caller declared the types).
    Declared,
}

/// Whether converting `from` to `to` loses nothing.
pub fn lossless(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    if from == to {
        return true;
    }
    match (from, to) {
        (Null, _) => true,
        (Dictionary(_, v), t) => lossless(v, t),
        (_, Utf8 | LargeUtf8 | Utf8View) => !from.is_nested(),
        (Binary | LargeBinary | BinaryView, Binary | LargeBinary | BinaryView) => true,
        (Int8, Int16 | Int32 | Int64 | Float32 | Float64) => true,
        (Int16, Int32 | Int64 | Float32 | Float64) => true,
        (Int32, Int64 | Float64) => true,
        (UInt8, UInt16 | UInt32 | UInt64 | Int16 | Int32 | Int64 | Float32 | Float64) => true,
        (UInt16, UInt32 | UInt64 | Int32 | Int64 | Float32 | Float64) => true,
        (UInt32, UInt64 | Int64 | Float64) => true,
        (Int64, Float64) => true,
        (Float16, Float32 | Float64) | (Float32, Float64) => true,
        (Date32, Date64 | Timestamp(_, None)) => true,
        (Timestamp(a, z1), Timestamp(b, z2)) => z1 == z2 && finer(*b, *a),
        _ => false,
    }
}

/// Make `batch` have exactly the columns of `target`, by name: reorder,
/// convert types (see [`Cast`]), fill columns the batch lacks with nulls.
/// Columns the target does not have, types that do not convert and nulls in
/// non-nullable columns are an error naming every column at fault.
pub fn conform(
    batch: &RecordBatch,
    target: &SchemaRef,
    mode: Cast,
    context: &str,
) -> Result<RecordBatch> {
    if batch.schema().as_ref() == target.as_ref() {
        return Ok(batch.clone());
    }
    let schema = batch.schema();
    let mut problems = Problems::default();
    for f in schema.fields() {
        if target.field_with_name(f.name()).is_err() {
            problems.push(
                ColumnMismatch::new(f.name(), "absent", f.data_type()),
                format!(
                    "column '{}' ({}) is not in the table",
                    f.name(),
                    f.data_type()
                ),
            );
        }
    }
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(target.fields().len());
    for tf in target.fields() {
        let col = match schema.index_of(tf.name()) {
            Ok(i) => {
                let c = batch.column(i);
                let ok = match mode {
                    Cast::Lossless => lossless(c.data_type(), tf.data_type()),
                    Cast::Declared => arrow::compute::can_cast_types(c.data_type(), tf.data_type()),
                };
                if c.data_type() == tf.data_type() {
                    c.clone()
                } else if !ok {
                    problems.push(
                        ColumnMismatch::new(tf.name(), tf.data_type(), c.data_type()),
                        format!(
                            "column '{}' is {} here but {} in the table",
                            tf.name(),
                            c.data_type(),
                            tf.data_type()
                        ),
                    );
                    continue;
                } else {
                    let opts = CastOptions {
                        safe: false,
                        ..Default::default()
                    };
                    match cast_with_options(c, tf.data_type(), &opts) {
                        Ok(a) => a,
                        Err(e) => {
                            problems.push(
                                ColumnMismatch::new(tf.name(), tf.data_type(), c.data_type()),
                                format!(
                                    "column '{}' does not convert from {} to {}: {e}",
                                    tf.name(),
                                    c.data_type(),
                                    tf.data_type()
                                ),
                            );
                            continue;
                        }
                    }
                }
            }
            Err(_) if tf.is_nullable() => new_null_array(tf.data_type(), batch.num_rows()),
            Err(_) => {
                problems.push(
                    ColumnMismatch::new(tf.name(), tf.data_type(), "missing"),
                    format!("column '{}' is missing (the table requires it)", tf.name()),
                );
                continue;
            }
        };
        if !tf.is_nullable() && col.null_count() > 0 {
            problems.push(
                ColumnMismatch::new(tf.name(), "not null", "nulls"),
                format!(
                    "column '{}' holds nulls but the table declares it not nullable",
                    tf.name()
                ),
            );
            continue;
        }
        cols.push(col);
    }
    problems.into_result(context, "")?;
    // Every column now has the target's type and nullability.
    RecordBatch::try_new_with_options(
        target.clone(),
        cols,
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
    .map_err(|e| Error::Internal(format!("{context}: a conformed batch does not fit: {e}")))
}

/// Check that data with schema `incoming` can be appended to a table with
/// schema `table` without losing anything; the error names the columns.
pub fn check_append(table: &Schema, incoming: &Schema, context: &str) -> Result<()> {
    let mut problems = Problems::default();
    for f in incoming.fields() {
        match table.field_with_name(f.name()) {
            Err(_) => problems.push(
                ColumnMismatch::new(f.name(), "absent", f.data_type()),
                format!("column '{}' is not in the existing file", f.name()),
            ),
            Ok(t) if !lossless(f.data_type(), t.data_type()) => problems.push(
                ColumnMismatch::new(f.name(), t.data_type(), f.data_type()),
                format!(
                    "column '{}' is {} in the new data but {} in the existing file",
                    f.name(),
                    f.data_type(),
                    t.data_type()
                ),
            ),
            Ok(_) => {}
        }
    }
    for t in table.fields() {
        if incoming.field_with_name(t.name()).is_err() && !t.is_nullable() {
            problems.push(
                ColumnMismatch::new(t.name(), t.data_type(), "missing"),
                format!(
                    "column '{}' of the existing file is missing in the new data",
                    t.name()
                ),
            );
        }
    }
    problems.into_result(context, "schema conflict: ")
}

/// The columns at fault, each with its sentence for the message.
#[derive(Default)]
struct Problems {
    columns: Vec<ColumnMismatch>,
    sentences: Vec<String>,
}

impl Problems {
    fn push(&mut self, column: ColumnMismatch, sentence: String) {
        self.columns.push(column);
        self.sentences.push(sentence);
    }

    fn into_result(self, object: &str, prefix: &str) -> Result<()> {
        if self.columns.is_empty() {
            return Ok(());
        }
        Err(Error::SchemaMismatch {
            object: object.to_string(),
            columns: self.columns,
            message: format!("{prefix}{}", self.sentences.join("; ")),
        })
    }
}

/// A schema with every field nullable (what tessera writes for inferred data).
pub fn nullable(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new_with_metadata(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
        schema.metadata().clone(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, StringArray};

    #[test]
    fn types_parse() {
        assert_eq!(parse_type("Int64"), Some(DataType::Int64));
        assert_eq!(parse_type("string"), Some(DataType::Utf8));
        assert_eq!(
            parse_type("Timestamp(Millisecond, None)"),
            Some(DataType::Timestamp(TimeUnit::Millisecond, None))
        );
        assert_eq!(
            parse_type("Decimal128(10, 2)"),
            Some(DataType::Decimal128(10, 2))
        );
        assert_eq!(parse_type("wat"), None);
    }

    #[test]
    fn schema_file_errors_name_the_column() {
        let e = parse_schema(
            r#"[{"name":"a","type":"int64"},{"name":"a","type":"utf8"}]"#,
            "s.json",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("'a' is declared twice"), "{e}");
        let e = parse_schema(r#"[{"name":"b","type":"nope"}]"#, "s.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("column 'b'") && e.contains("'nope'"), "{e}");
        assert!(parse_schema("{}", "s.json").is_err());
        assert!(parse_schema("[]", "s.json").is_err());
    }

    #[test]
    fn widening() {
        assert_eq!(
            widen(&DataType::Int64, &DataType::Float64),
            DataType::Float64
        );
        assert_eq!(widen(&DataType::Int64, &DataType::Boolean), DataType::Utf8);
        assert_eq!(widen(&DataType::Null, &DataType::Date32), DataType::Date32);
        let a = Schema::new(vec![Field::new("x", DataType::Int64, false)]);
        let b = Schema::new(vec![
            Field::new("y", DataType::Null, true),
            Field::new("x", DataType::Float64, false),
        ]);
        let m = merge_inferred([&a, &b]);
        assert_eq!(m.field(0).data_type(), &DataType::Float64);
        assert_eq!(m.field(1).data_type(), &DataType::Utf8);
    }

    #[test]
    fn conform_reorders_casts_and_reports() {
        let b = RecordBatch::try_from_iter(vec![
            ("s", Arc::new(StringArray::from(vec!["x", "y"])) as ArrayRef),
            ("i", Arc::new(Int32Array::from(vec![1, 2])) as ArrayRef),
        ])
        .unwrap();
        let target: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("i", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("extra", DataType::Float64, true),
        ]));
        let out = conform(&b, &target, Cast::Lossless, "t").unwrap();
        assert_eq!(out.schema(), target);
        assert_eq!(out.column(2).null_count(), 2);
        let bad: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("i", DataType::Int8, true),
            Field::new("s", DataType::Int64, true),
        ]));
        let e = conform(&b, &bad, Cast::Lossless, "f.csv")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'i' is Int32 here but Int8") && e.contains("'s'"),
            "{e}"
        );
        // Declared types convert what converts and name what does not.
        let e = conform(&b, &bad, Cast::Declared, "f.csv")
            .unwrap_err()
            .to_string();
        assert!(e.contains("'s' does not convert"), "{e}");
    }
}

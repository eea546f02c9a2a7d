//! A partition layout bound to the columns of one table: the partition
//! column each key fills (see [`crate::keys`] for the naming), and the
//! values of the derived columns, row by row.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Date32Array, Int32Array, Int64Array, StringBuilder};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::{DataType, Date32Type, Field, Int64Type, Schema, TimeUnit};
use chrono::{Datelike, NaiveDate};

use crate::error::{Error, Result};
use crate::keys::{DateKey, Granularity, IdKey, PartitionLayout};

/// `name` as Hive and Spark write it in a folder name: `"`, `#`, `%`, `'`,
/// `*`, `/`, `:`, `=`, `?`, `\`, `{`, `[`, `]`, `^` and control characters
/// as `%XX`.
pub(crate) fn hive_escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_control()
            || matches!(
                c,
                '"' | '#' | '%' | '\'' | '*' | '/' | ':' | '=' | '?' | '\\' | '{' | '[' | ']' | '^'
            )
        {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

fn derived_date_name(column: &str, g: Granularity) -> String {
    format!("{}_{g}", hive_escape(column))
}

fn derived_id_name(column: &str) -> String {
    format!("{}_range", hive_escape(column))
}

/// A layout bound to the columns of one table: which partition column each
/// key fills, and how.
#[derive(Debug, Clone, Default)]
pub(crate) struct Partitioning {
    date: Option<DatePart>,
    id: Option<IdPart>,
}

#[derive(Debug, Clone)]
struct DatePart {
    key: DateKey,
    /// The derived partition column; `None` when the key column itself is
    /// the partition column.
    derived: Option<String>,
}

#[derive(Debug, Clone)]
struct IdPart {
    key: IdKey,
    column: String,
}

impl Partitioning {
    /// The partitioning of a new table whose data columns are `data`,
    /// after checking the key columns exist and have usable types.
    pub(crate) fn new(layout: &PartitionLayout, data: &Schema, dataset: &str) -> Result<Self> {
        check_key_columns(layout, data, dataset)?;
        let p = Partitioning {
            date: layout.date.as_ref().map(|d| {
                let in_place = d.granularity == Granularity::Day
                    && hive_escape(&d.column) == d.column
                    && data
                        .field_with_name(&d.column)
                        .is_ok_and(|f| f.data_type() == &DataType::Date32);
                DatePart {
                    key: d.clone(),
                    derived: (!in_place).then(|| derived_date_name(&d.column, d.granularity)),
                }
            }),
            id: layout.id.as_ref().map(|k| IdPart {
                key: k.clone(),
                column: derived_id_name(&k.column),
            }),
        };
        for name in p.derived_names() {
            if data.field_with_name(&name).is_ok() {
                return Err(Error::ReservedColumn {
                    dataset: dataset.to_string(),
                    column: name,
                    reason: "is the name of the partition column tessera derives from a key".into(),
                });
            }
        }
        Ok(p)
    }

    /// The partitioning of an existing table with `partition_columns`:
    /// each key fills the partition column tessera made for it (the naming
    /// of this release, or of earlier ones, which did not escape names).
    pub(crate) fn of_table(
        layout: &PartitionLayout,
        partition_columns: &[String],
        dataset: &str,
    ) -> Result<Self> {
        let mismatch = || Error::LayoutMismatch {
            dataset: dataset.to_string(),
            table: if partition_columns.is_empty() {
                "nothing (no partitions)".to_string()
            } else {
                format!("columns [{}]", partition_columns.join(", "))
            },
            requested: layout.to_string(),
        };
        let keys = usize::from(layout.date.is_some()) + usize::from(layout.id.is_some());
        if keys != partition_columns.len() {
            return Err(mismatch());
        }
        let date = match &layout.date {
            None => None,
            Some(d) => {
                let have = &partition_columns[0];
                let derived = if *have == d.column && d.granularity == Granularity::Day {
                    None
                } else if *have == derived_date_name(&d.column, d.granularity)
                    || *have == format!("{}_{}", d.column, d.granularity)
                {
                    Some(have.clone())
                } else {
                    return Err(mismatch());
                };
                Some(DatePart {
                    key: d.clone(),
                    derived,
                })
            }
        };
        let id = match &layout.id {
            None => None,
            Some(k) => {
                let have = &partition_columns[partition_columns.len() - 1];
                if *have != derived_id_name(&k.column) && *have != format!("{}_range", k.column) {
                    return Err(mismatch());
                }
                Some(IdPart {
                    key: k.clone(),
                    column: have.clone(),
                })
            }
        };
        Ok(Partitioning { date, id })
    }

    /// The layout.
    pub(crate) fn layout(&self) -> PartitionLayout {
        PartitionLayout {
            date: self.date.as_ref().map(|d| d.key.clone()),
            id: self.id.as_ref().map(|i| i.key.clone()),
        }
    }

    /// Check the key columns are among the data columns `data`, with usable types.
    pub(crate) fn check_data(&self, data: &Schema, dataset: &str) -> Result<()> {
        check_key_columns(&self.layout(), data, dataset)
    }

    /// The columns tessera derives, in [`Partitioning::derive`] order, with
    /// the types of a new table.
    pub(crate) fn derived_fields(&self) -> Vec<Field> {
        let mut out = Vec::new();
        if let Some(DatePart {
            key,
            derived: Some(name),
        }) = &self.date
        {
            let t = match key.granularity {
                Granularity::Day => DataType::Date32,
                Granularity::Month => DataType::Utf8,
                Granularity::Year => DataType::Int32,
            };
            out.push(Field::new(name, t, true));
        }
        if let Some(i) = &self.id {
            out.push(Field::new(&i.column, DataType::Utf8, true));
        }
        out
    }

    /// Names of the derived columns, in [`Partitioning::derive`] order.
    pub(crate) fn derived_names(&self) -> Vec<String> {
        self.derived_fields()
            .into_iter()
            .map(|f| f.name().clone())
            .collect()
    }

    /// The partition columns, outermost first.
    pub(crate) fn partition_columns(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(d) = &self.date {
            v.push(d.derived.clone().unwrap_or_else(|| d.key.column.clone()));
        }
        if let Some(i) = &self.id {
            v.push(i.column.clone());
        }
        v
    }

    /// Compute the derived columns for `batch` (whose schema holds the key
    /// columns), in the order of [`Partitioning::derived_fields`].
    pub(crate) fn derive(
        &self,
        batch: &arrow::array::RecordBatch,
        ctx: &RowContext<'_>,
    ) -> Result<Vec<ArrayRef>> {
        let mut out: Vec<ArrayRef> = Vec::new();
        if let Some(DatePart {
            key,
            derived: Some(_),
        }) = &self.date
        {
            let days = to_days(key_column(batch, &key.column)?, &key.column, ctx)?;
            out.push(match key.granularity {
                Granularity::Day => Arc::new(days),
                Granularity::Month => Arc::new(months(&days)),
                Granularity::Year => Arc::new(
                    days.iter()
                        .map(|v| v.map(|d| date_of(d).year()))
                        .collect::<Int32Array>(),
                ),
            });
        }
        if let Some(IdPart { key, .. }) = &self.id {
            let ids = to_ids(key_column(batch, &key.column)?, &key.column, ctx)?;
            out.push(Arc::new(ranges(&ids, key.width)));
        }
        Ok(out)
    }
}

fn key_column<'a>(batch: &'a arrow::array::RecordBatch, column: &str) -> Result<&'a ArrayRef> {
    batch.column_by_name(column).ok_or_else(|| {
        Error::internal(format!(
            "the key column '{column}' is missing from a batch of the load"
        ))
    })
}

/// Check the keys' columns exist in `data` and have types the keys can use.
fn check_key_columns(layout: &PartitionLayout, data: &Schema, dataset: &str) -> Result<()> {
    let field = |column: &str| {
        data.field_with_name(column)
            .map_err(|_| Error::NoSuchColumn {
                dataset: dataset.to_string(),
                column: column.to_string(),
                available: data.fields().iter().map(|f| f.name().clone()).collect(),
            })
    };
    if let Some(d) = &layout.date {
        let f = field(&d.column)?;
        if !is_date_like(f.data_type()) {
            return Err(Error::InvalidKeyColumn {
                dataset: dataset.to_string(),
                key: "date key",
                column: d.column.clone(),
                found: f.data_type().to_string(),
                expected: "a date key needs dates, timestamps or date text",
            });
        }
    }
    if let Some(k) = &layout.id {
        let f = field(&k.column)?;
        if !is_id_like(f.data_type()) {
            return Err(Error::InvalidKeyColumn {
                dataset: dataset.to_string(),
                key: "ID key",
                column: k.column.clone(),
                found: f.data_type().to_string(),
                expected: "an ID key needs integers",
            });
        }
    }
    Ok(())
}

/// Where rows come from, for error messages.
pub(crate) struct RowContext<'a> {
    /// The source object.
    pub source: &'a str,
    /// Rows of that source before this batch.
    pub first_row: u64,
}

impl RowContext<'_> {
    /// An invalid value at row `i` of the batch.
    fn invalid(&self, i: usize, column: &str, reason: String) -> Error {
        Error::InvalidRecord {
            object: self.source.to_string(),
            row: Some(self.first_row + i as u64 + 1),
            column: column.to_string(),
            reason,
        }
    }

    /// An invalid value somewhere in the batch.
    fn invalid_batch(&self, column: &str, reason: String) -> Error {
        Error::InvalidRecord {
            object: self.source.to_string(),
            row: None,
            column: column.to_string(),
            reason,
        }
    }
}

/// `YYYY-MM` of each day.
fn months(days: &Date32Array) -> arrow::array::StringArray {
    let mut b = StringBuilder::with_capacity(days.len(), days.len() * 7);
    // Rows of one load are mostly in date order: reuse the last label.
    let mut last: Option<(i32, String)> = None;
    for v in days.iter() {
        match v {
            None => b.append_null(),
            Some(day) => {
                let label = match last.take() {
                    Some((d, s)) if d == day => (d, s),
                    _ => {
                        let dt = date_of(day);
                        (day, format!("{:04}-{:02}", dt.year(), dt.month()))
                    }
                };
                b.append_value(&label.1);
                last = Some(label);
            }
        }
    }
    b.finish()
}

/// The range label of each ID.
fn ranges(ids: &Int64Array, width: u64) -> arrow::array::StringArray {
    let w = width as i128;
    let mut b = StringBuilder::with_capacity(ids.len(), ids.len() * 24);
    let mut last: Option<(i128, String)> = None;
    for v in ids.iter() {
        match v {
            None => b.append_null(),
            Some(id) => {
                let lo = (id as i128).div_euclid(w) * w;
                let label = match last.take() {
                    Some((l, s)) if l == lo => (l, s),
                    _ => (lo, range_label(lo, w)),
                };
                b.append_value(&label.1);
                last = Some(label);
            }
        }
    }
    b.finish()
}

/// The label of the ID range starting at `lo`.
fn range_label(lo: i128, width: i128) -> String {
    format!("from_{lo}_to_{}", lo + width)
}

fn date_of(days: i32) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(days + 719_163).unwrap_or(NaiveDate::MIN)
}

fn is_date_like(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Date32
            | DataType::Date64
            | DataType::Timestamp(_, _)
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
    )
}

fn is_id_like(t: &DataType) -> bool {
    t.is_integer() || matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// The first row where `out` is null but `input` is not: a value that did
/// not convert.
fn first_lost(input: &dyn Array, out: &dyn Array) -> Option<usize> {
    (0..input.len()).find(|&i| input.is_valid(i) && out.is_null(i))
}

fn show(col: &dyn Array, i: usize) -> String {
    let s = arrow::util::display::array_value_to_string(col, i).unwrap_or_default();
    if s.len() > 60 {
        format!("{:?}…", s.chars().take(60).collect::<String>())
    } else {
        format!("{s:?}")
    }
}

/// Days since 1970-01-01 of each value of a date-like column.
fn to_days(col: &ArrayRef, name: &str, ctx: &RowContext<'_>) -> Result<Date32Array> {
    let safe = CastOptions {
        safe: true,
        ..Default::default()
    };
    let cast = |a: &ArrayRef, t: &DataType| {
        cast_with_options(a, t, &safe)
            .map_err(|e| ctx.invalid_batch(name, format!("date key: {e}")))
    };
    let as_ts = match col.data_type() {
        DataType::Date32 => return Ok(col.as_primitive::<Date32Type>().clone()),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let ts = cast(col, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
            if let Some(i) = first_lost(col.as_ref(), ts.as_ref()) {
                return Err(ctx.invalid(
                    i,
                    name,
                    format!(
                        "the date key holds {}, expected a date (YYYY-MM-DD) or a timestamp",
                        show(col.as_ref(), i)
                    ),
                ));
            }
            ts
        }
        _ => col.clone(),
    };
    let days = cast(&as_ts, &DataType::Date32)?;
    if let Some(i) = first_lost(col.as_ref(), days.as_ref()) {
        return Err(ctx.invalid(
            i,
            name,
            format!(
                "the date key holds {}, which has no calendar date",
                show(col.as_ref(), i)
            ),
        ));
    }
    Ok(days.as_primitive::<Date32Type>().clone())
}

/// Each value of an integer-like column as i64.
fn to_ids(col: &ArrayRef, name: &str, ctx: &RowContext<'_>) -> Result<Int64Array> {
    if col.data_type() == &DataType::Int64 {
        return Ok(col.as_primitive::<Int64Type>().clone());
    }
    let safe = CastOptions {
        safe: true,
        ..Default::default()
    };
    let out = cast_with_options(col, &DataType::Int64, &safe)
        .map_err(|e| ctx.invalid_batch(name, format!("ID key: {e}")))?;
    if let Some(i) = first_lost(col.as_ref(), out.as_ref()) {
        return Err(ctx.invalid(
            i,
            name,
            format!(
                "the ID key holds {}, expected an integer",
                show(col.as_ref(), i)
            ),
        ));
    }
    Ok(out.as_primitive::<Int64Type>().clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{RecordBatch, StringArray};

    fn ctx() -> RowContext<'static> {
        RowContext {
            source: "file:///in.csv",
            first_row: 10,
        }
    }

    #[test]
    fn labels_cover_negative_ids() {
        assert_eq!(range_label(0, 100), "from_0_to_100");
        assert_eq!((-1i128).div_euclid(100) * 100, -100);
        assert_eq!(range_label(-100, 100), "from_-100_to_0");
    }

    #[test]
    fn derive_from_text_dates_and_ids() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("d", DataType::Utf8, true),
            Field::new("id", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec![
                    Some("2024-03-01"),
                    None,
                    Some("2024-12-31T23:59:59"),
                ])),
                Arc::new(StringArray::from(vec![Some("5"), Some("100000"), None])),
            ],
        )
        .unwrap();
        let layout = PartitionLayout {
            date: Some("d:month".parse().unwrap()),
            id: Some("id".parse().unwrap()),
        };
        let p = Partitioning::new(&layout, &schema, "t").unwrap();
        let fields = p.derived_fields();
        assert_eq!(fields[0].name(), "d_month");
        assert_eq!(fields[1].name(), "id_range");
        let cols = p.derive(&batch, &ctx()).unwrap();
        let m = cols[0].as_string::<i32>();
        assert_eq!(m.value(0), "2024-03");
        assert!(m.is_null(1));
        assert_eq!(m.value(2), "2024-12");
        let r = cols[1].as_string::<i32>();
        assert_eq!(r.value(0), "from_0_to_100000");
        assert_eq!(r.value(1), "from_100000_to_200000");
        assert!(r.is_null(2));
    }

    #[test]
    fn bad_values_name_the_row_and_value() {
        let schema = Arc::new(Schema::new(vec![Field::new("d", DataType::Utf8, true)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(StringArray::from(vec!["2024-03-01", "soon"]))],
        )
        .unwrap();
        let layout = PartitionLayout {
            date: Some("d".parse().unwrap()),
            id: None,
        };
        let p = Partitioning::new(&layout, &schema, "t").unwrap();
        let e = p.derive(&batch, &ctx()).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidRecord { row: Some(12), column, .. } if column == "d"),
            "{e:?}"
        );
        let e = e.to_string();
        assert!(e.contains("row 12") && e.contains("\"soon\""), "{e}");
        let layout = PartitionLayout {
            date: None,
            id: Some("d".parse().unwrap()),
        };
        let p = Partitioning::new(&layout, &schema, "t").unwrap();
        let e = p.derive(&batch, &ctx()).unwrap_err().to_string();
        assert!(
            e.contains("row 11") && e.contains("expected an integer"),
            "{e}"
        );
    }

    #[test]
    fn unusable_key_columns_are_refused() {
        let schema = Schema::new(vec![Field::new("x", DataType::Float64, true)]);
        let l = PartitionLayout {
            date: Some("x".parse().unwrap()),
            id: None,
        };
        let e = Partitioning::new(&l, &schema, "t").unwrap_err();
        assert!(matches!(e, Error::InvalidKeyColumn { .. }), "{e:?}");
        assert!(e.to_string().contains("Float64"));
        let l = PartitionLayout {
            date: None,
            id: Some("nope".parse().unwrap()),
        };
        let e = Partitioning::new(&l, &schema, "t").unwrap_err();
        assert!(matches!(e, Error::NoSuchColumn { .. }), "{e:?}");
        assert!(e.to_string().contains("no column 'nope'"));
    }

    #[test]
    fn derived_names_are_hive_escaped() {
        assert_eq!(hive_escape("plain name é"), "plain name é");
        assert_eq!(
            hive_escape("a/b=c:d\"e'f%g\n"),
            "a%2Fb%3Dc%3Ad%22e%27f%25g%0A"
        );
        let schema = Schema::new(vec![
            Field::new("when: day/\"x\"", DataType::Date32, true),
            Field::new("user=id", DataType::Int64, true),
            Field::new("date é", DataType::Date32, true),
        ]);
        let l = PartitionLayout {
            date: Some(DateKey::new("when: day/\"x\"", Granularity::Day)),
            id: Some(IdKey::new("user=id", 10)),
        };
        let p = Partitioning::new(&l, &schema, "t").unwrap();
        assert_eq!(
            p.partition_columns(),
            vec!["when%3A day%2F%22x%22_day", "user%3Did_range"]
        );
        // A safe date column name partitions in place.
        let l = PartitionLayout {
            date: Some(DateKey::new("date é", Granularity::Day)),
            id: None,
        };
        let p = Partitioning::new(&l, &schema, "t").unwrap();
        assert_eq!(p.partition_columns(), vec!["date é"]);
        assert!(p.derived_names().is_empty());
    }

    #[test]
    fn tables_of_earlier_releases_bind_to_their_unescaped_columns() {
        let l = PartitionLayout {
            date: Some(DateKey::new("a:b", Granularity::Month)),
            id: Some(IdKey::new("u=v", 10)),
        };
        for cols in [
            vec!["a:b_month".to_string(), "u=v_range".to_string()],
            vec!["a%3Ab_month".to_string(), "u%3Dv_range".to_string()],
        ] {
            let p = Partitioning::of_table(&l, &cols, "t").unwrap();
            assert_eq!(p.partition_columns(), cols);
            assert_eq!(p.derived_names(), cols);
        }
        let e =
            Partitioning::of_table(&l, &["x_month".into(), "u=v_range".into()], "t").unwrap_err();
        assert!(matches!(e, Error::LayoutMismatch { .. }), "{e:?}");
        let e = Partitioning::of_table(&PartitionLayout::default(), &["x".into()], "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("columns [x]") && e.contains("nothing"), "{e}");
    }
}

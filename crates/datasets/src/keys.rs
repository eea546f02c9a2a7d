//! Partition keys: `--date-key COL[:day|month|year]` and `--id-key COL[:WIDTH]`.
//!
//! A date key partitions by the column's calendar day, month or year; an ID
//! key by fixed-width ranges of an integer column, labelled
//! `from_{lo}_to_{hi}` (the half-open range `[lo, hi)`, `hi = lo + WIDTH`).
//!
//! The partition column is derived from the key column and added to the
//! table: `{COL}_day` (a date), `{COL}_month` (text `YYYY-MM`),
//! `{COL}_year` (an integer), `{COL}_range` (the label). The one exception:
//! a `day` key on a column that already holds dates partitions by that
//! column itself. The key column itself stays in the data files, so a filter
//! on it also skips files by their statistics.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Date32Array, Int32Array, Int64Array, StringBuilder};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::{DataType, Date32Type, Field, Int64Type, Schema, TimeUnit};
use chrono::{Datelike, NaiveDate};

use crate::error::{Error, Result};

/// The column holding each row's version key (the `--version` of its load).
pub const VERSION_COLUMN: &str = "_version_key";

/// Default width of ID ranges.
pub const DEFAULT_ID_WIDTH: u64 = 100_000;

const DATE_FLAG: &str = "--date-key";
const ID_FLAG: &str = "--id-key";

/// Calendar unit of a date key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    /// One partition per day (`2024-03-01`).
    Day,
    /// One partition per month (`2024-03`).
    Month,
    /// One partition per year (`2024`).
    Year,
}

impl Granularity {
    fn name(self) -> &'static str {
        match self {
            Granularity::Day => "day",
            Granularity::Month => "month",
            Granularity::Year => "year",
        }
    }
}

/// Partition by the date of a column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateKey {
    /// The column holding dates, timestamps or date text.
    pub column: String,
    /// Day, month or year.
    pub granularity: Granularity,
}

/// Partition by fixed-width ranges of an integer column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdKey {
    /// The integer column.
    pub column: String,
    /// Width of each range (default 100000).
    pub width: u64,
}

fn split_spec<'a>(spec: &'a str, what: &str) -> Result<(&'a str, Option<&'a str>)> {
    let (col, arg) = match spec.rsplit_once(':') {
        Some((c, a)) => (c, Some(a)),
        None => (spec, None),
    };
    if col.is_empty() {
        return Err(Error::InvalidInput(format!(
            "{what} '{spec}': the column name is empty"
        )));
    }
    Ok((col, arg))
}

impl FromStr for DateKey {
    type Err = Error;
    fn from_str(spec: &str) -> Result<DateKey> {
        let (column, arg) = split_spec(spec, "--date-key")?;
        let granularity = match arg.map(|a| a.to_ascii_lowercase()).as_deref() {
            None | Some("day") => Granularity::Day,
            Some("month") => Granularity::Month,
            Some("year") => Granularity::Year,
            Some(other) => {
                return Err(Error::InvalidInput(format!(
                    "--date-key '{spec}': unknown unit '{other}' (expected day, month or year)"
                )))
            }
        };
        Ok(DateKey {
            column: column.to_string(),
            granularity,
        })
    }
}

impl fmt::Display for DateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.column, self.granularity.name())
    }
}

impl FromStr for IdKey {
    type Err = Error;
    fn from_str(spec: &str) -> Result<IdKey> {
        let (column, arg) = split_spec(spec, "--id-key")?;
        let width = match arg {
            None => DEFAULT_ID_WIDTH,
            Some(w) => match w.replace('_', "").parse::<u64>() {
                Ok(n) if n > 0 && n <= i64::MAX as u64 => n,
                _ => {
                    return Err(Error::InvalidInput(format!(
                        "--id-key '{spec}': the width must be a positive integer, not '{w}'"
                    )))
                }
            },
        };
        Ok(IdKey {
            column: column.to_string(),
            width,
        })
    }
}

impl fmt::Display for IdKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.column, self.width)
    }
}

/// The partitioning of a dataset: an optional date key, then an optional ID key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    /// Date key, outermost partition level.
    pub date: Option<DateKey>,
    /// ID key, inner partition level.
    pub id: Option<IdKey>,
}

/// Where rows come from, for error messages.
pub(crate) struct RowContext<'a> {
    /// The source object.
    pub source: &'a str,
    /// Rows of that source before this batch.
    pub first_row: u64,
}

impl RowContext<'_> {
    fn at(&self, i: usize) -> String {
        format!("{}: row {}", self.source, self.first_row + i as u64 + 1)
    }
}

impl Layout {
    /// Whether the dataset is partitioned at all.
    pub fn is_empty(&self) -> bool {
        self.date.is_none() && self.id.is_none()
    }

    /// The table description recording this layout (set when the dataset
    /// is created, so later loads partition the same way unasked).
    pub(crate) fn description(&self) -> String {
        let mut s = String::from("tessera dataset");
        if let Some(d) = &self.date {
            s.push_str(&format!(" {DATE_FLAG} {d}"));
        }
        if let Some(i) = &self.id {
            s.push_str(&format!(" {ID_FLAG} {i}"));
        }
        s
    }

    /// The layout a table's description records (empty if none).
    pub(crate) fn of_table(meta: &deltalake::kernel::Metadata) -> Result<Layout> {
        let Some(desc) = meta.description() else {
            return Ok(Layout::default());
        };
        let mut words = desc.split_whitespace();
        let mut layout = Layout::default();
        if words.next() != Some("tessera") {
            return Ok(layout);
        }
        while let Some(w) = words.next() {
            match w {
                DATE_FLAG => layout.date = words.next().map(str::parse).transpose()?,
                ID_FLAG => layout.id = words.next().map(str::parse).transpose()?,
                _ => {}
            }
        }
        Ok(layout)
    }

    /// Is the date key partitioned by its own column (a `day` key on a date column)?
    fn date_in_place(key: &DateKey, schema: &Schema) -> bool {
        key.granularity == Granularity::Day
            && schema
                .field_with_name(&key.column)
                .is_ok_and(|f| f.data_type() == &DataType::Date32)
    }

    /// The derived columns this layout adds to rows of `input` (the data
    /// columns), after checking the key columns exist and have usable types.
    pub(crate) fn derived_fields(&self, input: &Schema) -> Result<Vec<Field>> {
        let mut out = Vec::new();
        let columns = || {
            input
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if let Some(d) = &self.date {
            let f = input.field_with_name(&d.column).map_err(|_| {
                Error::InvalidInput(format!(
                    "--date-key: no column '{}' in the data (columns: {})",
                    d.column,
                    columns()
                ))
            })?;
            if !is_date_like(f.data_type()) {
                return Err(Error::InvalidInput(format!(
                    "--date-key: column '{}' is {}; a date key needs dates, timestamps or date text",
                    d.column,
                    f.data_type()
                )));
            }
            if !Self::date_in_place(d, input) {
                let t = match d.granularity {
                    Granularity::Day => DataType::Date32,
                    Granularity::Month => DataType::Utf8,
                    Granularity::Year => DataType::Int32,
                };
                out.push(Field::new(
                    format!("{}_{}", d.column, d.granularity.name()),
                    t,
                    true,
                ));
            }
        }
        if let Some(k) = &self.id {
            let f = input.field_with_name(&k.column).map_err(|_| {
                Error::InvalidInput(format!(
                    "--id-key: no column '{}' in the data (columns: {})",
                    k.column,
                    columns()
                ))
            })?;
            if !is_id_like(f.data_type()) {
                return Err(Error::InvalidInput(format!(
                    "--id-key: column '{}' is {}; an ID key needs integers",
                    k.column,
                    f.data_type()
                )));
            }
            out.push(Field::new(
                format!("{}_range", k.column),
                DataType::Utf8,
                true,
            ));
        }
        for f in &out {
            if input.field_with_name(f.name()).is_ok() {
                return Err(Error::InvalidInput(format!(
                    "the data already has a column '{}', the name of the partition column tessera derives from the key; rename it",
                    f.name()
                )));
            }
        }
        Ok(out)
    }

    /// Names of the columns this layout derives (those of
    /// [`Layout::derived_fields`]), without checking anything.
    pub(crate) fn derived_names(&self, input: &Schema) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(d) = &self.date {
            if !Self::date_in_place(d, input) {
                v.push(format!("{}_{}", d.column, d.granularity.name()));
            }
        }
        if let Some(k) = &self.id {
            v.push(format!("{}_range", k.column));
        }
        v
    }

    /// The partition columns of the table, outermost first.
    pub(crate) fn partition_columns(&self, input: &Schema) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(d) = &self.date {
            if Self::date_in_place(d, input) {
                v.push(d.column.clone());
            } else {
                v.push(format!("{}_{}", d.column, d.granularity.name()));
            }
        }
        if let Some(k) = &self.id {
            v.push(format!("{}_range", k.column));
        }
        v
    }

    /// Compute the derived columns for `batch` (whose schema holds the key
    /// columns), in the order of [`Layout::derived_fields`].
    pub(crate) fn derive(
        &self,
        batch: &arrow::array::RecordBatch,
        ctx: &RowContext<'_>,
    ) -> Result<Vec<ArrayRef>> {
        let mut out: Vec<ArrayRef> = Vec::new();
        let schema = batch.schema();
        if let Some(d) = &self.date {
            if !Self::date_in_place(d, &schema) {
                let col = batch
                    .column_by_name(&d.column)
                    .expect("checked by derived_fields");
                let days = to_days(col, &d.column, ctx)?;
                out.push(match d.granularity {
                    Granularity::Day => Arc::new(days),
                    Granularity::Month => {
                        let mut b = StringBuilder::with_capacity(days.len(), days.len() * 7);
                        let mut last: Option<(i32, String)> = None;
                        for v in days.iter() {
                            match v {
                                None => b.append_null(),
                                Some(day) => {
                                    if last.as_ref().is_none_or(|(d, _)| *d != day) {
                                        let dt = date_of(day);
                                        last = Some((
                                            day,
                                            format!("{:04}-{:02}", dt.year(), dt.month()),
                                        ));
                                    }
                                    b.append_value(&last.as_ref().unwrap().1);
                                }
                            }
                        }
                        Arc::new(b.finish())
                    }
                    Granularity::Year => Arc::new(
                        days.iter()
                            .map(|v| v.map(|d| date_of(d).year()))
                            .collect::<Int32Array>(),
                    ),
                });
            }
        }
        if let Some(k) = &self.id {
            let col = batch
                .column_by_name(&k.column)
                .expect("checked by derived_fields");
            let ids = to_ids(col, &k.column, ctx)?;
            let w = k.width as i128;
            let mut b = StringBuilder::with_capacity(ids.len(), ids.len() * 24);
            let mut last: Option<(i128, String)> = None;
            for v in ids.iter() {
                match v {
                    None => b.append_null(),
                    Some(id) => {
                        let lo = (id as i128).div_euclid(w) * w;
                        if last.as_ref().is_none_or(|(l, _)| *l != lo) {
                            last = Some((lo, range_label(lo, w)));
                        }
                        b.append_value(&last.as_ref().unwrap().1);
                    }
                }
            }
            out.push(Arc::new(b.finish()));
        }
        Ok(out)
    }
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
        cast_with_options(a, t, &safe).map_err(|e| Error::Data {
            context: ctx.source.to_string(),
            message: format!("date key column '{name}': {e}"),
        })
    };
    let as_ts = match col.data_type() {
        DataType::Date32 => return Ok(col.as_primitive::<Date32Type>().clone()),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let ts = cast(col, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
            if let Some(i) = first_lost(col.as_ref(), ts.as_ref()) {
                return Err(Error::Data {
                    context: ctx.at(i),
                    message: format!(
                        "date key column '{name}' holds {}, expected a date (YYYY-MM-DD) or a timestamp",
                        show(col.as_ref(), i)
                    ),
                });
            }
            ts
        }
        _ => col.clone(),
    };
    let days = cast(&as_ts, &DataType::Date32)?;
    if let Some(i) = first_lost(col.as_ref(), days.as_ref()) {
        return Err(Error::Data {
            context: ctx.at(i),
            message: format!(
                "date key column '{name}' holds {}, which has no calendar date",
                show(col.as_ref(), i)
            ),
        });
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
    let out = cast_with_options(col, &DataType::Int64, &safe).map_err(|e| Error::Data {
        context: ctx.source.to_string(),
        message: format!("ID key column '{name}': {e}"),
    })?;
    if let Some(i) = first_lost(col.as_ref(), out.as_ref()) {
        return Err(Error::Data {
            context: ctx.at(i),
            message: format!(
                "ID key column '{name}' holds {}, expected an integer",
                show(col.as_ref(), i)
            ),
        });
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
    fn parse_specs() {
        let d: DateKey = "ts:month".parse().unwrap();
        assert_eq!(d.granularity, Granularity::Month);
        assert_eq!(d.to_string(), "ts:month");
        assert_eq!(
            "ts".parse::<DateKey>().unwrap().granularity,
            Granularity::Day
        );
        assert!("ts:week".parse::<DateKey>().is_err());
        assert!(":day".parse::<DateKey>().is_err());
        let i: IdKey = "user_id:1000".parse().unwrap();
        assert_eq!(i.width, 1000);
        assert_eq!("u".parse::<IdKey>().unwrap().width, DEFAULT_ID_WIDTH);
        for bad in ["u:0", "u:-5", "u:x", "u:99999999999999999999"] {
            assert!(bad.parse::<IdKey>().is_err(), "{bad}");
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
        let layout = Layout {
            date: Some("d:month".parse().unwrap()),
            id: Some("id".parse().unwrap()),
        };
        let fields = layout.derived_fields(&schema).unwrap();
        assert_eq!(fields[0].name(), "d_month");
        assert_eq!(fields[1].name(), "id_range");
        let cols = layout.derive(&batch, &ctx()).unwrap();
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
        let layout = Layout {
            date: Some("d".parse().unwrap()),
            id: None,
        };
        let e = layout.derive(&batch, &ctx()).unwrap_err().to_string();
        assert!(e.contains("row 12") && e.contains("\"soon\""), "{e}");
        let layout = Layout {
            date: None,
            id: Some("d".parse().unwrap()),
        };
        let e = layout.derive(&batch, &ctx()).unwrap_err().to_string();
        assert!(
            e.contains("row 11") && e.contains("expected an integer"),
            "{e}"
        );
    }

    #[test]
    fn unusable_key_columns_are_refused() {
        let schema = Schema::new(vec![Field::new("x", DataType::Float64, true)]);
        let l = Layout {
            date: Some("x".parse().unwrap()),
            id: None,
        };
        assert!(l
            .derived_fields(&schema)
            .unwrap_err()
            .to_string()
            .contains("Float64"));
        let l = Layout {
            date: None,
            id: Some("nope".parse().unwrap()),
        };
        assert!(l
            .derived_fields(&schema)
            .unwrap_err()
            .to_string()
            .contains("no column 'nope'"));
    }
}

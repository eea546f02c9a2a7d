//! Partition keys: a date key and an ID key, the partition columns they
//! derive, and how a dataset records them.
//!
//! A date key partitions by the column's calendar day, month or year; an ID
//! key by fixed-width ranges of an integer column, labelled
//! `from_{lo}_to_{hi}` (the half-open range `[lo, hi)`, `hi = lo + width`).
//!
//! The partition column is derived from the key column and added to the
//! table: `{COL}_day` (a date), `{COL}_month` (text `YYYY-MM`),
//! `{COL}_year` (an integer), `{COL}_range` (the label). The one exception:
//! a `day` key on a column that already holds dates partitions by that
//! column itself. The key column itself stays in the data files, so a filter
//! on it also skips files by their statistics.
//!
//! Partition columns name the table's folders (`{column}={value}/`). In a
//! derived column's name, `COL` is escaped the way Hive and Spark escape
//! folder names (`/` becomes `%2F`, `=` `%3D`, `:` `%3A`, quotes, `%` and
//! control characters likewise), so any key column name, spaces, quotes and
//! all, gives folders that Hive-style readers (DuckDB, Polars, Spark) split
//! correctly, and a column named the same by them and by Delta Lake. A
//! date column whose name needs escaping is not partitioned in place but
//! gets a `{COL}_day` column too.
//!
//! ## Text form
//!
//! Front ends take keys as text, `COL[:day|month|year]` and `COL[:WIDTH]`
//! (see the [`FromStr`] implementations); the last `:` separates the unit,
//! so a column whose name holds a `:` is given with its unit
//! (`event:date:day`). [`DateKey::new`] and [`IdKey::new`] take any name.
//!
//! ## How a dataset records its keys
//!
//! The first load fixes the keys; they are recorded in the Delta table's
//! metadata `configuration`, one entry per setting, so later loads
//! partition the same way unasked and other engines keep them:
//!
//! | key | value |
//! |---|---|
//! | [`DATE_KEY_COLUMN`] (`tessera.partition.dateKey.column`) | the date key column, as is |
//! | [`DATE_KEY_GRANULARITY`] (`tessera.partition.dateKey.granularity`) | `day`, `month` or `year` |
//! | [`ID_KEY_COLUMN`] (`tessera.partition.idKey.column`) | the ID key column, as is |
//! | [`ID_KEY_WIDTH`] (`tessera.partition.idKey.width`) | the range width, a positive integer |
//!
//! An unpartitioned dataset has none of them. Datasets written by tessera
//! earlier releases recorded their keys as text in the table description;
//! they are still
//! read, and the first load into one records its keys in the configuration
//! (a commit of its own, before the load's).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The column holding each row's version key (the version of its load).
pub const VERSION_COLUMN: &str = "_version_key";

/// Default width of ID ranges.
pub const DEFAULT_ID_WIDTH: u64 = 100_000;

/// Table configuration key: the date key's column.
pub const DATE_KEY_COLUMN: &str = "tessera.partition.dateKey.column";
/// Table configuration key: the date key's unit, `day`, `month` or `year`.
pub const DATE_KEY_GRANULARITY: &str = "tessera.partition.dateKey.granularity";
/// Table configuration key: the ID key's column.
pub const ID_KEY_COLUMN: &str = "tessera.partition.idKey.column";
/// Table configuration key: the width of the ID key's ranges.
pub const ID_KEY_WIDTH: &str = "tessera.partition.idKey.width";

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
    /// `day`, `month` or `year`.
    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Day => "day",
            Granularity::Month => "month",
            Granularity::Year => "year",
        }
    }
}

impl fmt::Display for Granularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Granularity {
    type Err = Error;
    /// `day`, `month` or `year`, in any case.
    fn from_str(s: &str) -> Result<Granularity> {
        match s.to_ascii_lowercase().as_str() {
            "day" => Ok(Granularity::Day),
            "month" => Ok(Granularity::Month),
            "year" => Ok(Granularity::Year),
            _ => Err(Error::InvalidOption {
                option: "date unit",
                value: s.to_string(),
                reason: "expected day, month or year".into(),
            }),
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

impl DateKey {
    /// A date key on `column`, any name.
    pub fn new(column: impl Into<String>, granularity: Granularity) -> DateKey {
        DateKey {
            column: column.into(),
            granularity,
        }
    }
}

/// Partition by fixed-width ranges of an integer column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdKey {
    /// The integer column.
    pub column: String,
    /// Width of each range (default [`DEFAULT_ID_WIDTH`]).
    pub width: u64,
}

impl IdKey {
    /// An ID key on `column`, any name, with ranges `width` wide.
    pub fn new(column: impl Into<String>, width: u64) -> IdKey {
        IdKey {
            column: column.into(),
            width,
        }
    }
}

/// `COL[:ARG]`, split at the last `:`.
fn split_spec<'a>(spec: &'a str, option: &'static str) -> Result<(&'a str, Option<&'a str>)> {
    let (col, arg) = match spec.rsplit_once(':') {
        Some((c, a)) => (c, Some(a)),
        None => (spec, None),
    };
    if col.is_empty() {
        return Err(Error::InvalidOption {
            option,
            value: spec.to_string(),
            reason: "the column name is empty".into(),
        });
    }
    Ok((col, arg))
}

impl FromStr for DateKey {
    type Err = Error;
    /// `COL[:day|month|year]` (default `day`).
    fn from_str(spec: &str) -> Result<DateKey> {
        let (column, arg) = split_spec(spec, "date key")?;
        let granularity = match arg {
            None => Granularity::Day,
            Some(a) => a.parse().map_err(|_| Error::InvalidOption {
                option: "date key",
                value: spec.to_string(),
                reason: format!("unknown unit '{a}' (expected day, month or year)"),
            })?,
        };
        Ok(DateKey::new(column, granularity))
    }
}

impl fmt::Display for DateKey {
    /// The text form, `COL:UNIT`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.column, self.granularity)
    }
}

fn parse_width(w: &str) -> Option<u64> {
    w.replace('_', "")
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0 && *n <= i64::MAX as u64)
}

impl FromStr for IdKey {
    type Err = Error;
    /// `COL[:WIDTH]` (default 100000; `_` separators allowed).
    fn from_str(spec: &str) -> Result<IdKey> {
        let (column, arg) = split_spec(spec, "ID key")?;
        let width = match arg {
            None => DEFAULT_ID_WIDTH,
            Some(w) => parse_width(w).ok_or_else(|| Error::InvalidOption {
                option: "ID key",
                value: spec.to_string(),
                reason: format!("the width must be a positive integer, not '{w}'"),
            })?,
        };
        Ok(IdKey::new(column, width))
    }
}

impl fmt::Display for IdKey {
    /// The text form, `COL:WIDTH`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.column, self.width)
    }
}

/// The partitioning of a dataset: an optional date key, then an optional ID key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionLayout {
    /// Date key, outermost partition level.
    pub date: Option<DateKey>,
    /// ID key, inner partition level.
    pub id: Option<IdKey>,
}

impl fmt::Display for PartitionLayout {
    /// In words: `date key 'day' (day) and ID key 'user' (ranges of 1000)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.date, &self.id) {
            (None, None) => f.write_str("nothing (no partitions)"),
            (date, id) => {
                if let Some(d) = date {
                    write!(f, "date key '{}' ({})", d.column, d.granularity)?;
                }
                if date.is_some() && id.is_some() {
                    f.write_str(" and ")?;
                }
                if let Some(i) = id {
                    write!(f, "ID key '{}' (ranges of {})", i.column, i.width)?;
                }
                Ok(())
            }
        }
    }
}

/// A layout as a dataset records it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Recorded {
    pub layout: PartitionLayout,
    /// Recorded only in the table description (earlier releases), so the next
    /// load records it in the configuration.
    pub needs_migration: bool,
}

impl PartitionLayout {
    /// Whether the dataset is partitioned at all.
    pub fn is_empty(&self) -> bool {
        self.date.is_none() && self.id.is_none()
    }

    /// Check the keys can be used at all (names given, widths in range).
    pub(crate) fn check(&self) -> Result<()> {
        if let Some(d) = &self.date {
            if d.column.is_empty() {
                return Err(Error::InvalidOption {
                    option: "date key",
                    value: d.to_string(),
                    reason: "the column name is empty".into(),
                });
            }
        }
        if let Some(i) = &self.id {
            if i.column.is_empty() || i.width == 0 || i.width > i64::MAX as u64 {
                return Err(Error::InvalidOption {
                    option: "ID key",
                    value: i.to_string(),
                    reason: format!(
                        "an ID key names a column and a width from 1 to {}",
                        i64::MAX
                    ),
                });
            }
        }
        Ok(())
    }

    /// The table configuration entries recording this layout.
    pub(crate) fn configuration(&self) -> Vec<(String, String)> {
        let mut v = Vec::new();
        if let Some(d) = &self.date {
            v.push((DATE_KEY_COLUMN.to_string(), d.column.clone()));
            v.push((DATE_KEY_GRANULARITY.to_string(), d.granularity.to_string()));
        }
        if let Some(i) = &self.id {
            v.push((ID_KEY_COLUMN.to_string(), i.column.clone()));
            v.push((ID_KEY_WIDTH.to_string(), i.width.to_string()));
        }
        v
    }

    /// The layout a table records: its configuration, else (tables of
    /// earlier releases) its description; empty if neither has one.
    pub(crate) fn recorded(meta: &deltalake::kernel::Metadata, dataset: &str) -> Result<Recorded> {
        let conf = meta.configuration();
        if let Some(layout) = Self::from_configuration(conf, dataset)? {
            return Ok(Recorded {
                layout,
                needs_migration: false,
            });
        }
        let layout = match meta.description() {
            Some(d) => Self::from_description(d, dataset)?,
            None => PartitionLayout::default(),
        };
        Ok(Recorded {
            needs_migration: !layout.is_empty(),
            layout,
        })
    }

    /// The layout in `tessera.partition.*` entries, `None` when there are none.
    fn from_configuration(
        conf: &HashMap<String, String>,
        dataset: &str,
    ) -> Result<Option<PartitionLayout>> {
        let bad = |key: &str, value: &str, reason: &str| Error::InvalidLayout {
            dataset: dataset.to_string(),
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        };
        // Both entries of a key, or neither.
        let pair = |a: &str, b: &str| -> Result<Option<(String, String)>> {
            match (conf.get(a), conf.get(b)) {
                (Some(x), Some(y)) => Ok(Some((x.clone(), y.clone()))),
                (None, None) => Ok(None),
                (Some(x), None) => Err(bad(a, x, &format!("{b} is missing"))),
                (None, Some(y)) => Err(bad(b, y, &format!("{a} is missing"))),
            }
        };
        let date = pair(DATE_KEY_COLUMN, DATE_KEY_GRANULARITY)?
            .map(|(column, g)| {
                let granularity = g
                    .parse()
                    .map_err(|_| bad(DATE_KEY_GRANULARITY, &g, "expected day, month or year"))?;
                Ok::<_, Error>(DateKey::new(column, granularity))
            })
            .transpose()?;
        let id = pair(ID_KEY_COLUMN, ID_KEY_WIDTH)?
            .map(|(column, w)| {
                let width = parse_width(&w)
                    .ok_or_else(|| bad(ID_KEY_WIDTH, &w, "expected a positive integer"))?;
                Ok::<_, Error>(IdKey::new(column, width))
            })
            .transpose()?;
        let layout = PartitionLayout { date, id };
        Ok((!layout.is_empty()).then_some(layout))
    }

    /// The layout earlier releases wrote into the table description:
    /// `tessera dataset [<date-key flag> COL:UNIT] [<id-key flag> COL:WIDTH]`.
    /// A spec runs to the next flag, so column names with single spaces,
    /// which those releases read back wrong, are read right here.
    fn from_description(desc: &str, dataset: &str) -> Result<PartitionLayout> {
        let mut words = desc.split_whitespace();
        let mut layout = PartitionLayout::default();
        if words.next() != Some("tessera") || words.next() != Some("dataset") {
            return Ok(layout);
        }
        let mut specs: Vec<(&str, Vec<&str>)> = Vec::new();
        for w in words {
            match w.strip_prefix('-').map(|f| f.trim_start_matches('-')) {
                Some(flag @ ("date-key" | "id-key")) => specs.push((flag, Vec::new())),
                _ => match specs.last_mut() {
                    Some((_, spec)) => spec.push(w),
                    None => return Ok(layout),
                },
            }
        }
        let unreadable = |e: Error| Error::InvalidLayout {
            dataset: dataset.to_string(),
            key: "description".into(),
            value: desc.to_string(),
            reason: e.to_string(),
        };
        for (flag, spec) in specs {
            let spec = spec.join(" ");
            if flag == "date-key" {
                layout.date = Some(spec.parse().map_err(unreadable)?);
            } else {
                layout.id = Some(spec.parse().map_err(unreadable)?);
            }
        }
        Ok(layout)
    }

    /// The partition columns of a table with this layout that tessera
    /// derives (those that are not a key column itself).
    pub(crate) fn derived_in(&self, partition_columns: &[String]) -> Vec<String> {
        if self.is_empty() {
            return Vec::new();
        }
        partition_columns
            .iter()
            .filter(|c| {
                self.date.as_ref().is_none_or(|d| &d.column != *c)
                    && self.id.as_ref().is_none_or(|i| &i.column != *c)
            })
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // A name with ':' takes its unit spelled out.
        let d: DateKey = "a: b:day".parse().unwrap();
        assert_eq!(d, DateKey::new("a: b", Granularity::Day));
        assert!(matches!(
            "x:y".parse::<DateKey>().unwrap_err(),
            Error::InvalidOption {
                option: "date key",
                ..
            }
        ));
    }

    #[test]
    fn the_layout_round_trips_through_the_configuration() {
        let l = PartitionLayout {
            date: Some(DateKey::new("event date: \"x\"/y=z é", Granularity::Year)),
            id: Some(IdKey::new("user id", 250)),
        };
        let conf: HashMap<String, String> = l.configuration().into_iter().collect();
        assert_eq!(conf[DATE_KEY_COLUMN], "event date: \"x\"/y=z é");
        assert_eq!(conf[DATE_KEY_GRANULARITY], "year");
        assert_eq!(conf[ID_KEY_WIDTH], "250");
        assert_eq!(
            PartitionLayout::from_configuration(&conf, "t").unwrap(),
            Some(l)
        );
        assert_eq!(
            PartitionLayout::from_configuration(&HashMap::new(), "t").unwrap(),
            None
        );
        let mut broken = conf.clone();
        broken.remove(ID_KEY_WIDTH);
        assert!(matches!(
            PartitionLayout::from_configuration(&broken, "t").unwrap_err(),
            Error::InvalidLayout { .. }
        ));
        broken.insert(ID_KEY_WIDTH.into(), "0".into());
        assert!(PartitionLayout::from_configuration(&broken, "t").is_err());
    }

    #[test]
    fn descriptions_of_earlier_releases_are_read() {
        // Table descriptions as earlier releases wrote them (a readable one,
        // and one with a granularity no release wrote).
        let old: Vec<&str> = include_str!("../tests/fixtures/old-descriptions.txt")
            .lines()
            .collect();
        let l = PartitionLayout::from_description(old[0], "t").unwrap();
        assert_eq!(
            l,
            PartitionLayout {
                date: Some(DateKey::new("event date", Granularity::Month)),
                id: Some(IdKey::new("user id", 1000)),
            }
        );
        assert!(PartitionLayout::from_description("tessera dataset", "t")
            .unwrap()
            .is_empty());
        assert!(PartitionLayout::from_description("my own table", "t")
            .unwrap()
            .is_empty());
        assert!(matches!(
            PartitionLayout::from_description(old[1], "t").unwrap_err(),
            Error::InvalidLayout { .. }
        ));
    }
}

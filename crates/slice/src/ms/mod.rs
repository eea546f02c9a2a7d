//! Radio-astronomy MeasurementSets: casacore table folders (a main table
//! of visibilities and subtables), read natively.
//!
//! # The route
//!
//! A slice of a MeasurementSet must be a standalone MeasurementSet that
//! casacore opens, so tessera has to read and write casacore's table files.
//! Three ways were weighed:
//!
//! - C++ casacore (through python-casacore or bindings such as
//!   `rubbl_casatables`) on every worker: what the reference tool does, and
//!   what this project replaces (a C++ library and its data files on every
//!   machine, and no control over reads from object storage).
//! - The `casacure` crate, a pure-Rust casacore table system: young, and
//!   LGPL-3.0, which an Apache-2.0 library cannot absorb.
//! - A reader and writer of the files themselves, written from the format:
//!   AipsIO (`table.dat`, `table.lock`, the storage managers' headers), and
//!   the storage managers that MeasurementSets use (StandardStMan,
//!   IncrementalStMan, TiledColumnStMan and TiledShapeStMan). This is the
//!   route taken: the formats are stable and documented by their layout, a
//!   slice needs only whole-column reads and fresh files for the main table
//!   (subtables are copied byte for byte), and the reads are ranged GETs
//!   like every other format's. python-casacore is the test oracle only.
//!
//! The file layouts, byte by byte, are in `FORMAT.md` beside this module.
//!
//! # What a slice is made of
//!
//! A slice of rows `[a, b)` is a new table folder: the subtables and
//! `table.info` copied as they are, `table.dat` with the new row count, and
//! the main table's storage-manager files written for the rows:
//!
//! - a StandardStMan is cut in its own layout (`slice`): same bucket size,
//!   rows per bucket and column places, so its blob in `table.dat` stays
//!   as it is; its buckets, index, header and array file are new;
//! - a TiledColumnStMan or TiledShapeStMan is cut in its own layout too
//!   (`tsm`): each cube keeps its tile shape and holds the slice's rows in
//!   the order casacore would have placed them, its tiles copied plane by
//!   plane (whole rows of tiles when the slice starts on a tile boundary,
//!   then without a copy), and its header is written again with the new
//!   row count, cube shapes, file lengths and row map;
//! - the columns of an IncrementalStMan are read for the rows (`ism`) and
//!   written into one new StandardStMan (`convert`), which `table.dat` then
//!   binds them to. The values are the original's, one per row (a native
//!   IncrementalStMan writer would keep them as changes: not written yet).
//!
//! Other managers (TiledCellStMan, TiledDataStMan, Dysco, virtual engines)
//! are refused by name.

pub(crate) mod aipsio;
mod convert;
mod format;
pub(crate) mod ism;
pub(crate) mod slice;
pub(crate) mod ssm;
pub(crate) mod table;
pub(crate) mod tsm;

use std::ops::Range;

pub use format::MsFormat;

use crate::error::{Error, Result};
use table::{TableDat, Type};

/// Reads byte ranges of the table's files (by file name, e.g. `table.f0`)
/// and tells their sizes.
pub(crate) trait Files {
    fn size(&self, file: &str) -> Result<u64>;
    fn read(&self, file: &str, range: Range<u64>) -> Result<Vec<u8>>;
}

/// A damaged or unsupported table file, named.
pub(crate) fn invalid(file: &str, message: impl Into<String>) -> Error {
    Error::InvalidFile {
        object: file.to_string(),
        format: "MeasurementSet".into(),
        message: message.into(),
    }
}

/// The values of a scalar `Double` column (TIME), row by row (see
/// [`double_runs`]).
#[cfg(test)]
pub(crate) fn double_column(
    dat: &TableDat,
    name: &str,
    rows: u64,
    files: &dyn Files,
) -> Result<Vec<f64>> {
    let runs = double_runs(dat, name, rows, files)?;
    let mut out = Vec::new();
    for (i, &(first, v)) in runs.iter().enumerate() {
        let end = runs.get(i + 1).map_or(rows, |r| r.0);
        out.extend(std::iter::repeat_n(v, (end - first) as usize));
    }
    Ok(out)
}

/// The values of a scalar `Double` column (TIME) over rows `0..rows`, as
/// runs (first row, value) in row order, read from the storage manager
/// that holds it: a StandardStMan bucket's cells per read (a run per row),
/// or an IncrementalStMan's changes (a run per change: however many rows
/// the table claims, the runs are no more than the file holds).
pub(crate) fn double_runs(
    dat: &TableDat,
    name: &str,
    rows: u64,
    files: &dyn Files,
) -> Result<Vec<(u64, f64)>> {
    let Some(col) = dat.columns.iter().find(|c| c.name == name) else {
        return Err(invalid("table.dat", format!("no column {name}")));
    };
    if col.ty != Type::Double || col.array {
        return Err(invalid(
            "table.dat",
            format!("column {name} is not a scalar Double"),
        ));
    }
    let manager = dat
        .managers
        .iter()
        .find(|m| m.seqnr == col.manager)
        .ok_or_else(|| invalid("table.dat", format!("column {name}: no data manager")))?;
    // Its place among the manager's columns.
    let place = dat
        .columns
        .iter()
        .filter(|c| c.manager == col.manager)
        .position(|c| c.name == name)
        .unwrap_or(0);
    let file = format!("table.f{}", manager.seqnr);
    let big = dat.big_endian;
    let f64_at = |b: &[u8], at: usize| -> Option<f64> {
        let a: [u8; 8] = b.get(at..at + 8)?.try_into().ok()?;
        Some(if big {
            f64::from_be_bytes(a)
        } else {
            f64::from_le_bytes(a)
        })
    };
    let size = files.size(&file)?;
    let head = files.read(&file, 0..size.min(ssm::HEADER as u64))?;
    let mut out: Vec<(u64, f64)> = Vec::new();
    let mut covered = 0u64;
    match manager.kind.as_str() {
        "StandardStMan" => {
            let header = ssm::Header::parse(&head, big, &file)?;
            let bytes = header.index_bytes(&file, size, &mut |a, b| {
                if b > size {
                    return Err(invalid(
                        &file,
                        format!("the index runs past the end, to byte {b}"),
                    ));
                }
                files.read(&file, a..b)
            })?;
            let index = ssm::Index::parse(&bytes, big, &file)?;
            index.check(&header, size, &file)?;
            let offsets = ssm::column_offsets(&manager.blob, "table.dat")?;
            let Some(&offset) = offsets.get(place) else {
                return Err(invalid(
                    "table.dat",
                    format!("no place for column {name} in its StandardStMan"),
                ));
            };
            for run in ssm::runs(&header, &index, offset, 8, rows, &file)? {
                let bytes = files.read(&file, run.at..run.at + run.rows * 8)?;
                for k in 0..run.rows {
                    let v = f64_at(&bytes, 8 * k as usize)
                        .ok_or_else(|| invalid(&file, "a short read"))?;
                    out.push((run.first_row + k, v));
                }
                covered += run.rows;
            }
        }
        "IncrementalStMan" => {
            for (row, until, v) in ism::value_runs(&file, files, big, place, 8, 0..rows)? {
                let v = f64_at(&v, 0).ok_or_else(|| invalid(&file, "a short value"))?;
                out.push((row, v));
                covered += until - row;
            }
        }
        other => {
            return Err(Error::Unsupported {
                object: file,
                reason: format!("column {name} is stored by {other}, which tessera cannot read"),
            })
        }
    }
    if covered != rows {
        return Err(invalid(
            &file,
            format!("{covered} values of {name} for {rows} rows"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::table::{lock_rows, parse_table_dat, Type};
    use std::path::Path;

    fn fixture(layout: &str, file: &str) -> Vec<u8> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/ms")
            .join(layout)
            .join(file);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn type_name(t: Type) -> &'static str {
        match t {
            Type::Bool => "boolean",
            Type::Char | Type::UChar => "uchar",
            Type::Short => "short",
            Type::UShort => "ushort",
            Type::Int => "int",
            Type::UInt => "uint",
            Type::Float => "float",
            Type::Double => "double",
            Type::Complex => "complex",
            Type::DComplex => "dcomplex",
            Type::String => "string",
            Type::Int64 => "int64",
        }
    }

    /// Every column's type, shape and data manager as python-casacore reads
    /// them (`expected.json`, written by `expected.py`), and the row count
    /// from `table.lock` (`table.dat`'s is stale: the rows were added after
    /// the table was created).
    #[test]
    fn table_dat_as_casacore_reads_it() {
        for layout in ["default", "casa", "tiledcolumn"] {
            let dat = parse_table_dat(&fixture(layout, "table.dat"), "table.dat").unwrap();
            let want: serde_json::Value =
                serde_json::from_slice(&fixture(layout, "expected.json")).unwrap();
            let rows = lock_rows(&fixture(layout, "table.lock"), "table.lock").unwrap();
            assert_eq!(rows, want["rows"].as_u64(), "{layout}: rows");
            assert_eq!(
                dat.rows, 0,
                "{layout}: table.dat was written before the rows"
            );
            assert!(
                !dat.big_endian,
                "{layout}: python-casacore writes little-endian here"
            );
            let cols = want["columns"].as_object().unwrap();
            assert_eq!(dat.columns.len(), cols.len(), "{layout}");
            for c in &dat.columns {
                let w = &cols[&c.name];
                let m = dat.managers.iter().find(|m| m.seqnr == c.manager).unwrap();
                assert_eq!(
                    m.kind,
                    w["manager"].as_str().unwrap(),
                    "{layout} {}",
                    c.name
                );
                assert_eq!(u64::from(c.manager), w["seqnr"].as_u64().unwrap());
                assert_eq!(type_name(c.ty), w["type"].as_str().unwrap(), "{}", c.name);
                assert_eq!(c.array, w["array"].as_bool().unwrap(), "{}", c.name);
                // python-casacore gives shapes in C order, casacore's files
                // in Fortran order (the first axis varies fastest).
                let shape: Option<Vec<i64>> = serde_json::from_value(w["shape"].clone()).unwrap();
                let shape = shape.map(|s| s.into_iter().rev().collect::<Vec<_>>());
                assert_eq!(c.shape, shape, "{layout} {}", c.name);
            }
        }
    }

    /// A fixture folder as [`Files`].
    struct Dir(&'static str);

    impl super::Files for Dir {
        fn size(&self, file: &str) -> crate::error::Result<u64> {
            Ok(fixture(self.0, file).len() as u64)
        }
        fn read(&self, file: &str, r: std::ops::Range<u64>) -> crate::error::Result<Vec<u8>> {
            let all = fixture(self.0, file);
            Ok(all[r.start as usize..(r.end as usize).min(all.len())].to_vec())
        }
    }

    /// TIME row by row, from a StandardStMan spread over several buckets
    /// (default) and from an IncrementalStMan (casa), equals what
    /// python-casacore reads.
    #[test]
    fn time_as_casacore_reads_it() {
        for layout in ["default", "casa"] {
            let dat = parse_table_dat(&fixture(layout, "table.dat"), "table.dat").unwrap();
            let rows = lock_rows(&fixture(layout, "table.lock"), "table.lock")
                .unwrap()
                .unwrap();
            let want: serde_json::Value =
                serde_json::from_slice(&fixture(layout, "expected.json")).unwrap();
            let want: Vec<f64> = serde_json::from_value(want["time"].clone()).unwrap();
            let got = super::double_column(&dat, "TIME", rows, &Dir(layout)).unwrap();
            assert_eq!(got, want, "{layout}");
            // Fewer rows than stored: the first ones.
            let got = super::double_column(&dat, "TIME", 7, &Dir(layout)).unwrap();
            assert_eq!(got, want[..7], "{layout}");
            let e = super::double_column(&dat, "ANTENNA1", rows, &Dir(layout)).unwrap_err();
            assert!(e.to_string().contains("not a scalar Double"), "{e}");
        }
    }

    /// Damage anywhere in `table.dat` is an error naming the file, never a
    /// panic or a wrong description.
    #[test]
    fn damaged_table_dat() {
        let good = fixture("casa", "table.dat");
        for cut in [0, 3, 4, 30, 100, good.len() / 2, good.len() - 1] {
            let e = parse_table_dat(&good[..cut], "x.ms/table.dat").unwrap_err();
            assert!(e.to_string().contains("x.ms/table.dat"), "{e}");
        }
        let mut flipped = good.clone();
        for i in (0..good.len()).step_by(7) {
            flipped[i] ^= 0x5a;
            let _ = parse_table_dat(&flipped, "x.ms/table.dat");
            flipped[i] ^= 0x5a;
        }
    }

    /// Files held in memory, by name.
    struct Mem(std::collections::HashMap<String, Vec<u8>>);

    impl super::Files for Mem {
        fn size(&self, file: &str) -> crate::error::Result<u64> {
            Ok(self.0[file].len() as u64)
        }
        fn read(&self, file: &str, r: std::ops::Range<u64>) -> crate::error::Result<Vec<u8>> {
            let all = &self.0[file];
            Ok(all[r.start as usize..(r.end as usize).min(all.len())].to_vec())
        }
    }

    /// Rows a..b of a StandardStMan spread over eight buckets, written as
    /// a new file, read back as those rows of the original (TIME, one
    /// column of many; the slice's buckets start at another row than the
    /// original's, so every cell moves).
    #[test]
    fn standard_st_man_slices_read_back() {
        let dat_bytes = fixture("default", "table.dat");
        let dat = parse_table_dat(&dat_bytes, "table.dat").unwrap();
        let source = fixture("default", "table.f0");
        let rows = lock_rows(&fixture("default", "table.lock"), "table.lock")
            .unwrap()
            .unwrap();
        let all = super::double_column(&dat, "TIME", rows, &Dir("default")).unwrap();
        for (a, b) in [
            (0, rows),
            (0, 1),
            (5, 40),
            (31, 33),
            (rows - 1, rows),
            (3, rows),
        ] {
            let m = &dat.managers[0];
            let layout = super::slice::ssm_layout(&source, false, "table.f0").unwrap();
            let s = super::slice::ssm_slice(&dat, m, &source, &layout, a..b, "table.f0").unwrap();
            // The same from the header, the index and the rows' buckets
            // alone; the bytes outside them are not read.
            let (header, index) = &layout;
            let index_at = header.index_range().unwrap();
            let buckets = super::slice::ssm_buckets(header, index, a..b).unwrap();
            let part = |r: std::ops::Range<u64>| {
                (
                    r.start,
                    bytes::Bytes::copy_from_slice(&source[r.start as usize..r.end as usize]),
                )
            };
            let ranges = super::slice::Ranges {
                size: source.len() as u64,
                parts: vec![part(0..512), part(index_at), part(buckets.clone())],
            };
            let partial =
                super::slice::ssm_slice(&dat, m, &ranges, &layout, a..b, "table.f0").unwrap();
            assert_eq!(partial.file, s.file, "rows {a}..{b}");
            let whole = buckets.end - buckets.start;
            assert!(
                b - a > 100 || whole < source.len() as u64 / 2,
                "rows {a}..{b}: {whole} bytes of buckets"
            );
            let new_dat = super::slice::table_dat_with_rows(&dat, &dat_bytes, b - a).unwrap();
            let reread = parse_table_dat(&new_dat, "table.dat").unwrap();
            assert_eq!(reread.rows, b - a);
            let files = Mem([("table.f0".to_string(), s.file.clone())]
                .into_iter()
                .collect());
            let got = super::double_column(&reread, "TIME", b - a, &files).unwrap();
            assert_eq!(got, all[a as usize..b as usize], "rows {a}..{b}");
            // Every indirect cell of the slice is one of the original's.
            assert!(s.indirect.len() as u64 >= b - a, "rows {a}..{b}");
        }
        let layout = super::slice::ssm_layout(&source, false, "table.f0").unwrap();
        let e = super::slice::ssm_slice(
            &dat,
            &dat.managers[0],
            &source,
            &layout,
            0..rows + 1,
            "table.f0",
        )
        .unwrap_err();
        assert!(e.to_string().contains("the index holds"), "{e}");
    }
}

//! A casacore table's description: `table.dat` (columns, their types and
//! shapes, the data managers and which columns each stores) and the row
//! count, which `table.lock` holds when the table grew after `table.dat` was
//! last written.

use super::aipsio::Reader;
use crate::error::Result;

/// A column's value type (casacore's `DataType`, scalar or array).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Type {
    Bool,
    Char,
    UChar,
    Short,
    UShort,
    Int,
    UInt,
    Float,
    Double,
    Complex,
    DComplex,
    String,
    Int64,
}

impl Type {
    /// The element type of casacore's `DataType` number, and whether it is
    /// an array type.
    pub(crate) fn from_code(code: i32) -> Option<(Type, bool)> {
        use Type::*;
        let scalar = [
            Bool, Char, UChar, Short, UShort, Int, UInt, Float, Double, Complex, DComplex, String,
        ];
        match code {
            0..=11 => Some((scalar[code as usize], false)),
            13..=24 => Some((scalar[(code - 13) as usize], true)),
            29 => Some((Int64, false)),
            30 => Some((Int64, true)),
            _ => None,
        }
    }

    /// Bytes of one value in a storage manager's file (`None`: strings,
    /// which vary; Bool: one byte here, bits in some files).
    pub(crate) fn size(self) -> Option<usize> {
        use Type::*;
        Some(match self {
            Bool | Char | UChar => 1,
            Short | UShort => 2,
            Int | UInt | Float => 4,
            Double | Int64 | Complex => 8,
            DComplex => 16,
            String => return None,
        })
    }
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Column {
    pub(crate) name: String,
    pub(crate) ty: Type,
    /// An array column (else scalar).
    pub(crate) array: bool,
    /// casacore's column options: 1 direct, 2 undefined allowed, 4 fixed shape.
    pub(crate) options: i32,
    /// Dimensions of its cells (arrays; -1 or 0: any).
    pub(crate) ndim: i32,
    /// The fixed cell shape, when the description gives one.
    pub(crate) shape: Option<Vec<i64>>,
    /// The cell shape the column set fixes for every row, if any.
    pub(crate) cell_shape: Option<Vec<i64>>,
    /// The sequence number of the data manager that stores it.
    pub(crate) manager: u32,
}

/// A data manager of a table (a storage manager or a virtual engine).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Manager {
    /// Its type, e.g. `StandardStMan`, `TiledShapeStMan`.
    pub(crate) kind: String,
    /// Its sequence number: its files are `table.fN…`.
    pub(crate) seqnr: u32,
    /// Its header blob, as stored in `table.dat`.
    pub(crate) blob: Vec<u8>,
}

/// What `table.dat` says.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TableDat {
    /// Rows, as `table.dat` last recorded them (see [`lock_rows`]).
    pub(crate) rows: u64,
    /// Where the two row counts lie (the table's and the column set's),
    /// and whether they are 8 bytes wide (else 4).
    pub(crate) rows_at: [(usize, bool); 2],
    /// Where the column set's list of data managers starts (its next free
    /// sequence number).
    pub(crate) dm_list_at: usize,
    /// Each column's entry in the column set (which manager stores it).
    pub(crate) entries: Vec<[usize; 2]>,
    /// The data managers' files are big-endian.
    pub(crate) big_endian: bool,
    pub(crate) columns: Vec<Column>,
    pub(crate) managers: Vec<Manager>,
}

/// Parse `table.dat` (`file` names it in errors).
pub(crate) fn parse_table_dat(buf: &[u8], file: &str) -> Result<TableDat> {
    let mut r = Reader::new(buf, true, file);
    r.magic()?;
    let table = r.object(Some("Table"))?;
    let wide = match table.version {
        1 | 2 => false,
        3 => true,
        v => return Err(r.invalid(format!("Table version {v} is not one this reader knows"))),
    };
    let rows_at = r.pos();
    let rows = if wide { r.u64()? } else { u64::from(r.u32()?) };
    let big_endian = r.u32()? == 0;
    let kind = r.string()?;
    if kind != "PlainTable" {
        return Err(r.invalid(format!(
            "a {kind}, not a plain table (reference and concatenated tables cannot be sliced)"
        )));
    }
    let desc = r.object(Some("TableDesc"))?;
    for _ in 0..3 {
        r.string()?; // name, version, comment
    }
    r.skip_object(Some("TableRecord"))?; // table keywords (subtable links)
    r.skip_object(Some("TableRecord"))?; // private keywords
    let ncol = r.u32()? as usize;
    let mut columns = Vec::with_capacity(ncol.min(4096));
    for _ in 0..ncol {
        columns.push(column_desc(&mut r)?);
    }
    r.end_object(&desc)?;
    // The column set: rows again, then the data managers and their columns.
    let (cs_rows_at, cs_wide) = match r.i32()? {
        -2 => (r.pos(), false),
        -3 => (r.pos(), true),
        v => {
            return Err(r.invalid(format!(
                "column set version {} is not one this reader knows",
                -v
            )))
        }
    };
    if cs_wide {
        r.u64()?;
        r.i32()?; // storage option
        r.i32()?; // block size
    } else {
        r.u32()?;
    }
    let dm_list_at = r.pos();
    r.u32()?; // next free sequence number
    let ndm = r.u32()? as usize;
    let mut managers = Vec::with_capacity(ndm.min(1024));
    for _ in 0..ndm {
        let kind = r.string()?;
        let seqnr = r.u32()?;
        managers.push(Manager {
            kind,
            seqnr,
            blob: Vec::new(),
        });
    }
    let mut entries = Vec::with_capacity(columns.len());
    for c in &mut columns {
        let start = r.pos();
        let v = r.u32()?;
        if v != 2 {
            return Err(r.invalid(format!(
                "column '{}': entry version {v}, expected 2",
                c.name
            )));
        }
        r.string()?; // the original name
        r.u32()?;
        c.manager = r.u32()?;
        if !managers.iter().any(|m| m.seqnr == c.manager) {
            return Err(r.invalid(format!(
                "column '{}' is stored by data manager {}, which the table does not list",
                c.name, c.manager
            )));
        }
        if c.array && r.bool()? {
            c.cell_shape = Some(r.iposition()?);
        }
        entries.push([start, r.pos()]);
    }
    for m in &mut managers {
        let n = r.u32()? as usize;
        let at = r.pos();
        r.skip(
            n,
            &format!("the header of data manager {} ({})", m.seqnr, m.kind),
        )?;
        m.blob = buf[at..at + n].to_vec();
    }
    r.end_object(&table)?;
    if !r.at_end() {
        return Err(r.invalid("bytes after the table description"));
    }
    Ok(TableDat {
        rows,
        rows_at: [(rows_at, wide), (cs_rows_at, cs_wide)],
        dm_list_at,
        entries,
        big_endian,
        columns,
        managers,
    })
}

/// One column description (casacore's `ColumnDesc`, not an object).
fn column_desc(r: &mut Reader<'_>) -> Result<Column> {
    let version = r.u32()?;
    let class = r.string()?;
    let base_version = r.u32()?;
    if version != 1 || base_version != 1 {
        return Err(r.invalid(format!("column description {class:?}: unknown version")));
    }
    let name = r.string()?;
    r.string()?; // comment
    r.string()?; // data manager type (a hint; the column set binds)
    r.string()?; // data manager group
    let code = r.i32()?;
    // An array column gives its element type; the class says it is an array.
    let array = class.starts_with("ArrayColumnDesc");
    let Some((ty, _)) = Type::from_code(code) else {
        return Err(r.invalid(format!(
            "column '{name}': value type {code} cannot be sliced"
        )));
    };
    let options = r.i32()?;
    let ndim = r.i32()?;
    let shape = if array {
        let s = r.iposition()?;
        (!s.is_empty()).then_some(s)
    } else {
        None
    };
    r.u32()?; // maximum string length
    r.skip_object(Some("TableRecord"))?; // column keywords
    r.u32()?;
    if array {
        r.bool()?;
    } else {
        default_value(r, ty, &name)?;
    }
    Ok(Column {
        name,
        ty,
        array,
        options,
        ndim,
        shape,
        cell_shape: None,
        manager: 0,
    })
}

fn default_value(r: &mut Reader<'_>, ty: Type, name: &str) -> Result<()> {
    match ty.size() {
        Some(n) => r.skip(n, &format!("the default value of column '{name}'")),
        None => r.string().map(|_| ()),
    }
}

/// The row count `table.lock` records (casacore keeps the current count
/// there, and rewrites `table.dat` only when the description changes);
/// `None` when the lock file holds no table information.
pub(crate) fn lock_rows(buf: &[u8], file: &str) -> Result<Option<u64>> {
    // The lock requests: (1 + 2 × 32) big-endian 32-bit numbers.
    const REQUESTS: usize = (1 + 2 * 32) * 4;
    if buf.len() <= REQUESTS {
        return Ok(None);
    }
    let mut r = Reader::new(&buf[REQUESTS..], true, file);
    let n = r.u32()? as usize;
    if n == 0 {
        return Ok(None);
    }
    r.magic()?;
    let sync = r.object(Some("sync"))?;
    Ok(Some(match sync.version {
        1 => u64::from(r.u32()?),
        _ => r.u64()?,
    }))
}

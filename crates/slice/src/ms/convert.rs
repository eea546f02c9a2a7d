//! Columns of the main table that are not in a StandardStMan
//! (IncrementalStMan, TiledColumnStMan, TiledShapeStMan) are read cell by
//! cell for the slice's rows and written into one new StandardStMan: the
//! values are the original's, the storage layout is casacore's general
//! one (scalars and fixed arrays in buckets, other arrays in its array
//! file). `table.dat` then binds those columns to the new manager.

use std::ops::Range;

use super::aipsio::Writer;
use super::slice::finish_ssm;
use super::table::{Column, TableDat, Type};
use super::{invalid, ism, tsm, Files};
use crate::error::{Error, Result};

/// A column's cells for the slice's rows.
#[derive(Debug, Clone)]
pub(crate) enum Cells {
    /// Scalars, `size` bytes each, side by side (Bool: one byte, 0 or 1).
    Scalar(Vec<u8>),
    /// Arrays: each cell's shape (casacore order) and elements (Bool: one
    /// byte each), or `None` for an undefined cell.
    Array(Vec<Option<(Vec<u64>, Vec<u8>)>>),
}

/// Bytes per element in cells (Bool: 1).
fn elem(c: &Column, file: &str) -> Result<usize> {
    c.ty.size().ok_or_else(|| Error::Unsupported {
        object: file.to_string(),
        reason: format!(
            "column {}: string columns outside a StandardStMan are not written yet",
            c.name
        ),
    })
}

/// The cells of rows `rows` of scalar column `c` (its place `place` among
/// the columns of IncrementalStMan file `file`).
pub(crate) fn ism_cells(
    c: &Column,
    place: usize,
    rows: Range<u64>,
    big: bool,
    file: &str,
    files: &dyn Files,
) -> Result<Cells> {
    if c.array {
        return Err(Error::Unsupported {
            object: file.to_string(),
            reason: format!(
                "column {}: arrays in an IncrementalStMan are not read yet",
                c.name
            ),
        });
    }
    let size = elem(c, file)?;
    let mut out = Vec::with_capacity(((rows.end - rows.start) as usize).saturating_mul(size));
    for (lo, hi, v) in ism::value_runs(file, files, big, place, size, rows.clone())? {
        for _ in lo..hi {
            out.extend_from_slice(&v);
        }
    }
    if out.len() != (rows.end - rows.start) as usize * size {
        return Err(invalid(
            file,
            format!(
                "column {}: rows {}..{} are not all stored",
                c.name, rows.start, rows.end
            ),
        ));
    }
    Ok(Cells::Scalar(out))
}

/// Bytes per element of a tiled column's cells (0: Bool, in bits).
pub(crate) fn tiled_size(c: &Column, file: &str) -> Result<usize> {
    if c.ty == Type::Bool {
        Ok(0)
    } else {
        elem(c, file)
    }
}

/// The byte ranges of a tiled manager's data files that rows `rows` need:
/// per cube, (cube, data file number, start, end).
pub(crate) fn tiled_spans(
    c: &Column,
    tsm: &tsm::Tsm,
    rows: Range<u64>,
    file: &str,
) -> Result<Vec<(usize, u32, u64, u64)>> {
    if tsm.types.len() != 1 {
        return Err(Error::Unsupported {
            object: file.to_string(),
            reason: format!(
                "column {}: a tiled manager of {} columns is not read yet",
                c.name,
                tsm.types.len()
            ),
        });
    }
    let size = tiled_size(c, file)?;
    let mut spans: std::collections::BTreeMap<usize, (u64, u64)> = Default::default();
    for r in rows {
        if let Some((cube, pos)) = tsm.locate(r) {
            let e = spans.entry(cube).or_insert((pos, pos));
            e.0 = e.0.min(pos);
            e.1 = e.1.max(pos);
        }
    }
    let mut out = Vec::new();
    for (cube, (lo, hi)) in spans {
        let cu = &tsm.cubes[cube];
        let Some(f) = cu.file else { continue };
        let (a, b) = tsm::cell_span(cu, size, lo, hi)
            .ok_or_else(|| invalid(file, format!("cube {cube}: its tiles overflow")))?;
        out.push((cube, f, a, b));
    }
    Ok(out)
}

/// The cells of rows `rows` of array column `c` in a tiled manager whose
/// header is `tsm`, from the spans [`tiled_spans`] named (`data`: per cube,
/// the span's start and bytes).
pub(crate) fn tsm_cells(
    c: &Column,
    tsm: &tsm::Tsm,
    rows: Range<u64>,
    file: &str,
    data: &std::collections::BTreeMap<usize, (u64, bytes::Bytes)>,
) -> Result<Cells> {
    let size = tiled_size(c, file)?;
    let mut out = Vec::with_capacity((rows.end - rows.start) as usize);
    for r in rows {
        let Some((cube, pos)) = tsm.locate(r) else {
            out.push(None);
            continue;
        };
        let cu = &tsm.cubes[cube];
        let Some((base, bytes)) = data.get(&cube) else {
            out.push(None);
            continue;
        };
        let cell = tsm::read_cell(cu, pos, size, bytes, *base).ok_or_else(|| {
            invalid(
                file,
                format!(
                    "column {}: row {r}'s tiles lie past the end of the data",
                    c.name
                ),
            )
        })?;
        out.push(Some((cu.shape[..cu.shape.len() - 1].to_vec(), cell)));
    }
    Ok(Cells::Array(out))
}

/// How a converted column lies in the new manager.
struct Layout {
    bits: u64,
    /// Direct array of this many elements (else scalar or indirect).
    direct: Option<u64>,
    indirect: bool,
    size: usize,
    bool_: bool,
}

/// A new StandardStMan: its file, its array file (if any column is
/// indirect) and its blob for `table.dat`.
pub(crate) type NewManager = (Vec<u8>, Option<Vec<u8>>, Vec<u8>);

/// Write `columns` (with their cells for `n` rows) as one new
/// StandardStMan named `name`: returns its file, its array file (if any
/// column is indirect) and its blob for `table.dat`.
pub(crate) fn write_ssm(
    columns: &[(&Column, Cells)],
    n: u64,
    big: bool,
    name: &str,
) -> Result<NewManager> {
    let mut layouts = Vec::with_capacity(columns.len());
    for (c, cells) in columns {
        let bool_ = c.ty == Type::Bool;
        let size = c.ty.size().unwrap_or(0);
        let fixed = c.shape.as_ref().or(c.cell_shape.as_ref());
        let layout = match cells {
            Cells::Scalar(_) => Layout {
                bits: if bool_ { 1 } else { 8 * size as u64 },
                direct: None,
                indirect: false,
                size,
                bool_,
            },
            Cells::Array(_) => match fixed {
                Some(shape) if c.options & 1 != 0 => {
                    let e: u64 = shape.iter().map(|&d| d.max(0) as u64).product();
                    Layout {
                        bits: if bool_ { e } else { 8 * size as u64 * e },
                        direct: Some(e),
                        indirect: false,
                        size,
                        bool_,
                    }
                }
                _ => Layout {
                    bits: 64,
                    direct: None,
                    indirect: true,
                    size,
                    bool_,
                },
            },
        };
        layouts.push(layout);
    }
    // Buckets of 32 KiB, or one row if a row is larger.
    let row_bytes: u64 = layouts
        .iter()
        .map(|l| l.bits.div_ceil(8))
        .sum::<u64>()
        .max(1);
    let bs = 32768u64.max(row_bytes + 8);
    let fits = |r: u64| {
        layouts
            .iter()
            .map(|l| (r * l.bits).div_ceil(8))
            .sum::<u64>()
            <= bs
    };
    let mut rpb = (bs * 8 / layouts.iter().map(|l| l.bits).sum::<u64>().max(1)).max(1);
    while rpb > 1 && !fits(rpb) {
        rpb -= 1;
    }
    let mut offsets = Vec::with_capacity(layouts.len());
    let mut at = 0u64;
    for l in &layouts {
        offsets.push(at);
        at += (rpb * l.bits).div_ceil(8);
    }
    let nb = n.div_ceil(rpb);
    let data_at = super::ssm::HEADER as u64;
    let mut out = vec![0u8; (data_at + nb * bs) as usize];
    // The array file, sized once (header, shape and values of each array,
    // padded to 8 bytes).
    let array_bytes: usize = columns
        .iter()
        .zip(&layouts)
        .filter(|(_, l)| l.indirect)
        .map(|((_, cells), l)| match cells {
            Cells::Array(v) => v
                .iter()
                .flatten()
                .map(|(shape, data)| {
                    let values = if l.bool_ {
                        data.len().div_ceil(8)
                    } else {
                        data.len()
                    };
                    (4 + 4 * shape.len() + values).next_multiple_of(8)
                })
                .sum(),
            Cells::Scalar(_) => 0,
        })
        .sum();
    let mut arrays: Option<Vec<u8>> = layouts.iter().any(|l| l.indirect).then(|| {
        let mut f = Vec::with_capacity(16 + array_bytes);
        f.resize(16, 0);
        f
    });
    let put_bits = |out: &mut [u8], bit: u64, v: u8| {
        if v != 0 {
            out[(bit / 8) as usize] |= 1 << (bit % 8);
        }
    };
    for (ci, ((c, cells), l)) in columns.iter().zip(&layouts).enumerate() {
        for r in 0..n {
            let (b, k) = (r / rpb, r % rpb);
            let cell_at = data_at + b * bs + offsets[ci];
            match cells {
                Cells::Scalar(v) => {
                    let s = &v[r as usize * l.size..(r as usize + 1) * l.size];
                    if l.bool_ {
                        put_bits(&mut out, cell_at * 8 + k, s[0]);
                    } else {
                        let at = (cell_at + k * l.size as u64) as usize;
                        out[at..at + l.size].copy_from_slice(s);
                    }
                }
                Cells::Array(v) => {
                    let cell = &v[r as usize];
                    if let Some(e) = l.direct {
                        let Some((_, data)) = cell else {
                            return Err(invalid(
                                &c.name,
                                format!(
                                    "row {r} has no array, but the column stores them directly"
                                ),
                            ));
                        };
                        if data.len() as u64 != e * if l.bool_ { 1 } else { l.size as u64 } {
                            return Err(invalid(
                                &c.name,
                                format!("row {r}: {} bytes for {e} elements", data.len()),
                            ));
                        }
                        if l.bool_ {
                            for (j, &x) in data.iter().enumerate() {
                                put_bits(&mut out, cell_at * 8 + k * e + j as u64, x);
                            }
                        } else {
                            let at = (cell_at + k * e * l.size as u64) as usize;
                            out[at..at + data.len()].copy_from_slice(data);
                        }
                    } else {
                        let offset = match cell {
                            None => 0u64,
                            Some((shape, data)) => {
                                let f =
                                    arrays.as_mut().expect("an array file for indirect columns");
                                while !f.len().is_multiple_of(8) {
                                    f.push(0);
                                }
                                let o = f.len() as u64;
                                let u32b = |v: u32| {
                                    if big {
                                        v.to_be_bytes()
                                    } else {
                                        v.to_le_bytes()
                                    }
                                };
                                f.extend_from_slice(&u32b(shape.len() as u32));
                                for &d in shape {
                                    f.extend_from_slice(&u32b(d as u32));
                                }
                                if l.bool_ {
                                    let mut packed = vec![0u8; data.len().div_ceil(8)];
                                    for (j, &x) in data.iter().enumerate() {
                                        if x != 0 {
                                            packed[j / 8] |= 1 << (j % 8);
                                        }
                                    }
                                    f.extend_from_slice(&packed);
                                } else {
                                    f.extend_from_slice(data);
                                }
                                o
                            }
                        };
                        let at = (cell_at + k * 8) as usize;
                        let b = if big {
                            offset.to_be_bytes()
                        } else {
                            offset.to_le_bytes()
                        };
                        out[at..at + 8].copy_from_slice(&b);
                    }
                }
            }
        }
    }
    if let Some(f) = arrays.as_mut() {
        let len = f.len() as u64;
        let (v, l) = if big {
            (0u32.to_be_bytes(), len.to_be_bytes())
        } else {
            (0u32.to_le_bytes(), len.to_le_bytes())
        };
        f[..4].copy_from_slice(&v);
        f[4..12].copy_from_slice(&l);
    }
    let file = finish_ssm(out, nb, bs, rpb, columns.len(), n, big, 2)?;
    // The blob: the manager's name, its columns' places, an all-zero map.
    let mut w = Writer::new(true);
    w.start("SSM", 2);
    w.string(name);
    w.block_u32(&offsets.iter().map(|&o| o as u32).collect::<Vec<_>>());
    w.block_u32(&vec![0u32; columns.len()]);
    w.end();
    Ok((file, arrays, w.finish()))
}

/// `table.dat` for `rows` rows, its data managers now `managers` (type,
/// sequence number, blob) and column `i` stored by manager `bind[i]`.
pub(crate) fn table_dat_rebound(
    dat: &TableDat,
    bytes: &[u8],
    rows: u64,
    managers: &[(String, u32, Vec<u8>)],
    bind: &[u32],
) -> Result<Vec<u8>> {
    let patched = super::slice::table_dat_with_rows(dat, bytes, rows)?;
    let mut out = patched[..dat.dm_list_at].to_vec();
    let next = managers.iter().map(|m| m.1 + 1).max().unwrap_or(0);
    out.extend_from_slice(&next.to_be_bytes());
    out.extend_from_slice(&(managers.len() as u32).to_be_bytes());
    for (kind, seq, _) in managers {
        out.extend_from_slice(&(kind.len() as u32).to_be_bytes());
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(&seq.to_be_bytes());
    }
    for (i, span) in dat.entries.iter().enumerate() {
        let entry = &bytes[span[0]..span[1]];
        // u32 2, the name (u32 length + bytes), u32 1, then the manager.
        let name_len = u32::from_be_bytes(entry[4..8].try_into().expect("4 bytes")) as usize;
        let at = 8 + name_len + 4;
        out.extend_from_slice(&entry[..at]);
        out.extend_from_slice(&bind[i].to_be_bytes());
        out.extend_from_slice(&entry[at + 4..]);
    }
    for (_, _, blob) in managers {
        out.extend_from_slice(&(blob.len() as u32).to_be_bytes());
        out.extend_from_slice(blob);
    }
    let len = (out.len() - 4) as u32;
    out[4..8].copy_from_slice(&len.to_be_bytes());
    Ok(out)
}

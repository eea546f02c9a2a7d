//! Columns of the main table in an IncrementalStMan are read for the
//! slice's rows and written into one new StandardStMan: the values are
//! the original's, one per row. `table.dat` then binds those columns to
//! the new manager. (StandardStMan and the tiled managers are cut in their
//! own layout: `slice` and `tsm`.)

use std::ops::Range;

use super::aipsio::Writer;
use super::slice::finish_ssm;
use super::table::{Column, TableDat, Type};
use super::{invalid, ism, Files};
use crate::error::{Error, Result};

/// A scalar column's cells for the slice's rows: `size` bytes each, side
/// by side (Bool: one byte, 0 or 1).
pub(crate) type Cells = Vec<u8>;

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
    let unsupported = |why: &str| Error::Unsupported {
        object: file.to_string(),
        reason: format!("column {}: {why}", c.name),
    };
    if c.array {
        return Err(unsupported(
            "arrays in an IncrementalStMan are not read yet",
        ));
    }
    let size = c
        .ty
        .size()
        .ok_or_else(|| unsupported("string columns outside a StandardStMan are not written yet"))?;
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
    Ok(out)
}

/// A new StandardStMan: its file and its blob for `table.dat`.
pub(crate) type NewManager = (Vec<u8>, Vec<u8>);

/// Write scalar `columns` (with their cells for `n` rows) as one new
/// StandardStMan named `name`: returns its file and its blob for
/// `table.dat`.
pub(crate) fn write_ssm(
    columns: &[(&Column, Cells)],
    n: u64,
    big: bool,
    name: &str,
) -> Result<NewManager> {
    // Bits and bytes of each column's cells (Bools are bits).
    let layouts: Vec<(u64, usize, bool)> = columns
        .iter()
        .map(|(c, _)| {
            let size = c.ty.size().unwrap_or(0);
            let bool_ = c.ty == Type::Bool;
            (if bool_ { 1 } else { 8 * size as u64 }, size, bool_)
        })
        .collect();
    // Buckets of 32 KiB, or one row if a row is larger.
    let row_bytes: u64 = layouts.iter().map(|l| l.0.div_ceil(8)).sum::<u64>().max(1);
    let bs = 32768u64.max(row_bytes + 8);
    let fits = |r: u64| layouts.iter().map(|l| (r * l.0).div_ceil(8)).sum::<u64>() <= bs;
    let mut rpb = (bs * 8 / layouts.iter().map(|l| l.0).sum::<u64>().max(1)).max(1);
    while rpb > 1 && !fits(rpb) {
        rpb -= 1;
    }
    let mut offsets = Vec::with_capacity(layouts.len());
    let mut at = 0u64;
    for l in &layouts {
        offsets.push(at);
        at += (rpb * l.0).div_ceil(8);
    }
    let nb = n.div_ceil(rpb);
    let data_at = super::ssm::HEADER as u64;
    let mut out = vec![0u8; (data_at + nb * bs) as usize];
    for (ci, ((_, cells), &(_, size, bool_))) in columns.iter().zip(&layouts).enumerate() {
        for r in 0..n {
            let (b, k) = (r / rpb, r % rpb);
            let cell_at = data_at + b * bs + offsets[ci];
            let s = &cells[r as usize * size..(r as usize + 1) * size];
            if bool_ {
                let bit = cell_at * 8 + k;
                if s[0] != 0 {
                    out[(bit / 8) as usize] |= 1 << (bit % 8);
                }
            } else {
                let at = (cell_at + k * size as u64) as usize;
                out[at..at + size].copy_from_slice(s);
            }
        }
    }
    let file = finish_ssm(out, nb, bs, rpb, columns.len(), n, big, 2)?;
    // The blob: the manager's name, its columns' places, an all-zero map.
    let mut w = Writer::new(true);
    w.start("SSM", 2);
    w.string(name);
    w.block_u32(&offsets.iter().map(|&o| o as u32).collect::<Vec<_>>());
    w.block_u32(&vec![0u32; columns.len()]);
    w.end();
    Ok((file, w.finish()))
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

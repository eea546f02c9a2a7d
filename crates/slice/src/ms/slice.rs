//! Writing rows `a..b` of a main table: fresh storage-manager files with the
//! same layout parameters as the original (bucket size, rows per bucket,
//! column places), so the managers' blobs in `table.dat` stay valid and
//! only its two row counts change.
//!
//! StandardStMan is written here: its data buckets (cells copied bit for
//! bit, Bool columns are packed bits), its index, its header, and its array
//! file (`table.fNi`) with the arrays of the slice's rows only, the cells
//! pointing at their new places.

use std::ops::Range;

use super::aipsio::Writer;
use super::table::{Column, Manager, TableDat, Type};
use super::{invalid, ssm};
use crate::error::{Error, Result};

/// How a column's cells lie in a StandardStMan data bucket.
#[derive(Debug, Clone)]
struct Place {
    /// Byte offset of the column's run of cells in a bucket.
    offset: u64,
    /// Bits per cell.
    bits: u64,
    /// The cell holds the offset of an array in `table.fNi` (of this element type).
    indirect: Option<Type>,
}

/// Bits of one cell of `c` in a StandardStMan bucket.
fn place(c: &Column, offset: u64, file: &str) -> Result<Place> {
    let unsupported = |why: &str| Error::Unsupported {
        object: file.to_string(),
        reason: format!("column {}: {why}", c.name),
    };
    if c.ty == Type::String {
        return Err(unsupported(
            "string columns of a main table's StandardStMan are not written yet",
        ));
    }
    let size = c.ty.size().unwrap_or(0) as u64;
    let (bits, indirect) = if !c.array {
        (if c.ty == Type::Bool { 1 } else { 8 * size }, None)
    } else if c.options & 1 != 0 {
        let shape = c
            .shape
            .as_ref()
            .or(c.cell_shape.as_ref())
            .ok_or_else(|| invalid(file, format!("column {}: direct but no shape", c.name)))?;
        let n = shape.iter().try_fold(1u64, |n, &d| {
            u64::try_from(d).ok().and_then(|d| n.checked_mul(d))
        });
        let n = n.ok_or_else(|| invalid(file, format!("column {}: shape {shape:?}", c.name)))?;
        (if c.ty == Type::Bool { n } else { 8 * size * n }, None)
    } else {
        (64, Some(c.ty))
    };
    Ok(Place {
        offset,
        bits,
        indirect,
    })
}

/// Copy `n` bits from bit `from` of `src` to bit `to` of `dst` (bit `k` is
/// bit `k % 8` of byte `k / 8`, least significant first, as casacore packs
/// Bools).
pub(crate) fn copy_bits(src: &[u8], from: u64, dst: &mut [u8], to: u64, n: u64) {
    if from.is_multiple_of(8) && to.is_multiple_of(8) && n.is_multiple_of(8) {
        let (s, d, len) = ((from / 8) as usize, (to / 8) as usize, (n / 8) as usize);
        dst[d..d + len].copy_from_slice(&src[s..s + len]);
        return;
    }
    for k in 0..n {
        let (s, d) = (from + k, to + k);
        let bit = (src[(s / 8) as usize] >> (s % 8)) & 1;
        let byte = &mut dst[(d / 8) as usize];
        *byte = (*byte & !(1 << (d % 8))) | (bit << (d % 8));
    }
}

/// A StandardStMan file for the slice, its indirect cells still holding
/// the original array offsets (see [`SsmSlice::arrays`]).
#[derive(Debug)]
pub(crate) struct SsmSlice {
    /// The new `table.fN`.
    pub(crate) file: Vec<u8>,
    /// Each indirect cell: its byte position in `file`, the original
    /// array's offset in `table.fNi` (0: no array) and the element type.
    pub(crate) indirect: Vec<(usize, u64, Type)>,
    big: bool,
}

/// Byte ranges of a file: the whole file, or the parts of it a slice
/// reads.
pub(crate) trait Source {
    /// The file's size.
    fn size(&self) -> u64;
    /// Bytes `at..at + len`, if they lie in what was read.
    fn get(&self, at: u64, len: u64) -> Option<&[u8]>;
}

impl Source for Vec<u8> {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn get(&self, at: u64, len: u64) -> Option<&[u8]> {
        let a = usize::try_from(at).ok()?;
        self.as_slice()
            .get(a..a.checked_add(usize::try_from(len).ok()?)?)
    }
}

/// Parts of a file of `size` bytes, each read from its offset.
#[derive(Debug, Default)]
pub(crate) struct Ranges {
    pub(crate) size: u64,
    pub(crate) parts: Vec<(u64, bytes::Bytes)>,
}

impl Source for Ranges {
    fn size(&self) -> u64 {
        self.size
    }
    fn get(&self, at: u64, len: u64) -> Option<&[u8]> {
        self.parts.iter().find_map(|(start, b)| {
            let i = usize::try_from(at.checked_sub(*start)?).ok()?;
            b.get(i..i.checked_add(usize::try_from(len).ok()?)?)
        })
    }
}

/// The byte ranges of StandardStMan file `source` that rows `rows` need
/// beside its header and index: its data buckets holding them, as one
/// range from the first to the last.
pub(crate) fn ssm_buckets(
    header: &ssm::Header,
    index: &ssm::Index,
    rows: Range<u64>,
) -> Option<Range<u64>> {
    if rows.is_empty() {
        return None;
    }
    let first = index.last_row.partition_point(|&l| l < rows.start);
    let last = index.last_row.partition_point(|&l| l < rows.end - 1);
    let buckets = index
        .bucket
        .get(first..=last.min(index.bucket.len().checked_sub(1)?))?;
    let lo = *buckets.iter().min()?;
    let hi = *buckets.iter().max()?;
    Some(header.bucket(lo)..header.bucket(hi).saturating_add(header.bucket_size))
}

/// The header and index of StandardStMan file `source`, the index checked
/// against the file's size.
pub(crate) fn ssm_layout(
    source: &dyn Source,
    big: bool,
    file: &str,
) -> Result<(ssm::Header, ssm::Index)> {
    let size = source.size();
    let head = source
        .get(0, size.min(ssm::HEADER as u64))
        .ok_or_else(|| invalid(file, "the header was not read"))?;
    let header = ssm::Header::parse(head, big, file)?;
    let index_bytes = header.index_bytes(file, size, &mut |a, b| {
        source
            .get(a, b.saturating_sub(a))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| invalid(file, "the index lies past the end of the file"))
    })?;
    let index = ssm::Index::parse(&index_bytes, big, file)?;
    index.check(&header, size, file)?;
    Ok((header, index))
}

/// Rows `rows` of the columns that StandardStMan `manager` stores, from
/// its file `source` (whole, or its header, index and the buckets
/// [`ssm_buckets`] names), whose header and index are `layout`
/// ([`ssm_layout`]).
pub(crate) fn ssm_slice(
    dat: &TableDat,
    manager: &Manager,
    source: &dyn Source,
    layout: &(ssm::Header, ssm::Index),
    rows: Range<u64>,
    file: &str,
) -> Result<SsmSlice> {
    let big = dat.big_endian;
    let (header, index) = layout;
    let offsets = ssm::column_offsets(&manager.blob, "table.dat")?;
    let columns: Vec<&Column> = dat
        .columns
        .iter()
        .filter(|c| c.manager == manager.seqnr)
        .collect();
    if offsets.len() != columns.len() {
        return Err(invalid(
            "table.dat",
            format!(
                "data manager {} places {} columns but stores {}",
                manager.seqnr,
                offsets.len(),
                columns.len()
            ),
        ));
    }
    let places: Vec<Place> = columns
        .iter()
        .zip(&offsets)
        .map(|(c, &o)| place(c, o, file))
        .collect::<Result<_>>()?;
    let bs = header.bucket_size;
    let rpb = index.rows_per_bucket;
    for (c, p) in columns.iter().zip(&places) {
        if (p.offset * 8).saturating_add(rpb.saturating_mul(p.bits)) > bs * 8 {
            return Err(invalid(
                file,
                format!(
                    "column {}: {rpb} cells of {} bits from byte {} do not fit a {bs}-byte bucket",
                    c.name, p.bits, p.offset
                ),
            ));
        }
    }
    let stored = index.last_row.last().map_or(0, |l| l + 1);
    if rows.end > stored {
        return Err(invalid(
            file,
            format!(
                "rows {}..{} asked, the index holds {stored}",
                rows.start, rows.end
            ),
        ));
    }
    // Data buckets 0..n, then the index.
    let n = rows.end.saturating_sub(rows.start).div_ceil(rpb);
    let data_at = ssm::HEADER as u64;
    let mut out = vec![0u8; (data_at + n * bs) as usize];
    let mut indirect = Vec::new();
    let mut row = rows.start;
    while row < rows.end {
        // The source bucket of `row`, and how many rows it and the new
        // bucket share from here.
        let i = index.last_row.partition_point(|&l| l < row);
        let first = if i == 0 { 0 } else { index.last_row[i - 1] + 1 };
        let b = index.bucket[i];
        let bucket = (b < header.buckets)
            .then(|| source.get(header.bucket(b), bs))
            .flatten()
            .ok_or_else(|| invalid(file, format!("bucket {b} lies past the end of the file")))?;
        let k = row - rows.start; // new row number
        let (nb, nk) = (k / rpb, k % rpb);
        let take = (index.last_row[i] + 1).min(rows.end).min(row + (rpb - nk)) - row;
        let dst_bucket = data_at + nb * bs;
        for p in &places {
            copy_bits(
                bucket,
                p.offset * 8 + (row - first) * p.bits,
                &mut out,
                (dst_bucket + p.offset) * 8 + nk * p.bits,
                take * p.bits,
            );
            if let Some(ty) = p.indirect {
                for j in 0..take {
                    let at = (dst_bucket + p.offset + (nk + j) * 8) as usize;
                    let cell: [u8; 8] = out[at..at + 8].try_into().expect("8 bytes");
                    let old = if big {
                        u64::from_be_bytes(cell)
                    } else {
                        u64::from_le_bytes(cell)
                    };
                    indirect.push((at, old, ty));
                }
            }
        }
        row += take;
    }
    let out = finish_ssm(
        out,
        n,
        bs,
        rpb,
        columns.len(),
        rows.end - rows.start,
        big,
        header.cache_size,
    )?;
    Ok(SsmSlice {
        file: out,
        indirect,
        big,
    })
}

impl SsmSlice {
    /// The offsets in `table.fNi` of the arrays the slice's cells point at
    /// (the range to read), or `None` when no cell holds one.
    pub(crate) fn arrays_span(&self) -> Option<Range<u64>> {
        let used = self.indirect.iter().map(|x| x.1).filter(|&o| o > 0);
        let lo = used.clone().min()?;
        let hi = used.max()?;
        Some(lo..hi)
    }

    /// Copy each array the cells point at from the original array file
    /// (`arrays`: its bytes from offset `base`, holding every array in
    /// [`SsmSlice::arrays_span`] whole; `version`: the file's version) into
    /// a new array file, and point the cells at the copies. Returns the new
    /// `table.fNi`.
    pub(crate) fn rebuild_arrays(
        &mut self,
        arrays: &[u8],
        base: u64,
        version: u32,
        file: &str,
    ) -> Result<Vec<u8>> {
        let big = self.big;
        let u32_at = |at: u64| -> Option<u32> {
            let i = usize::try_from(at.checked_sub(base)?).ok()?;
            let b: [u8; 4] = arrays.get(i..i + 4)?.try_into().ok()?;
            Some(if big {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            })
        };
        let mut out = vec![0u8; 16];
        let mut moved: std::collections::HashMap<u64, u64> = std::collections::HashMap::new();
        for &(cell, old, ty) in &self.indirect {
            if old == 0 {
                continue;
            }
            let new = match moved.get(&old) {
                Some(&new) => new,
                None => {
                    let len = array_len(old, version, ty, &u32_at).ok_or_else(|| {
                        invalid(file, format!("the array at byte {old} is cut short"))
                    })?;
                    let s = usize::try_from(old - base).unwrap_or(usize::MAX);
                    let bytes = arrays
                        .get(s..s.saturating_add(len as usize))
                        .ok_or_else(|| {
                            invalid(file, format!("the array at byte {old} is cut short"))
                        })?;
                    while !out.len().is_multiple_of(8) {
                        out.push(0);
                    }
                    let new = out.len() as u64;
                    out.extend_from_slice(bytes);
                    moved.insert(old, new);
                    new
                }
            };
            let b = if big {
                new.to_be_bytes()
            } else {
                new.to_le_bytes()
            };
            self.file[cell..cell + 8].copy_from_slice(&b);
        }
        // Header: version, used length, a zero.
        let len = out.len() as u64;
        let (v, l) = if big {
            (version.to_be_bytes(), len.to_be_bytes())
        } else {
            (version.to_le_bytes(), len.to_le_bytes())
        };
        out[..4].copy_from_slice(&v);
        out[4..12].copy_from_slice(&l);
        Ok(out)
    }
}

/// Bytes of the array stored at `at` in an array file of `version`: its
/// shape header and its values (Bools packed in bits). `None` when the
/// bytes to tell are missing or the size overflows.
pub(crate) fn array_len(
    at: u64,
    version: u32,
    ty: Type,
    u32_at: &dyn Fn(u64) -> Option<u32>,
) -> Option<u64> {
    let mut p = at + if version > 0 { 4 } else { 0 };
    let ndim = u64::from(u32_at(p)?);
    if ndim > 64 {
        return None;
    }
    p += 4;
    let mut n = 1u64;
    for _ in 0..ndim {
        let d = u64::try_from(u32_at(p)? as i32).ok()?;
        n = n.checked_mul(d)?;
        p += 4;
    }
    let data = match ty {
        Type::Bool => n.div_ceil(8),
        other => n.checked_mul(other.size()? as u64)?,
    };
    (p - at).checked_add(data)
}

/// Complete a StandardStMan file whose `buckets` data buckets (of `bs`
/// bytes, `rpb` rows each, `rows` rows in all, `columns` columns) follow
/// the 512-byte header in `out`: append the index (in one bucket when it
/// fits in half of one, else in chained buckets) and write the header.
#[allow(clippy::too_many_arguments)]
pub(crate) fn finish_ssm(
    mut out: Vec<u8>,
    buckets: u64,
    bs: u64,
    rpb: u64,
    columns: usize,
    rows: u64,
    big: bool,
    cache_size: u32,
) -> Result<Vec<u8>> {
    let n = buckets;
    if rows > u64::from(u32::MAX) || bs > u64::from(u32::MAX) {
        return Err(Error::internal(
            "a StandardStMan of more than 2^32 rows or bytes per bucket",
        ));
    }
    // The index: in one bucket when it fits there, else chained buckets.
    let mut w = Writer::new(big);
    w.start("SSMIndex", 1);
    w.u32(n as u32);
    w.u32(rpb as u32);
    w.u32(columns as u32);
    w.start("SimpleOrderedMap", 1);
    w.i32(0); // default value (ignored)
    w.u32(0); // no free space recorded
    w.u32(1); // increment (ignored)
    w.end();
    let last: Vec<u32> = (0..n)
        .map(|j| ((j + 1) * rpb).min(rows) as u32 - 1)
        .collect();
    w.block_u32(&last);
    w.block_u32(&(0..n as u32).collect::<Vec<_>>());
    w.end();
    let idx = w.finish();
    let room = bs as usize - 8;
    let (index_buckets, index_offset) = if idx.len() <= room / 2 {
        (1usize, 8u32)
    } else {
        (idx.len().div_ceil(room), 0)
    };
    for (j, piece) in idx.chunks(room).enumerate() {
        // Each index bucket starts with the next one's number, twice,
        // big-endian (-1: none).
        let next: i32 = if j + 1 < index_buckets {
            (n + j as u64 + 1) as i32
        } else {
            -1
        };
        let mut bucket = vec![0u8; bs as usize];
        bucket[..4].copy_from_slice(&next.to_be_bytes());
        bucket[4..8].copy_from_slice(&next.to_be_bytes());
        bucket[8..8 + piece.len()].copy_from_slice(piece);
        out.extend_from_slice(&bucket);
    }
    // The header.
    let mut w = Writer::new(big);
    if big {
        w.start("StandardStMan", 2);
    } else {
        w.start("StandardStMan", 3);
        w.bool(false);
    }
    w.u32(bs as u32);
    w.u32((n as usize + index_buckets) as u32);
    w.u32(cache_size);
    w.u32(0); // free buckets
    w.i32(-1); // first free bucket
    w.u32(index_buckets as u32);
    w.i32(n as i32); // first index bucket
    w.u32(index_offset);
    w.i32(-1); // no string buckets
    w.u32(idx.len() as u32);
    w.u32(1); // one index
    w.end();
    let head = w.finish();
    out[..head.len()].copy_from_slice(&head);
    Ok(out)
}

/// `table.dat` with both of its row counts set to `rows`.
pub(crate) fn table_dat_with_rows(dat: &TableDat, bytes: &[u8], rows: u64) -> Result<Vec<u8>> {
    let mut out = bytes.to_vec();
    for &(at, wide) in &dat.rows_at {
        if wide {
            out[at..at + 8].copy_from_slice(&rows.to_be_bytes());
        } else {
            let r = u32::try_from(rows)
                .map_err(|_| invalid("table.dat", "more rows than a 32-bit count holds"))?;
            out[at..at + 4].copy_from_slice(&r.to_be_bytes());
        }
    }
    Ok(out)
}

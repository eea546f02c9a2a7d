//! IncrementalStMan (`table.fN`): values stored only where they change.
//!
//! The file is a 512-byte header, buckets of `bucket_size` bytes, and the
//! index (`ISMIndex`: the first row of each bucket) after the last bucket.
//! A bucket starts with the offset of its own index, which lists per column
//! the rows (relative to the bucket's first row) where a value starts and
//! where that value lies (relative to the bucket's byte 4). Everything is in
//! the table's byte order.

use super::aipsio::Reader;
use super::ssm::HEADER;
use crate::error::Result;

/// The header of an IncrementalStMan file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) bucket_size: u64,
    pub(crate) buckets: u64,
}

impl Header {
    /// Parse the first [`HEADER`] bytes.
    pub(crate) fn parse(buf: &[u8], big: bool, file: &str) -> Result<Header> {
        let mut r = Reader::new(buf, big, file);
        r.magic()?;
        let o = r.object(Some("IncrementalStMan"))?;
        if o.version >= 5 {
            r.bool()?;
        }
        let bucket_size = u64::from(r.u32()?);
        let buckets = u64::from(r.u32()?);
        if bucket_size < 8 {
            return Err(r.invalid(format!("an IncrementalStMan bucket of {bucket_size} bytes")));
        }
        Ok(Header {
            bucket_size,
            buckets,
        })
    }

    /// Where bucket `k` starts.
    pub(crate) fn bucket(&self, k: u64) -> u64 {
        (HEADER as u64).saturating_add(k.saturating_mul(self.bucket_size))
    }

    /// Where the index starts (it runs to the end of the file).
    pub(crate) fn index_start(&self) -> u64 {
        self.bucket(self.buckets)
    }
}

/// Per bucket, in row order: its first row and its number in the file.
pub(crate) fn parse_index(buf: &[u8], big: bool, file: &str) -> Result<Vec<(u64, u64)>> {
    let mut r = Reader::new(buf, big, file);
    r.magic()?;
    let o = r.object(Some("ISMIndex"))?;
    let used = r.u32()? as usize;
    let rows = r.object(Some("Block"))?;
    let n = r.u32()? as usize;
    let mut starts = Vec::with_capacity(n.min(1 << 20));
    for _ in 0..n {
        starts.push(if o.version >= 2 {
            r.u64()?
        } else {
            u64::from(r.u32()?)
        });
    }
    r.end_object(&rows)?;
    let numbers = r.block_u32()?;
    if used > starts.len() || used > numbers.len() {
        return Err(r.invalid(format!(
            "an index of {used} buckets with {} first rows and {} bucket numbers",
            starts.len(),
            numbers.len()
        )));
    }
    if starts[..used].windows(2).any(|w| w[0] >= w[1]) {
        return Err(r.invalid("the index's first rows are not increasing"));
    }
    Ok(starts[..used]
        .iter()
        .zip(&numbers[..used])
        .map(|(&s, &b)| (s, u64::from(b)))
        .collect())
}

/// Where column `col` (its place among the manager's columns) changes
/// value in one bucket (`bucket`: the bucket's bytes, its first row
/// `first`): each (row, offset of the value in `bucket`).
pub(crate) fn changes(
    bucket: &[u8],
    first: u64,
    col: usize,
    big: bool,
    file: &str,
) -> Result<Vec<(u64, usize)>> {
    let bad = |m: String| super::invalid(file, format!("the bucket of row {first}: {m}"));
    let word = |at: usize| -> Result<u32> {
        let b: [u8; 4] = bucket
            .get(at..at + 4)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| bad(format!("its index runs past its end (byte {at})")))?;
        Ok(if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    // The high bits flag 64-bit row numbers (tables of more than 2^31 rows).
    let head = word(0)?;
    if head & 0xF000_0000 != 0 {
        return Err(bad("64-bit row numbers are not supported".into()));
    }
    let mut at = head as usize;
    for _ in 0..col {
        let n = word(at)? as usize;
        at = n
            .checked_mul(8)
            .and_then(|k| k.checked_add(at + 4))
            .ok_or_else(|| bad(format!("a column with {n} entries")))?;
    }
    let n = word(at)? as usize;
    if n == 0 || n > bucket.len() / 8 {
        return Err(bad(format!("a column with {n} entries")));
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let row = u64::from(word(at + 4 + 4 * i)?);
        let off = word(at + 4 + 4 * n + 4 * i)? as usize + 4;
        if off >= bucket.len() || out.last().is_some_and(|&(r, _)| r >= first + row) {
            return Err(bad(format!(
                "entry {i} (row {row}, byte {off}) is out of order or outside"
            )));
        }
        out.push((first + row, off));
    }
    if out[0].0 != first {
        return Err(bad(
            "the first value does not start at the bucket's first row".into(),
        ));
    }
    Ok(out)
}

/// The values of column `place` (its place among the manager's columns,
/// each value `size` bytes) over rows `rows` of IncrementalStMan `file`:
/// runs (first row, end row, value) in row order, clipped to `rows`. The
/// buckets outside `rows` are not read.
pub(crate) fn value_runs(
    file: &str,
    files: &dyn super::Files,
    big: bool,
    place: usize,
    size: usize,
    rows: std::ops::Range<u64>,
) -> Result<Vec<(u64, u64, Vec<u8>)>> {
    let total = files.size(file)?;
    let head = files.read(file, 0..total.min(HEADER as u64))?;
    let header = Header::parse(&head, big, file)?;
    let index_at = header.index_start();
    if index_at >= total {
        return Err(super::invalid(
            file,
            format!("the index would start at byte {index_at}, past the end ({total})"),
        ));
    }
    let index = parse_index(&files.read(file, index_at..total)?, big, file)?;
    let mut out = Vec::new();
    for (i, &(first, b)) in index.iter().enumerate() {
        let end = index.get(i + 1).map_or(u64::MAX, |&(next, _)| next);
        if end <= rows.start || first >= rows.end {
            continue;
        }
        let at = header.bucket(b);
        let bucket = files.read(file, at..at + header.bucket_size)?;
        let starts = changes(&bucket, first, place, big, file)?;
        for (j, &(row, off)) in starts.iter().enumerate() {
            let until = starts.get(j + 1).map_or(end, |&(r, _)| r.min(end));
            let (lo, hi) = (row.max(rows.start), until.min(rows.end));
            if lo >= hi {
                continue;
            }
            let v = bucket.get(off..off + size).ok_or_else(|| {
                super::invalid(
                    file,
                    format!("the value of row {row} lies outside its bucket"),
                )
            })?;
            out.push((lo, hi, v.to_vec()));
        }
    }
    Ok(out)
}

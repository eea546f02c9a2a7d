//! StandardStMan (`table.fN`): where each row's cell of a column lies.
//!
//! The file is a 512-byte header, then buckets of `bucket_size` bytes. A
//! data bucket holds a run of rows; each column of the manager has a fixed
//! place in it (its offset, from the manager's blob in `table.dat`) holding
//! `rows_per_bucket` cells side by side. The index (`SSMIndex`, inside an
//! index bucket) says which bucket holds which rows. Everything is in the
//! table's byte order.

use super::aipsio::Reader;
use crate::error::Result;

/// The bytes every reader needs first: the header.
pub(crate) const HEADER: usize = 512;

/// The header of a StandardStMan file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) bucket_size: u64,
    pub(crate) buckets: u64,
    /// The cache size casacore keeps for the file (kept when rewriting).
    pub(crate) cache_size: u32,
    pub(crate) index_buckets: u32,
    pub(crate) first_index_bucket: i32,
    /// The index's offset inside its bucket (0: it spans `index_buckets`
    /// chained buckets).
    pub(crate) index_offset: u32,
    pub(crate) index_length: u32,
}

impl Header {
    /// Parse the first [`HEADER`] bytes (or fewer, if the file is shorter).
    pub(crate) fn parse(buf: &[u8], big: bool, file: &str) -> Result<Header> {
        let mut r = Reader::new(buf, big, file);
        r.magic()?;
        let o = r.object(Some("StandardStMan"))?;
        if o.version >= 3 {
            r.bool()?; // big endian, as table.dat says
        }
        let bucket_size = u64::from(r.u32()?);
        let buckets = u64::from(r.u32()?);
        let cache_size = r.u32()?;
        r.u32()?; // free buckets
        r.i32()?; // first free bucket
        let index_buckets = r.u32()?;
        let first_index_bucket = r.i32()?;
        let index_offset = r.u32()?;
        r.i32()?; // last string bucket
        let index_length = r.u32()?;
        if bucket_size == 0
            || first_index_bucket < 0
            || u64::from(first_index_bucket as u32) >= buckets.max(1)
        {
            return Err(r.invalid(format!(
                "a StandardStMan header with bucket size {bucket_size}, {buckets} buckets and its index in bucket {first_index_bucket}"
            )));
        }
        Ok(Header {
            bucket_size,
            buckets,
            cache_size,
            index_buckets,
            first_index_bucket,
            index_offset,
            index_length,
        })
    }

    /// Where bucket `k` starts.
    pub(crate) fn bucket(&self, k: u64) -> u64 {
        (HEADER as u64).saturating_add(k.saturating_mul(self.bucket_size))
    }

    /// The index's bytes, from `read(start, end)` (byte ranges of the
    /// file): in one bucket at its offset, or chained over buckets (each
    /// starts with the next one's number, big-endian, twice; the index
    /// runs from byte 8 of each).
    pub(crate) fn index_bytes(
        &self,
        file: &str,
        file_size: u64,
        read: &mut dyn FnMut(u64, u64) -> Result<Vec<u8>>,
    ) -> Result<Vec<u8>> {
        if let Some(r) = self.index_range() {
            return read(r.start, r.end);
        }
        // A chain may loop: what it gathers is bounded by the index's
        // stated length, and that by the file.
        if u64::from(self.index_length) > file_size || u64::from(self.index_buckets) > self.buckets
        {
            return Err(super::invalid(
                file,
                format!(
                    "an index of {} bytes in {} of {} buckets, in a file of {file_size} bytes",
                    self.index_length, self.index_buckets, self.buckets
                ),
            ));
        }
        let room = self.bucket_size.saturating_sub(8);
        let mut out = Vec::with_capacity((self.index_length as usize).min(1 << 24));
        let mut b = self.first_index_bucket;
        for _ in 0..self.index_buckets {
            if out.len() as u64 >= u64::from(self.index_length) {
                break;
            }
            if b < 0 || b as u64 >= self.buckets || room == 0 {
                return Err(super::invalid(
                    file,
                    format!("the index chain reaches bucket {b}"),
                ));
            }
            let at = self.bucket(b as u64);
            let bucket = read(at, at + 8 + room)?;
            if bucket.len() < 8 {
                return Err(super::invalid(
                    file,
                    format!("index bucket {b} is cut short"),
                ));
            }
            out.extend_from_slice(&bucket[8..]);
            b = i32::from_be_bytes([bucket[0], bucket[1], bucket[2], bucket[3]]);
        }
        if (out.len() as u64) < u64::from(self.index_length) {
            return Err(super::invalid(
                file,
                format!(
                    "an index of {} bytes in {} buckets",
                    self.index_length, self.index_buckets
                ),
            ));
        }
        out.truncate(self.index_length as usize);
        Ok(out)
    }

    /// The byte range of the index, when it lies in one bucket.
    pub(crate) fn index_range(&self) -> Option<std::ops::Range<u64>> {
        (self.index_offset > 0).then(|| {
            let at = self.bucket(self.first_index_bucket as u64) + u64::from(self.index_offset);
            at..at + u64::from(self.index_length)
        })
    }
}

/// Which rows each data bucket holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Index {
    pub(crate) rows_per_bucket: u64,
    /// Per data bucket, in row order: its last row.
    pub(crate) last_row: Vec<u64>,
    /// Per data bucket, in row order: its number in the file.
    pub(crate) bucket: Vec<u64>,
}

impl Index {
    /// Parse an `SSMIndex` stream.
    pub(crate) fn parse(buf: &[u8], big: bool, file: &str) -> Result<Index> {
        let mut r = Reader::new(buf, big, file);
        r.magic()?;
        let o = r.object(Some("SSMIndex"))?;
        let used = r.u32()? as usize;
        let rows_per_bucket = u64::from(r.u32()?);
        r.u32()?; // columns
        r.skip_object(Some("SimpleOrderedMap"))?; // free space per bucket
        let last = r.object(Some("Block"))?;
        let n = r.u32()? as usize;
        let mut last_row = Vec::with_capacity(n.min(1 << 20));
        for _ in 0..n {
            last_row.push(if o.version >= 2 {
                r.u64()?
            } else {
                u64::from(r.u32()?)
            });
        }
        r.end_object(&last)?;
        let mut bucket: Vec<u64> = r.block_u32()?.into_iter().map(u64::from).collect();
        if used > last_row.len() || used > bucket.len() || rows_per_bucket == 0 {
            return Err(r.invalid(format!(
                "an index of {used} buckets with {} row ends and {} bucket numbers",
                last_row.len(),
                bucket.len()
            )));
        }
        last_row.truncate(used);
        bucket.truncate(used);
        if last_row.windows(2).any(|w| w[0] >= w[1]) {
            return Err(r.invalid("the index's row ends are not increasing"));
        }
        Ok(Index {
            rows_per_bucket,
            last_row,
            bucket,
        })
    }
}

impl Index {
    /// Check the index against its file: every data bucket inside the
    /// file, none listed twice. (A hostile index that lists one bucket for
    /// every run of rows would make a small file stand for any number of
    /// rows.)
    pub(crate) fn check(&self, header: &Header, file_size: u64, file: &str) -> Result<()> {
        let mut first = 0u64;
        for &last in &self.last_row {
            if last - first >= self.rows_per_bucket {
                return Err(super::invalid(
                    file,
                    format!(
                        "the index puts rows {first}..={last} in one bucket of {} rows",
                        self.rows_per_bucket
                    ),
                ));
            }
            first = last + 1;
        }
        let mut seen = std::collections::HashSet::with_capacity(self.bucket.len());
        for &b in &self.bucket {
            let end = header.bucket(b).saturating_add(header.bucket_size);
            if b >= header.buckets || end > file_size || !seen.insert(b) {
                return Err(super::invalid(
                    file,
                    format!(
                        "the index lists bucket {b}, outside the file's {} or twice",
                        header.buckets
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The manager's blob in `table.dat`: where each of its columns lies in a
/// data bucket (in the order of the table's columns it stores).
pub(crate) fn column_offsets(blob: &[u8], file: &str) -> Result<Vec<u64>> {
    let mut r = Reader::new(blob, true, file);
    r.magic()?;
    r.object(Some("SSM"))?;
    r.string()?; // name
    Ok(r.block_u32()?.into_iter().map(u64::from).collect())
}

/// A run of rows whose cells of one column lie side by side in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    pub(crate) first_row: u64,
    pub(crate) rows: u64,
    /// Where the first row's cell starts.
    pub(crate) at: u64,
}

/// The runs of a fixed-width column (cells of `width` bytes at `offset` in
/// each data bucket) covering rows `0..rows`.
pub(crate) fn runs(
    header: &Header,
    index: &Index,
    offset: u64,
    width: u64,
    rows: u64,
    file: &str,
) -> Result<Vec<Run>> {
    let mut out = Vec::with_capacity(index.bucket.len());
    let mut first = 0u64;
    for (&last, &b) in index.last_row.iter().zip(&index.bucket) {
        if first >= rows {
            break;
        }
        let n = (last + 1).min(rows) - first;
        if n > index.rows_per_bucket
            || b >= header.buckets
            || offset.saturating_add(index.rows_per_bucket.saturating_mul(width))
                > header.bucket_size
        {
            return Err(super::invalid(file, format!(
                    "bucket {b} of {} holds rows {first}..={last}, more than fits ({} rows of {width} bytes from byte {offset} of {}-byte buckets)",
                    header.buckets, index.rows_per_bucket, header.bucket_size
                )));
        }
        out.push(Run {
            first_row: first,
            rows: n,
            at: header.bucket(b) + offset,
        });
        first = last + 1;
    }
    if first < rows {
        return Err(super::invalid(
            file,
            format!("the index covers rows 0..{first} of {rows}"),
        ));
    }
    Ok(out)
}

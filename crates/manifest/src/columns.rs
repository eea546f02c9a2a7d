//! The manifest's Parquet column chunks, written directly.
//!
//! A manifest's columns are sorted, which makes their encodings simple and
//! the general-purpose Arrow writer's work (hashing every value into a
//! dictionary, comparing strings byte by byte, copying values twice) the
//! most expensive part of a build. This module writes the pages itself and
//! hands finished, snappy-compressed pages to the Parquet writer, which still
//! writes the page headers, the offset and column indexes, the metadata and
//! the footer:
//!
//! * locations: `DELTA_BYTE_ARRAY` (per value, the length of the prefix
//!   shared with the previous value, then the rest), read where they lie in
//!   the paths text and compared 16 bytes at a time;
//! * string fields: a dictionary page per row group (the distinct values,
//!   sorted) and `RLE_DICTIONARY` indices, taken from the build's dictionary
//!   codes, which are runs in a sorted manifest;
//! * integers and dates: `DELTA_BINARY_PACKED`.
//!
//! Field columns carry minimum/maximum statistics per row group and, in the
//! column index, per page (ascending from page to page for the leading
//! field), so readers with page-index support skip pages, not just row
//! groups.
//!
//! Every kind of chunk is read back by the Parquet reader in the tests (and
//! by pyarrow and DuckDB in the CLI's interoperability test).

use arrow::array::StringArray;
use bytes::Bytes;
use parquet::basic::{BoundaryOrder, Compression, Encoding};
use parquet::column::page::{CompressedPage, Page, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::data_type::ByteArray;
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::{ColumnChunkMetaData, ColumnIndexBuilder, OffsetIndexBuilder};
use parquet::file::page_index::column_index::ColumnIndexMetaData;
use parquet::file::statistics::{Statistics, ValueStatistics};
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;

/// Values per `DELTA_BINARY_PACKED` block, and per miniblock.
const BLOCK: usize = 128;
const MINIBLOCK: usize = 32;

/// Rows per data page (the Parquet writer's default limit).
pub const PAGE_ROWS: usize = 20_000;
/// A page is closed once its suffix bytes exceed this.
pub const PAGE_BYTES: usize = 1 << 20;

fn put_uleb(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_zigzag(out: &mut Vec<u8>, v: i64) {
    put_uleb(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Append `values` as `DELTA_BINARY_PACKED` (blocks of 128 values in four
/// miniblocks of 32, as the Parquet writer does), for an `INT64` column.
pub fn delta_binary_packed(out: &mut Vec<u8>, values: &[i64]) {
    delta_packed(out, values, false);
}

/// `DELTA_BINARY_PACKED` of `values` (each within `i32`) for an `INT32`
/// column: deltas wrap around in 32 bits, as readers of such columns
/// compute them, so no delta is wider than 32 bits.
pub fn delta_binary_packed_i32(out: &mut Vec<u8>, values: &[i64]) {
    delta_packed(out, values, true);
}

fn delta_packed(out: &mut Vec<u8>, values: &[i64], i32_wrap: bool) {
    put_uleb(out, BLOCK as u64);
    put_uleb(out, (BLOCK / MINIBLOCK) as u64);
    put_uleb(out, values.len() as u64);
    let Some((&first, _)) = values.split_first() else {
        put_zigzag(out, 0);
        return;
    };
    put_zigzag(out, first);
    let mut deltas = [0i64; BLOCK];
    let mut i = 1;
    while i < values.len() {
        let n = (values.len() - i).min(BLOCK);
        for (k, d) in deltas[..n].iter_mut().enumerate() {
            *d = if i32_wrap {
                i64::from((values[i + k] as i32).wrapping_sub(values[i + k - 1] as i32))
            } else {
                values[i + k].wrapping_sub(values[i + k - 1])
            };
        }
        let min = deltas[..n].iter().fold(i64::MAX, |m, &d| m.min(d));
        put_zigzag(out, min);
        let minis = n.div_ceil(MINIBLOCK);
        let mut widths = [0u8; BLOCK / MINIBLOCK];
        for (m, w) in widths.iter_mut().enumerate().take(minis) {
            let chunk = &deltas[m * MINIBLOCK..((m + 1) * MINIBLOCK).min(n)];
            // The width of the largest value is that of all values or-ed.
            let all = chunk
                .iter()
                .fold(0u64, |acc, &d| acc | d.wrapping_sub(min) as u64);
            *w = (64 - all.leading_zeros()) as u8;
        }
        out.extend_from_slice(&widths);
        for (m, &w) in widths.iter().enumerate().take(minis) {
            let chunk = &deltas[m * MINIBLOCK..((m + 1) * MINIBLOCK).min(n)];
            pack_miniblock(out, chunk, min, w as u32);
        }
        i += n;
    }
}

/// Bit-pack 32 values (`chunk` padded with zeros) of `width` bits, least
/// significant bit first.
fn pack_miniblock(out: &mut Vec<u8>, chunk: &[i64], min: i64, width: u32) {
    if width == 0 {
        return;
    }
    let mut acc: u128 = 0;
    let mut bits = 0u32;
    for k in 0..MINIBLOCK {
        let v = chunk.get(k).map_or(0, |&d| d.wrapping_sub(min) as u64);
        acc |= (v as u128) << bits;
        bits += width;
        while bits >= 64 {
            out.extend_from_slice(&(acc as u64).to_le_bytes());
            acc >>= 64;
            bits -= 64;
        }
    }
    // 32 values of `width` bits are exactly 4 * width bytes.
    let rest = bits.div_ceil(8) as usize;
    out.extend_from_slice(&(acc as u64).to_le_bytes()[..rest]);
}

/// The values of one page, split into prefix lengths, suffix lengths and
/// suffix bytes as they are added.
#[derive(Default)]
struct PageValues<'a> {
    prefixes: Vec<i64>,
    suffixes: Vec<i64>,
    bytes: Vec<u8>,
    /// Sum of the full values' lengths.
    value_bytes: usize,
    last: &'a [u8],
}

impl<'a> PageValues<'a> {
    fn clear(&mut self) {
        self.prefixes.clear();
        self.suffixes.clear();
        self.bytes.clear();
        self.value_bytes = 0;
        self.last = &[];
    }

    #[inline]
    /// Add `v`, which shares its first `p` bytes with the previous value.
    fn push(&mut self, v: &'a [u8], p: usize) {
        debug_assert_eq!(p, crate::scan::common_prefix(self.last, v));
        self.prefixes.push(p as i64);
        self.suffixes.push((v.len() - p) as i64);
        self.bytes.extend_from_slice(&v[p..]);
        self.value_bytes += v.len();
        self.last = v;
    }

    fn len(&self) -> usize {
        self.prefixes.len()
    }

    /// The page body: `DELTA_BYTE_ARRAY` is the prefix lengths, then the
    /// suffixes as `DELTA_LENGTH_BYTE_ARRAY` (lengths, then bytes).
    fn encode(&self, out: &mut Vec<u8>) {
        delta_binary_packed(out, &self.prefixes);
        delta_binary_packed(out, &self.suffixes);
        out.extend_from_slice(&self.bytes);
    }
}

/// The minimum and maximum of each data page of a chunk: its column index,
/// which lets readers skip pages (a sorted manifest's leading field
/// ascends from page to page).
struct PageBounds {
    index: ColumnIndexBuilder,
    /// The previous page's bounds, in the values' order.
    prev: Option<(i64, i64)>,
    /// The bounds of all pages so far: the chunk's.
    all: (i64, i64),
    ascending: bool,
    descending: bool,
}

impl PageBounds {
    fn new(ty: parquet::basic::Type) -> Self {
        PageBounds {
            index: ColumnIndexBuilder::new(ty),
            prev: None,
            all: (i64::MAX, i64::MIN),
            ascending: true,
            descending: true,
        }
    }

    /// The next page's values lie between `lo` and `hi` (ordered as the
    /// values are), whose plain encodings are `lo_bytes` and `hi_bytes`.
    fn page(&mut self, (lo, hi): (i64, i64), lo_bytes: Vec<u8>, hi_bytes: Vec<u8>) {
        if let Some((plo, phi)) = self.prev {
            self.ascending &= lo >= plo && hi >= phi;
            self.descending &= lo <= plo && hi <= phi;
        }
        self.prev = Some((lo, hi));
        self.all = (self.all.0.min(lo), self.all.1.max(hi));
        self.index.append(false, lo_bytes, hi_bytes, 0);
    }

    fn build(mut self) -> Result<ColumnIndexMetaData> {
        self.index.set_boundary_order(if self.ascending {
            BoundaryOrder::ASCENDING
        } else if self.descending {
            BoundaryOrder::DESCENDING
        } else {
            BoundaryOrder::UNORDERED
        });
        self.index.build()
    }
}

/// The smallest and largest of `values` (`(i64::MAX, i64::MIN)` when there
/// are none).
pub(crate) fn bounds(values: impl IntoIterator<Item = i64>) -> (i64, i64) {
    values
        .into_iter()
        .fold((i64::MAX, i64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)))
}

/// A column chunk being written: pages are compressed and appended to an
/// in-memory chunk, their places recorded for the offset index.
struct ChunkWriter {
    sink: TrackedWrite<Vec<u8>>,
    snappy: snap::raw::Encoder,
    compressed: Vec<u8>,
    index: OffsetIndexBuilder,
    compressed_bytes: i64,
    uncompressed_bytes: i64,
    dictionary_offset: Option<i64>,
    data_offset: Option<i64>,
}

impl ChunkWriter {
    fn new() -> Self {
        ChunkWriter {
            sink: TrackedWrite::new(Vec::new()),
            snappy: snap::raw::Encoder::new(),
            compressed: Vec::new(),
            index: OffsetIndexBuilder::new(),
            compressed_bytes: 0,
            uncompressed_bytes: 0,
            dictionary_offset: None,
            data_offset: None,
        }
    }

    fn write(&mut self, raw: &[u8], page: impl FnOnce(Bytes) -> Page) -> Result<(i64, i32)> {
        self.compressed
            .resize(snap::raw::max_compress_len(raw.len()), 0);
        let n = self
            .snappy
            .compress(raw, &mut self.compressed)
            .map_err(|e| ParquetError::External(Box::new(e)))?;
        let page = page(Bytes::copy_from_slice(&self.compressed[..n]));
        let spec = SerializedPageWriter::new(&mut self.sink)
            .write_page(CompressedPage::new(page, raw.len()))?;
        self.compressed_bytes += spec.compressed_size as i64;
        self.uncompressed_bytes += spec.uncompressed_size as i64;
        Ok((spec.offset as i64, spec.compressed_size as i32))
    }

    /// The chunk's dictionary page (before any data page): `PLAIN` values.
    fn dictionary_page(&mut self, raw: &[u8], num_values: usize) -> Result<()> {
        debug_assert!(
            self.data_offset.is_none(),
            "the dictionary page comes first"
        );
        let (offset, _) = self.write(raw, |buf| Page::DictionaryPage {
            buf,
            num_values: num_values as u32,
            encoding: Encoding::PLAIN,
            is_sorted: true,
        })?;
        self.dictionary_offset = Some(offset);
        Ok(())
    }

    /// A data page of `num_values` values (a required column: no levels).
    fn data_page(
        &mut self,
        raw: &[u8],
        num_values: usize,
        encoding: Encoding,
        value_bytes: Option<i64>,
    ) -> Result<()> {
        let (offset, size) = self.write(raw, |buf| Page::DataPage {
            buf,
            num_values: num_values as u32,
            encoding,
            def_level_encoding: Encoding::RLE,
            rep_level_encoding: Encoding::RLE,
            statistics: None,
        })?;
        self.data_offset.get_or_insert(offset);
        self.index.append_row_count(num_values as i64);
        self.index.append_offset_and_size(offset, size);
        self.index
            .append_unencoded_byte_array_data_bytes(value_bytes);
        Ok(())
    }

    /// The chunk's bytes and what `SerializedRowGroupWriter::append_column`
    /// needs to splice them into a row group.
    fn finish(
        self,
        descr: ColumnDescPtr,
        rows: usize,
        encodings: Vec<Encoding>,
        statistics: Option<Statistics>,
        value_bytes: Option<i64>,
        pages: Option<PageBounds>,
    ) -> Result<(Bytes, ColumnCloseResult)> {
        let mut metadata = ColumnChunkMetaData::builder(descr)
            .set_encodings(encodings)
            .set_compression(Compression::SNAPPY)
            .set_num_values(rows as i64)
            .set_total_compressed_size(self.compressed_bytes)
            .set_total_uncompressed_size(self.uncompressed_bytes)
            .set_dictionary_page_offset(self.dictionary_offset)
            .set_data_page_offset(self.data_offset.unwrap_or(0))
            .set_unencoded_byte_array_data_bytes(value_bytes);
        if let Some(s) = statistics {
            metadata = metadata.set_statistics(s);
        }
        let metadata = metadata.build()?;
        let data = Bytes::from(self.sink.into_inner()?);
        let result = ColumnCloseResult {
            bytes_written: data.len() as u64,
            rows_written: rows as u64,
            metadata,
            bloom_filter: None,
            column_index: pages.map(PageBounds::build).transpose()?,
            offset_index: Some(self.index.build()),
        };
        Ok((data, result))
    }
}

/// Write the column chunk of a required string column as `DELTA_BYTE_ARRAY`
/// pages, without statistics: `value(i, prev)` is row `i`'s value and the
/// length of the prefix it shares with `prev`, the value before it in the
/// page (see [`common_prefix`]; a caller that must still find where its
/// values end can stop looking once they differ). Returns the chunk's bytes
/// and the result to splice it into a row group with
/// `SerializedRowGroupWriter::append_column`.
pub fn write_chunk<'a, F>(
    descr: ColumnDescPtr,
    rows: usize,
    page_rows: usize,
    value: F,
) -> Result<(Bytes, ColumnCloseResult)>
where
    F: Fn(usize, &[u8]) -> (&'a [u8], usize),
{
    let mut w = ChunkWriter::new();
    let mut page_values = PageValues::default();
    let mut raw = Vec::new();
    let mut value_bytes = 0i64;
    let page_rows = page_rows.max(1);
    let mut next = 0;
    loop {
        // Cut at `page_rows` rows or PAGE_BYTES of values, whichever comes first.
        page_values.clear();
        while next < rows && page_values.len() < page_rows && page_values.value_bytes < PAGE_BYTES {
            let (v, p) = value(next, page_values.last);
            page_values.push(v, p);
            next += 1;
        }
        let (count, bytes) = (page_values.len(), page_values.value_bytes as i64);
        value_bytes += bytes;
        raw.clear();
        page_values.encode(&mut raw);
        w.data_page(&raw, count, Encoding::DELTA_BYTE_ARRAY, Some(bytes))?;
        if next >= rows {
            break;
        }
    }
    w.finish(
        descr,
        rows,
        vec![Encoding::DELTA_BYTE_ARRAY],
        None,
        Some(value_bytes),
        None,
    )
}

/// Write the column chunk of a required string column whose row `i` is
/// `dict.value(codes[i])`, `dict` sorted. The chunk's dictionary page holds
/// the values `codes` use, in order; the indices are `RLE_DICTIONARY`, whose
/// runs (a sorted manifest's fields repeat) cost a few bytes each. Column
/// statistics: minimum and maximum, for the chunk and (in the column index)
/// for each page.
pub fn write_dict_chunk(
    descr: ColumnDescPtr,
    dict: &StringArray,
    codes: &[i32],
    page_rows: usize,
) -> Result<(Bytes, ColumnCloseResult)> {
    let mut w = ChunkWriter::new();
    // The chunk's own dictionary: the codes used, renumbered in order.
    let mut used: Vec<i32> = codes.to_vec();
    used.sort_unstable();
    used.dedup();
    let local = |c: i32| {
        used.binary_search(&c)
            .expect("code in the chunk's dictionary") as u32
    };
    let mut raw = Vec::new();
    for &c in &used {
        let v = dict.value(c as usize).as_bytes();
        raw.extend_from_slice(&(v.len() as u32).to_le_bytes());
        raw.extend_from_slice(v);
    }
    w.dictionary_page(&raw, used.len())?;
    let width = bits_for(used.len().saturating_sub(1) as u64).max(1);
    let mut value_bytes = 0i64;
    let mut locals = Vec::with_capacity(page_rows.max(1).min(codes.len()));
    let mut pages = PageBounds::new(descr.physical_type());
    let value = |c: i64| dict.value(c as usize).as_bytes().to_vec();
    for page in codes.chunks(page_rows.max(1)) {
        // Codes repeat in runs: look each run's local code up once.
        locals.clear();
        let mut last = None;
        let mut bytes = 0i64;
        for &c in page {
            let l = match last {
                Some((lc, l)) if lc == c => l,
                _ => {
                    let l = local(c);
                    last = Some((c, l));
                    l
                }
            };
            bytes += dict.value(c as usize).len() as i64;
            locals.push(l);
        }
        value_bytes += bytes;
        raw.clear();
        raw.push(width as u8);
        rle_hybrid(&mut raw, &locals, width);
        w.data_page(&raw, page.len(), Encoding::RLE_DICTIONARY, Some(bytes))?;
        // Positions in the sorted dictionary order as the values do.
        let (lo, hi) = bounds(page.iter().map(|&c| i64::from(c)));
        pages.page((lo, hi), value(lo), value(hi));
    }
    let stats = match (used.first(), used.last()) {
        (Some(&lo), Some(&hi)) => Some(Statistics::ByteArray(min_max(
            ByteArray::from(dict.value(lo as usize)),
            ByteArray::from(dict.value(hi as usize)),
        ))),
        _ => None,
    };
    w.finish(
        descr,
        codes.len(),
        vec![Encoding::PLAIN, Encoding::RLE, Encoding::RLE_DICTIONARY],
        stats,
        Some(value_bytes),
        Some(pages),
    )
}

/// Write the column chunk of a required `INT32` (`int32`, `date`) or
/// `INT64` column holding `values`, as `DELTA_BINARY_PACKED` pages, with
/// minimum and maximum statistics for the chunk and (in the column index)
/// for each page.
pub fn write_int_chunk(
    descr: ColumnDescPtr,
    values: &[i64],
    page_rows: usize,
) -> Result<(Bytes, ColumnCloseResult)> {
    let int32 = descr.physical_type() == parquet::basic::Type::INT32;
    let mut w = ChunkWriter::new();
    let mut raw = Vec::new();
    let mut pages = PageBounds::new(descr.physical_type());
    let plain = |v: i64| match int32 {
        true => (v as i32).to_le_bytes().to_vec(),
        false => v.to_le_bytes().to_vec(),
    };
    for page in values.chunks(page_rows.max(1)) {
        raw.clear();
        if int32 {
            delta_binary_packed_i32(&mut raw, page);
        } else {
            delta_binary_packed(&mut raw, page);
        }
        w.data_page(&raw, page.len(), Encoding::DELTA_BINARY_PACKED, None)?;
        let (lo, hi) = bounds(page.iter().copied());
        pages.page((lo, hi), plain(lo), plain(hi));
    }
    let (lo, hi) = pages.all;
    let stats = match values.is_empty() {
        true => None,
        false if int32 => Some(Statistics::Int32(min_max(lo as i32, hi as i32))),
        false => Some(Statistics::Int64(min_max(lo, hi))),
    };
    w.finish(
        descr,
        values.len(),
        vec![Encoding::DELTA_BINARY_PACKED],
        stats,
        None,
        Some(pages),
    )
}

/// Statistics of a required column: its minimum and maximum, no nulls.
fn min_max<T>(lo: T, hi: T) -> ValueStatistics<T> {
    ValueStatistics::new(Some(lo), Some(hi), None, Some(0), false)
}

fn bits_for(max: u64) -> u32 {
    64 - max.leading_zeros()
}

/// Append `values` (each below `2^width`) in the RLE / bit-packing hybrid
/// encoding: runs of eight or more equal values as RLE runs, the rest
/// bit-packed in groups of eight (only the last group is padded).
fn rle_hybrid(out: &mut Vec<u8>, values: &[u32], width: u32) {
    let value_bytes = width.div_ceil(8) as usize;
    // Values waiting to be bit-packed.
    let mut start = 0;
    let mut lit_end = 0;
    let mut i = 0;
    let flush_literals = |out: &mut Vec<u8>, lits: &[u32]| {
        // At most 63 groups per run (a one-byte header, as other writers do).
        for piece in lits.chunks(63 * 8) {
            let groups = piece.len().div_ceil(8);
            put_uleb(out, ((groups as u64) << 1) | 1);
            bit_pack(out, piece, width, groups * 8);
        }
    };
    while i < values.len() {
        let v = values[i];
        let mut j = i + 1;
        while j < values.len() && values[j] == v {
            j += 1;
        }
        let mut run = j - i;
        // Complete the pending group of eight from the run first.
        let pending = (lit_end - start) % 8;
        if run >= 8 && pending != 0 {
            let take = 8 - pending;
            lit_end += take;
            run -= take;
        }
        if run >= 8 {
            if lit_end > start {
                flush_literals(out, &values[start..lit_end]);
            }
            put_uleb(out, (run as u64) << 1);
            out.extend_from_slice(&v.to_le_bytes()[..value_bytes]);
            start = j;
            lit_end = j;
        } else {
            lit_end = j;
        }
        i = j;
    }
    if lit_end > start {
        flush_literals(out, &values[start..lit_end]);
    }
}

/// Bit-pack `values` at `width` bits each, least significant bit first,
/// padded with zeros to `count` values.
fn bit_pack(out: &mut Vec<u8>, values: &[u32], width: u32, count: usize) {
    let mut acc: u64 = 0;
    let mut bits = 0u32;
    for k in 0..count {
        let v = values.get(k).copied().unwrap_or(0) as u64;
        acc |= v << bits;
        bits += width;
        if bits >= 32 {
            out.extend_from_slice(&(acc as u32).to_le_bytes());
            acc >>= 32;
            bits -= 32;
        }
    }
    out.extend_from_slice(&acc.to_le_bytes()[..bits.div_ceil(8) as usize]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow::array::Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use proptest::prelude::*;

    /// Write `values` as a one-column Parquet file through [`write_chunk`],
    /// in row groups of `group` rows and pages of `page_rows`, and read the
    /// column back with the Parquet reader.
    fn round_trip(values: &[String], group: usize, page_rows: usize) -> Vec<String> {
        let parts: Vec<&[String]> = values.chunks(group.max(1)).collect();
        let back = read_back(DataType::Utf8, parts.len(), |g, descr| {
            let part = parts[g];
            write_chunk(descr, part.len(), page_rows, |i, prev| {
                let v = part[i].as_bytes();
                (v, crate::scan::common_prefix(prev, v))
            })
            .unwrap()
        });
        // Locations carry no statistics (their values are long).
        assert!(back.pages.iter().all(Option::is_none));
        let mut got = Vec::new();
        for a in back.arrays {
            let col = a.as_any().downcast_ref::<StringArray>().unwrap();
            assert_eq!(col.null_count(), 0);
            got.extend(col.iter().map(|v| v.unwrap().to_string()));
        }
        got
    }

    /// What [`read_back`] read: the column's batches, each row group's
    /// statistics, and each row group's page bounds from the column index
    /// (plain-encoded minimum and maximum per page) with its boundary order.
    struct ReadBack {
        arrays: Vec<arrow::array::ArrayRef>,
        stats: Vec<Option<Statistics>>,
        pages: Vec<Option<(PageList, BoundaryOrder)>>,
    }

    type PageList = Vec<(Vec<u8>, Vec<u8>)>;

    /// The pages of a column index, as plain-encoded bounds.
    fn page_list(ci: &ColumnIndexMetaData) -> Option<(PageList, BoundaryOrder)> {
        if matches!(ci, ColumnIndexMetaData::NONE) {
            return None;
        }
        let n = ci.num_pages() as usize;
        let pages = match ci {
            ColumnIndexMetaData::BYTE_ARRAY(x) => (0..n)
                .map(|i| {
                    (
                        x.min_value(i).unwrap().to_vec(),
                        x.max_value(i).unwrap().to_vec(),
                    )
                })
                .collect(),
            ColumnIndexMetaData::INT32(x) => (0..n)
                .map(|i| {
                    let b = |v: &i32| v.to_le_bytes().to_vec();
                    (b(x.min_value(i).unwrap()), b(x.max_value(i).unwrap()))
                })
                .collect(),
            ColumnIndexMetaData::INT64(x) => (0..n)
                .map(|i| {
                    let b = |v: &i64| v.to_le_bytes().to_vec();
                    (b(x.min_value(i).unwrap()), b(x.max_value(i).unwrap()))
                })
                .collect(),
            _ => return None,
        };
        Some((pages, ci.get_boundary_order()?))
    }

    /// Check the page bounds of one row group: the bounds of each page of
    /// `part` (cut every `page_rows` values), encoded by `plain`; an order
    /// claimed only when the pages are in it, and `ASCENDING` for sorted
    /// parts.
    fn check_pages<T: Ord + Copy>(
        got: &Option<(PageList, BoundaryOrder)>,
        part: &[T],
        page_rows: usize,
        plain: impl Fn(T) -> Vec<u8>,
    ) {
        let Some((pages, order)) = got else {
            panic!("no column index")
        };
        let want: Vec<(T, T)> = part
            .chunks(page_rows)
            .map(|p| (*p.iter().min().unwrap(), *p.iter().max().unwrap()))
            .collect();
        let want_bytes: PageList = want
            .iter()
            .map(|&(lo, hi)| (plain(lo), plain(hi)))
            .collect();
        assert_eq!(pages, &want_bytes);
        let ascending = want
            .windows(2)
            .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1);
        let descending = want
            .windows(2)
            .all(|w| w[0].0 >= w[1].0 && w[0].1 >= w[1].1);
        match *order {
            BoundaryOrder::ASCENDING => assert!(ascending),
            BoundaryOrder::DESCENDING => assert!(descending && !ascending),
            _ => assert!(!ascending && !descending),
        }
    }

    /// Write one column of `ty` per row group through `write` and read the
    /// file back (see [`ReadBack`]).
    fn read_back(
        ty: DataType,
        groups: usize,
        write: impl Fn(usize, ColumnDescPtr) -> (Bytes, ColumnCloseResult),
    ) -> ReadBack {
        let schema = Arc::new(Schema::new(vec![Field::new("f", ty, false)]));
        let pschema = parquet::arrow::ArrowSchemaConverter::new()
            .convert(&schema)
            .unwrap();
        let mut props = WriterProperties::builder().build();
        parquet::arrow::add_encoded_arrow_schema_to_metadata(&schema, &mut props);
        let mut out = Vec::new();
        let mut w = SerializedFileWriter::new(&mut out, pschema.root_schema_ptr(), Arc::new(props))
            .unwrap();
        let descr = w.schema_descr().column(0);
        for g in 0..groups {
            let (data, close) = write(g, descr.clone());
            let mut rg = w.next_row_group().unwrap();
            rg.append_column(&data, close).unwrap();
            rg.close().unwrap();
        }
        w.close().unwrap();
        let options = parquet::arrow::arrow_reader::ArrowReaderOptions::new()
            .with_page_index_policy(parquet::file::metadata::PageIndexPolicy::Optional);
        let builder =
            ParquetRecordBatchReaderBuilder::try_new_with_options(Bytes::from(out), options)
                .unwrap();
        let stats = builder
            .metadata()
            .row_groups()
            .iter()
            .map(|rg| rg.column(0).statistics().cloned())
            .collect();
        let pages = match builder.metadata().column_index() {
            Some(groups) => groups.iter().map(|g| page_list(&g[0])).collect(),
            None => vec![None; groups],
        };
        let arrays = builder
            .build()
            .unwrap()
            .map(|b| b.unwrap().column(0).clone())
            .collect();
        ReadBack {
            arrays,
            stats,
            pages,
        }
    }

    proptest! {
        /// Dictionary chunks: any codes (runs or not, one value or more
        /// than 256), any page size; values and min/max read back.
        #[test]
        fn dictionary_chunks_read_back(
            dict_len in prop_oneof![Just(1usize), 2usize..20, 250usize..700],
            raw_codes in proptest::collection::vec((any::<u16>(), 1usize..40), 1..60),
            sorted: bool,
            group in 1usize..500,
            page_rows in 1usize..100,
        ) {
            let dict_values: Vec<String> = (0..dict_len).map(|i| format!("v{i:05}")).collect();
            let dict = StringArray::from_iter_values(&dict_values);
            let mut codes: Vec<i32> = raw_codes
                .iter()
                .flat_map(|&(c, run)| std::iter::repeat_n(i32::from(c) % dict_len as i32, run))
                .collect();
            if sorted {
                codes.sort();
            }
            let parts: Vec<&[i32]> = codes.chunks(group).collect();
            let ReadBack { arrays, stats, pages } = read_back(DataType::Utf8, parts.len(), |g, d| {
                write_dict_chunk(d, &dict, parts[g], page_rows).unwrap()
            });
            for (part, got) in parts.iter().zip(&pages) {
                // Codes order as the dictionary's values do.
                check_pages(got, part, page_rows, |c| dict_values[c as usize].as_bytes().to_vec());
                if sorted {
                    prop_assert_eq!(got.as_ref().map(|p| p.1), Some(BoundaryOrder::ASCENDING));
                }
            }
            let got: Vec<String> = arrays
                .iter()
                .flat_map(|a| a.as_any().downcast_ref::<StringArray>().unwrap().iter().map(|v| v.unwrap().to_string()).collect::<Vec<_>>())
                .collect();
            let want: Vec<String> = codes.iter().map(|&c| dict_values[c as usize].clone()).collect();
            prop_assert_eq!(got, want);
            for (part, st) in parts.iter().zip(&stats) {
                let Some(Statistics::ByteArray(st)) = st else { panic!("no statistics") };
                let lo = &dict_values[*part.iter().min().unwrap() as usize];
                let hi = &dict_values[*part.iter().max().unwrap() as usize];
                prop_assert_eq!(st.min_opt().unwrap().data(), lo.as_bytes());
                prop_assert_eq!(st.max_opt().unwrap().data(), hi.as_bytes());
            }
        }

        /// Integer chunks: INT32 values that wrap when subtracted (i32::MIN
        /// after i32::MAX), INT64 extremes, dates; values and min/max read back.
        #[test]
        fn integer_chunks_read_back(
            values in proptest::collection::vec(prop_oneof![
                Just(i32::MIN), Just(i32::MAX), Just(0), -3i32..3, any::<i32>(),
            ], 1..700),
            wide in any::<bool>(),
            group in 1usize..400,
            page_rows in 1usize..300,
        ) {
            use arrow::array::AsArray;
            use arrow::datatypes::{Date32Type, Int32Type, Int64Type};
            // INT64: the i32 values spread over the whole range.
            let vals: Vec<i64> = values
                .iter()
                .map(|&v| if wide { i64::from(v) << 32 | i64::from(v as u32 >> 7) } else { i64::from(v) })
                .collect();
            let parts: Vec<&[i64]> = vals.chunks(group).collect();
            for ty in [DataType::Int32, DataType::Date32, DataType::Int64] {
                if wide != (ty == DataType::Int64) {
                    continue;
                }
                let ReadBack { arrays, stats, pages } = read_back(ty.clone(), parts.len(), |g, d| {
                    write_int_chunk(d, parts[g], page_rows).unwrap()
                });
                for (part, got) in parts.iter().zip(&pages) {
                    check_pages(got, part, page_rows, |v| match ty {
                        DataType::Int64 => v.to_le_bytes().to_vec(),
                        _ => (v as i32).to_le_bytes().to_vec(),
                    });
                }
                let got: Vec<i64> = arrays
                    .iter()
                    .flat_map(|a| match &ty {
                        DataType::Int32 => a.as_primitive::<Int32Type>().values().iter().map(|&v| i64::from(v)).collect::<Vec<_>>(),
                        DataType::Date32 => a.as_primitive::<Date32Type>().values().iter().map(|&v| i64::from(v)).collect(),
                        _ => a.as_primitive::<Int64Type>().values().to_vec(),
                    })
                    .collect();
                prop_assert_eq!(&got, &vals);
                for (part, st) in parts.iter().zip(&stats) {
                    let (lo, hi) = (*part.iter().min().unwrap(), *part.iter().max().unwrap());
                    match st {
                        Some(Statistics::Int32(st)) => {
                            prop_assert_eq!((i64::from(*st.min_opt().unwrap()), i64::from(*st.max_opt().unwrap())), (lo, hi));
                        }
                        Some(Statistics::Int64(st)) => {
                            prop_assert_eq!((*st.min_opt().unwrap(), *st.max_opt().unwrap()), (lo, hi));
                        }
                        other => panic!("statistics {other:?}"),
                    }
                }
            }
        }
    }

    #[test]
    fn rle_hybrid_uses_runs_and_groups() {
        // 3 literals, then a run of 20: the run gives 5 values to complete
        // the group of 8, the other 15 become one RLE run.
        let mut values = vec![1, 2, 3];
        values.extend(std::iter::repeat_n(7, 20));
        let mut out = Vec::new();
        rle_hybrid(&mut out, &values, 3);
        // Bit-packed header (1 group), 3 bytes of values, RLE header (15 << 1), value.
        assert_eq!(out[0], 0b11);
        assert_eq!(out.len(), 1 + 3 + 1 + 1);
        assert_eq!(out[4], 15 << 1);
        assert_eq!(out[5], 7);
    }

    proptest! {
        #[test]
        fn delta_byte_array_round_trips(
            mut values in proptest::collection::vec("(s3://b/[a-c]{0,3}/){0,3}[a-z0-9_./é]{0,40}", 1..400),
            sorted: bool,
            group in 1usize..300,
            page_rows in 1usize..80,
        ) {
            if sorted {
                values.sort();
            }
            prop_assert_eq!(round_trip(&values, group, page_rows), values);
        }

        #[test]
        fn delta_binary_packed_reads_back(values in proptest::collection::vec(any::<u16>(), 1..300)) {
            // Lengths of all widths up to 12 bits, read back by the reader.
            let strings: Vec<String> = values.iter().map(|&v| "x".repeat(usize::from(v >> (v % 16)) % 4096)).collect();
            prop_assert_eq!(round_trip(&strings, 1000, 1000), strings);
        }
    }

    #[test]
    fn long_values_cross_the_page_byte_limit() {
        let values: Vec<String> = (0..40)
            .map(|i| format!("{i:04}{}", "v".repeat(100_000 + i)))
            .collect();
        assert_eq!(round_trip(&values, 40, PAGE_ROWS), values);
    }

    #[test]
    fn every_delta_width_reads_back() {
        // Deltas of every width from 0 to 64 bits (a block each), read back
        // by the Parquet reader.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut vals: Vec<i64> = vec![0];
        for w in 0..=64u32 {
            for _ in 0..BLOCK {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let delta = if w == 64 { x } else { x & ((1u64 << w) - 1) };
                let last = *vals.last().unwrap();
                vals.push(last.wrapping_add(delta as i64));
            }
        }
        let back = read_back(DataType::Int64, 1, |_, d| {
            write_int_chunk(d, &vals, vals.len()).unwrap()
        });
        use arrow::array::AsArray;
        let got: Vec<i64> = back
            .arrays
            .iter()
            .flat_map(|a| {
                a.as_primitive::<arrow::datatypes::Int64Type>()
                    .values()
                    .to_vec()
            })
            .collect();
        assert_eq!(got.len(), vals.len());
        let first = got.iter().zip(&vals).position(|(a, b)| a != b);
        assert_eq!(first, None, "first difference");
    }

    #[test]
    fn packs_one_full_miniblock() {
        // Deltas 0..32 minus min 0: widths 5, 32 values → 20 bytes.
        let mut out = Vec::new();
        let chunk: Vec<i64> = (0..32).collect();
        pack_miniblock(&mut out, &chunk, 0, 5);
        assert_eq!(out.len(), 20);
        // First byte: value 0 (bits 0-4) and low 3 bits of value 1 (=1) at bit 5.
        assert_eq!(out[0], 0b0010_0000);
    }
}

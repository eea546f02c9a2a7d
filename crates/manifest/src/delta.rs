//! The location column's Parquet encoding, written directly.
//!
//! Locations of a sorted manifest share long prefixes (`s3://bucket/models/
//! v1/ad/ENSG…/model_tissue_` differs from the next row in a few bytes), so
//! they are stored with `DELTA_BYTE_ARRAY`: per value, the length of the
//! prefix shared with the previous value and the remaining suffix. The Arrow
//! writer's encoder for it compares byte by byte and copies every value
//! twice, which made it the most expensive part of a build; this one
//! compares eight bytes at a time, reads the values where they lie in the
//! paths text, and hands finished, compressed pages to the Parquet writer.
//! Every file it writes is read back by the Parquet reader in the tests.

use bytes::Bytes;
use parquet::basic::{Compression, Encoding, PageType};
use parquet::column::page::{CompressedPage, Page, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::file::metadata::{ColumnChunkMetaData, OffsetIndexBuilder};
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
/// miniblocks of 32, as the Parquet writer does).
pub fn delta_binary_packed(out: &mut Vec<u8>, values: &[i64]) {
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
            *d = values[i + k].wrapping_sub(values[i + k - 1]);
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

/// Length of the common prefix of `a` and `b`, eight bytes at a time.
#[inline]
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        let x = u64::from_le_bytes(a[i..i + 8].try_into().expect("8 bytes"));
        let y = u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let diff = x ^ y;
        if diff != 0 {
            return i + (diff.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
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
    fn push(&mut self, v: &'a [u8]) {
        let p = common_prefix(self.last, v);
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

/// Write the column chunk of a required string column holding `values` (in
/// order) as snappy-compressed `DELTA_BYTE_ARRAY` pages, without statistics.
/// Returns the chunk's bytes and the result to splice it into a row group
/// with `SerializedRowGroupWriter::append_column`.
pub fn write_chunk<'a, F>(
    descr: ColumnDescPtr,
    rows: usize,
    page_rows: usize,
    value: F,
) -> parquet::errors::Result<(Bytes, ColumnCloseResult)>
where
    F: Fn(usize) -> &'a [u8],
{
    let mut sink = TrackedWrite::new(Vec::new());
    let mut page_values = PageValues::default();
    let mut snappy = snap::raw::Encoder::new();
    let mut raw = Vec::new();
    let mut compressed = Vec::new();
    let (mut total_compressed, mut total_uncompressed, mut value_bytes) = (0i64, 0i64, 0i64);
    // Page locations (offsets within this chunk: `append_column` moves them
    // to the chunk's place in the file). Readers use them to skip pages, and
    // the file writer needs one for every column or for none.
    let mut index = OffsetIndexBuilder::new();
    {
        let mut pages = SerializedPageWriter::new(&mut sink);
        let page_rows = page_rows.max(1);
        let mut next = 0;
        loop {
            // Cut at `page_rows` rows or PAGE_BYTES of values, whichever comes first.
            page_values.clear();
            while next < rows
                && page_values.len() < page_rows
                && page_values.value_bytes < PAGE_BYTES
            {
                page_values.push(value(next));
                next += 1;
            }
            let (count, bytes) = (page_values.len(), page_values.value_bytes);
            value_bytes += bytes as i64;
            raw.clear();
            page_values.encode(&mut raw);
            compressed.resize(snap::raw::max_compress_len(raw.len()), 0);
            let n = snappy
                .compress(&raw, &mut compressed)
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))?;
            let page = Page::DataPage {
                buf: Bytes::copy_from_slice(&compressed[..n]),
                num_values: count as u32,
                encoding: Encoding::DELTA_BYTE_ARRAY,
                def_level_encoding: Encoding::RLE,
                rep_level_encoding: Encoding::RLE,
                statistics: None,
            };
            let spec = pages.write_page(CompressedPage::new(page, raw.len()))?;
            debug_assert_eq!(spec.page_type, PageType::DATA_PAGE);
            index.append_row_count(count as i64);
            index.append_offset_and_size(spec.offset as i64, spec.compressed_size as i32);
            index.append_unencoded_byte_array_data_bytes(Some(bytes as i64));
            total_compressed += spec.compressed_size as i64;
            total_uncompressed += spec.uncompressed_size as i64;
            if next >= rows {
                break;
            }
        }
        pages.close()?;
    }
    let metadata = ColumnChunkMetaData::builder(descr)
        .set_encodings(vec![Encoding::DELTA_BYTE_ARRAY])
        .set_compression(Compression::SNAPPY)
        .set_num_values(rows as i64)
        .set_total_compressed_size(total_compressed)
        .set_total_uncompressed_size(total_uncompressed)
        .set_data_page_offset(0)
        .set_unencoded_byte_array_data_bytes(Some(value_bytes))
        .build()?;
    let data = Bytes::from(sink.into_inner()?);
    let result = ColumnCloseResult {
        bytes_written: data.len() as u64,
        rows_written: rows as u64,
        metadata,
        bloom_filter: None,
        column_index: None,
        offset_index: Some(index.build()),
    };
    Ok((data, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow::array::{Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use proptest::prelude::*;

    /// Write `values` as a one-column Parquet file through [`write_chunk`],
    /// in row groups of `group` rows and pages of `page_rows`, and read the
    /// column back with the Parquet reader.
    fn round_trip(values: &[String], group: usize, page_rows: usize) -> Vec<String> {
        let schema = Arc::new(Schema::new(vec![Field::new("loc", DataType::Utf8, false)]));
        let pschema = parquet::arrow::ArrowSchemaConverter::new()
            .convert(&schema)
            .unwrap();
        let mut props = WriterProperties::builder().build();
        parquet::arrow::add_encoded_arrow_schema_to_metadata(&schema, &mut props);
        let mut out = Vec::new();
        let mut w = SerializedFileWriter::new(&mut out, pschema.root_schema_ptr(), Arc::new(props))
            .unwrap();
        let descr = w.schema_descr().column(0);
        for part in values.chunks(group.max(1)) {
            let (data, close) =
                write_chunk(descr.clone(), part.len(), page_rows, |i| part[i].as_bytes()).unwrap();
            let mut rg = w.next_row_group().unwrap();
            rg.append_column(&data, close).unwrap();
            rg.close().unwrap();
        }
        w.close().unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(out))
            .unwrap()
            .build()
            .unwrap();
        let mut got = Vec::new();
        for b in reader {
            let b = b.unwrap();
            let col = b.column(0).as_any().downcast_ref::<StringArray>().unwrap();
            assert_eq!(col.null_count(), 0);
            got.extend(col.iter().map(|v| v.unwrap().to_string()));
        }
        got
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
    fn common_prefix_counts_bytes() {
        assert_eq!(common_prefix(b"", b"abc"), 0);
        assert_eq!(common_prefix(b"abcdefghij", b"abcdefghij"), 10);
        assert_eq!(common_prefix(b"abcdefghij", b"abcdefgh"), 8);
        assert_eq!(common_prefix(b"abcdefghXj", b"abcdefghij"), 8);
        assert_eq!(common_prefix(b"abcXefghij", b"abcdefghij"), 3);
        assert_eq!(common_prefix(b"x", b"y"), 0);
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

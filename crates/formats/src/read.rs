//! Streaming readers: any supported file as an iterator of Arrow record
//! batches conformed to one table schema.
//!
//! Text (CSV, TSV, JSON Lines) is parsed in parallel: one thread reads (and
//! decompresses) the bytes and cuts them at record boundaries into chunks of
//! a few MiB — for CSV a boundary is a newline outside quotes, so quoted
//! fields holding newlines are never split — and the chunks are decoded on
//! the rayon pool by the Arrow CSV and JSON decoders. Batches come out in
//! file order. At most `in_flight` chunks are decoded or waiting at once, so
//! memory is bounded by `in_flight × chunk_bytes` whatever the file size.

use std::collections::VecDeque;
use std::io::{self, BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
// `ParquetObjectReader` is deprecated upstream in favour of hand-written
// `AsyncFileReader`s; it still does exactly what is needed here.
#[allow(deprecated)]
use parquet::arrow::async_reader::ParquetObjectReader;
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use tessera_store::Location;
use tokio::runtime::Handle;

use crate::error::{ColumnMismatch, Error, Result};
use crate::format::{Codec, FileFormat, RecordLayout};
use crate::schema::{conform, Cast};

/// How [`read()`] reads: built with `with_*` setters, then passed to every
/// read that should use it.
///
/// ```
/// use tessera_formats::{Cast, ReadOptions};
///
/// let rt = tokio::runtime::Runtime::new().unwrap();
/// let opts = ReadOptions::new(rt.handle().clone())
///     .with_cast(Cast::Declared)
///     .with_chunk_bytes(1 << 20);
/// # let _ = opts;
/// ```
#[derive(Debug, Clone)]
#[must_use = "options do nothing until passed to read()"]
pub struct ReadOptions {
    runtime: Handle,
    chunk_bytes: usize,
    in_flight: usize,
    parquet_batch_rows: usize,
    cast: Cast,
    bytes_read: Option<Arc<AtomicU64>>,
}

impl ReadOptions {
    /// Defaults: 4 MiB chunks, two per core in flight, 64 Ki rows per
    /// Parquet batch, lossless casts. `runtime` does the remote reads (the
    /// reader itself runs on plain threads).
    pub fn new(runtime: Handle) -> ReadOptions {
        ReadOptions {
            runtime,
            chunk_bytes: 4 << 20,
            in_flight: 2 * rayon::current_num_threads().max(1),
            parquet_batch_rows: 64 * 1024,
            cast: Cast::Lossless,
            bytes_read: None,
        }
    }

    /// Size of the text chunks parsed in parallel.
    pub fn with_chunk_bytes(mut self, bytes: usize) -> Self {
        self.chunk_bytes = bytes;
        self
    }

    /// Chunks parsed or waiting at once (memory is bounded by this times
    /// the chunk size).
    pub fn with_in_flight(mut self, chunks: usize) -> Self {
        self.in_flight = chunks;
        self
    }

    /// Rows per batch for Parquet input.
    pub fn with_parquet_batch_rows(mut self, rows: usize) -> Self {
        self.parquet_batch_rows = rows;
        self
    }

    /// How columns are converted to the table's types.
    pub fn with_cast(mut self, cast: Cast) -> Self {
        self.cast = cast;
        self
    }

    /// A counter incremented with the (compressed) bytes read, for
    /// progress reports.
    pub fn with_bytes_read(mut self, counter: Arc<AtomicU64>) -> Self {
        self.bytes_read = Some(counter);
        self
    }
}

/// Batches of one file, in file order, conformed to the table schema.
pub struct Batches {
    schema: SchemaRef,
    slots: Receiver<Receiver<Result<Vec<RecordBatch>>>>,
    pending: VecDeque<RecordBatch>,
    failed: bool,
}

impl Batches {
    /// The schema every batch has.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }
}

impl Iterator for Batches {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Result<RecordBatch>> {
        loop {
            if let Some(b) = self.pending.pop_front() {
                return Some(Ok(b));
            }
            if self.failed {
                return None;
            }
            let slot = self.slots.recv().ok()?;
            match slot.recv() {
                Ok(Ok(v)) => self.pending.extend(v),
                Ok(Err(e)) => {
                    self.failed = true;
                    return Some(Err(e));
                }
                Err(_) => {
                    self.failed = true;
                    return Some(Err(Error::Internal(
                        "a decoding task stopped without a result".into(),
                    )));
                }
            }
        }
    }
}

/// Producer side of [`Batches`].
struct Slots {
    tx: SyncSender<Receiver<Result<Vec<RecordBatch>>>>,
}

impl Slots {
    /// Queue a task producing the next batches; false when the reader is gone.
    fn spawn(&self, task: impl FnOnce() -> Result<Vec<RecordBatch>> + Send + 'static) -> bool {
        let (tx, rx) = mpsc::sync_channel(1);
        if self.tx.send(rx).is_err() {
            return false;
        }
        rayon::spawn(move || {
            let _ = tx.send(task());
        });
        true
    }

    /// Queue a ready result.
    fn push(&self, r: Result<Vec<RecordBatch>>) -> bool {
        let (tx, rx) = mpsc::sync_channel(1);
        let _ = tx.send(r);
        self.tx.send(rx).is_ok()
    }
}

fn batches(schema: SchemaRef, in_flight: usize) -> (Slots, Batches) {
    let (tx, rx) = mpsc::sync_channel(in_flight.max(1));
    (
        Slots { tx },
        Batches {
            schema,
            slots: rx,
            pending: VecDeque::new(),
            failed: false,
        },
    )
}

/// Read `loc` (of format `format`) as batches of `table`'s schema.
///
/// Columns are matched by name; columns of the table the file lacks are
/// null; a column the table does not have, or a value that does not parse
/// as its column's type, is an error naming the object, the line and the column.
pub fn read(
    loc: &Location,
    format: FileFormat,
    table: SchemaRef,
    opts: &ReadOptions,
) -> Result<Batches> {
    match format.layout {
        RecordLayout::Parquet => read_parquet(loc, table, opts),
        _ => read_text(loc, format, table, opts),
    }
}

// ---------------------------------------------------------------------------
// Bytes

/// A remote object as `Read`, pulling chunks from the store's stream.
struct StreamRead {
    rt: Handle,
    stream: BoxStream<'static, tessera_store::Result<Bytes>>,
    cur: Bytes,
}

impl Read for StreamRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rt.block_on(self.stream.next()) {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(io::Error::other(Error::Store(e))),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

struct Counted<R> {
    inner: R,
    counter: Option<Arc<AtomicU64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(c) = &self.counter {
            c.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// Turns decompression failures into `InvalidRecord` errors naming the object.
struct Inflate<R> {
    inner: R,
    url: String,
    codec: Codec,
}

impl<R: Read> Read for Inflate<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            if e.get_ref().is_some_and(|x| x.is::<Error>()) {
                return e;
            }
            let what = match self.codec {
                Codec::Gzip => "gzip",
                Codec::Zstd => "zstd",
                Codec::None => "data",
            };
            let detail = if e.kind() == io::ErrorKind::UnexpectedEof {
                "the compressed stream ends early (truncated file?)".to_string()
            } else {
                e.to_string()
            };
            io::Error::other(Error::invalid_record(
                &self.url,
                None,
                format!("corrupt {what} data: {detail}"),
            ))
        })
    }
}

/// The object's bytes, decompressed per `codec`, as a blocking reader.
pub fn open_bytes(
    loc: &Location,
    codec: Codec,
    rt: &Handle,
    counter: Option<Arc<AtomicU64>>,
) -> Result<Box<dyn Read + Send>> {
    let raw: Box<dyn Read + Send> = match loc.local_path() {
        Some(p) => Box::new(open_local(&p, &loc.url())?),
        None => {
            let (_, stream) = rt.block_on(loc.read_stream())?;
            Box::new(StreamRead {
                rt: rt.clone(),
                stream,
                cur: Bytes::new(),
            })
        }
    };
    let counted = Counted {
        inner: raw,
        counter,
    };
    let url = loc.url();
    Ok(match codec {
        Codec::None => Box::new(counted),
        Codec::Gzip => Box::new(Inflate {
            inner: flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 20, counted)),
            url,
            codec,
        }),
        Codec::Zstd => Box::new(Inflate {
            inner: zstd::stream::read::Decoder::with_buffer(BufReader::with_capacity(
                1 << 20,
                counted,
            ))
            .map_err(|e| Error::io(loc.url(), e))?,
            url,
            codec,
        }),
    })
}

/// Open a local file; a missing file is `NotFound` naming its URL.
fn open_local(p: &std::path::Path, url: &str) -> Result<std::fs::File> {
    std::fs::File::open(p).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            Error::Store(tessera_store::Error::NotFound {
                url: url.to_string(),
            })
        } else {
            Error::io(url, e)
        }
    })
}

/// Fill `buf` from `r` until full or end of input; returns the bytes read.
fn fill(r: &mut dyn Read, buf: &mut [u8], url: &str) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(url, e)),
        }
    }
    Ok(n)
}

// ---------------------------------------------------------------------------
// Record boundaries

/// Where complete records end in `buf` (which starts at a record boundary).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Scan {
    /// End of the last complete record (0 if none).
    pub end: usize,
    /// Complete records before `end`.
    pub records: u64,
    /// Newlines before `end` (physical lines).
    pub lines: u64,
}

/// CSV: records end at a newline outside quotes (`""` inside quotes toggles
/// twice, so counting quotes is enough).
pub(crate) fn scan_csv(buf: &[u8], quote: u8) -> Scan {
    let mut in_quotes = false;
    let mut s = Scan {
        end: 0,
        records: 0,
        lines: 0,
    };
    let mut lines = 0;
    for i in memchr::memchr2_iter(quote, b'\n', buf) {
        if buf[i] == quote {
            in_quotes = !in_quotes;
        } else {
            lines += 1;
            if !in_quotes {
                s.records += 1;
                s.end = i + 1;
                s.lines = lines;
            }
        }
    }
    s
}

/// Continue a CSV scan over `buf`, which starts at offset `base` of the
/// scanned buffer, 64 bytes at a time: bit masks of the quotes and newlines
/// of a block, a prefix XOR of the quote mask for the bytes inside quotes,
/// and only the newlines outside quotes are record ends. (Visiting every
/// quote and newline one by one cost about 8 % of a pack's CPU time on
/// quoted CSV; this is a few instructions per 64 bytes.)
fn csv_blocks(buf: &[u8], base: usize, st: &mut ScanState) {
    let mut off = 0;
    while off < buf.len() {
        let n = (buf.len() - off).min(64);
        let (quotes, newlines) = if n == 64 {
            let block: &[u8; 64] = buf[off..off + 64].try_into().expect("64 bytes");
            masks(block)
        } else {
            let mut block = [0u8; 64];
            block[..n].copy_from_slice(&buf[off..]);
            masks(&block)
        };
        // Bit i of `inside`: an odd number of quotes at or before byte i,
        // counting from the start of the scan.
        let mut inside = quotes;
        inside ^= inside << 1;
        inside ^= inside << 2;
        inside ^= inside << 4;
        inside ^= inside << 8;
        inside ^= inside << 16;
        inside ^= inside << 32;
        if st.in_quotes {
            inside = !inside;
        }
        let ends = newlines & !inside;
        st.lines += u64::from(newlines.count_ones());
        if ends != 0 {
            st.records += u64::from(ends.count_ones());
            let last = 63 - ends.leading_zeros() as usize;
            // Lines up to and including the last record end.
            let after = if last == 63 {
                0
            } else {
                newlines >> (last + 1)
            };
            st.last = Scan {
                end: base + off + last + 1,
                records: st.records,
                lines: st.lines - u64::from(after.count_ones()),
            };
        }
        st.in_quotes ^= quotes.count_ones() % 2 == 1;
        off += n;
    }
}

/// Masks of the quotes and the newlines of a 64-byte block (bit i: byte i).
#[inline]
fn masks(block: &[u8; 64]) -> (u64, u64) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
        };
        let (mut q, mut n) = (0u64, 0u64);
        // SAFETY: the intrinsics need SSE2, which every x86_64 CPU has (it is part of the target's
        // baseline, so no runtime check is needed). `_mm_loadu_si128` has no alignment requirement,
        // and the four loads read bytes 0..16, 16..32, 32..48 and 48..64 of `block`, which the type
        // `&[u8; 64]` guarantees are valid to read. What would break it: taking a shorter slice
        // instead of `&[u8; 64]`, or more than four loads (reading past the block).
        unsafe {
            let quote = _mm_set1_epi8(b'"' as i8);
            let nl = _mm_set1_epi8(b'\n' as i8);
            for k in 0..4 {
                let v = _mm_loadu_si128(block.as_ptr().add(16 * k) as *const __m128i);
                q |= u64::from(_mm_movemask_epi8(_mm_cmpeq_epi8(v, quote)) as u16) << (16 * k);
                n |= u64::from(_mm_movemask_epi8(_mm_cmpeq_epi8(v, nl)) as u16) << (16 * k);
            }
        }
        (q, n)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        masks_bytewise(block)
    }
}

/// Byte-by-byte masks: the reference [`masks`] is tested against, and the
/// version for other targets.
#[cfg(any(test, feature = "fuzzing", not(target_arch = "x86_64")))]
fn masks_bytewise(block: &[u8; 64]) -> (u64, u64) {
    let (mut q, mut n) = (0u64, 0u64);
    for (i, &c) in block.iter().enumerate() {
        q |= u64::from(c == b'"') << i;
        n |= u64::from(c == b'\n') << i;
    }
    (q, n)
}

/// Lines: records end at every newline.
pub(crate) fn scan_lines(buf: &[u8]) -> Scan {
    match memchr::memrchr(b'\n', buf) {
        Some(i) => {
            let n = memchr::memchr_iter(b'\n', &buf[..=i]).count() as u64;
            Scan {
                end: i + 1,
                records: n,
                lines: n,
            }
        }
        None => Scan {
            end: 0,
            records: 0,
            lines: 0,
        },
    }
}

fn scan(format: FileFormat, buf: &[u8]) -> Scan {
    match format.layout {
        RecordLayout::Jsonl => scan_lines(buf),
        _ => scan_csv(buf, b'"'),
    }
}

// ---------------------------------------------------------------------------
// Text

/// Reads the object as a sequence of chunks cut at record boundaries.
struct Chunker {
    r: Box<dyn Read + Send>,
    url: String,
    format: FileFormat,
    buf: Vec<u8>,
    filled: usize,
    eof: bool,
    chunk: usize,
    /// Physical line (0-based) where `buf` starts.
    line: u64,
    /// How far `buf` is scanned for record boundaries: each byte is scanned
    /// once, however many reads it takes to fill a chunk.
    scan: ScanState,
}

/// Record boundaries found in `buf[..scanned]`.
#[derive(Debug, Default)]
struct ScanState {
    scanned: usize,
    in_quotes: bool,
    records: u64,
    lines: u64,
    /// The last complete record's end.
    last: Scan,
}

struct Chunk {
    data: Bytes,
    records: u64,
    first_line: u64,
}

impl Chunker {
    fn new(r: Box<dyn Read + Send>, url: String, format: FileFormat, chunk: usize) -> Chunker {
        Chunker {
            r,
            url,
            format,
            buf: Vec::new(),
            filled: 0,
            eof: false,
            chunk: chunk.max(1024),
            line: 0,
            scan: ScanState::default(),
        }
    }

    /// Scan the bytes read since the last call for record boundaries.
    fn scan_more(&mut self) {
        let st = &mut self.scan;
        let from = st.scanned;
        let buf = &self.buf[from..self.filled];
        match self.format.layout {
            RecordLayout::Jsonl => {
                let s = scan_lines(buf);
                if s.end > 0 {
                    st.lines += s.lines;
                    st.records += s.records;
                    st.last = Scan {
                        end: from + s.end,
                        records: st.records,
                        lines: st.lines,
                    };
                }
            }
            _ => csv_blocks(buf, from, st),
        }
        st.scanned = self.filled;
    }

    /// The next chunk of whole records (the last one may lack its final newline).
    fn next_chunk(&mut self) -> Result<Option<Chunk>> {
        loop {
            self.scan_more();
            let s = self.scan.last;
            if s.end > 0 && (self.filled >= self.chunk || self.eof) {
                return Ok(Some(self.take(s)));
            }
            if self.eof {
                if self.filled == 0 {
                    return Ok(None);
                }
                // The last record has no final newline.
                let n = self.filled;
                let lines = memchr::memchr_iter(b'\n', &self.buf[..n]).count() as u64;
                return Ok(Some(self.take(Scan {
                    end: n,
                    records: 1,
                    lines,
                })));
            }
            // Grow: a chunk's worth more (a record longer than a chunk just
            // makes a bigger chunk).
            self.read_more()?;
        }
    }

    /// Read up to one more chunk's worth of bytes.
    fn read_more(&mut self) -> Result<()> {
        let start = self.filled;
        let want = start + self.chunk;
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        let n = fill(&mut *self.r, &mut self.buf[start..want], &self.url)?;
        self.filled += n;
        if n < want - start {
            self.eof = true;
        }
        Ok(())
    }

    /// Hand out `buf[..s.end]` without copying it: the rest (part of a
    /// record) moves to a new buffer, the only bytes copied.
    fn take(&mut self, s: Scan) -> Chunk {
        let mut next = Vec::with_capacity(self.filled - s.end + self.chunk);
        next.extend_from_slice(&self.buf[s.end..self.filled]);
        let mut data = std::mem::replace(&mut self.buf, next);
        data.truncate(s.end);
        let data = Bytes::from(data);
        self.filled -= s.end;
        // The rest is scanned again from the start (it is shorter than a record).
        self.scan = ScanState::default();
        let first_line = self.line;
        self.line += s.lines;
        Chunk {
            data,
            records: s.records,
            first_line,
        }
    }
}

/// Column names of a CSV header record.
fn csv_header(header: &[u8], delimiter: u8) -> Result<Vec<String>, String> {
    let fmt = arrow::csv::reader::Format::default()
        .with_header(true)
        .with_delimiter(delimiter);
    let (schema, _) = fmt
        .infer_schema(header, Some(0))
        .map_err(|e| e.to_string())?;
    Ok(schema.fields().iter().map(|f| f.name().clone()).collect())
}

/// Infer the schema of a text or Parquet object from a sample of its first
/// `sample_bytes` (text) or its footer (Parquet). `None` for an empty file.
/// Columns of a text file with no rows in the sample are typed `Null`.
pub fn infer_schema(
    loc: &Location,
    format: FileFormat,
    sample_bytes: usize,
    rt: &Handle,
) -> Result<Option<Schema>> {
    if format.layout == RecordLayout::Parquet {
        return parquet_schema(loc, rt).map(Some);
    }
    let url = loc.url();
    let mut r = open_bytes(loc, format.codec, rt, None)?;
    let mut buf = vec![0u8; sample_bytes.max(4096)];
    let n = fill(&mut *r, &mut buf, &url)?;
    buf.truncate(n);
    let complete = n < sample_bytes.max(4096);
    let s = scan(format, &buf);
    let end = if complete { n } else { s.end };
    let sample = &buf[..end];
    if sample.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(None);
    }
    std::str::from_utf8(sample).map_err(|e| {
        // Report the line of the first invalid byte (a cut in the middle of
        // a character at the end of an incomplete sample was excluded above).
        let line = memchr::memchr_iter(b'\n', &sample[..e.valid_up_to()]).count() as u64 + 1;
        Error::invalid_record(&url, Some(line), "invalid UTF-8")
    })?;
    match format.layout {
        RecordLayout::Jsonl => {
            let (schema, _) = arrow::json::reader::infer_json_schema(sample, None)
                .map_err(|e| json_error(&url, sample, 0, e))?;
            Ok(Some(schema))
        }
        _ => {
            let fmt = arrow::csv::reader::Format::default()
                .with_header(true)
                .with_delimiter(format.delimiter());
            let (schema, rows) = match fmt.infer_schema(sample, None) {
                Ok(r) => r,
                Err(e) => return Err(locate_csv_error(&url, sample, format, e)),
            };
            check_names(&schema, &url)?;
            if rows == 0 {
                return Ok(Some(Schema::new(
                    schema
                        .fields()
                        .iter()
                        .map(|f| Field::new(f.name(), DataType::Null, true))
                        .collect::<Vec<_>>(),
                )));
            }
            Ok(Some(schema))
        }
    }
}

/// Inference errors carry no line: decode the sample as text to find it.
fn locate_csv_error(
    url: &str,
    sample: &[u8],
    format: FileFormat,
    e: arrow::error::ArrowError,
) -> Error {
    let header = scan_first_record(sample);
    if let Ok(names) = csv_header(&sample[..header], format.delimiter()) {
        let schema = Arc::new(Schema::new(
            names
                .iter()
                .map(|n| Field::new(n, DataType::Utf8, true))
                .collect::<Vec<_>>(),
        ));
        let body = &sample[header..];
        let chunk = Chunk {
            data: Bytes::copy_from_slice(body),
            records: scan_csv(body, b'"').records + 1,
            first_line: memchr::memchr_iter(b'\n', &sample[..header]).count() as u64,
        };
        if let Err(located) = decode_chunk(&chunk, format, &schema, url) {
            return located;
        }
    }
    Error::invalid_record(url, None, clean(&e.to_string()))
}

fn check_names(schema: &Schema, url: &str) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for f in schema.fields() {
        if !seen.insert(f.name()) {
            return Err(Error::invalid_record(
                url,
                Some(1),
                format!("column '{}' appears twice in the header", f.name()),
            ));
        }
    }
    Ok(())
}

fn read_text(
    loc: &Location,
    format: FileFormat,
    table: SchemaRef,
    opts: &ReadOptions,
) -> Result<Batches> {
    let url = loc.url();
    let r = open_bytes(loc, format.codec, &opts.runtime, opts.bytes_read.clone())?;
    let (slots, out) = batches(table.clone(), opts.in_flight);
    let chunk_bytes = opts.chunk_bytes;
    let cast = opts.cast;
    std::thread::Builder::new()
        .name("tessera-read".into())
        .spawn(move || {
            let mut chunker = Chunker::new(r, url.clone(), format, chunk_bytes);
            // The parse schema: for CSV, the header's columns with the table's types.
            let parse: SchemaRef = if format.layout == RecordLayout::Jsonl {
                table.clone()
            } else {
                let header = match chunker.next_header() {
                    Ok(Some(h)) => h,
                    Ok(None) => return, // empty file: no rows
                    Err(e) => {
                        slots.push(Err(e));
                        return;
                    }
                };
                match header_schema(&header, format.delimiter(), &table, &url) {
                    Ok(s) => s,
                    Err(e) => {
                        slots.push(Err(e));
                        return;
                    }
                }
            };
            loop {
                let chunk = match chunker.next_chunk() {
                    Ok(Some(c)) => c,
                    Ok(None) => return,
                    Err(e) => {
                        slots.push(Err(e));
                        return;
                    }
                };
                let (parse, table, url) = (parse.clone(), table.clone(), url.clone());
                let ok = slots.spawn(move || {
                    let b = decode_chunk(&chunk, format, &parse, &url)?;
                    match b {
                        Some(b) => Ok(vec![conform(&b, &table, cast, &url)?]),
                        None => Ok(vec![]),
                    }
                });
                if !ok {
                    return;
                }
            }
        })
        .map_err(|e| Error::io("(reader thread)", e))?;
    Ok(out)
}

impl Chunker {
    /// The header record of a delimited file (`None` for an empty file).
    fn next_header(&mut self) -> Result<Option<Vec<u8>>> {
        loop {
            let s = scan_csv(&self.buf[..self.filled], b'"');
            if s.records > 0 || self.eof {
                let end = if s.records > 0 {
                    scan_first_record(&self.buf[..self.filled])
                } else {
                    self.filled
                };
                if end == 0 {
                    return Ok(None);
                }
                let h = self.buf[..end].to_vec();
                let lines = memchr::memchr_iter(b'\n', &h).count() as u64;
                self.buf.copy_within(end..self.filled, 0);
                self.filled -= end;
                self.line += lines;
                self.scan = ScanState::default();
                if h.iter().all(|b| b.is_ascii_whitespace()) {
                    return Ok(None);
                }
                return Ok(Some(h));
            }
            self.read_more()?;
        }
    }
}

/// End of the first record of `buf` (newline outside quotes), or 0.
fn scan_first_record(buf: &[u8]) -> usize {
    let mut in_quotes = false;
    for i in memchr::memchr2_iter(b'"', b'\n', buf) {
        if buf[i] == b'"' {
            in_quotes = !in_quotes;
        } else if !in_quotes {
            return i + 1;
        }
    }
    0
}

/// The schema to parse a delimited file with: its header's columns, typed as
/// the table's columns of the same name.
fn header_schema(header: &[u8], delimiter: u8, table: &SchemaRef, url: &str) -> Result<SchemaRef> {
    let text = std::str::from_utf8(header)
        .map_err(|_| Error::invalid_record(url, Some(1), "invalid UTF-8 in the header"))?;
    let names = csv_header(text.as_bytes(), delimiter)
        .map_err(|e| Error::invalid_record(url, Some(1), e))?;
    let mut fields = Vec::with_capacity(names.len());
    let mut missing = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for n in &names {
        if !seen.insert(n.as_str()) {
            return Err(Error::invalid_record(
                url,
                Some(1),
                format!("column '{n}' appears twice in the header"),
            ));
        }
        match table.field_with_name(n) {
            Ok(f) => fields.push(Field::new(n, f.data_type().clone(), true)),
            Err(_) => missing.push(n.as_str()),
        }
    }
    if !missing.is_empty() {
        return Err(Error::SchemaMismatch {
            object: url.to_string(),
            columns: missing
                .iter()
                .map(|n| ColumnMismatch::new(*n, "absent", "present"))
                .collect(),
            message: format!(
                "column {} of the header {} not in the table (columns: {})",
                missing
                    .iter()
                    .map(|n| format!("'{n}'"))
                    .collect::<Vec<_>>()
                    .join(", "),
                if missing.len() == 1 { "is" } else { "are" },
                table
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    Ok(Arc::new(Schema::new(fields)))
}

fn decode_chunk(
    chunk: &Chunk,
    format: FileFormat,
    parse: &SchemaRef,
    url: &str,
) -> Result<Option<RecordBatch>> {
    let rows = chunk.records as usize + 1;
    let data = &chunk.data[..];
    match format.layout {
        RecordLayout::Jsonl => {
            let mut dec = arrow::json::ReaderBuilder::new(parse.clone())
                .with_batch_size(rows)
                .with_strict_mode(true)
                .build_decoder()
                .map_err(Error::arrow(url))?;
            let run = |dec: &mut arrow::json::reader::Decoder| -> std::result::Result<Option<RecordBatch>, arrow::error::ArrowError> {
                let mut off = 0;
                while off < data.len() {
                    let n = dec.decode(&data[off..])?;
                    if n == 0 {
                        break;
                    }
                    off += n;
                }
                dec.flush()
            };
            run(&mut dec).map_err(|e| json_error(url, data, chunk.first_line, e))
        }
        _ => {
            let mut dec = arrow::csv::ReaderBuilder::new(parse.clone())
                .with_header(false)
                .with_delimiter(format.delimiter())
                .with_batch_size(rows)
                .build_decoder();
            let run = |dec: &mut arrow::csv::reader::Decoder| -> std::result::Result<Option<RecordBatch>, arrow::error::ArrowError> {
                let mut off = 0;
                loop {
                    let n = dec.decode(&data[off..])?;
                    off += n;
                    if n == 0 || dec.capacity() == 0 {
                        break;
                    }
                }
                dec.flush()
            };
            run(&mut dec).map_err(|e| csv_error(url, data, chunk.first_line, parse, e))
        }
    }
}

/// Strip Arrow's own (chunk-relative) line numbers and cap the length (a
/// huge value must not make a huge message).
fn clean(msg: &str) -> String {
    let mut m = msg
        .trim_start_matches("Parser error: ")
        .trim_start_matches("Csv error: ")
        .trim_start_matches("Json error: ")
        .to_string();
    for pat in [" at line ", " for line "] {
        if let Some(i) = m.find(pat) {
            let rest = &m[i + pat.len()..];
            let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
            m = format!("{}{}", &m[..i], &rest[digits..]);
        }
    }
    if m.len() > 300 {
        let mut cut = 300;
        while !m.is_char_boundary(cut) {
            cut -= 1;
        }
        m.truncate(cut);
        m.push('…');
    }
    m
}

/// The 0-based record index within the chunk that Arrow's CSV decoder
/// reports: value errors say "at line N" counting from 0, record errors
/// (field counts, UTF-8) say "for line N" counting from 1.
fn arrow_record(msg: &str) -> Option<u64> {
    for (pat, base) in [("at line ", 0), ("for line ", 1)] {
        if let Some(i) = msg.find(pat) {
            let digits: String = msg[i + pat.len()..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            return digits.parse::<u64>().ok().map(|n| n.saturating_sub(base));
        }
    }
    None
}

/// Physical lines before record `k` of `data`.
fn lines_before_record(data: &[u8], k: u64) -> u64 {
    let mut in_quotes = false;
    let mut records = 0;
    let mut lines = 0;
    for i in memchr::memchr2_iter(b'"', b'\n', data) {
        if records == k {
            break;
        }
        if data[i] == b'"' {
            in_quotes = !in_quotes;
        } else {
            lines += 1;
            if !in_quotes {
                records += 1;
            }
        }
    }
    lines
}

fn csv_error(
    url: &str,
    data: &[u8],
    first_line: u64,
    schema: &Schema,
    e: arrow::error::ArrowError,
) -> Error {
    let msg = e.to_string();
    let line = arrow_record(&msg).map(|k| first_line + lines_before_record(data, k) + 1);
    let mut m = clean(&msg);
    let mut column = None;
    // Name the column rather than its index.
    if let Some(i) = m.find("for column ") {
        let rest = &m[i + "for column ".len()..];
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        if let Some(f) = digits
            .parse::<usize>()
            .ok()
            .and_then(|c| schema.fields().get(c))
        {
            m = format!(
                "{}for column '{}'{}",
                &m[..i],
                f.name(),
                &rest[digits.len()..]
            );
            column = Some(f.name().clone());
        }
    }
    Error::InvalidRecord {
        object: url.to_string(),
        line,
        column,
        message: m,
    }
}

fn json_error(url: &str, data: &[u8], first_line: u64, e: arrow::error::ArrowError) -> Error {
    // Arrow's JSON errors carry no position: find the first line that fails alone.
    let mut line = None;
    for (i, l) in data.split(|&b| b == b'\n').enumerate() {
        if l.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        if serde_json::from_slice::<serde_json::Value>(l)
            .map(|v| !v.is_object())
            .unwrap_or(true)
        {
            line = Some(first_line + i as u64 + 1);
            break;
        }
    }
    let mut msg = clean(&e.to_string());
    if line.is_some() && !msg.contains("JSON") {
        msg = format!("not a JSON object ({msg})");
    }
    Error::invalid_record(url, line, msg)
}

// ---------------------------------------------------------------------------
// Parquet

/// The Arrow schema of a Parquet object, from its footer.
#[allow(deprecated)]
pub fn parquet_schema(loc: &Location, rt: &Handle) -> Result<Schema> {
    let url = loc.url();
    let perr = Error::parquet(&url);
    match loc.local_path() {
        Some(p) => {
            let b =
                ParquetRecordBatchReaderBuilder::try_new(open_local(&p, &url)?).map_err(perr)?;
            Ok(b.schema().as_ref().clone())
        }
        None => rt.block_on(async {
            let meta = loc.head().await?;
            let reader = ParquetObjectReader::new(loc.store().clone(), loc.path().clone())
                .with_file_size(meta.size);
            let b = ParquetRecordBatchStreamBuilder::new(reader)
                .await
                .map_err(perr)?;
            Ok(b.schema().as_ref().clone())
        }),
    }
}

#[allow(deprecated)]
fn read_parquet(loc: &Location, table: SchemaRef, opts: &ReadOptions) -> Result<Batches> {
    let url = loc.url();
    let perr = |url: &str| {
        let url = url.to_string();
        move |source| Error::Parquet {
            object: url.clone(),
            source,
        }
    };
    let rows_per_batch = opts.parquet_batch_rows;
    // The batches of the file, from a local reader or a store stream.
    type Source = Box<dyn Iterator<Item = Result<RecordBatch>> + Send>;
    let (source, size, total): (Source, u64, u64) = match loc.local_path() {
        Some(p) => {
            let f = open_local(&p, &url)?;
            let size = f.metadata().map(|m| m.len()).unwrap_or(0);
            let b = ParquetRecordBatchReaderBuilder::try_new(f)
                .map_err(perr(&url))?
                .with_batch_size(rows_per_batch);
            let total = b.metadata().file_metadata().num_rows().max(1) as u64;
            let u = url.clone();
            let reader = b.build().map_err(perr(&url))?.map(move |r| {
                r.map_err(|source| Error::Arrow {
                    object: u.clone(),
                    source,
                })
            });
            (Box::new(reader), size, total)
        }
        None => {
            let rt = opts.runtime.clone();
            let (mut stream, size, total) = rt.block_on(async {
                let meta = loc.head().await?;
                let reader = ParquetObjectReader::new(loc.store().clone(), loc.path().clone())
                    .with_file_size(meta.size);
                let b = ParquetRecordBatchStreamBuilder::new(reader)
                    .await
                    .map_err(perr(&url))?
                    .with_batch_size(rows_per_batch);
                let total = b.metadata().file_metadata().num_rows().max(1) as u64;
                Ok::<_, Error>((b.build().map_err(perr(&url))?, meta.size, total))
            })?;
            let e = perr(&url);
            let batches =
                std::iter::from_fn(move || rt.block_on(stream.next()).map(|r| r.map_err(&e)));
            (Box::new(batches), size, total)
        }
    };
    let (slots, out) = batches(table.clone(), 2);
    let cast = opts.cast;
    let counter = opts.bytes_read.clone();
    std::thread::Builder::new()
        .name("tessera-read".into())
        .spawn(move || {
            for r in source {
                let r = r.and_then(|b| {
                    if let Some(c) = &counter {
                        c.fetch_add(size * b.num_rows() as u64 / total, Ordering::Relaxed);
                    }
                    conform(&b, &table, cast, &url)
                });
                let stop = r.is_err();
                if !slots.push(r.map(|b| vec![b])) || stop {
                    return;
                }
            }
        })
        .map_err(|e| Error::io("(reader thread)", e))?;
    Ok(out)
}

/// The block scan of `text` fed in pieces cut at `cuts` (clamped).
#[cfg(any(test, feature = "fuzzing"))]
fn scan_in_pieces(text: &[u8], cuts: impl Iterator<Item = usize>) -> ScanState {
    let mut cuts: Vec<usize> = cuts.map(|c| c.min(text.len())).collect();
    cuts.push(text.len());
    cuts.sort_unstable();
    let mut st = ScanState::default();
    let mut from = 0;
    for c in cuts {
        csv_blocks(&text[from..c], from, &mut st);
        from = c;
    }
    st
}

/// Checks for the fuzzer (`fuzz/`): the CSV record splitter on outside
/// bytes. Panics when a law breaks.
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_csv_scan(data: &[u8]) {
    // The first two bytes place two cuts; the rest is the text.
    let (cuts, text) = match data {
        [a, b, rest @ ..] => ([*a as usize, *b as usize], rest),
        _ => return,
    };
    // The block scan fed in pieces finds what the byte scan of the whole finds.
    let st = scan_in_pieces(text, cuts.iter().map(|c| c * 7));
    let whole = scan_csv(text, b'"');
    assert_eq!(st.last, whole, "block scan and byte scan disagree");
    assert_eq!(st.lines, memchr::memchr_iter(b'\n', text).count() as u64);
    // A record end is just past a newline outside quotes.
    assert!(whole.end == 0 || text[whole.end - 1] == b'\n');
    let quotes = memchr::memchr_iter(b'"', &text[..whole.end]).count();
    assert_eq!(quotes % 2, 0, "a record ends inside quotes");
    // The SIMD masks equal the byte-by-byte ones on every block.
    for block in text.chunks_exact(64) {
        let block: &[u8; 64] = block.try_into().expect("64 bytes");
        assert_eq!(masks(block), masks_bytewise(block));
    }
    // Lines: a record per newline.
    let l = scan_lines(text);
    assert_eq!(l.records, memchr::memchr_iter(b'\n', text).count() as u64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_boundaries_respect_quotes() {
        let b = b"a,b\n1,\"x\ny\"\n2,\"\"\"q\"\"\"\n3,z";
        let s = scan_csv(b, b'"');
        assert_eq!(s.records, 3);
        assert_eq!(s.lines, 4);
        assert_eq!(&b[s.end..], b"3,z");
        assert_eq!(scan_first_record(b), 4);
        assert_eq!(lines_before_record(b, 2), 3);
    }

    proptest::proptest! {
        /// The block scan, fed in arbitrary pieces, finds the same record
        /// ends, records and lines as the byte-by-byte scan of the whole.
        #[test]
        fn block_scan_agrees_with_byte_scan(
            text in proptest::collection::vec(proptest::sample::select(vec![b'"', b'\n', b'a', b',', 0xC3]), 0..400),
            cuts in proptest::collection::vec(0usize..400, 0..5),
        ) {
            let st = scan_in_pieces(&text, cuts.into_iter());
            proptest::prop_assert_eq!(st.last, scan_csv(&text, b'"'));
            let lines = text.iter().filter(|&&b| b == b'\n').count() as u64;
            proptest::prop_assert_eq!(st.lines, lines);
            let quotes = text.iter().filter(|&&b| b == b'"').count();
            proptest::prop_assert_eq!(st.in_quotes, quotes % 2 == 1);
        }

        #[test]
        fn vector_masks_agree_with_bytes(block in proptest::collection::vec(proptest::sample::select(vec![b'"', b'\n', b'a', 0x80, 0xFF]), 64)) {
            let b: &[u8; 64] = block.as_slice().try_into().unwrap();
            proptest::prop_assert_eq!(masks(b), masks_bytewise(b));
        }
    }

    #[test]
    fn line_scans() {
        let s = scan_lines(b"{}\n{}\n{");
        assert_eq!((s.end, s.records), (6, 2));
        assert_eq!(scan_lines(b"{").end, 0);
    }

    #[test]
    fn messages_are_cleaned() {
        let m = "Parser error: Error while parsing value 'x' as type 'Int64' for column 1 at line 4. Row data: '[1,x]'";
        assert_eq!(arrow_record(m), Some(4));
        let c = clean(m);
        assert!(!c.contains("line"), "{c}");
        assert!(c.starts_with("Error while parsing value 'x'"), "{c}");
        let long = format!("at line 1 {}", "é".repeat(400));
        assert!(clean(&long).len() < 320);
    }
}

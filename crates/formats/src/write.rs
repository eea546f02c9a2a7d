//! Writers that end a file at a target size.
//!
//! A [`FileWriter`] takes batches and says how many of their rows it took;
//! once the file has reached its target size it takes no more, and the
//! caller starts the next file. Sizes are real written sizes, not guesses
//! made before writing:
//!
//! * **Text** (CSV, TSV, JSON Lines) is formatted slice by slice; the slice
//!   length is chosen from the bytes per row seen so far so that the file
//!   ends within one row of the target.
//! * **Parquet** is written one row group at a time, columns encoded in
//!   parallel on the rayon pool. The compressed bytes per row of the row
//!   groups written so far size the next one; the last row group of a file is
//!   sized to what is left of the target, and if encoding shows it would
//!   overshoot by more than the tolerance it is encoded again with fewer rows
//!   (the rest is handed back as [`Written::leftover`]).
//!
//!   A row group that cannot be a file's last is encoded in the background
//!   while the caller goes on reading and buffering the next one, so parsing
//!   and encoding keep both kinds of work on the pool at once (encoding in the
//!   caller's thread left the pool idle while the largest column finished,
//!   and the readers stalled once their few chunks were decoded). A file's
//!   last row group is encoded in the caller's thread, so the file ends
//!   within the tolerance as before. Memory holds at most two row groups of
//!   Arrow data (one being encoded, one being buffered) and the encoded pages
//!   of one.

use std::io::{self, BufWriter, Write};
use std::ops::Range;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::arrow_writer::{
    compute_leaves, ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory,
};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use rayon::prelude::*;
use tessera_store::Location;
use tokio::io::AsyncWriteExt;
use tokio::runtime::Handle;

use crate::encode::CountingWriter;
use crate::error::{Error, Result};
use crate::format::{FileFormat, ParquetCodec, RecordLayout};

/// Where a file's bytes go: a local file, or a streaming (multipart) upload.
pub trait Sink: Write + Send {
    /// Flush everything and make the object durable (local: fsync; stores:
    /// complete the upload — the object appears only now).
    fn finish(self: Box<Self>) -> Result<()>;
}

struct LocalSink {
    file: BufWriter<std::fs::File>,
    url: String,
}

impl Write for LocalSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Sink for LocalSink {
    fn finish(self: Box<Self>) -> Result<()> {
        let url = self.url.clone();
        let f = self
            .file
            .into_inner()
            .map_err(|e| Error::io(&url, e.into_error()))?;
        f.sync_all().map_err(|e| Error::io(&url, e))
    }
}

struct StoreSink {
    rt: Handle,
    w: tessera_store::object_store::buffered::BufWriter,
    url: String,
}

impl Write for StoreSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.rt.block_on(self.w.write_all(buf))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Sink for StoreSink {
    fn finish(mut self: Box<Self>) -> Result<()> {
        let url = self.url.clone();
        self.rt
            .block_on(self.w.shutdown())
            .map_err(|e| Error::io(&url, e))
    }
}

/// Open a sink writing `loc` (parent folders are created on local disk).
pub fn open_sink(loc: &Location, rt: &Handle) -> Result<Box<dyn Sink>> {
    let url = loc.url();
    match loc.local_path() {
        Some(p) => {
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(&url, e))?;
            }
            let f = std::fs::File::create(&p).map_err(|e| Error::io(&url, e))?;
            Ok(Box::new(LocalSink {
                file: BufWriter::with_capacity(1 << 20, f),
                url,
            }))
        }
        None => Ok(Box::new(BufSink(BufWriter::with_capacity(
            1 << 20,
            StoreSink {
                rt: rt.clone(),
                w: loc.writer(),
                url,
            },
        )))),
    }
}

/// Batches the many small writes of encoders into few uploads.
struct BufSink(BufWriter<StoreSink>);

impl Write for BufSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl Sink for BufSink {
    fn finish(self: Box<Self>) -> Result<()> {
        let inner = self
            .0
            .into_inner()
            .map_err(|e| Error::io("(upload)", e.into_error()))?;
        Box::new(inner).finish()
    }
}

/// How [`FileWriter`]s write: built with `with_*` setters, then passed to
/// every [`FileWriter::create`] that should use it.
///
/// ```
/// use tessera_formats::{FileFormat, WriteOptions};
///
/// let opts = WriteOptions::new(FileFormat::from_extension("parquet").unwrap())
///     .with_target_size(256 << 20)
///     .with_row_group_bytes(8 << 20);
/// assert_eq!(opts.format().extension(), "parquet");
/// ```
#[derive(Debug, Clone)]
#[must_use = "options do nothing until passed to FileWriter::create"]
pub struct WriteOptions {
    format: FileFormat,
    target_size: Option<u64>,
    row_group_bytes: u64,
    max_row_group_rows: usize,
    tolerance: f64,
}

impl WriteOptions {
    /// Defaults for a format (text formats are written uncompressed): no
    /// target size, 16 MiB row groups of at most 1 Mi rows, 2 % tolerance.
    pub fn new(format: FileFormat) -> WriteOptions {
        WriteOptions {
            format,
            target_size: None,
            row_group_bytes: 16 << 20,
            max_row_group_rows: 1 << 20,
            tolerance: 0.02,
        }
    }

    /// End each file when it reaches this many bytes (default: never).
    pub fn with_target_size(mut self, bytes: u64) -> Self {
        self.target_size = Some(bytes);
        self
    }

    /// Target compressed size of a Parquet row group.
    pub fn with_row_group_bytes(mut self, bytes: u64) -> Self {
        self.row_group_bytes = bytes;
        self
    }

    /// Most rows in a Parquet row group.
    pub fn with_max_row_group_rows(mut self, rows: usize) -> Self {
        self.max_row_group_rows = rows;
        self
    }

    /// Allowed overshoot of the target size, as a fraction (e.g. 0.02).
    pub fn with_tolerance(mut self, fraction: f64) -> Self {
        self.tolerance = fraction;
        self
    }

    /// The format files are written in.
    pub fn format(&self) -> FileFormat {
        self.format
    }
}

/// What a finished file holds.
#[derive(Debug, Default)]
pub struct Written {
    /// Rows in the file.
    pub rows: u64,
    /// Bytes of the file.
    pub bytes: u64,
    /// Rows that were taken but did not fit (Parquet only, rare): they go first into the next file.
    pub leftover: Vec<RecordBatch>,
}

/// One output file being written. See the module docs.
pub struct FileWriter {
    inner: Inner,
    rows: u64,
    full: bool,
    url: String,
    opts: WriteOptions,
}

enum Inner {
    Parquet(Box<ParquetState>),
    Text(TextState),
}

impl FileWriter {
    /// Start a file of `schema` on `sink`; `url` names it in errors.
    pub fn create(
        sink: Box<dyn Sink>,
        schema: SchemaRef,
        opts: &WriteOptions,
        url: &str,
    ) -> Result<FileWriter> {
        if !opts.format.writable() {
            return Err(Error::Unsupported(format!(
                "tessera does not write {} files (write csv, tsv, jsonl or parquet)",
                opts.format
            )));
        }
        let inner = match opts.format.layout {
            RecordLayout::Parquet => {
                Inner::Parquet(Box::new(ParquetState::new(sink, schema, opts, url)?))
            }
            _ => Inner::Text(TextState {
                sink,
                schema,
                written: 0,
                header_done: false,
                bpr: None,
            }),
        };
        Ok(FileWriter {
            inner,
            rows: 0,
            full: false,
            url: url.to_string(),
            opts: opts.clone(),
        })
    }

    /// Whether the file has reached its target size and takes no more rows.
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// Rows taken so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes written so far (Parquet: row groups finished so far).
    pub fn bytes(&self) -> u64 {
        match &self.inner {
            Inner::Parquet(p) => p.writer.bytes_written() as u64,
            Inner::Text(t) => t.written,
        }
    }

    /// Take rows from the front of `batch`; returns how many were taken.
    /// Fewer than `batch.num_rows()` means the file is full.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<usize> {
        if self.full || batch.num_rows() == 0 {
            return Ok(0);
        }
        let taken = match &mut self.inner {
            Inner::Parquet(p) => p.write(batch, &self.opts, &mut self.full, &self.url)?,
            Inner::Text(t) => t.write(batch, &self.opts, &mut self.full, &self.url)?,
        };
        self.rows += taken as u64;
        Ok(taken)
    }

    /// Finish the file: flush buffered rows, write the footer, complete the upload.
    pub fn finish(self) -> Result<Written> {
        let url = self.url;
        match self.inner {
            Inner::Parquet(mut p) => {
                let mut full = self.full;
                p.flush(&self.opts, &mut full, &url)?;
                p.settle(&self.opts, &mut full, &url)?;
                let leftover = std::mem::take(&mut p.leftover);
                let left: u64 = leftover.iter().map(|b| b.num_rows() as u64).sum();
                let ParquetState { writer, .. } = *p;
                let sink = writer.into_inner().map_err(Error::parquet(&url))?;
                // into_inner flushed the footer through the tracked writer.
                let bytes = sink.bytes();
                Box::new(sink).finish()?;
                Ok(Written {
                    rows: self.rows - left,
                    bytes,
                    leftover,
                })
            }
            Inner::Text(mut t) => {
                if !t.header_done {
                    // An empty CSV still has its header.
                    t.write_header(&self.opts, &url)?;
                }
                let bytes = t.written;
                t.sink.finish()?;
                Ok(Written {
                    rows: self.rows,
                    bytes,
                    leftover: Vec::new(),
                })
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Parquet

struct ParquetState {
    writer: SerializedFileWriter<CountingWriter<Box<dyn Sink>>>,
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    /// Leaf columns of each field.
    leaves: Vec<Range<usize>>,
    buffered: Vec<RecordBatch>,
    buffered_rows: usize,
    /// Compressed bytes per row seen so far (None until a row group is written).
    bpr: Option<f64>,
    /// Arrow bytes per row of the data, a first guess before any row group.
    raw_bpr: Option<f64>,
    row_groups: usize,
    leftover: Vec<RecordBatch>,
    /// Footer bytes that do not depend on the row groups.
    footer_base: u64,
    /// The row group being encoded in the background.
    inflight: Option<Inflight>,
}

/// A row group handed to the pool: its rows (kept in case it must be
/// encoded again with fewer) and where its encoded columns will arrive.
struct Inflight {
    batches: Vec<RecordBatch>,
    rows: usize,
    done: std::sync::mpsc::Receiver<Result<(Vec<ArrowColumnChunk>, u64)>>,
}

fn compression(c: ParquetCodec) -> Compression {
    match c {
        ParquetCodec::Snappy => Compression::SNAPPY,
        ParquetCodec::Zstd => Compression::ZSTD(ZstdLevel::try_new(3).expect("level 3 is valid")),
        ParquetCodec::Gzip => Compression::GZIP(Default::default()),
        ParquetCodec::Uncompressed => Compression::UNCOMPRESSED,
    }
}

impl ParquetState {
    fn new(
        sink: Box<dyn Sink>,
        schema: SchemaRef,
        opts: &WriteOptions,
        url: &str,
    ) -> Result<ParquetState> {
        let perr = Error::parquet(url);
        let mut props = crate::encodings::with_type_encodings(
            WriterProperties::builder()
                .set_compression(compression(opts.format.parquet))
                .set_created_by(format!("tessera version {}", env!("CARGO_PKG_VERSION"))),
            &schema,
        )
        .build();
        parquet::arrow::add_encoded_arrow_schema_to_metadata(&schema, &mut props);
        let kv: u64 = props
            .key_value_metadata()
            .map(|kv| {
                kv.iter()
                    .map(|k| k.key.len() + k.value.as_deref().map_or(0, str::len))
                    .sum::<usize>() as u64
            })
            .unwrap_or(0);
        let pschema = parquet::arrow::ArrowSchemaConverter::new()
            .convert(&schema)
            .map_err(perr)?;
        let mut leaves = Vec::with_capacity(schema.fields().len());
        let mut start = 0;
        for i in 0..schema.fields().len() {
            let mut end = start;
            while end < pschema.num_columns() && pschema.get_column_root_idx(end) == i {
                end += 1;
            }
            leaves.push(start..end);
            start = end;
        }
        let leaves_total = pschema.num_columns();
        let writer = SerializedFileWriter::new(
            CountingWriter::new(sink),
            pschema.root_schema_ptr(),
            Arc::new(props),
        )
        .map_err(perr)?;
        let factory = ArrowRowGroupWriterFactory::new(&writer, schema.clone());
        Ok(ParquetState {
            writer,
            factory,
            schema,
            leaves,
            buffered: Vec::new(),
            buffered_rows: 0,
            bpr: None,
            raw_bpr: None,
            row_groups: 0,
            leftover: Vec::new(),
            footer_base: 128 + kv + 48 * leaves_total as u64,
            inflight: None,
        })
    }

    /// Bytes the footer will take: the schema (with the Arrow schema in
    /// its metadata) and, per row group and leaf column, its metadata and
    /// statistics.
    fn footer_estimate(&self) -> u64 {
        let leaves = self.leaves.last().map(|r| r.end).unwrap_or(0).max(1) as u64;
        self.footer_base + (self.row_groups as u64 + 1) * leaves * 120
    }

    /// Bytes still available in the file (None: no target). Exact when no
    /// row group is in flight; otherwise the one in flight counts with its
    /// expected size.
    fn room(&self, opts: &WriteOptions) -> Option<u64> {
        let inflight = match (&self.inflight, self.bpr.or(self.raw_bpr)) {
            (Some(i), Some(bpr)) => (i.rows as f64 * bpr) as u64,
            _ => 0,
        };
        opts.target_size.map(|t| {
            t.saturating_sub(self.writer.bytes_written() as u64 + self.footer_estimate() + inflight)
        })
    }

    fn write(
        &mut self,
        batch: &RecordBatch,
        opts: &WriteOptions,
        full: &mut bool,
        url: &str,
    ) -> Result<usize> {
        if self.raw_bpr.is_none() {
            let raw: usize = batch
                .columns()
                .iter()
                .map(|c| c.to_data().get_slice_memory_size().unwrap_or(0))
                .sum();
            self.raw_bpr = Some((raw as f64 / batch.num_rows() as f64).max(1.0));
        }
        let mut taken = 0;
        while taken < batch.num_rows() && !*full {
            let goal_bytes = match self.room(opts) {
                Some(room) => room.min(opts.row_group_bytes),
                None => opts.row_group_bytes,
            };
            let bpr = self.bpr.or(self.raw_bpr).unwrap_or(1.0);
            let goal_rows = ((goal_bytes as f64 / bpr) as usize).clamp(1, opts.max_row_group_rows);
            let want = goal_rows.saturating_sub(self.buffered_rows).max(1);
            let take = want.min(batch.num_rows() - taken);
            self.buffered.push(batch.slice(taken, take));
            self.buffered_rows += take;
            taken += take;
            if self.buffered_rows >= goal_rows {
                self.flush(opts, full, url)?;
            }
        }
        Ok(taken)
    }

    /// Column writers for the next row group.
    fn column_writers(&self, url: &str) -> Result<Vec<ArrowColumnWriter>> {
        self.factory
            .create_column_writers(self.row_groups)
            .map_err(Error::parquet(url))
    }

    /// Encode `batches` as one row group in the caller's thread (columns in parallel).
    fn encode(&self, batches: &[RecordBatch], url: &str) -> Result<(Vec<ArrowColumnChunk>, u64)> {
        encode(
            self.column_writers(url)?,
            &self.leaves,
            &self.schema,
            batches,
            url,
        )
    }

    /// Buffered rows become a row group: encoded in the background when
    /// it cannot be the file's last, else in the caller's thread.
    fn flush(&mut self, opts: &WriteOptions, full: &mut bool, url: &str) -> Result<()> {
        // The row group in flight first: after it the file's size is exact.
        self.settle(opts, full, url)?;
        if self.buffered_rows == 0 {
            return Ok(());
        }
        let batches = std::mem::take(&mut self.buffered);
        let rows = std::mem::take(&mut self.buffered_rows);
        if *full {
            // The row group before filled the file: these rows go to the next.
            self.leftover.extend(batches);
            return Ok(());
        }
        // In the background only when, with this row group written, room for
        // at least another would be left: then it cannot end the file.
        let expected = rows as f64 * self.bpr.or(self.raw_bpr).unwrap_or(1.0);
        let background = match self.room(opts) {
            None => true,
            Some(room) => {
                self.bpr.is_some() && room as f64 > expected + 2.0 * opts.row_group_bytes as f64
            }
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let (writers, leaves, schema) = (
            self.column_writers(url)?,
            self.leaves.clone(),
            self.schema.clone(),
        );
        let (rows_in, name) = (batches.clone(), url.to_string());
        let work = move || {
            let _ = tx.send(encode(writers, &leaves, &schema, &rows_in, &name));
        };
        if background {
            rayon::spawn(work);
        } else {
            work();
        }
        self.inflight = Some(Inflight {
            batches,
            rows,
            done: rx,
        });
        if !background {
            self.settle(opts, full, url)?;
        }
        Ok(())
    }

    /// Wait for the row group in flight and write it to the file (encoded
    /// again with fewer rows if it overshoots what is left of the target).
    fn settle(&mut self, opts: &WriteOptions, full: &mut bool, url: &str) -> Result<()> {
        let Some(inflight) = self.inflight.take() else {
            return Ok(());
        };
        let Inflight {
            mut batches,
            mut rows,
            done,
        } = inflight;
        let mut encoded = done.recv().unwrap_or_else(|_| {
            Err(Error::Internal(format!(
                "encoding a row group of {url} stopped without a result"
            )))
        })?;
        let room = self.room(opts);
        let (chunks, size) = loop {
            let (chunks, size) = encoded;
            match room {
                Some(room) if rows > 1 && size as f64 > room as f64 * (1.0 + opts.tolerance) => {
                    // Too big for what is left of the file: fewer rows.
                    let keep = ((rows as f64 * room as f64 / size as f64 * 0.98) as usize)
                        .clamp(1, rows - 1);
                    let (head, tail) = split_rows(batches, keep);
                    let mut tail = tail;
                    tail.append(&mut self.leftover);
                    self.leftover = tail;
                    batches = head;
                    rows = keep;
                    *full = true;
                    encoded = self.encode(&batches, url)?;
                }
                _ => break (chunks, size),
            }
        };
        let perr = Error::parquet(url);
        let mut rg = self.writer.next_row_group().map_err(perr)?;
        for c in chunks {
            c.append_to_row_group(&mut rg).map_err(perr)?;
        }
        rg.close().map_err(perr)?;
        self.row_groups += 1;
        let this = size as f64 / rows as f64;
        self.bpr = Some(match self.bpr {
            Some(b) => 0.5 * b + 0.5 * this,
            None => this,
        });
        if let (Some(t), Some(room)) = (opts.target_size, self.room(opts)) {
            // Full when what is left is under 1 % of the target or one row.
            if (room as f64) < t as f64 * 0.01 || (room as f64) < this {
                *full = true;
            }
        }
        Ok(())
    }
}

/// Encode `batches` as one row group with `writers` (one per leaf column),
/// the columns in parallel; returns the chunks and their compressed size.
fn encode(
    writers: Vec<ArrowColumnWriter>,
    leaves: &[Range<usize>],
    schema: &SchemaRef,
    batches: &[RecordBatch],
    url: &str,
) -> Result<(Vec<ArrowColumnChunk>, u64)> {
    let perr = Error::parquet(url);
    let mut writers = writers;
    let mut groups = Vec::with_capacity(leaves.len());
    for r in leaves.iter().rev() {
        groups.push(writers.split_off(r.start));
    }
    groups.reverse();
    let chunks: Vec<Vec<ArrowColumnChunk>> = groups
        .into_par_iter()
        .enumerate()
        .map(|(c, mut ws)| {
            let field = schema.field(c);
            for b in batches {
                let leaves = compute_leaves(field, b.column(c)).map_err(perr)?;
                for (w, leaf) in ws.iter_mut().zip(leaves) {
                    w.write(&leaf).map_err(perr)?;
                }
            }
            ws.into_iter()
                .map(|w| w.close().map_err(perr))
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<Vec<_>>>()?;
    let chunks: Vec<ArrowColumnChunk> = chunks.into_iter().flatten().collect();
    let size = chunks
        .iter()
        .map(|c| c.close().metadata.compressed_size() as u64)
        .sum();
    Ok((chunks, size))
}

/// Split batches after `keep` rows.
fn split_rows(batches: Vec<RecordBatch>, keep: usize) -> (Vec<RecordBatch>, Vec<RecordBatch>) {
    let mut head = Vec::new();
    let mut tail = Vec::new();
    let mut left = keep;
    for b in batches {
        if left >= b.num_rows() {
            left -= b.num_rows();
            head.push(b);
        } else if left > 0 {
            head.push(b.slice(0, left));
            tail.push(b.slice(left, b.num_rows() - left));
            left = 0;
        } else {
            tail.push(b);
        }
    }
    (head, tail)
}

// ---------------------------------------------------------------------------
// Text

struct TextState {
    sink: Box<dyn Sink>,
    schema: SchemaRef,
    written: u64,
    header_done: bool,
    /// Bytes per row seen so far.
    bpr: Option<f64>,
}

impl TextState {
    fn format(
        &mut self,
        batch: &RecordBatch,
        opts: &WriteOptions,
        header: bool,
        url: &str,
    ) -> Result<Vec<u8>> {
        let mut buf =
            Vec::with_capacity(batch.num_rows() * self.bpr.unwrap_or(64.0) as usize + 256);
        let aerr = Error::arrow(url);
        match opts.format.layout {
            RecordLayout::Jsonl => {
                let mut w = arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, arrow::json::writer::LineDelimited>(&mut buf);
                w.write(batch).map_err(aerr)?;
                w.finish().map_err(aerr)?;
            }
            _ => {
                let mut w = arrow::csv::WriterBuilder::new()
                    .with_header(header)
                    .with_delimiter(opts.format.delimiter())
                    .build(&mut buf);
                w.write(batch).map_err(aerr)?;
            }
        }
        Ok(buf)
    }

    fn write_header(&mut self, opts: &WriteOptions, url: &str) -> Result<()> {
        self.header_done = true;
        if opts.format.layout == RecordLayout::Jsonl {
            return Ok(());
        }
        let buf = self.format(
            &RecordBatch::new_empty(self.schema.clone()),
            opts,
            true,
            url,
        )?;
        self.sink.write_all(&buf).map_err(|e| Error::io(url, e))?;
        self.written += buf.len() as u64;
        Ok(())
    }

    fn write(
        &mut self,
        batch: &RecordBatch,
        opts: &WriteOptions,
        full: &mut bool,
        url: &str,
    ) -> Result<usize> {
        let header = !self.header_done && opts.format.layout != RecordLayout::Jsonl;
        let mut taken = 0;
        let n = batch.num_rows();
        let mut first = header;
        while taken < n && !*full {
            let left = n - taken;
            let mut take = match (opts.target_size, self.bpr) {
                (Some(t), Some(b)) => {
                    ((t.saturating_sub(self.written) as f64 / b) as usize).clamp(1, left)
                }
                (Some(_), None) => left.min(256),
                (None, _) => left,
            };
            let buf = loop {
                let buf = self.format(&batch.slice(taken, take), opts, first, url)?;
                match opts.target_size {
                    Some(t)
                        if take > 1
                            && (self.written + buf.len() as u64) as f64
                                > t as f64 * (1.0 + opts.tolerance / 2.0) =>
                    {
                        take = (take / 2).max(1);
                    }
                    _ => break buf,
                }
            };
            self.sink.write_all(&buf).map_err(|e| Error::io(url, e))?;
            self.written += buf.len() as u64;
            self.header_done = true;
            first = false;
            taken += take;
            let this = buf.len() as f64 / take as f64;
            self.bpr = Some(match self.bpr {
                Some(b) => 0.8 * b + 0.2 * this,
                None => this,
            });
            if let Some(t) = opts.target_size {
                if (t.saturating_sub(self.written) as f64) < self.bpr.unwrap_or(1.0) {
                    *full = true;
                }
            }
        }
        Ok(taken)
    }
}

/// Write all `batches` to one file at `loc` (no size target); returns what was written.
pub fn write_file(
    loc: &Location,
    schema: SchemaRef,
    batches: &[RecordBatch],
    format: FileFormat,
    rt: &Handle,
) -> Result<Written> {
    let sink = open_sink(loc, rt)?;
    let mut w = FileWriter::create(sink, schema, &WriteOptions::new(format), &loc.url())?;
    for b in batches {
        w.write(b)?;
    }
    w.finish()
}

/// Total rows of batches.
pub fn count_rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}

//! Query results as bytes: a JSON array of row objects, CSV with a header
//! line, an Arrow IPC stream or a Parquet file, encoded batch by batch so
//! that a large result is never held whole (Parquet is buffered per row
//! group by its writer). The server answers with these and the CLI writes
//! them, so both give the same bytes.

use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::error::{Error, Result};
use crate::write::Sink;

/// How a query result is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResultFormat {
    /// A JSON array of objects, one per row; nulls written as `null`.
    Json,
    /// CSV with a header line (also when there are no rows).
    Csv,
    /// An Arrow IPC stream.
    Arrow,
    /// A Parquet file.
    Parquet,
}

impl ResultFormat {
    /// The format's name: `json`, `csv`, `arrow` or `parquet`.
    pub fn name(self) -> &'static str {
        match self {
            ResultFormat::Json => "json",
            ResultFormat::Csv => "csv",
            ResultFormat::Arrow => "arrow",
            ResultFormat::Parquet => "parquet",
        }
    }
}

impl fmt::Display for ResultFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ResultFormat {
    type Err = Error;

    /// `json`, `csv`, `arrow` (or `ipc`) and `parquet`, in any case.
    fn from_str(s: &str) -> Result<ResultFormat> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(ResultFormat::Json),
            "csv" => Ok(ResultFormat::Csv),
            "arrow" | "ipc" => Ok(ResultFormat::Arrow),
            "parquet" => Ok(ResultFormat::Parquet),
            _ => Err(Error::UnknownFormat {
                name: s.to_string(),
                expected: "json, csv, arrow or parquet".into(),
            }),
        }
    }
}

/// A writer that counts the bytes written through it.
#[derive(Debug)]
pub struct CountingWriter<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> CountingWriter<W> {
    /// Count what goes to `inner`.
    pub fn new(inner: W) -> CountingWriter<W> {
        CountingWriter { inner, bytes: 0 }
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The inner writer.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf)?;
        self.bytes += buf.len() as u64;
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Sink for CountingWriter<Box<dyn Sink>> {
    fn finish(self: Box<Self>) -> Result<()> {
        self.inner.finish()
    }
}

/// Encodes a result batch by batch into a writer.
///
/// ```
/// use std::sync::Arc;
/// use arrow::array::{Int64Array, RecordBatch, StringArray};
/// use tessera_formats::{ResultEncoder, ResultFormat};
///
/// let batch = RecordBatch::try_from_iter([
///     ("id", Arc::new(Int64Array::from(vec![1, 2])) as _),
///     ("name", Arc::new(StringArray::from(vec![Some("a"), None])) as _),
/// ])
/// .unwrap();
/// let mut enc = ResultEncoder::new(ResultFormat::Json, batch.schema(), Vec::new())?;
/// enc.write(&batch)?;
/// assert_eq!(enc.finish()?, br#"[{"id":1,"name":"a"},{"id":2,"name":null}]"#);
///
/// let mut enc = ResultEncoder::new(ResultFormat::Json, batch.schema(), Vec::new())?
///     .with_explicit_nulls(false);
/// enc.write(&batch)?;
/// assert_eq!(enc.finish()?, br#"[{"id":1,"name":"a"},{"id":2}]"#);
///
/// let mut enc = ResultEncoder::new(ResultFormat::Csv, batch.schema(), Vec::new())?;
/// enc.write(&batch)?;
/// assert_eq!(enc.finish()?, b"id,name\n1,a\n2,\n");
/// # Ok::<(), tessera_formats::Error>(())
/// ```
#[must_use = "an encoder writes only what it is given, and must be finished"]
pub struct ResultEncoder<W: Write + Send> {
    schema: SchemaRef,
    explicit_nulls: bool,
    state: State<W>,
}

enum State<W: Write + Send> {
    Json { out: W, first: bool },
    Csv { out: W, header: bool },
    Arrow(Box<arrow::ipc::writer::StreamWriter<W>>),
    Parquet(Box<parquet::arrow::ArrowWriter<W>>),
}

/// Encoding errors name the result rather than an object.
const RESULT: &str = "(result)";

impl<W: Write + Send> ResultEncoder<W> {
    /// An encoder of rows of `schema` in `format` into `out`; the start
    /// of the output (the JSON bracket, the Arrow schema, the Parquet magic)
    /// is written at once.
    pub fn new(format: ResultFormat, schema: SchemaRef, mut out: W) -> Result<ResultEncoder<W>> {
        let state = match format {
            ResultFormat::Json => {
                out.write_all(b"[").map_err(|e| Error::io(RESULT, e))?;
                State::Json { out, first: true }
            }
            ResultFormat::Csv => State::Csv { out, header: true },
            ResultFormat::Arrow => State::Arrow(Box::new(
                arrow::ipc::writer::StreamWriter::try_new(out, &schema)
                    .map_err(Error::arrow(RESULT))?,
            )),
            ResultFormat::Parquet => State::Parquet(Box::new(
                parquet::arrow::ArrowWriter::try_new(out, schema.clone(), None)
                    .map_err(Error::parquet(RESULT))?,
            )),
        };
        Ok(ResultEncoder {
            schema,
            explicit_nulls: true,
            state,
        })
    }

    /// JSON only: write a null value as `"column":null` (`true`, the
    /// default) or leave its key out (`false`).
    pub fn with_explicit_nulls(mut self, explicit: bool) -> Self {
        self.explicit_nulls = explicit;
        self
    }

    /// Encode one batch (of the encoder's schema).
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let aerr = Error::arrow(RESULT);
        match &mut self.state {
            State::Json { out, first } => {
                if batch.num_rows() == 0 {
                    return Ok(());
                }
                let mut buf = Vec::new();
                let mut w = arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(self.explicit_nulls)
                    .build::<_, arrow::json::writer::LineDelimited>(&mut buf);
                w.write(batch).map_err(aerr)?;
                w.finish().map_err(aerr)?;
                // One object per line, and JSON strings never hold a raw
                // newline: the newlines become the commas of the array.
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                }
                for c in buf.iter_mut() {
                    if *c == b'\n' {
                        *c = b',';
                    }
                }
                if !*first {
                    out.write_all(b",").map_err(|e| Error::io(RESULT, e))?;
                }
                *first = false;
                out.write_all(&buf).map_err(|e| Error::io(RESULT, e))
            }
            State::Csv { out, header } => {
                let mut w = arrow::csv::WriterBuilder::new()
                    .with_header(*header)
                    .build(&mut *out);
                w.write(batch).map_err(aerr)?;
                *header = false;
                Ok(())
            }
            State::Arrow(w) => w.write(batch).map_err(aerr),
            State::Parquet(w) => w.write(batch).map_err(Error::parquet(RESULT)),
        }
    }

    /// The bytes written so far are in here; take them out between batches
    /// to send a result while it is encoded.
    pub fn get_mut(&mut self) -> &mut W {
        match &mut self.state {
            State::Json { out, .. } | State::Csv { out, .. } => out,
            State::Arrow(w) => w.get_mut(),
            State::Parquet(w) => w.inner_mut(),
        }
    }

    /// End the result (the closing bracket, the CSV header of an empty
    /// result, the Arrow end of stream, the Parquet footer) and return the
    /// writer.
    pub fn finish(self) -> Result<W> {
        match self.state {
            State::Json { mut out, .. } => {
                out.write_all(b"]").map_err(|e| Error::io(RESULT, e))?;
                Ok(out)
            }
            State::Csv { mut out, header } => {
                if header {
                    // No rows: still give the header line.
                    arrow::csv::WriterBuilder::new()
                        .with_header(true)
                        .build(&mut out)
                        .write(&RecordBatch::new_empty(self.schema.clone()))
                        .map_err(Error::arrow(RESULT))?;
                }
                Ok(out)
            }
            State::Arrow(mut w) => {
                w.finish().map_err(Error::arrow(RESULT))?;
                w.into_inner().map_err(Error::arrow(RESULT))
            }
            State::Parquet(w) => w.into_inner().map_err(Error::parquet(RESULT)),
        }
    }
}

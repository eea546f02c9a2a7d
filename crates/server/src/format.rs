//! Result formats: JSON (default), CSV, Arrow IPC stream and Parquet,
//! chosen by `format=` or the `Accept` header. Streams are encoded batch by
//! batch, so a large result is never held whole (Parquet is buffered per
//! row group by its writer).

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use bytes::Bytes;
use deltalake::datafusion::physical_plan::SendableRecordBatchStream;
use futures::StreamExt;

use crate::error::{ApiError, ApiResult};

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutFormat {
    /// `application/json`.
    Json,
    /// `text/csv` with a header line.
    Csv,
    /// `application/vnd.apache.arrow.stream`.
    Arrow,
    /// `application/vnd.apache.parquet`.
    Parquet,
}

impl OutFormat {
    /// From `format=` first, then `Accept`; JSON when neither says.
    pub fn negotiate(param: Option<&str>, headers: &HeaderMap) -> ApiResult<OutFormat> {
        if let Some(p) = param {
            return match p.to_ascii_lowercase().as_str() {
                "json" => Ok(OutFormat::Json),
                "csv" => Ok(OutFormat::Csv),
                "arrow" | "ipc" => Ok(OutFormat::Arrow),
                "parquet" => Ok(OutFormat::Parquet),
                _ => Err(ApiError::bad(format!(
                    "format '{}': use json, csv, arrow or parquet",
                    truncate(p, 40)
                ))),
            };
        }
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        for part in accept.split(',') {
            let mime = part.split(';').next().unwrap_or("").trim();
            match mime {
                "application/json" => return Ok(OutFormat::Json),
                "text/csv" => return Ok(OutFormat::Csv),
                "application/vnd.apache.arrow.stream" => return Ok(OutFormat::Arrow),
                "application/vnd.apache.parquet" | "application/x-parquet" => {
                    return Ok(OutFormat::Parquet)
                }
                _ => {}
            }
        }
        Ok(OutFormat::Json)
    }

    /// The Content-Type of this format.
    pub fn content_type(self) -> &'static str {
        match self {
            OutFormat::Json => "application/json",
            OutFormat::Csv => "text/csv; charset=utf-8",
            OutFormat::Arrow => "application/vnd.apache.arrow.stream",
            OutFormat::Parquet => "application/vnd.apache.parquet",
        }
    }
}

/// Cut a user-supplied string for an error message.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn arrow_err(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(format!("cannot encode the result: {e}"))
}

/// Rows as a JSON array of objects (nulls written as `null`).
pub fn json_rows(batches: &[RecordBatch]) -> ApiResult<Vec<u8>> {
    let mut out = Vec::with_capacity(256);
    out.push(b'[');
    let mut first = true;
    for b in batches {
        append_json_rows(&mut out, b, &mut first)?;
    }
    out.push(b']');
    Ok(out)
}

fn append_json_rows(out: &mut Vec<u8>, b: &RecordBatch, first: &mut bool) -> ApiResult<()> {
    if b.num_rows() == 0 {
        return Ok(());
    }
    let mut buf = Vec::new();
    {
        let mut w = arrow::json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, arrow::json::writer::LineDelimited>(&mut buf);
        w.write(b).map_err(arrow_err)?;
        w.finish().map_err(arrow_err)?;
    }
    // One object per line, and JSON strings never hold a raw newline.
    if buf.last() == Some(&b'\n') {
        buf.pop();
    }
    for c in buf.iter_mut() {
        if *c == b'\n' {
            *c = b',';
        }
    }
    if !*first {
        out.push(b',');
    }
    *first = false;
    out.extend_from_slice(&buf);
    Ok(())
}

/// Encode finished batches in a non-JSON format.
pub fn encode_batches(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    format: OutFormat,
) -> ApiResult<Vec<u8>> {
    let mut out = Vec::new();
    match format {
        OutFormat::Json => return json_rows(batches),
        OutFormat::Csv => {
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut out);
            if batches.is_empty() {
                w.write(&RecordBatch::new_empty(schema.clone()))
                    .map_err(arrow_err)?;
            }
            for b in batches {
                w.write(b).map_err(arrow_err)?;
            }
        }
        OutFormat::Arrow => {
            let mut w =
                arrow::ipc::writer::StreamWriter::try_new(&mut out, schema).map_err(arrow_err)?;
            for b in batches {
                w.write(b).map_err(arrow_err)?;
            }
            w.finish().map_err(arrow_err)?;
        }
        OutFormat::Parquet => {
            let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, schema.clone(), None)
                .map_err(arrow_err)?;
            for b in batches {
                w.write(b).map_err(arrow_err)?;
            }
            w.close().map_err(arrow_err)?;
        }
    }
    Ok(out)
}

/// A response whose body is `body` with the format's content type.
pub fn response(format: OutFormat, body: impl Into<Body>) -> Response {
    let mut r = Response::new(body.into());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    r
}

/// How a streamed result ends and what it holds on to.
pub struct StreamOptions {
    /// Stop with an error once this instant has passed.
    pub deadline: Option<std::time::Instant>,
    /// A query slot, released when the stream ends.
    pub permit: Option<tokio::sync::OwnedSemaphorePermit>,
    /// JSON only: fields appended after `"data":[…]`, given the row count.
    pub tail: Box<dyn FnOnce(u64) -> String + Send>,
}

/// Stream a result. JSON is wrapped as `{"data":[…], <tail>}`. The first
/// batch is awaited before the response starts, so a query that fails or
/// times out early still gets a proper status; later failures end the body
/// early (the client sees a truncated response).
pub async fn stream_response(
    mut stream: SendableRecordBatchStream,
    format: OutFormat,
    opts: StreamOptions,
) -> ApiResult<Response> {
    let first = match opts.deadline {
        Some(d) => tokio::time::timeout_at(d.into(), stream.next())
            .await
            .map_err(|_| {
                ApiError::Timeout("the query took longer than the request timeout".into())
            })?,
        None => stream.next().await,
    };
    let first = first.transpose().map_err(execution_error)?;
    let schema = stream.schema();
    let body = async_stream(first, stream, schema, format, opts);
    Ok(response(format, Body::from_stream(body)))
}

/// A failure while running a query: the store's fault (502) or the
/// query's (400: a bad cast, a division by zero, …).
pub fn execution_error(e: deltalake::datafusion::error::DataFusionError) -> ApiError {
    let s = e.to_string();
    let s = truncate(&s, 600);
    if s.contains("Object Store") || s.contains("IO error") || s.contains("io error") {
        ApiError::Store(s)
    } else {
        ApiError::BadRequest(s)
    }
}

type Chunk = Result<Bytes, std::io::Error>;

fn async_stream(
    first_batch: Option<RecordBatch>,
    mut stream: SendableRecordBatchStream,
    schema: SchemaRef,
    format: OutFormat,
    opts: StreamOptions,
) -> futures::stream::BoxStream<'static, Chunk> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(4);
    tokio::spawn(async move {
        let StreamOptions {
            deadline,
            permit,
            tail,
        } = opts;
        let _permit = permit;
        let io = |e: String| std::io::Error::other(e);
        let mut rows = 0u64;
        let mut first = true;
        let mut enc = Encoder::new(format, &schema);
        if tx.send(Ok(enc.start())).await.is_err() {
            return;
        }
        let mut pending = first_batch.map(Ok);
        loop {
            let next = match pending.take() {
                Some(b) => Some(b),
                None => match deadline {
                    Some(d) => match tokio::time::timeout_at(d.into(), stream.next()).await {
                        Ok(n) => n,
                        Err(_) => {
                            let _ = tx
                                .send(Err(io("the query ran past the request timeout".into())))
                                .await;
                            return;
                        }
                    },
                    None => stream.next().await,
                },
            };
            let Some(b) = next else { break };
            let chunk = match b {
                Ok(b) => {
                    rows += b.num_rows() as u64;
                    enc.batch(&b, &mut first).map_err(|e| io(e.to_string()))
                }
                Err(e) => {
                    tracing::warn!("result stream failed: {e}");
                    Err(io(e.to_string()))
                }
            };
            let stop = chunk.is_err();
            if tx.send(chunk).await.is_err() || stop {
                return;
            }
        }
        let end = enc.finish(rows, tail).map_err(|e| io(e.to_string()));
        let _ = tx.send(end).await;
    });
    tokio_stream(rx)
}

fn tokio_stream(
    mut rx: tokio::sync::mpsc::Receiver<Chunk>,
) -> futures::stream::BoxStream<'static, Chunk> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

enum Encoder {
    Json,
    Csv(bool, SchemaRef),
    Arrow(arrow::ipc::writer::StreamWriter<Vec<u8>>),
    Parquet(parquet::arrow::ArrowWriter<Vec<u8>>),
}

impl Encoder {
    fn new(format: OutFormat, schema: &SchemaRef) -> Encoder {
        match format {
            OutFormat::Json => Encoder::Json,
            OutFormat::Csv => Encoder::Csv(true, schema.clone()),
            OutFormat::Arrow => match arrow::ipc::writer::StreamWriter::try_new(Vec::new(), schema)
            {
                Ok(w) => Encoder::Arrow(w),
                Err(_) => Encoder::Json,
            },
            OutFormat::Parquet => {
                match parquet::arrow::ArrowWriter::try_new(Vec::new(), schema.clone(), None) {
                    Ok(w) => Encoder::Parquet(w),
                    Err(_) => Encoder::Json,
                }
            }
        }
    }

    fn start(&mut self) -> Bytes {
        match self {
            Encoder::Json => Bytes::from_static(b"{\"data\":["),
            Encoder::Arrow(w) => Bytes::from(std::mem::take(w.get_mut())),
            _ => Bytes::new(),
        }
    }

    fn batch(&mut self, b: &RecordBatch, first: &mut bool) -> ApiResult<Bytes> {
        match self {
            Encoder::Json => {
                let mut out = Vec::new();
                append_json_rows(&mut out, b, first)?;
                Ok(out.into())
            }
            Encoder::Csv(header, _) => {
                let mut out = Vec::new();
                let mut w = arrow::csv::WriterBuilder::new()
                    .with_header(*header)
                    .build(&mut out);
                w.write(b).map_err(arrow_err)?;
                drop(w);
                *header = false;
                Ok(out.into())
            }
            Encoder::Arrow(w) => {
                w.write(b).map_err(arrow_err)?;
                Ok(std::mem::take(w.get_mut()).into())
            }
            Encoder::Parquet(w) => {
                w.write(b).map_err(arrow_err)?;
                Ok(std::mem::take(w.inner_mut()).into())
            }
        }
    }

    fn finish(self, rows: u64, tail: Box<dyn FnOnce(u64) -> String + Send>) -> ApiResult<Bytes> {
        match self {
            Encoder::Json => {
                let t = tail(rows);
                Ok(if t.is_empty() {
                    Bytes::from_static(b"]}")
                } else {
                    format!("],{t}}}").into()
                })
            }
            Encoder::Csv(true, schema) => {
                // No rows: still give the header line.
                Ok(encode_batches(&schema, &[], OutFormat::Csv)?.into())
            }
            Encoder::Csv(false, _) => Ok(Bytes::new()),
            Encoder::Arrow(mut w) => {
                w.finish().map_err(arrow_err)?;
                Ok(w.into_inner().map_err(arrow_err)?.into())
            }
            Encoder::Parquet(w) => Ok(w.into_inner().map_err(arrow_err)?.into()),
        }
    }
}

//! Results over HTTP: the format (JSON by default, CSV, Arrow IPC stream or
//! Parquet) negotiated from `format=` or the `Accept` header, its content
//! type, and streamed responses. The bytes come from
//! [`tessera_formats::ResultEncoder`], batch by batch, so a large result is
//! never held whole (Parquet is buffered per row group by its writer).

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use bytes::Bytes;
use deltalake::datafusion::physical_plan::SendableRecordBatchStream;
use futures::StreamExt;
use tessera_formats::{ResultEncoder, ResultFormat};

use crate::error::{ApiError, ApiResult};

/// The result format asked for: `format=` first, then `Accept`; JSON when
/// neither says.
pub fn negotiate(param: Option<&str>, headers: &HeaderMap) -> ApiResult<ResultFormat> {
    if let Some(p) = param {
        return p.parse().map_err(|_| {
            ApiError::bad(format!(
                "format '{}': use json, csv, arrow or parquet",
                truncate(p, 40)
            ))
        });
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    for part in accept.split(',') {
        let mime = part.split(';').next().unwrap_or("").trim();
        match mime {
            "application/json" => return Ok(ResultFormat::Json),
            "text/csv" => return Ok(ResultFormat::Csv),
            "application/vnd.apache.arrow.stream" => return Ok(ResultFormat::Arrow),
            "application/vnd.apache.parquet" | "application/x-parquet" => {
                return Ok(ResultFormat::Parquet)
            }
            _ => {}
        }
    }
    Ok(ResultFormat::Json)
}

/// The Content-Type of a result format.
pub fn content_type(format: ResultFormat) -> &'static str {
    match format {
        ResultFormat::Json => "application/json",
        ResultFormat::Csv => "text/csv; charset=utf-8",
        ResultFormat::Arrow => "application/vnd.apache.arrow.stream",
        ResultFormat::Parquet => "application/vnd.apache.parquet",
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

fn encode_err(e: tessera_formats::Error) -> ApiError {
    ApiError::Internal(format!("cannot encode the result: {e}"))
}

/// Finished batches of `schema`, encoded whole.
pub fn encode(
    format: ResultFormat,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> ApiResult<Vec<u8>> {
    let mut enc = ResultEncoder::new(format, schema.clone(), Vec::new()).map_err(encode_err)?;
    for b in batches {
        enc.write(b).map_err(encode_err)?;
    }
    enc.finish().map_err(encode_err)
}

/// A response whose body is `body` with the format's content type.
pub fn response(format: ResultFormat, body: impl Into<Body>) -> Response {
    let mut r = Response::new(body.into());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(format)),
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
    format: ResultFormat,
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
    format: ResultFormat,
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
        // JSON is wrapped as {"data":[…], <tail>}.
        let json = format == ResultFormat::Json;
        let start = if json {
            b"{\"data\":".to_vec()
        } else {
            Vec::new()
        };
        let mut enc = match ResultEncoder::new(format, schema, start) {
            Ok(enc) => enc,
            Err(e) => {
                let _ = tx.send(Err(io(encode_err(e).to_string()))).await;
                return;
            }
        };
        if tx.send(Ok(take(&mut enc))).await.is_err() {
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
                    enc.write(&b)
                        .map(|()| take(&mut enc))
                        .map_err(|e| io(encode_err(e).to_string()))
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
        let end = enc
            .finish()
            .map(|mut out| {
                if json {
                    let t = tail(rows);
                    if !t.is_empty() {
                        out.push(b',');
                        out.extend_from_slice(t.as_bytes());
                    }
                    out.push(b'}');
                }
                Bytes::from(out)
            })
            .map_err(|e| io(encode_err(e).to_string()));
        let _ = tx.send(end).await;
    });
    tokio_stream(rx)
}

/// The bytes encoded so far.
fn take(enc: &mut ResultEncoder<Vec<u8>>) -> Bytes {
    Bytes::from(std::mem::take(enc.get_mut()))
}

fn tokio_stream(
    mut rx: tokio::sync::mpsc::Receiver<Chunk>,
) -> futures::stream::BoxStream<'static, Chunk> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

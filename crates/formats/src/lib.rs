//! # tessera-formats
//!
//! The data-file layer of tessera, shared by packing, datasets, the server
//! and the CLI: Arrow record batches in and out of CSV, TSV, JSON Lines and
//! Parquet files on any store, chosen by file extension, and query results
//! encoded as JSON, CSV, Arrow IPC or Parquet.
//!
//! * [`FileFormat`]: a format from a name (`part-1.csv.gz`, `t_0.zstd.parquet`);
//!   gzip and zstd text is decompressed on the fly.
//! * [`read()`]: a file as an iterator of batches of one table schema; text
//!   is cut at record boundaries (quote-aware for CSV) and parsed in parallel
//!   by the Arrow CSV and JSON decoders, with bounded memory.
//! * [`infer_schema`], [`parse_schema`] (a JSON schema file), [`merge_inferred`],
//!   [`conform`]: schemas inferred, declared and enforced, errors naming the
//!   columns.
//! * [`FileWriter`]: writes a file and stops at a target size measured on the
//!   real written bytes (Parquet row groups sized to land on the target,
//!   columns encoded in parallel).
//! * [`ResultEncoder`]: a query result, batch by batch, in a [`ResultFormat`]
//!   (the server's answers and the CLI's output are the same bytes);
//!   [`CountingWriter`] counts what goes through a writer.
//!
//! ## The dialect
//!
//! This crate is synchronous: what touches a store takes a tokio runtime
//! [`Handle`](tokio::runtime::Handle) and blocks on it, so call it from a
//! plain or blocking thread. Options are built the way every tessera
//! operation is: `new(required)`, then `with_x(value)` setters taking plain
//! values (not calling a setter is the default), and the operation runs in
//! one call that takes them ([`read()`], [`FileWriter::create`]).
//! Failures are one [`Error`], whose variants a program can match
//! ([`Error::InvalidRecord`] with the object, line and column,
//! [`Error::SchemaMismatch`] with every column at fault, …).
//!
//! ```
//! use std::sync::Arc;
//! use tessera_formats::{
//!     infer_schema, open_sink, read, Cast, FileFormat, FileWriter, ReadOptions, ResultEncoder,
//!     ResultFormat, WriteOptions,
//! };
//! use tessera_store::{Location, PublishMode, StoreOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let rt = tokio::runtime::Runtime::new()?;
//! let dir = rt.block_on(Location::open("memory://formats-doc/t", &StoreOptions::default()))?;
//! let src = dir.join("in.csv")?;
//! rt.block_on(src.publish("id,name\n1,\"a, b\"\n2,c\n", PublishMode::Overwrite))?;
//!
//! // Read: infer the schema from a sample, then stream the batches.
//! let csv = FileFormat::from_extension("csv")?;
//! let schema = Arc::new(infer_schema(&src, csv, 1 << 20, rt.handle())?.expect("rows"));
//! let opts = ReadOptions::new(rt.handle().clone()).with_cast(Cast::Lossless);
//! let batches = read(&src, csv, schema.clone(), &opts)?.collect::<Result<Vec<_>, _>>()?;
//!
//! // Write a Parquet file that ends at about 64 MiB.
//! let out = dir.join("out.parquet")?;
//! let opts = WriteOptions::new(FileFormat::from_extension("parquet")?)
//!     .with_target_size(64 << 20);
//! let mut w = FileWriter::create(open_sink(&out, rt.handle())?, schema.clone(), &opts, &out.url())?;
//! for b in &batches {
//!     w.write(b)?;
//! }
//! assert_eq!(w.finish()?.rows, 2);
//!
//! // Encode the rows as a query result.
//! let mut enc = ResultEncoder::new(ResultFormat::Csv, schema, Vec::new())?;
//! for b in &batches {
//!     enc.write(b)?;
//! }
//! assert_eq!(enc.finish()?, b"id,name\n1,\"a, b\"\n2,c\n");
//! # Ok(()) }
//! ```

mod encode;
pub mod encodings;
mod error;
mod format;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
#[allow(unsafe_code)] // SSE2 intrinsics find quotes and newlines 64 bytes at a time
mod read;
mod schema;
pub mod spool;
mod write;

pub use encode::{CountingWriter, ResultEncoder, ResultFormat};
pub use error::{ColumnMismatch, Error, Result};
pub use format::{Codec, FileFormat, ParquetCodec, RecordLayout};
pub use read::{infer_schema, open_bytes, parquet_schema, read, Batches, ReadOptions};
pub use schema::{
    check_append, conform, lossless, merge_inferred, nullable, parse_schema, parse_type, widen,
    Cast,
};
pub use write::{count_rows, open_sink, write_file, FileWriter, Sink, WriteOptions, Written};

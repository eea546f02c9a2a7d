//! # tessera-formats
//!
//! The data-file layer of tessera, shared by packing, datasets, the server
//! and slicing: Arrow record batches in and out of CSV, TSV, JSON Lines and
//! Parquet files on any store, chosen by file extension.
//!
//! * [`Format`]: a format from a name (`part-1.csv.gz`, `t_0.zstd.parquet`);
//!   gzip and zstd text is decompressed on the fly.
//! * [`read()`]: a file as an iterator of batches of one table schema; text
//!   is cut at record boundaries (quote-aware for CSV) and parsed in parallel
//!   by the Arrow CSV and JSON decoders, with bounded memory.
//! * [`infer_schema`], [`parse_schema`] (`--schema FILE`), [`merge_inferred`],
//!   [`conform`]: schemas inferred, declared and enforced, errors naming the
//!   columns.
//! * [`FileWriter`]: writes a file and stops at a target size measured on the
//!   real written bytes (Parquet row groups sized to land on the target,
//!   columns encoded in parallel).
//!
//! ```
//! use std::sync::Arc;
//! use tessera_formats::{read, infer_schema, open_sink, FileWriter, Format, ReadOptions, WriteOptions};
//! use tessera_store::{Location, StoreOptions, PublishMode};
//!
//! let rt = tokio::runtime::Runtime::new().unwrap();
//! let dir = rt.block_on(Location::open("memory://formats-doc/t", &StoreOptions::default())).unwrap();
//! let src = dir.join("in.csv").unwrap();
//! rt.block_on(src.publish("id,name\n1,\"a, b\"\n2,c\n", PublishMode::Overwrite)).unwrap();
//!
//! let csv = Format::from_name("in.csv").unwrap();
//! let schema = Arc::new(infer_schema(&src, csv, 1 << 20, rt.handle()).unwrap().unwrap());
//! let batches: Vec<_> = read(&src, csv, schema.clone(), &ReadOptions::new(rt.handle().clone()))
//!     .unwrap()
//!     .collect::<Result<_, _>>()
//!     .unwrap();
//!
//! let out = dir.join("out.parquet").unwrap();
//! let pq = Format::from_extension("parquet").unwrap();
//! let mut w = FileWriter::create(open_sink(&out, rt.handle()).unwrap(), schema, &WriteOptions::new(pq), &out.url()).unwrap();
//! for b in &batches {
//!     w.write(b).unwrap();
//! }
//! assert_eq!(w.finish().unwrap().rows, 2);
//! ```

pub mod encodings;
mod error;
mod format;
mod read;
mod schema;
mod write;

pub use error::{Error, Result};
pub use format::{Codec, Format, Layout, ParquetCodec};
pub use read::{infer_schema, open_bytes, parquet_schema, read, Batches, ReadOptions};
pub use schema::{
    check_append, conform, lossless, merge_inferred, nullable, parse_schema, parse_type, widen,
    Cast,
};
pub use write::{count_rows, open_sink, write_file, FileWriter, Sink, WriteOptions, Written};

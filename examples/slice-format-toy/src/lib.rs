//! # slice-format-toy
//!
//! An example of adding a slicing format to tessera from outside its
//! crates: a toy binary record format, `toy`, implemented with the public
//! [`SliceFormat`] trait and added to a [`Registry`] with
//! [`Registry::with_format`]. Nothing in `tessera-slice` knows it.
//!
//! A toy file is the magic `TOY1`, a little-endian `u32` record count, then
//! each record as a little-endian `u16` length and that many bytes. A slice
//! evaluates to a standalone toy file holding its records.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use slice_format_toy::{encode, ToyFormat};
//! use tessera_slice::{Registry, Strategy};
//! use tessera_store::{Location, PublishMode, StoreOptions};
//!
//! let records: Vec<Vec<u8>> = (0..100).map(|i| format!("record {i}").into_bytes()).collect();
//! let obj = Location::open("memory://toy-doc/data.toy", &StoreOptions::default()).await?;
//! obj.publish(encode(&records), PublishMode::Overwrite).await?;
//!
//! // Checkpoints at every record, so four slices are exactly 25 records each.
//! let formats = Registry::builtin().with_format(ToyFormat::default().with_spacing(1));
//! let index = formats.index(&obj).await?; // `toy` from the extension
//! let slices = formats.plan(&index, Strategy::Count(4))?;
//! assert_eq!(slices.len(), 4);
//! let first = formats.fetch(&slices[0], &obj).await?;
//! assert_eq!(slice_format_toy::decode(&first).unwrap(), records[..25].to_vec());
//! # Ok::<(), tessera_slice::Error>(())
//! # }).unwrap();
//! ```

use std::io::Write;

use serde::{Deserialize, Serialize};
use tessera_slice::{
    AnyIndex, AnySlice, BoxFuture, Error, IndexRequest, Result, SliceFormat, Strategy,
};
use tessera_store::Location;

const MAGIC: &[u8; 4] = b"TOY1";
const HEAD: u64 = 8;

/// The toy format; `spacing` is how many records apart the index places
/// its checkpoints (default 16).
#[derive(Debug, Clone, Copy)]
pub struct ToyFormat {
    spacing: u64,
}

impl Default for ToyFormat {
    fn default() -> Self {
        ToyFormat { spacing: 16 }
    }
}

impl ToyFormat {
    /// Checkpoints every `records` records (0 counts as 1).
    pub fn with_spacing(mut self, records: u64) -> Self {
        self.spacing = records.max(1);
        self
    }
}

/// The toy format's own index fields: the byte offset of every
/// `spacing`-th record, and where the records end.
#[derive(Debug, Serialize, Deserialize)]
struct ToyIndex {
    spacing: u64,
    offsets: Vec<u64>,
    end: u64,
}

/// The toy format's own slice fields: the records' byte range.
#[derive(Debug, Serialize, Deserialize)]
struct ToySlice {
    start: u64,
    end: u64,
}

/// Encode records as a toy file.
pub fn encode(records: &[Vec<u8>]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&(records.len() as u32).to_le_bytes());
    for r in records {
        out.extend_from_slice(&(r.len() as u16).to_le_bytes());
        out.extend_from_slice(r);
    }
    out
}

/// Decode a toy file into its records; `None` if it is not one.
pub fn decode(bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let n = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let mut at = &rest[4..];
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let len = u16::from_le_bytes(at.get(..2)?.try_into().ok()?) as usize;
        out.push(at.get(2..2 + len)?.to_vec());
        at = &at[2 + len..];
    }
    at.is_empty().then_some(out)
}

fn invalid(url: &str, message: String) -> Error {
    Error::InvalidFile {
        object: url.to_string(),
        format: "toy".into(),
        message,
    }
}

async fn index(spacing: u64, req: IndexRequest<'_>) -> Result<AnyIndex> {
    let url = req.object.url();
    let bytes = req.object.read().await?;
    (req.progress)(bytes.len() as u64);
    if bytes.len() < HEAD as usize || &bytes[..4] != MAGIC {
        return Err(invalid(&url, "no TOY1 header".into()));
    }
    let n = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as u64;
    let mut offsets = Vec::new();
    let mut at = HEAD;
    for i in 0..n {
        if i % spacing == 0 {
            offsets.push(at);
        }
        let len = bytes
            .get(at as usize..at as usize + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as u64)
            .ok_or_else(|| invalid(&url, format!("record {i} at byte {at}: truncated")))?;
        at += 2 + len;
        if at > bytes.len() as u64 {
            return Err(invalid(&url, format!("record {i}: truncated")));
        }
    }
    let detail = ToyIndex {
        spacing,
        offsets,
        end: at,
    };
    AnyIndex::new(req.object, req.meta, req.format, n, &detail)
}

fn plan(index: &AnyIndex, strategy: Strategy) -> Result<Vec<AnySlice>> {
    let d: ToyIndex = index.detail()?;
    let groups = d.offsets.len();
    if groups == 0 {
        return Ok(Vec::new());
    }
    // Slices start at checkpoints: cut the checkpoint list.
    let per = match strategy {
        Strategy::Count(c) if c > 0 => groups.div_ceil(c),
        Strategy::Records(r) if r > 0 => r.div_ceil(d.spacing) as usize,
        Strategy::Count(_) | Strategy::Records(_) => {
            return Err(Error::InvalidStrategy { strategy })
        }
        other => {
            return Err(Error::Unsupported {
                object: index.url.clone(),
                reason: format!(
                    "toy objects are cut by a count or a number of records, not {other}"
                ),
            })
        }
    };
    let starts: Vec<usize> = (0..groups).step_by(per.max(1)).collect();
    let total = starts.len();
    starts
        .iter()
        .enumerate()
        .map(|(i, &g)| {
            let next = starts.get(i + 1).copied();
            let first = g as u64 * d.spacing;
            let last = next.map_or(index.records, |n| n as u64 * d.spacing);
            let detail = ToySlice {
                start: d.offsets[g],
                end: next.map_or(d.end, |n| d.offsets[n]),
            };
            index.slice(i, total, first, last - first, &detail)
        })
        .collect()
}

async fn fetch(slice: &AnySlice, object: &Location, out: &mut (dyn Write + Send)) -> Result<u64> {
    let d: ToySlice = slice.detail()?;
    let body = slice.read_range(object, d.start, d.end).await?;
    let count = u32::try_from(slice.record_count)
        .map_err(|_| slice.invalid("more records than a toy file holds"))?;
    let io = |e| Error::Io {
        context: "writing the slice".into(),
        source: e,
    };
    out.write_all(MAGIC).map_err(io)?;
    out.write_all(&count.to_le_bytes()).map_err(io)?;
    out.write_all(&body).map_err(io)?;
    Ok(HEAD + body.len() as u64)
}

impl SliceFormat for ToyFormat {
    fn names(&self) -> &'static [&'static str] {
        &["toy"]
    }

    fn detect(&self, object_name: &str) -> Option<&'static str> {
        object_name.ends_with(".toy").then_some("toy")
    }

    fn index<'a>(&'a self, request: IndexRequest<'a>) -> BoxFuture<'a, Result<AnyIndex>> {
        Box::pin(index(self.spacing, request))
    }

    fn plan(&self, index: &AnyIndex, strategy: Strategy) -> Result<Vec<AnySlice>> {
        plan(index, strategy)
    }

    fn fetch<'a>(
        &'a self,
        slice: &'a AnySlice,
        object: &'a Location,
        out: &'a mut (dyn Write + Send),
    ) -> BoxFuture<'a, Result<u64>> {
        Box::pin(fetch(slice, object, out))
    }
}

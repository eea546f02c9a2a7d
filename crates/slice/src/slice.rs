//! Slice descriptors: planning them from an index, and fetching one.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::io::Write;
use std::pin::Pin;

use base64::Engine;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use tessera_store::{Location, StoreOptions};

use crate::error::{Error, Result};
use crate::format::{Compression, RecordFormat};
use crate::gz;
use crate::index::{Checkpoint, Index};
use crate::scan::{Event, Scanner};

/// The version of the slice descriptor format.
pub const SLICE_VERSION: u32 = 1;

/// Default size of one ranged GET when a slice is fetched
/// ([`FetchSlice::with_part_size`]).
pub const DEFAULT_PART_SIZE: u64 = 8 << 20;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Ranged GETs in flight per slice.
const PARALLEL_GETS: usize = 8;

/// How to cut an object into slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Strategy {
    /// About this many slices of even size.
    Count(usize),
    /// Slices of about this many (compressed) bytes.
    Bytes(u64),
    /// Slices of exactly this many records (the last may have fewer).
    Records(u64),
    /// Spatial formats: a grid of `columns` × `rows` cells over the
    /// object's extent (cells are half-open, so each record falls in
    /// exactly one; empty cells give no slice).
    Grid {
        /// Cells across (x).
        columns: u32,
        /// Cells down (y).
        rows: u32,
    },
    /// Formats with levels of detail or overviews: one level (0 is the
    /// coarsest level of a point cloud, the full resolution of a raster),
    /// cut into about `count` slices.
    Level {
        /// The level.
        level: u32,
        /// About this many slices of it.
        count: usize,
    },
    /// Time-ordered formats (MeasurementSets): slices of whole timestamps,
    /// each spanning at most this long (a timestamp longer apart from the
    /// slice's first starts the next slice).
    Interval(std::time::Duration),
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Strategy::Count(n) => write!(f, "{n} slices"),
            Strategy::Bytes(n) => write!(f, "slices of {n} bytes"),
            Strategy::Records(n) => write!(f, "slices of {n} records"),
            Strategy::Grid { columns, rows } => write!(f, "a {columns}x{rows} grid"),
            Strategy::Level { level, count } => write!(f, "level {level} (about {count} slices)"),
            Strategy::Interval(d) => write!(f, "slices of {} s of time", d.as_secs_f64()),
        }
    }
}

/// A half-open byte range of the object `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

/// Bytes a slice emits before its records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Prefix {
    /// The bytes themselves, base64.
    Inline {
        /// The bytes, base64.
        base64: String,
    },
    /// A byte range of the (uncompressed) object.
    Range {
        /// First byte.
        start: u64,
        /// One past the last byte.
        end: u64,
    },
}

/// How many records or bytes a slice emits once it reached its first record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Take {
    /// Exactly this many (uncompressed) bytes.
    Bytes(u64),
    /// Exactly this many records.
    Records(u64),
    /// Everything to the end of the object.
    All,
}

/// What decoding a slice's ranges needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decode {
    /// Uncompressed offset where the first range's data begins.
    pub start: u64,
    /// gzip: bits of the range's first byte that belong to the first block.
    #[serde(default)]
    pub bits: u8,
    /// gzip: the 32 KiB of output before `start` (raw deflate, base64);
    /// absent when the range starts with a gzip member header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// Decoded bytes to drop before the first record.
    #[serde(default)]
    pub skip_bytes: u64,
    /// Records to drop after that.
    #[serde(default)]
    pub skip_records: u64,
    /// What to emit.
    pub take: Take,
}

/// Where a FASTA slice starts inside a sequence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FastaPart {
    /// The sequence's name.
    pub sequence: String,
    /// Bases of the sequence before this slice's first base.
    pub base_offset: u64,
}

/// One self-contained slice: everything a worker needs to fetch and decode
/// its records, and no credentials (the worker's own are used).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slice {
    /// Descriptor format version ([`SLICE_VERSION`]).
    pub tessera_slice: u32,
    /// The object.
    pub url: String,
    /// Its ETag when indexed: fetching refuses a changed object.
    pub etag: Option<String>,
    /// Its size when indexed.
    pub size: u64,
    /// Record format.
    pub format: RecordFormat,
    /// Compression of the object.
    pub compression: Compression,
    /// This slice's number (0-based).
    pub slice: usize,
    /// How many slices the plan has.
    pub slices: usize,
    /// Number of the first record (FASTA: of the sequence the slice starts in).
    pub first_record: u64,
    /// Records that start in this slice.
    pub record_count: u64,
    /// Object bytes to read, in order.
    pub ranges: Vec<ByteRange>,
    /// Emitted before the records: the header (CSV/TSV/VCF) or the sequence's header line (FASTA part).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<Prefix>,
    /// How to decode the ranges.
    pub decode: Decode,
    /// FASTA: the slice starts inside this sequence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fasta: Option<FastaPart>,
}

/// Checkpoints usable as slice starts: one per distinct boundary, the one
/// closest before it (shortest decode).
fn boundaries(index: &Index) -> Vec<&Checkpoint> {
    let mut out: Vec<&Checkpoint> = Vec::with_capacity(index.checkpoints.len());
    for cp in &index.checkpoints {
        if cp.o < index.body_start() {
            continue;
        }
        match out.last_mut() {
            Some(last) if last.o == cp.o => *last = cp,
            _ => out.push(cp),
        }
    }
    out
}

/// What a checkpoint costs to reach: its position in the stored object.
fn cost(index: &Index, cp: &Checkpoint) -> u64 {
    match index.compression {
        Compression::None => cp.o,
        _ => cp.c,
    }
}

/// Plan slices from an index alone (no data is read); started by
/// [`Index::plan`], run by [`PlanSlices::run`].
///
/// The plan is a list of self-contained [`Slice`] descriptors that, fetched
/// in order, give every record of the object exactly once.
#[must_use = "planning does nothing until run() is called"]
#[derive(Debug, Clone, Copy)]
pub struct PlanSlices<'a> {
    index: &'a Index,
    strategy: Strategy,
}

impl<'a> PlanSlices<'a> {
    /// Plan slices of the object `index` describes, cut by `strategy`.
    pub fn new(index: &'a Index, strategy: Strategy) -> Self {
        PlanSlices { index, strategy }
    }

    /// Cut the object into slices. Fails with [`Error::InvalidStrategy`]
    /// for a zero count or size; an object without records has no slices.
    pub fn run(self) -> Result<Vec<Slice>> {
        plan(self.index, self.strategy)
    }
}

fn plan(index: &Index, strategy: Strategy) -> Result<Vec<Slice>> {
    let bounds = boundaries(index);
    if bounds.is_empty() {
        return Ok(Vec::new());
    }
    let mut slices = match strategy {
        Strategy::Count(0) | Strategy::Bytes(0) | Strategy::Records(0) => {
            return Err(Error::InvalidStrategy { strategy })
        }
        Strategy::Count(n) => {
            let c0 = cost(index, bounds[0]);
            let span = index.size.saturating_sub(c0);
            let mut cuts = vec![0usize];
            for i in 1..n as u64 {
                let target = c0 + ((span as u128 * i as u128) / n as u128) as u64;
                let j = nearest(index, &bounds, target);
                if j > *cuts.last().unwrap() {
                    cuts.push(j);
                }
            }
            by_cuts(index, &bounds, &cuts)?
        }
        Strategy::Bytes(size) => {
            let mut cuts = vec![0usize];
            loop {
                let cur = *cuts.last().unwrap();
                let target = cost(index, bounds[cur]).saturating_add(size);
                let j = bounds.partition_point(|cp| cost(index, cp) <= target);
                let next = if j == 0 {
                    cur + 1
                } else {
                    (j - 1).max(cur + 1)
                };
                if next >= bounds.len() || target >= index.size {
                    break;
                }
                cuts.push(next);
            }
            by_cuts(index, &bounds, &cuts)?
        }
        Strategy::Records(n) => by_records(index, &bounds, n)?,
        Strategy::Grid { .. } | Strategy::Level { .. } | Strategy::Interval(_) => {
            return Err(Error::unsupported(
                index.url.clone(),
                format!(
                    "{} objects have no spatial extent, levels or time to cut by ({strategy})",
                    index.format
                ),
            ))
        }
    };
    let total = slices.len();
    for (i, s) in slices.iter_mut().enumerate() {
        s.slice = i;
        s.slices = total;
    }
    Ok(slices)
}

fn nearest(index: &Index, bounds: &[&Checkpoint], target: u64) -> usize {
    let j = bounds.partition_point(|cp| cost(index, cp) < target);
    if j == 0 {
        return 0;
    }
    if j == bounds.len() {
        return j - 1;
    }
    if target - cost(index, bounds[j - 1]) <= cost(index, bounds[j]) - target {
        j - 1
    } else {
        j
    }
}

impl Index {
    /// Plan slices from this index alone: a [`PlanSlices`] builder.
    pub fn plan(&self, strategy: Strategy) -> PlanSlices<'_> {
        PlanSlices::new(self, strategy)
    }

    fn blank_slice(&self) -> Slice {
        Slice {
            tessera_slice: SLICE_VERSION,
            url: self.url.clone(),
            etag: self.etag.clone(),
            size: self.size,
            format: self.format,
            compression: self.compression,
            slice: 0,
            slices: 0,
            first_record: 0,
            record_count: 0,
            ranges: Vec::new(),
            header: None,
            decode: Decode {
                start: 0,
                bits: 0,
                window: None,
                skip_bytes: 0,
                skip_records: 0,
                take: Take::All,
            },
            fasta: None,
        }
    }

    /// The header prefix of every slice (CSV/TSV/VCF).
    fn header_prefix(&self) -> Option<Prefix> {
        let h = self.header.as_ref()?;
        if !self.format.has_header() || h.length == 0 {
            return None;
        }
        Some(match self.compression {
            Compression::None => Prefix::Range {
                start: 0,
                end: h.length,
            },
            _ => Prefix::Inline {
                base64: h.base64.clone(),
            },
        })
    }

    /// The last checkpoint at or before uncompressed offset `u`.
    fn resume_before(&self, u: u64) -> &Checkpoint {
        let j = self.checkpoints.partition_point(|cp| cp.u <= u);
        &self.checkpoints[j.saturating_sub(1)]
    }

    /// Compressed end offset that yields every uncompressed byte before `end`.
    fn compressed_end(&self, end: u64) -> u64 {
        if self.compression == Compression::None {
            return end.min(self.size);
        }
        let j = self.checkpoints.partition_point(|cp| cp.u < end);
        self.checkpoints.get(j).map_or(self.size, |cp| cp.c)
    }

    /// Fill range and decode fields for the uncompressed span `[start, end)`.
    fn span(&self, s: &mut Slice, start: u64, end: Option<u64>) -> Result<()> {
        match self.compression {
            Compression::None => {
                let end = end.unwrap_or(self.size);
                s.ranges = vec![ByteRange { start, end }];
                s.decode.start = start;
                s.decode.take = Take::All;
            }
            _ => {
                let cp = self.resume_before(start);
                let from = cp.c - (cp.bits > 0) as u64;
                let to = end.map_or(self.size, |e| self.compressed_end(e));
                s.ranges = vec![ByteRange {
                    start: from,
                    end: to,
                }];
                s.decode.start = cp.u;
                s.decode.bits = cp.bits;
                s.decode.window = match cp.w {
                    // Stored as descriptors carry it: deflated, base64.
                    Some(w) => Some(self.window(w)?.to_string()),
                    None => None,
                };
                s.decode.skip_bytes = start - cp.u;
                s.decode.take = match end {
                    Some(e) => Take::Bytes(e - start),
                    None => Take::All,
                };
            }
        }
        Ok(())
    }

    /// FASTA: the prefix and part info of a slice starting at this checkpoint.
    fn fasta_part(&self, s: &mut Slice, cp: &Checkpoint) {
        if let (Some(bases), Some(seq)) = (cp.p, self.sequences.get(cp.r as usize)) {
            s.fasta = Some(FastaPart {
                sequence: seq.name.clone(),
                base_offset: bases,
            });
            s.header = Some(Prefix::Inline {
                base64: B64.encode(seq.header.as_bytes()),
            });
        }
    }

    /// Records starting in `[start, end)` (FASTA: sequences whose header is there).
    fn records_between(&self, a: &Checkpoint, b: Option<&Checkpoint>, end: u64) -> u64 {
        if self.format == RecordFormat::Fasta {
            let first = self.sequences.partition_point(|q| q.header_offset < a.o);
            let last = self.sequences.partition_point(|q| q.header_offset < end);
            return (last - first) as u64;
        }
        b.map_or(self.records, |b| b.r) - a.r
    }
}

fn by_cuts(index: &Index, bounds: &[&Checkpoint], cuts: &[usize]) -> Result<Vec<Slice>> {
    let mut out = Vec::with_capacity(cuts.len());
    for (k, &a) in cuts.iter().enumerate() {
        let cp = bounds[a];
        let next = cuts.get(k + 1).map(|&b| bounds[b]);
        let end = next.map(|b| b.o);
        let mut s = index.blank_slice();
        s.first_record = cp.r;
        s.record_count = index.records_between(cp, next, end.unwrap_or(index.data_size));
        s.header = index.header_prefix();
        index.fasta_part(&mut s, cp);
        index.span(&mut s, cp.o, end)?;
        out.push(s);
    }
    Ok(out)
}

fn by_records(index: &Index, bounds: &[&Checkpoint], n: u64) -> Result<Vec<Slice>> {
    let mut out = Vec::new();
    let mut first = 0u64;
    while first < index.records {
        let next = first.saturating_add(n);
        let mut s = index.blank_slice();
        s.first_record = first;
        s.record_count = next.min(index.records) - first;
        s.header = index.header_prefix();
        if index.format == RecordFormat::Fasta {
            let start = index.sequences[first as usize].header_offset;
            let end = index.sequences.get(next as usize).map(|q| q.header_offset);
            index.span(&mut s, start, end)?;
        } else {
            // The last boundary at or before the first record, then skip records.
            let j = bounds.partition_point(|cp| cp.r <= first).max(1) - 1;
            let cp = bounds[j];
            index.span(&mut s, cp.o, None)?;
            s.decode.skip_records = first - cp.r;
            if next < index.records {
                // Read up to a checkpoint past the next slice's first record.
                let k = index.checkpoints.partition_point(|c| c.r <= next);
                let to = index
                    .checkpoints
                    .get(k)
                    .map_or(index.size, |c| cost_end(index, c));
                s.ranges[0].end = to;
                s.decode.take = Take::Records(s.record_count);
            }
        }
        out.push(s);
        first = next;
    }
    Ok(out)
}

/// Where to stop reading to have every byte before checkpoint `c`'s resume point.
fn cost_end(index: &Index, c: &Checkpoint) -> u64 {
    match index.compression {
        Compression::None => c.o,
        _ => c.c,
    }
}

/// Read a slices file (a JSON list of descriptors).
pub fn parse_slices(json: &[u8], name: &str) -> Result<Vec<Slice>> {
    let slices: Vec<Slice> = serde_json::from_slice(json).map_err(not_slices(name))?;
    for s in &slices {
        s.validate()?;
    }
    Ok(slices)
}

/// Read slice `i` of a slices file without decoding the others (a plan's
/// descriptors carry windows, so a worker skips most of the file).
pub fn pick_slice(json: &[u8], name: &str, i: usize) -> Result<Slice> {
    let list: Vec<&serde_json::value::RawValue> =
        serde_json::from_slice(json).map_err(not_slices(name))?;
    let Some(raw) = list.get(i) else {
        return Err(Error::NoSuchSlice {
            file: name.to_string(),
            slice: i,
            count: list.len(),
        });
    };
    let slice: Slice = serde_json::from_str(raw.get()).map_err(not_slices(name))?;
    slice.validate()?;
    Ok(slice)
}

fn not_slices(name: &str) -> impl Fn(serde_json::Error) -> Error + '_ {
    move |e| Error::InvalidSlicesFile {
        file: name.to_string(),
        message: e.to_string(),
    }
}

impl Slice {
    /// Check the descriptor is internally consistent (catches hand edits).
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| self.invalid(m);
        if self.tessera_slice != SLICE_VERSION {
            return Err(bad(format!(
                "descriptor version {} is not supported (this tessera reads version {SLICE_VERSION})",
                self.tessera_slice
            )));
        }
        if self.ranges.is_empty() {
            return Err(bad("no byte ranges".into()));
        }
        for r in &self.ranges {
            if r.start > r.end || r.end > self.size {
                return Err(bad(format!(
                    "byte range {}..{} is outside the object ({} bytes); was the slices file edited?",
                    r.start, r.end, self.size
                )));
            }
        }
        if let Some(Prefix::Range { start, end }) = &self.header {
            if start > end || *end > self.size {
                return Err(bad(format!(
                    "header range {start}..{end} is outside the object"
                )));
            }
        }
        if self.decode.bits > 7 {
            return Err(bad(format!("bits {} is not 0..7", self.decode.bits)));
        }
        Ok(())
    }

    /// The exact number of bytes fetching this slice gives (header and
    /// records), when the descriptor fixes it (slices that take a byte
    /// count); `None` when it is only known once fetched.
    pub fn output_size(&self) -> Option<u64> {
        let header = match &self.header {
            None => 0,
            Some(Prefix::Inline { base64 }) => B64.decode(base64).ok()?.len() as u64,
            Some(Prefix::Range { start, end }) => end.checked_sub(*start)?,
        };
        match self.decode.take {
            Take::Bytes(n) => header.checked_add(n),
            Take::Records(_) | Take::All => None,
        }
    }

    /// Fetch and decode this slice from `object` (the object the slice was
    /// planned from, opened with the caller's credentials): a
    /// [`FetchSlice`] builder. Awaiting it returns the header (if any)
    /// followed by the slice's records, in the source format.
    pub fn fetch<'a>(&'a self, object: &'a Location) -> FetchSlice<'a> {
        FetchSlice::new(self, object)
    }

    /// [`Slice::fetch`] from the slice's own URL, opened with `opts` when
    /// the fetch runs (the caller's credentials: descriptors carry none).
    pub fn fetch_from_url<'a>(&'a self, opts: &'a StoreOptions) -> FetchSlice<'a> {
        FetchSlice {
            slice: self,
            source: Source::Url(opts),
            part_size: DEFAULT_PART_SIZE,
        }
    }

    fn invalid(&self, message: String) -> Error {
        Error::InvalidSlice {
            object: self.url.clone(),
            slice: self.slice,
            message,
        }
    }

    /// Stream this slice (header, then records) into `out` in GETs of
    /// `part` bytes. Returns the bytes written.
    async fn write(
        &self,
        object: &Location,
        part: u64,
        out: &mut (dyn Write + Send),
    ) -> Result<u64> {
        self.validate()?;
        let header = match &self.header {
            None => Vec::new(),
            Some(Prefix::Inline { base64 }) => B64
                .decode(base64)
                .map_err(|e| self.invalid(format!("header is not base64: {e}")))?,
            Some(Prefix::Range { start, end }) => {
                self.get(
                    object,
                    ByteRange {
                        start: *start,
                        end: *end,
                    },
                    part,
                )
                .await?
            }
        };
        let write_err = |e: std::io::Error| Error::io("writing the slice", e);
        out.write_all(&header).map_err(write_err)?;
        let mut decoder = match self.compression {
            Compression::None => None,
            Compression::Gzip | Compression::Bgzf => {
                let window = match &self.decode.window {
                    Some(w) => {
                        let packed = B64
                            .decode(w)
                            .map_err(|e| self.invalid(format!("window is not base64: {e}")))?;
                        Some(
                            gz::unpack_window(&packed)
                                .map_err(|e| self.invalid(format!("damaged window: {e}")))?,
                        )
                    }
                    None => None,
                };
                Some(gz::Decoder::new(
                    window.as_deref().map(|w| (self.decode.bits, w)),
                ))
            }
        };
        let mut emitter = Emitter::new(self, out);
        let parts: Vec<(u64, u64)> = self
            .ranges
            .iter()
            .flat_map(|r| {
                (r.start..r.end)
                    .step_by(part as usize)
                    .map(move |a| (a, (a + part).min(r.end)))
            })
            .collect();
        let mut chunks = futures::stream::iter(parts)
            .map(|(a, b)| self.get_part(object, a, b))
            .buffered(PARALLEL_GETS);
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            let more = match &mut decoder {
                None => emitter.push(&chunk),
                Some(d) => {
                    d.push(&chunk, &mut |o| emitter.push(o))
                        .map_err(|m| Error::Corrupt {
                            object: self.url.clone(),
                            compression: self.compression,
                            message: format!("slice {}: {m}", self.slice),
                        })?
                }
            };
            if !more {
                break;
            }
        }
        emitter.finish().map(|n| n + header.len() as u64)
    }

    fn short(&self) -> Error {
        Error::Truncated {
            object: self.url.clone(),
            message: format!(
                "slice {}: the data ends before the slice does (truncated object, or a slices file that does not match it)",
                self.slice
            ),
        }
    }

    /// One range, fetched in parallel parts of `part` bytes (for headers).
    async fn get(&self, object: &Location, r: ByteRange, part: u64) -> Result<Vec<u8>> {
        let parts: Vec<(u64, u64)> = (r.start..r.end)
            .step_by(part as usize)
            .map(|a| (a, (a + part).min(r.end)))
            .collect();
        let chunks: Vec<bytes::Bytes> = futures::stream::iter(parts)
            .map(|(a, b)| self.get_part(object, a, b))
            .buffered(PARALLEL_GETS)
            .try_collect()
            .await?;
        Ok(chunks.concat())
    }

    async fn get_part(&self, object: &Location, a: u64, b: u64) -> Result<bytes::Bytes> {
        // Refuses a changed object and a response shorter than asked for.
        crate::plugin::ranged_get(object, &self.url, self.etag.as_deref(), self.size, a, b).await
    }
}

/// Where a [`FetchSlice`] reads from.
enum Source<'a> {
    /// An opened location.
    Object(&'a Location),
    /// The slice's own URL, opened with these options.
    Url(&'a StoreOptions),
}

/// Fetch one slice: ranged GETs in parallel (at most 8 in flight), decoded
/// and cut to the slice's records as they arrive; started by
/// [`Slice::fetch`] or [`Slice::fetch_from_url`].
///
/// Awaiting it returns the header (if any) followed by the slice's records;
/// [`FetchSlice::write_to`] streams them instead, so memory stays bounded by
/// the GETs in flight whatever the slice's size. Every GET must match the
/// ETag the index recorded ([`Error::StaleIndex`] otherwise).
#[must_use = "fetching does nothing until the builder is awaited or written out"]
pub struct FetchSlice<'a> {
    slice: &'a Slice,
    source: Source<'a>,
    part_size: u64,
}

impl fmt::Debug for FetchSlice<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match self.source {
            Source::Object(o) => o.url(),
            Source::Url(_) => self.slice.url.clone(),
        };
        f.debug_struct("FetchSlice")
            .field("slice", &self.slice.slice)
            .field("source", &source)
            .field("part_size", &self.part_size)
            .finish()
    }
}

impl<'a> FetchSlice<'a> {
    /// Fetch `slice` from `object`, an opened location of the object it
    /// was planned from.
    pub fn new(slice: &'a Slice, object: &'a Location) -> Self {
        FetchSlice {
            slice,
            source: Source::Object(object),
            part_size: DEFAULT_PART_SIZE,
        }
    }

    /// The size of each ranged GET (default [`DEFAULT_PART_SIZE`]; 0 counts
    /// as 1). Smaller parts use less memory; tests use tiny ones to cut the
    /// stream at every possible place.
    pub fn with_part_size(mut self, bytes: u64) -> Self {
        self.part_size = bytes.max(1);
        self
    }

    /// Stream the slice (header, then records) into `out` instead of
    /// collecting it. Returns the bytes written.
    pub async fn write_to(self, out: &mut (dyn Write + Send)) -> Result<u64> {
        match self.source {
            Source::Object(object) => self.slice.write(object, self.part_size, out).await,
            Source::Url(opts) => {
                let object = Location::open(&self.slice.url, opts).await?;
                self.slice.write(&object, self.part_size, out).await
            }
        }
    }
}

impl<'a> IntoFuture for FetchSlice<'a> {
    type Output = Result<Vec<u8>>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let mut out = Vec::new();
            self.write_to(&mut out).await?;
            Ok(out)
        })
    }
}

/// Cuts the decoded stream of a slice to its records and writes them.
struct Emitter<'a> {
    slice: &'a Slice,
    out: &'a mut (dyn Write + Send),
    skip_bytes: u64,
    /// Offset in the stream after `skip_bytes`.
    pos: u64,
    /// Where emitting starts and ends (stream offsets), once known.
    start: Option<u64>,
    end: Option<u64>,
    /// Counts records when the slice is cut by records.
    scanner: Option<Scanner>,
    written: u64,
    done: bool,
    failure: Option<Error>,
}

impl<'a> Emitter<'a> {
    fn new(slice: &'a Slice, out: &'a mut (dyn Write + Send)) -> Emitter<'a> {
        let d = &slice.decode;
        let by_records = d.skip_records > 0 || matches!(d.take, Take::Records(_));
        Emitter {
            slice,
            out,
            skip_bytes: d.skip_bytes,
            pos: 0,
            start: (d.skip_records == 0).then_some(0),
            end: match d.take {
                Take::Bytes(n) => Some(n),
                _ => None,
            },
            scanner: by_records.then(|| Scanner::at_boundary(slice.format, 0, 0)),
            written: 0,
            done: false,
            failure: None,
        }
    }

    /// The next decoded bytes; false once everything needed was written.
    fn push(&mut self, mut chunk: &[u8]) -> bool {
        if self.done {
            return false;
        }
        if self.skip_bytes > 0 {
            let k = (self.skip_bytes as usize).min(chunk.len());
            chunk = &chunk[k..];
            self.skip_bytes -= k as u64;
            if chunk.is_empty() {
                return true;
            }
        }
        let base = self.pos;
        let len = chunk.len() as u64;
        if let Some(scanner) = &mut self.scanner {
            let skip = self.slice.decode.skip_records;
            let take = self.slice.decode.take;
            let (start, end) = (&mut self.start, &mut self.end);
            scanner.feed(chunk, &mut |ev| {
                if let Event::Record { offset, record } = ev {
                    if record == skip {
                        *start = Some(offset);
                    }
                    if let Take::Records(n) = take {
                        if record == skip + n {
                            *end = Some(offset);
                            return false;
                        }
                    }
                }
                true
            });
            if let (Some(e), None) = (scanner.error(), self.end) {
                let at = match e.line {
                    Some(line) => format!("line {line} of the slice"),
                    None => "the slice".into(),
                };
                self.failure = Some(Error::InvalidRecord {
                    object: self.slice.url.clone(),
                    format: self.slice.format,
                    line: None,
                    message: format!("slice {}, {at}: {}", self.slice.slice, e.message),
                });
                self.done = true;
                return false;
            }
        }
        if let Some(s) = self.start {
            let a = s.max(base);
            let b = self.end.map_or(base + len, |e| e.min(base + len));
            if b > a {
                let part = &chunk[(a - base) as usize..(b - base) as usize];
                if let Err(e) = self.out.write_all(part) {
                    self.failure = Some(Error::io("writing the slice", e));
                    self.done = true;
                    return false;
                }
                self.written += b - a;
            }
        }
        self.pos += len;
        if self.end.is_some_and(|e| self.pos >= e) {
            self.done = true;
            return false;
        }
        true
    }

    /// The input ended: check the slice was complete.
    fn finish(mut self) -> Result<u64> {
        if let Some(f) = self.failure.take() {
            return Err(f);
        }
        if !self.done {
            let d = &self.slice.decode;
            let complete = match (d.take, &self.scanner) {
                (Take::Bytes(_), _) => false,
                // The data ends exactly after the slice's last record.
                (Take::Records(n), Some(s)) => {
                    self.skip_bytes == 0
                        && self.start.is_some()
                        && s.records() == d.skip_records + n
                }
                (_, _) => self.skip_bytes == 0 && self.start.is_some(),
            };
            if !complete {
                return Err(self.slice.short());
            }
        }
        self.out
            .flush()
            .map_err(|e| Error::io("writing the slice", e))?;
        Ok(self.written)
    }
}

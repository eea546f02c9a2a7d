//! Slice descriptors: planning them from an index, and fetching one.

use base64::Engine;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use tessera_store::object_store::{self, GetOptions, GetRange};
use tessera_store::{Location, StoreOptions};

use crate::error::{Error, Result};
use crate::format::{Compression, Format};
use crate::gz;
use crate::index::{Checkpoint, Index};
use std::io::Write;

use crate::scan::{Event, Scanner};

/// The version of the slice descriptor format.
pub const SLICE_VERSION: u32 = 1;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Size of one ranged GET when a slice is fetched in parallel parts.
static PART: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(8 << 20);

/// Set the size of the ranged GETs slices are fetched in (default 8 MiB,
/// at most 8 in flight per slice). Smaller parts use less memory; tests
/// use tiny ones to cut the stream at every possible place.
pub fn set_fetch_part_size(bytes: u64) {
    PART.store(bytes.max(1), std::sync::atomic::Ordering::Relaxed);
}

fn part_size() -> u64 {
    PART.load(std::sync::atomic::Ordering::Relaxed)
}
/// Ranged GETs in flight per slice.
const PARALLEL_GETS: usize = 8;

/// How to cut an object into slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// About this many slices of even size.
    Count(usize),
    /// Slices of about this many (compressed) bytes.
    Bytes(u64),
    /// Slices of exactly this many records (the last may have fewer).
    Records(u64),
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
    pub format: Format,
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

/// Plan slices from an index alone.
pub fn plan(index: &Index, strategy: Strategy) -> Result<Vec<Slice>> {
    let bounds = boundaries(index);
    if bounds.is_empty() {
        return Ok(Vec::new());
    }
    let mut slices = match strategy {
        Strategy::Count(0) | Strategy::Bytes(0) | Strategy::Records(0) => {
            return Err(Error::InvalidInput(
                "the slice count or size must be at least 1".into(),
            ))
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
        if self.format == Format::Fasta {
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
        if index.format == Format::Fasta {
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
    let slices: Vec<Slice> = serde_json::from_slice(json).map_err(|e| Error::BadIndex {
        url: name.to_string(),
        message: format!("not a slices file (a JSON list of slice descriptors): {e}"),
    })?;
    for s in &slices {
        s.validate()?;
    }
    Ok(slices)
}

/// Read slice `i` of a slices file without decoding the others (a plan's
/// descriptors carry windows, so a worker skips most of the file).
pub fn pick_slice(json: &[u8], name: &str, i: usize) -> Result<Slice> {
    let not_slices = |e: serde_json::Error| Error::BadIndex {
        url: name.to_string(),
        message: format!("not a slices file (a JSON list of slice descriptors): {e}"),
    };
    let list: Vec<&serde_json::value::RawValue> =
        serde_json::from_slice(json).map_err(not_slices)?;
    let Some(raw) = list.get(i) else {
        return Err(Error::InvalidInput(format!(
            "{name} has {} slices (0 to {}); there is no slice {i}",
            list.len(),
            list.len().saturating_sub(1)
        )));
    };
    let slice: Slice = serde_json::from_str(raw.get()).map_err(not_slices)?;
    slice.validate()?;
    Ok(slice)
}

impl Slice {
    /// Check the descriptor is internally consistent (catches hand edits).
    pub fn validate(&self) -> Result<()> {
        let bad =
            |m: String| Error::InvalidInput(format!("slice {} of {}: {m}", self.slice, self.url));
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

    /// Fetch and decode this slice: the header (if any) followed by its
    /// records, in the source format. Opens the URL with `opts` (the
    /// caller's credentials).
    pub async fn fetch(&self, opts: &StoreOptions) -> Result<Vec<u8>> {
        let object = Location::open(&self.url, opts).await?;
        self.fetch_from(&object).await
    }

    /// [`Slice::fetch`] from an already opened location.
    pub async fn fetch_from(&self, object: &Location) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.write_to(object, &mut out).await?;
        Ok(out)
    }

    /// Stream this slice (header, then records) into `out`: ranged GETs in
    /// parallel, decoded and cut as they arrive, so memory stays bounded by
    /// the GETs in flight whatever the slice's size. Returns the bytes written.
    pub async fn write_to(&self, object: &Location, out: &mut (dyn Write + Send)) -> Result<u64> {
        self.validate()?;
        let header = match &self.header {
            None => Vec::new(),
            Some(Prefix::Inline { base64 }) => B64.decode(base64).map_err(|e| {
                Error::InvalidInput(format!("slice {}: header is not base64: {e}", self.slice))
            })?,
            Some(Prefix::Range { start, end }) => {
                self.get(
                    object,
                    ByteRange {
                        start: *start,
                        end: *end,
                    },
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
                        let packed = B64.decode(w).map_err(|e| {
                            Error::InvalidInput(format!(
                                "slice {}: window is not base64: {e}",
                                self.slice
                            ))
                        })?;
                        Some(gz::unpack_window(&packed).map_err(|e| {
                            Error::InvalidInput(format!(
                                "slice {}: damaged window: {e}",
                                self.slice
                            ))
                        })?)
                    }
                    None => None,
                };
                Some(gz::Decoder::new(
                    window.as_deref().map(|w| (self.decode.bits, w)),
                ))
            }
        };
        let mut emitter = Emitter::new(self, out);
        let part = part_size();
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
                Some(d) => d.push(&chunk, &mut |o| emitter.push(o)).map_err(|m| {
                    Error::data(
                        &self.url,
                        format!("slice {}: corrupt gzip data: {m}", self.slice),
                    )
                })?,
            };
            if !more {
                break;
            }
        }
        emitter.finish().map(|n| n + header.len() as u64)
    }

    fn short(&self) -> Error {
        Error::data(
            &self.url,
            format!(
                "slice {}: the data ends before the slice does (truncated object, or a slices file that does not match it)",
                self.slice
            ),
        )
    }

    /// One range, fetched in parallel parts (for headers).
    async fn get(&self, object: &Location, r: ByteRange) -> Result<Vec<u8>> {
        let part = part_size();
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
        let opts = GetOptions {
            if_match: self.etag.clone(),
            range: Some(GetRange::Bounded(a..b)),
            ..Default::default()
        };
        let result = object.store().get_opts(object.path(), opts).await;
        let got = match result {
            Ok(r) => r.bytes().await,
            Err(e) => Err(e),
        };
        got.map_err(|e| match e {
            object_store::Error::NotFound { .. } => Error::NotFound {
                what: self.url.clone(),
            },
            object_store::Error::Precondition { .. } => Error::StaleIndex {
                url: self.url.clone(),
                indexed: format!(
                    "{} bytes, ETag {}",
                    self.size,
                    self.etag.as_deref().unwrap_or("none")
                ),
                now: "a different ETag".into(),
            },
            other => Error::Store(tessera_store::Error::from_object_store(&self.url, other)),
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
                self.failure = Some(Error::data(
                    &self.slice.url,
                    format!("slice {}: {e}", self.slice.slice),
                ));
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

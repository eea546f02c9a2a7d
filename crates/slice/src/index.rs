//! The index: one streaming pass over an object records where slices may
//! start, saved as a sidecar JSON object (format documented on [`Index`]).

use std::fmt;
use std::future::{Future, IntoFuture};
use std::io::Read;
use std::pin::Pin;
use std::time::Instant;

use base64::Engine;
use libz_rs_sys as z;
use serde::{Deserialize, Serialize};
use tessera_store::{Location, ObjectMeta};

use crate::error::{Error, Result};
use crate::format::{Compression, RecordFormat};
use crate::gz::{self, Inflater, WINDOW};
use crate::scan::{Event, ScanError, Scanner, Sequence};

/// The version of the index format this crate writes and reads.
pub const INDEX_VERSION: u32 = 1;

/// The suffix of an index object: `reads.fq.gz` → `reads.fq.gz.tessera-index.json`.
pub const INDEX_SUFFIX: &str = ".tessera-index.json";

/// Default distance between checkpoints of an uncompressed object.
pub const DEFAULT_SPACING: u64 = 64 << 10;

/// Default distance between checkpoints of a gzip object (in uncompressed
/// bytes; each checkpoint carries a 32 KiB window, so they are sparser).
pub const DEFAULT_GZIP_SPACING: u64 = 1 << 20;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A place where decoding may resume and the first slice boundary after it.
///
/// For an uncompressed object `u == c == o`. For gzip, `c`/`bits` is the
/// deflate block boundary (decoding starts `bits` bits before byte `c`),
/// `w` the window (none: a gzip member starts at `c`), `u` the uncompressed
/// offset there, and `o` the first record (or FASTA line) start at or after
/// `u`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Uncompressed offset where decoding resumes.
    pub u: u64,
    /// Compressed offset where decoding resumes.
    pub c: u64,
    /// Bits of the byte before `c` that belong to the block (gzip only).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub bits: u8,
    /// Index into [`Index::windows`] (gzip only; none at a member start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub w: Option<u32>,
    /// Uncompressed offset of the boundary (a record start or, for FASTA, a line start).
    pub o: u64,
    /// Record number at the boundary (FASTA line boundary: the sequence it belongs to).
    pub r: u64,
    /// FASTA line boundary: bases of the sequence before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p: Option<u64>,
}

fn is_zero(v: &u8) -> bool {
    *v == 0
}

/// The header every slice repeats (CSV/TSV first record, VCF `#` lines).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Its length: the body starts at this uncompressed offset.
    pub length: u64,
    /// Its bytes, base64.
    pub base64: String,
}

/// An index of one object.
///
/// Stored as JSON beside the object (`KEY.tessera-index.json`) or under an
/// index store. Fields: `tessera_index` (format version, 1), `url`, `size`
/// and `etag` of the object when indexed, `format`, `compression`,
/// `spacing`, `data_size` (uncompressed bytes), `records`, `header`,
/// `checkpoints` (see [`Checkpoint`]), `windows` (raw-deflate-compressed
/// 32 KiB windows, base64), `sequences` (FASTA: name, header line, offsets,
/// length and line layout of each sequence, as a `.fai` holds them) and
/// `fai_problem` (why a `.fai` cannot describe this FASTA, if so).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// Format version ([`INDEX_VERSION`]).
    pub tessera_index: u32,
    /// The indexed object.
    pub url: String,
    /// Its size in bytes when indexed.
    pub size: u64,
    /// Its ETag when indexed.
    pub etag: Option<String>,
    /// Record format.
    pub format: RecordFormat,
    /// Compression, detected from the bytes.
    pub compression: Compression,
    /// Whether the first CSV/TSV line is a header.
    #[serde(default = "yes")]
    pub has_header: bool,
    /// Target distance between checkpoints (uncompressed bytes).
    pub spacing: u64,
    /// Uncompressed size.
    pub data_size: u64,
    /// Number of records (header excluded; FASTA: sequences).
    pub records: u64,
    /// The header, when the format has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<Header>,
    /// Where slices may start, in order.
    pub checkpoints: Vec<Checkpoint>,
    /// Deflate windows of gzip checkpoints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<String>,
    /// FASTA sequences.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sequences: Vec<Sequence>,
    /// Why a `.fai` cannot describe this FASTA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fai_problem: Option<String>,
    /// BGZF: every block start after the first, as (compressed, uncompressed) offsets (the `.gzi` entries).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<(u64, u64)>,
    /// The tessera version that wrote the index.
    pub created_by: String,
}

fn yes() -> bool {
    true
}

/// Index an object in one streaming pass; started by [`Index::build`].
///
/// Awaiting it reads the object once and returns the index (not yet saved:
/// see [`Index::save`]) and what the pass measured.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use tessera_slice::{Index, RecordFormat};
/// use tessera_store::{Location, PublishMode, StoreOptions};
///
/// let obj = Location::open("memory://doc-build/calls.txt", &StoreOptions::default()).await?;
/// obj.publish("a,b\n1,2\n3,4\n", PublishMode::Overwrite).await?;
/// let (index, stats) = Index::build(&obj)
///     .with_format(RecordFormat::Csv)
///     .with_spacing(4)
///     .await?;
/// assert_eq!((index.records, stats.bytes), (2, 12));
/// # Ok::<(), tessera_slice::Error>(())
/// # }).unwrap();
/// ```
#[must_use = "indexing does nothing until the builder is awaited"]
pub struct BuildIndex {
    object: Location,
    format: Option<RecordFormat>,
    spacing: Option<u64>,
    header: bool,
    progress: Box<dyn Fn(u64) + Send + Sync>,
}

impl fmt::Debug for BuildIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuildIndex")
            .field("object", &self.object)
            .field("format", &self.format)
            .field("spacing", &self.spacing)
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl BuildIndex {
    /// Index `object`: the format comes from its name, the compression from
    /// its bytes, and CSV/TSV objects start with a header line.
    pub fn new(object: &Location) -> Self {
        BuildIndex {
            object: object.clone(),
            format: None,
            spacing: None,
            header: true,
            progress: Box::new(|_| {}),
        }
    }

    /// The record format, instead of guessing it from the object's name.
    pub fn with_format(mut self, format: RecordFormat) -> Self {
        self.format = Some(format);
        self
    }

    /// The distance between checkpoints in uncompressed bytes (0 counts as
    /// 1). The default is [`DEFAULT_SPACING`], or [`DEFAULT_GZIP_SPACING`]
    /// for gzip and BGZF objects.
    pub fn with_spacing(mut self, bytes: u64) -> Self {
        self.spacing = Some(bytes);
        self
    }

    /// Whether the first CSV/TSV line is a header that every slice repeats
    /// (default true; other formats ignore it).
    pub fn with_header(mut self, header: bool) -> Self {
        self.header = header;
        self
    }

    /// Call `progress` with the compressed bytes read so far, now and then
    /// during the pass (from a blocking thread).
    pub fn with_progress(mut self, progress: impl Fn(u64) + Send + Sync + 'static) -> Self {
        self.progress = Box::new(progress);
        self
    }

    async fn run(self) -> Result<(Index, IndexStats)> {
        let BuildIndex {
            object,
            format,
            spacing,
            header,
            progress,
        } = self;
        let url = object.url();
        let format = match format {
            Some(f) => f,
            None => RecordFormat::from_name(object.path().as_ref()).ok_or_else(|| {
                Error::UnknownFormat {
                    object: url.clone(),
                }
            })?,
        };
        let meta = crate::plugin::head(&object).await?;
        let started = Instant::now();
        let reader: Box<dyn Read + Send> = match object.local_path() {
            Some(p) => Box::new(Exactly {
                inner: std::fs::File::open(&p)
                    .map_err(|e| Error::io(format!("cannot open {}", p.display()), e))?,
                left: meta.size,
            }),
            None => {
                let (_, stream) = object.read_stream().await?;
                Box::new(Exactly {
                    inner: StreamReader::spawn(stream),
                    left: meta.size,
                })
            }
        };
        let meta2 = meta.clone();
        let index = tokio::task::spawn_blocking(move || {
            let settings = Settings {
                format,
                spacing,
                header,
            };
            build_sync(reader, &url, &meta2, settings, &*progress)
        })
        .await
        .map_err(|e| Error::internal(format!("the indexing task failed: {e}")))??;
        let stats = IndexStats {
            bytes: meta.size,
            seconds: started.elapsed().as_secs_f64(),
        };
        Ok((index, stats))
    }
}

impl IntoFuture for BuildIndex {
    type Output = Result<(Index, IndexStats)>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

/// Open the index of an object and check it is current; started by
/// [`Index::open`]. Awaiting it fails with [`Error::NoIndex`] when there is
/// none and [`Error::StaleIndex`] when the object changed since.
#[must_use = "opening an index does nothing until the builder is awaited"]
#[derive(Debug)]
pub struct OpenIndex {
    object: Location,
    index_store: Option<Location>,
}

impl OpenIndex {
    /// Open the index beside `object` (`KEY.tessera-index.json`).
    pub fn new(object: &Location) -> Self {
        OpenIndex {
            object: object.clone(),
            index_store: None,
        }
    }

    /// Look for the index under `store` (same key as the object) instead of
    /// beside the object.
    pub fn with_index_store(mut self, store: &Location) -> Self {
        self.index_store = Some(store.clone());
        self
    }

    async fn run(self) -> Result<Index> {
        let meta = crate::plugin::head(&self.object).await?;
        let at = Index::location_for(&self.object, self.index_store.as_ref())?;
        let index = Index::load(&at).await?;
        index.check_current(&meta)?;
        Ok(index)
    }
}

impl IntoFuture for OpenIndex {
    type Output = Result<Index>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

/// What one indexing pass was asked for.
struct Settings {
    format: RecordFormat,
    spacing: Option<u64>,
    header: bool,
}

/// What indexing measured.
#[derive(Debug, Clone, Copy)]
pub struct IndexStats {
    /// Compressed bytes read.
    pub bytes: u64,
    /// Seconds taken.
    pub seconds: f64,
}

/// Turns scanner events into checkpoints.
struct Checkpoints {
    cps: Vec<Checkpoint>,
    pending: bool,
    spacing: u64,
    next_at: u64,
}

impl Checkpoints {
    fn new(spacing: u64) -> Checkpoints {
        Checkpoints {
            cps: Vec::new(),
            pending: false,
            spacing: spacing.max(1),
            next_at: 0,
        }
    }

    /// Uncompressed objects: a checkpoint at the first boundary past each spacing mark.
    #[inline]
    fn plain(&mut self, ev: Event) {
        let o = ev.offset();
        if o >= self.next_at {
            let (r, p) = record_part(ev);
            self.cps.push(Checkpoint {
                u: o,
                c: o,
                bits: 0,
                w: None,
                o,
                r,
                p,
            });
            self.next_at = o + self.spacing;
        }
    }

    /// Compressed objects: the pending checkpoint takes the first boundary after it.
    #[inline]
    fn compressed(&mut self, ev: Event) {
        if self.pending {
            self.pending = false;
            let (r, p) = record_part(ev);
            let cp = self.cps.last_mut().unwrap();
            cp.o = ev.offset();
            cp.r = r;
            cp.p = p;
        }
    }
}

fn record_part(ev: Event) -> (u64, Option<u64>) {
    match ev {
        Event::Record { record, .. } => (record, None),
        Event::Part { record, bases, .. } => (record, Some(bases)),
    }
}

impl Index {
    /// Index `object` in one streaming pass: a [`BuildIndex`] builder.
    pub fn build(object: &Location) -> BuildIndex {
        BuildIndex::new(object)
    }

    /// Open the index of `object` and check it is current: an
    /// [`OpenIndex`] builder.
    pub fn open(object: &Location) -> OpenIndex {
        OpenIndex::new(object)
    }

    /// Where the index of `object` lives: beside it, or under `index_store`.
    pub fn location_for(object: &Location, index_store: Option<&Location>) -> Result<Location> {
        sidecar(object, index_store, INDEX_SUFFIX)
    }

    /// Save the index (replacing an older one).
    pub async fn save(&self, to: &Location) -> Result<()> {
        crate::plugin::save_index(self, to).await
    }

    /// Read an index; check it is one this version understands.
    pub async fn load(from: &Location) -> Result<Index> {
        let (bytes, url) = crate::plugin::read_index(from).await?;
        Self::from_json(&bytes, &url)
    }

    /// Parse an index from JSON (`url` names it in errors).
    pub fn from_json(bytes: &[u8], url: &str) -> Result<Index> {
        let index: Index = crate::plugin::parse_index(bytes, url, |i: &Index| i.tessera_index)?;
        index.check(url)?;
        Ok(index)
    }

    /// Refuse an index whose parts contradict each other (edited by hand,
    /// damaged, or hostile): planning trusts these relations.
    pub(crate) fn check(&self, url: &str) -> Result<()> {
        let bad = |message: String| {
            Err(Error::InvalidIndex {
                index: url.to_string(),
                message,
            })
        };
        if let Some(h) = &self.header {
            if h.length > self.data_size {
                return bad(format!(
                    "the header ({} bytes) is longer than the data ({} bytes)",
                    h.length, self.data_size
                ));
            }
        }
        let mut last: Option<&Checkpoint> = None;
        for (i, cp) in self.checkpoints.iter().enumerate() {
            let inconsistent = cp.u > cp.o
                || cp.o > self.data_size
                || cp.c > self.size
                || cp.r > self.records
                || cp.bits > 7
                || cp.w.is_some_and(|w| w as usize >= self.windows.len())
                || last.is_some_and(|p| cp.u < p.u || cp.c < p.c || cp.o < p.o || cp.r < p.r);
            if inconsistent {
                return bad(format!(
                    "checkpoint {i} lies outside the data or before the one it follows"
                ));
            }
            last = Some(cp);
        }
        match self.checkpoints.first() {
            Some(cp) if cp.r != 0 => {
                return bad(format!("the first checkpoint is at record {}, not 0", cp.r));
            }
            None if self.records > 0 => {
                return bad(format!("{} records and no checkpoint", self.records));
            }
            _ => {}
        }
        if self.format == RecordFormat::Fasta && self.sequences.len() as u64 != self.records {
            return bad(format!(
                "{} sequences listed for {} records",
                self.sequences.len(),
                self.records
            ));
        }
        let mut at = 0;
        for (i, q) in self.sequences.iter().enumerate() {
            if q.header_offset < at || q.header_offset > q.offset || q.offset > self.data_size {
                return bad(format!(
                    "sequence {i} lies outside the data or out of order"
                ));
            }
            at = q.offset;
        }
        Ok(())
    }

    /// Refuse the index when the object no longer has the size and ETag it recorded.
    pub fn check_current(&self, meta: &ObjectMeta) -> Result<()> {
        crate::plugin::check_current(&self.url, self.size, self.etag.as_deref(), meta)
    }

    /// The header bytes, decoded.
    pub fn header_bytes(&self) -> Vec<u8> {
        self.header
            .as_ref()
            .and_then(|h| B64.decode(&h.base64).ok())
            .unwrap_or_default()
    }

    /// Where the records start (after the header).
    pub fn body_start(&self) -> u64 {
        self.header.as_ref().map_or(0, |h| h.length)
    }

    /// A stored window (deflated, base64), as a descriptor carries it.
    pub(crate) fn window(&self, w: u32) -> Result<&str> {
        self.windows
            .get(w as usize)
            .map(String::as_str)
            .ok_or_else(|| Error::InvalidIndex {
                index: format!("the index of {}", self.url),
                message: format!("window {w} is missing"),
            })
    }

    /// The `.fai` text `samtools faidx` would write (FASTA only).
    pub fn fai(&self) -> Result<Vec<u8>> {
        use std::num::NonZero;
        if self.format != RecordFormat::Fasta {
            return Err(Error::unsupported(
                &self.url,
                format!("a .fai describes FASTA; this index is {}", self.format),
            ));
        }
        if self.compression == Compression::Gzip {
            return Err(Error::unsupported(
                &self.url,
                "samtools reads .fai offsets only for uncompressed or BGZF FASTA; this object is plain gzip",
            ));
        }
        if let Some(problem) = &self.fai_problem {
            return Err(Error::unsupported(&self.url, problem.clone()));
        }
        let mut records = Vec::with_capacity(self.sequences.len());
        for s in &self.sequences {
            let (Some(lb), Some(lw)) = (NonZero::new(s.line_bases), NonZero::new(s.line_width))
            else {
                return Err(Error::unsupported(
                    &self.url,
                    format!(
                        "sequence `{}` is empty, which a .fai cannot describe",
                        s.name
                    ),
                ));
            };
            records.push(noodles_fasta::fai::Record::new(
                s.name.as_str(),
                s.length,
                s.offset,
                lb,
                lw,
            ));
        }
        let mut out = Vec::new();
        noodles_fasta::fai::io::Writer::new(&mut out)
            .write_index(&noodles_fasta::fai::Index::from(records))
            .map_err(|e| Error::internal(format!("cannot encode the .fai: {e}")))?;
        Ok(out)
    }

    /// The `.gzi` bytes `bgzip -r` would write (BGZF only).
    pub fn gzi(&self) -> Result<Vec<u8>> {
        if self.compression != Compression::Bgzf {
            return Err(Error::unsupported(
                &self.url,
                format!("a .gzi indexes BGZF; this object is {}", self.compression),
            ));
        }
        let mut out = Vec::new();
        noodles_bgzf::gzi::io::Writer::new(&mut out)
            .write_index(&noodles_bgzf::gzi::Index::from(self.blocks.clone()))
            .map_err(|e| Error::internal(format!("cannot encode the .gzi: {e}")))?;
        Ok(out)
    }
}

/// `object` with a suffix, beside it or under `index_store` (same key).
pub fn sidecar(
    object: &Location,
    index_store: Option<&Location>,
    suffix: &str,
) -> Result<Location> {
    let key = format!("{}{suffix}", object.path().as_ref());
    match index_store {
        // The key is already in the store's encoding: parse, do not encode again.
        None => Ok(object.with_path(
            tessera_store::object_store::path::Path::parse(&key)
                .unwrap_or_else(|_| key.as_str().into()),
        )),
        Some(store) => Ok(store.join(&key)?),
    }
}

const CHUNK: usize = 4 << 20;

/// A reader that must give exactly `left` more bytes: a stream cut short,
/// or one longer than the size the index records, is an error, never an
/// index of other bytes.
struct Exactly<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exactly<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "the read ended {} bytes before the object's end (cut short, or the object changed while it was read)",
                    self.left
                ),
            ));
        }
        if n as u64 > self.left {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the object grew while it was read",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn read_full(r: &mut dyn Read, buf: &mut [u8], url: &str) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData
                ) =>
            {
                return Err(Error::Truncated {
                    object: url.to_string(),
                    message: e.to_string(),
                })
            }
            Err(e) => return Err(Error::io(format!("reading {url}"), e)),
        }
    }
    Ok(n)
}

/// The indexing pass proper (blocking).
fn build_sync(
    mut reader: Box<dyn Read + Send>,
    url: &str,
    meta: &ObjectMeta,
    settings: Settings,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<Index> {
    let Settings {
        format,
        spacing,
        header: has_header,
    } = settings;
    let mut first = vec![0u8; CHUNK];
    let n = read_full(&mut *reader, &mut first, url)?;
    first.truncate(n);
    let compression = Compression::detect(&first);
    let mut scanner = Scanner::new(format, has_header);
    let spacing = match (spacing, compression) {
        (Some(n), _) => n,
        (None, Compression::None) => DEFAULT_SPACING,
        (None, _) => DEFAULT_GZIP_SPACING,
    };
    let mut builder = Checkpoints::new(spacing);
    let mut windows = Vec::new();
    let mut blocks = Vec::new();
    let data_size = match compression {
        Compression::None => {
            let mut buf = first;
            let mut total = 0u64;
            loop {
                if buf.is_empty() {
                    break;
                }
                scanner.feed(&buf, &mut |ev| {
                    builder.plain(ev);
                    true
                });
                total += buf.len() as u64;
                progress(total);
                if scanner.error().is_some() {
                    break;
                }
                buf.resize(CHUNK, 0);
                let n = read_full(&mut *reader, &mut buf, url)?;
                buf.truncate(n);
            }
            total
        }
        Compression::Gzip | Compression::Bgzf => gzip_pass(
            first,
            &mut *reader,
            url,
            compression == Compression::Bgzf,
            &mut scanner,
            &mut builder,
            &mut windows,
            &mut blocks,
            progress,
        )?,
    };
    if let Some(e) = scanner.finish(&mut |_| true) {
        return Err(invalid_record(url, format, e));
    }
    if builder.pending {
        // No boundary after the last checkpoint.
        if builder.cps.pop().is_some_and(|cp| cp.w.is_some()) {
            windows.pop();
        }
    }
    let records = scanner.records();
    let header = scanner.header().and_then(|(bytes, end)| {
        (end > 0).then(|| Header {
            length: end,
            base64: B64.encode(bytes),
        })
    });
    if format == RecordFormat::Fasta && records == 0 && data_size > 0 {
        return Err(invalid_record(
            url,
            format,
            ScanError {
                line: None,
                message: "no '>' header line found".into(),
            },
        ));
    }
    let (sequences, fai_problem) = if format == RecordFormat::Fasta {
        scanner.into_sequences()
    } else {
        (Vec::new(), None)
    };
    Ok(Index {
        tessera_index: INDEX_VERSION,
        url: url.to_string(),
        size: meta.size,
        etag: meta.e_tag.clone(),
        format,
        compression,
        has_header,
        spacing: builder.spacing,
        data_size,
        records,
        header,
        checkpoints: builder.cps,
        windows,
        sequences,
        fai_problem,
        blocks,
        created_by: format!("tessera {}", env!("CARGO_PKG_VERSION")),
    })
}

/// What the inflating thread hands to the scanning thread, in stream order.
enum Msg {
    /// Decompressed bytes.
    Data(Vec<u8>),
    /// A resume point at the current output position, with its raw window.
    Checkpoint(Checkpoint, Option<Vec<u8>>),
}

/// Decompressed bytes handed over at a time.
const HANDOFF: usize = 1 << 20;

/// One pass of inflate with `Z_BLOCK`, zran-style. The calling thread
/// inflates; a second thread scans the output for records and compresses
/// the windows, so the two cores split the work.
#[allow(clippy::too_many_arguments)]
fn gzip_pass(
    first: Vec<u8>,
    reader: &mut dyn Read,
    url: &str,
    bgzf: bool,
    scanner: &mut Scanner,
    builder: &mut Checkpoints,
    windows: &mut Vec<String>,
    blocks: &mut Vec<(u64, u64)>,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<u64> {
    let spacing = builder.spacing;
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Msg>(8);
        let (scanner, builder, windows) = (&mut *scanner, &mut *builder, &mut *windows);
        let scan = scope.spawn(move || {
            for msg in rx {
                match msg {
                    Msg::Data(data) => {
                        scanner.feed(&data, &mut |ev| {
                            builder.compressed(ev);
                            true
                        });
                        if scanner.error().is_some() {
                            return; // dropping rx stops the inflating side
                        }
                    }
                    Msg::Checkpoint(cp, window) => {
                        if builder.pending {
                            // No boundary since the previous checkpoint: this one is closer.
                            if builder.cps.pop().is_some_and(|old| old.w.is_some()) {
                                windows.pop();
                            }
                        }
                        let mut cp = cp;
                        if let Some(w) = window {
                            windows.push(B64.encode(gz::pack_window(&w)));
                            cp.w = Some(windows.len() as u32 - 1);
                        }
                        builder.cps.push(cp);
                        builder.pending = true;
                    }
                }
            }
        });
        let inflated = inflate_pass(first, reader, url, bgzf, spacing, blocks, progress, &tx);
        drop(tx);
        scan.join()
            .map_err(|_| Error::internal("the record scanning thread panicked"))?;
        inflated
    })
    .and_then(|total_out| match scanner.error() {
        Some(e) => Err(invalid_record(url, scanner.format(), e.clone())),
        None => Ok(total_out),
    })
}

/// A scanner's complaint about an object, as the public error.
fn invalid_record(url: &str, format: RecordFormat, e: ScanError) -> Error {
    Error::InvalidRecord {
        object: url.to_string(),
        format,
        line: e.line,
        message: e.message,
    }
}

/// The inflating side of [`gzip_pass`]. Returns the uncompressed size.
#[allow(clippy::too_many_arguments)]
fn inflate_pass(
    first: Vec<u8>,
    reader: &mut dyn Read,
    url: &str,
    bgzf: bool,
    spacing: u64,
    blocks: &mut Vec<(u64, u64)>,
    progress: &(dyn Fn(u64) + Send + Sync),
    tx: &std::sync::mpsc::SyncSender<Msg>,
) -> Result<u64> {
    let mut input = first;
    let mut in_pos = 0usize;
    let mut eof = input.len() < CHUNK;
    // Output ring: the last WINDOW bytes stay in front when it wraps.
    let mut out = vec![0u8; 4 << 20];
    let mut out_pos = 0usize;
    let mut sent = 0usize; // out[sent..out_pos] not yet handed over
    let mut total_in = 0u64; // compressed bytes consumed
    let mut total_out = 0u64;
    let mut next_at = 0u64;
    let mut inf = Inflater::new(gz::GZIP);
    let mut member_start = Some(0u64);
    let mut ended = false; // the last member ended cleanly
    let mut reported = 0u64;
    // Hand over out[sent..out_pos]; false when the scanner stopped (bad data).
    let flush = |out: &[u8], sent: &mut usize, out_pos: usize| -> bool {
        if out_pos > *sent {
            let ok = tx.send(Msg::Data(out[*sent..out_pos].to_vec())).is_ok();
            *sent = out_pos;
            ok
        } else {
            true
        }
    };
    loop {
        if in_pos == input.len() {
            if eof {
                break;
            }
            input.resize(CHUNK, 0);
            let n = read_full(reader, &mut input, url)?;
            input.truncate(n);
            in_pos = 0;
            eof = n < CHUNK;
            if n == 0 {
                break;
            }
        }
        if out_pos == out.len() {
            if !flush(&out, &mut sent, out_pos) {
                return Ok(total_out);
            }
            out.copy_within(out_pos - WINDOW..out_pos, 0);
            out_pos = WINDOW;
            sent = WINDOW;
        }
        ended = false;
        let step = inf.inflate(&input[in_pos..], &mut out[out_pos..], z::Z_BLOCK);
        in_pos += step.consumed;
        total_in += step.consumed as u64;
        out_pos += step.produced;
        total_out += step.produced as u64;
        if out_pos - sent >= HANDOFF && !flush(&out, &mut sent, out_pos) {
            return Ok(total_out);
        }
        if total_in - reported >= 16 << 20 {
            reported = total_in;
            progress(total_in);
        }
        match step.code {
            z::Z_OK | z::Z_BUF_ERROR => {}
            z::Z_STREAM_END => {
                ended = true;
                // Another member may follow (trailing zeros or garbage end the data, as with gzip).
                if in_pos == input.len() && !eof {
                    input.resize(CHUNK, 0);
                    let n = read_full(reader, &mut input, url)?;
                    input.truncate(n);
                    in_pos = 0;
                    eof = n < CHUNK;
                }
                let rest = &input[in_pos..];
                if rest.len() >= 2 && rest[0] == 0x1f && rest[1] == 0x8b {
                    inf.reset(gz::GZIP);
                    member_start = Some(total_in);
                    if bgzf {
                        blocks.push((total_in, total_out));
                    }
                    continue;
                }
                if !rest.is_empty() || !eof {
                    tracing::warn!(
                        "{url}: ignoring data after the last gzip member at byte {total_in}"
                    );
                }
                break;
            }
            code => {
                return Err(Error::Corrupt {
                    object: url.to_string(),
                    compression: if bgzf {
                        Compression::Bgzf
                    } else {
                        Compression::Gzip
                    },
                    message: format!(
                        "at compressed byte {total_in} (uncompressed {total_out}): {}",
                        inf.message(code)
                    ),
                })
            }
        }
        let at_boundary = step.data_type & 128 != 0 && step.data_type & 64 == 0;
        if !at_boundary {
            continue;
        }
        let at_member = member_start.take();
        if total_out < next_at || (bgzf && at_member.is_none()) {
            continue;
        }
        if !flush(&out, &mut sent, out_pos) {
            return Ok(total_out);
        }
        let (cp, window) = match at_member {
            // Right after a member header: resume by parsing that header.
            Some(start) => (
                Checkpoint {
                    u: total_out,
                    c: start,
                    bits: 0,
                    w: None,
                    o: 0,
                    r: 0,
                    p: None,
                },
                None,
            ),
            None => (
                Checkpoint {
                    u: total_out,
                    c: total_in,
                    bits: (step.data_type & 7) as u8,
                    w: None,
                    o: 0,
                    r: 0,
                    p: None,
                },
                Some(out[out_pos.saturating_sub(WINDOW)..out_pos].to_vec()),
            ),
        };
        if tx.send(Msg::Checkpoint(cp, window)).is_err() {
            return Ok(total_out);
        }
        next_at = total_out + spacing;
    }
    if !flush(&out, &mut sent, out_pos) {
        return Ok(total_out);
    }
    if !ended {
        return Err(Error::Truncated {
            object: url.to_string(),
            message: format!(
                "truncated gzip: the data ends inside a member (after {total_in} compressed, {total_out} uncompressed bytes)"
            ),
        });
    }
    // Like bgzip, list no block that starts at the end of the data (the
    // empty end-of-file block).
    while blocks.last().is_some_and(|&(_, u)| u == total_out) {
        blocks.pop();
    }
    progress(total_in);
    Ok(total_out)
}

/// A blocking reader over an object's byte stream (filled by a tokio task).
struct StreamReader {
    rx: std::sync::mpsc::Receiver<std::result::Result<bytes::Bytes, String>>,
    cur: bytes::Bytes,
}

impl StreamReader {
    fn spawn(
        mut stream: futures::stream::BoxStream<'static, tessera_store::Result<bytes::Bytes>>,
    ) -> StreamReader {
        use futures::StreamExt;
        let (tx, rx) = std::sync::mpsc::sync_channel(16);
        tokio::spawn(async move {
            while let Some(chunk) = stream.next().await {
                let item = chunk.map_err(|e| e.to_string());
                let stop = item.is_err();
                if tx.send(item).is_err() || stop {
                    break;
                }
            }
        });
        StreamReader {
            rx,
            cur: bytes::Bytes::new(),
        }
    }
}

impl Read for StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.recv() {
                Ok(Ok(b)) => self.cur = b,
                Ok(Err(e)) => return Err(std::io::Error::other(e)),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

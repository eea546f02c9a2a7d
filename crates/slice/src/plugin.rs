//! The public format trait, the index and slice documents every format
//! shares, and the registry that picks a format by name.
//!
//! A format is a type implementing [`SliceFormat`]: it indexes an object
//! (in one pass, or from its header and a few ranged reads), plans slices
//! from the index alone, and evaluates a slice from its descriptor. Indexes
//! and slices are JSON documents with a common envelope ([`AnyIndex`],
//! [`AnySlice`]: object URL, size, ETag, format name, record counts) and the
//! format's own fields beside it (`detail`), so a slice stays
//! self-contained and carries no credentials whichever format wrote it.
//!
//! [`Registry::builtin`] knows tessera's formats; a crate outside this one
//! adds its own with [`Registry::with_format`] (see the example plugin
//! crate `examples/slice-format-toy` in the repository).

use std::fmt;
use std::future::{Future, IntoFuture};
use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tessera_store::object_store::{self, GetOptions, GetRange};
use tessera_store::{Location, ObjectMeta, PublishMode, StoreOptions};

use crate::error::{Error, Result};
use crate::index::{sidecar, INDEX_SUFFIX, INDEX_VERSION};
use crate::slice::{Strategy, SLICE_VERSION};

/// A boxed future, as [`SliceFormat`]'s async methods return it.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// JSON object holding a format's own fields.
pub type Detail = serde_json::Map<String, serde_json::Value>;

/// Ranged GETs in flight when a format reads several ranges.
const PARALLEL_GETS: usize = 8;

/// Keys of the envelope, which a format's detail may not use.
const INDEX_KEYS: &[&str] = &[
    "tessera_index",
    "url",
    "size",
    "etag",
    "format",
    "records",
    "created_by",
];
const SLICE_KEYS: &[&str] = &[
    "tessera_slice",
    "url",
    "etag",
    "size",
    "format",
    "slice",
    "slices",
    "first_record",
    "record_count",
];

/// An index of one object in any format: the fields every format shares,
/// and the format's own in `detail` (flattened into the same JSON object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnyIndex {
    /// Format version of the envelope ([`INDEX_VERSION`]).
    pub tessera_index: u32,
    /// The indexed object.
    pub url: String,
    /// Its size in bytes when indexed.
    pub size: u64,
    /// Its ETag when indexed.
    pub etag: Option<String>,
    /// The format's name (as the registry knows it).
    pub format: String,
    /// Records in the object (what a record is depends on the format).
    pub records: u64,
    /// The tessera version that wrote the index.
    pub created_by: String,
    /// The format's own fields.
    #[serde(flatten)]
    pub detail: Detail,
}

impl AnyIndex {
    /// An index of `object` (whose metadata is `meta`) in `format` with
    /// `records` records and the format's own fields `detail` (a value that
    /// serializes to a JSON object whose keys are not the envelope's).
    pub fn new(
        object: &Location,
        meta: &ObjectMeta,
        format: &str,
        records: u64,
        detail: &impl Serialize,
    ) -> Result<AnyIndex> {
        Ok(AnyIndex {
            tessera_index: INDEX_VERSION,
            url: object.url(),
            size: meta.size,
            etag: meta.e_tag.clone(),
            format: format.to_string(),
            records,
            created_by: format!("tessera {}", env!("CARGO_PKG_VERSION")),
            detail: to_detail(detail, INDEX_KEYS)?,
        })
    }

    /// The format's own fields, as the type the format wrote them from.
    pub fn detail<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(serde_json::Value::Object(self.detail.clone())).map_err(|e| {
            Error::InvalidIndex {
                index: self.url.clone(),
                message: format!("not a {} index: {e}", self.format),
            }
        })
    }

    /// Where the index of `object` lives: beside it, or under `index_store`.
    pub fn location_for(object: &Location, index_store: Option<&Location>) -> Result<Location> {
        sidecar(object, index_store, INDEX_SUFFIX)
    }

    /// Save the index (replacing an older one).
    pub async fn save(&self, to: &Location) -> Result<()> {
        save_index(self, to).await
    }

    /// Read an index of any format; check its envelope is one this version reads.
    pub async fn load(from: &Location) -> Result<AnyIndex> {
        let (bytes, url) = read_index(from).await?;
        Self::from_json(&bytes, &url)
    }

    /// Parse an index from JSON (`url` names it in errors).
    pub fn from_json(bytes: &[u8], url: &str) -> Result<AnyIndex> {
        parse_index(bytes, url, |i: &AnyIndex| i.tessera_index)
    }

    /// Refuse the index when the object no longer has the size and ETag it recorded.
    pub fn check_current(&self, meta: &ObjectMeta) -> Result<()> {
        check_current(&self.url, self.size, self.etag.as_deref(), meta)
    }

    /// A slice of this index: the envelope filled from the index, and the
    /// format's own fields `detail`. `slices` is the plan's length.
    pub fn slice(
        &self,
        slice: usize,
        slices: usize,
        first_record: u64,
        record_count: u64,
        detail: &impl Serialize,
    ) -> Result<AnySlice> {
        Ok(AnySlice {
            tessera_slice: SLICE_VERSION,
            url: self.url.clone(),
            etag: self.etag.clone(),
            size: self.size,
            format: self.format.clone(),
            slice,
            slices,
            first_record,
            record_count,
            detail: to_detail(detail, SLICE_KEYS)?,
        })
    }
}

/// One slice in any format: the fields every format shares, and the
/// format's own in `detail` (flattened into the same JSON object). It holds
/// no credentials: a worker fetches it with its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnySlice {
    /// Descriptor format version ([`SLICE_VERSION`]).
    pub tessera_slice: u32,
    /// The object.
    pub url: String,
    /// Its ETag when indexed: every read refuses a changed object.
    pub etag: Option<String>,
    /// Its size when indexed.
    pub size: u64,
    /// The format's name.
    pub format: String,
    /// This slice's number (0-based).
    pub slice: usize,
    /// How many slices the plan has.
    pub slices: usize,
    /// Number of the slice's first record.
    pub first_record: u64,
    /// Records in this slice.
    pub record_count: u64,
    /// The format's own fields.
    #[serde(flatten)]
    pub detail: Detail,
}

impl AnySlice {
    /// The format's own fields, as the type the format wrote them from.
    pub fn detail<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(serde_json::Value::Object(self.detail.clone()))
            .map_err(|e| self.invalid(format!("not a {} slice: {e}", self.format)))
    }

    /// An [`Error::InvalidSlice`] about this slice.
    pub fn invalid(&self, message: impl Into<String>) -> Error {
        Error::InvalidSlice {
            object: self.url.clone(),
            slice: self.slice,
            message: message.into(),
        }
    }

    /// Check the envelope (version, ranges inside the object).
    pub fn validate(&self) -> Result<()> {
        if self.tessera_slice != SLICE_VERSION {
            return Err(self.invalid(format!(
                "descriptor version {} is not supported (this tessera reads version {SLICE_VERSION})",
                self.tessera_slice
            )));
        }
        Ok(())
    }

    /// Read bytes `start..end` of the object, refusing a changed object
    /// ([`Error::StaleIndex`]) and a range outside it.
    pub async fn read_range(
        &self,
        object: &Location,
        start: u64,
        end: u64,
    ) -> Result<bytes::Bytes> {
        if start > end || end > self.size {
            return Err(self.invalid(format!(
                "byte range {start}..{end} is outside the object ({} bytes)",
                self.size
            )));
        }
        ranged_get(
            object,
            &self.url,
            self.etag.as_deref(),
            self.size,
            start,
            end,
        )
        .await
    }

    /// Read several ranges (at most 8 GETs in flight), in order.
    pub async fn read_ranges(
        &self,
        object: &Location,
        ranges: &[(u64, u64)],
    ) -> Result<Vec<bytes::Bytes>> {
        futures::stream::iter(ranges.iter().copied())
            .map(|(a, b)| self.read_range(object, a, b))
            .buffered(PARALLEL_GETS)
            .try_collect()
            .await
    }
}

fn to_detail(detail: &impl Serialize, reserved: &[&str]) -> Result<Detail> {
    match serde_json::to_value(detail) {
        Ok(serde_json::Value::Object(map)) => {
            if let Some(k) = map.keys().find(|k| reserved.contains(&k.as_str())) {
                return Err(Error::internal(format!(
                    "a format's own field `{k}` collides with the envelope's"
                )));
            }
            Ok(map)
        }
        Ok(_) => Err(Error::internal(
            "a format's own fields must serialize to a JSON object",
        )),
        Err(e) => Err(Error::internal(format!(
            "cannot encode a format's fields: {e}"
        ))),
    }
}

/// Where a range's bytes are among coalesced reads: (read, start within
/// it); none for an empty range.
pub(crate) type Placement = Option<(usize, usize)>;

/// Merge half-open byte ranges lying within `gap` bytes of each other into
/// reads; returns the reads in order and each range's placement.
pub(crate) fn coalesce(ranges: &[[u64; 2]], gap: u64) -> (Vec<(u64, u64)>, Vec<Placement>) {
    let mut order: Vec<usize> = (0..ranges.len())
        .filter(|&i| ranges[i][1] > ranges[i][0])
        .collect();
    order.sort_by_key(|&i| ranges[i][0]);
    let mut reads: Vec<(u64, u64)> = Vec::new();
    let mut place = vec![None; ranges.len()];
    for i in order {
        let [a, b] = ranges[i];
        let last = reads.len().wrapping_sub(1);
        match reads.last_mut() {
            Some((s, e)) if a <= e.saturating_add(gap) => {
                *e = (*e).max(b);
                place[i] = Some((last, (a - *s) as usize));
            }
            _ => {
                reads.push((a, b));
                place[i] = Some((reads.len() - 1, 0));
            }
        }
    }
    (reads, place)
}

/// The metadata of `object`; [`Error::NotFound`] when it is missing.
pub(crate) async fn head(object: &Location) -> Result<ObjectMeta> {
    object.head().await.map_err(|e| {
        if e.is_not_found() {
            Error::NotFound {
                object: object.url(),
            }
        } else {
            Error::Store(e)
        }
    })
}

/// Write an index as JSON (replacing an older one).
pub(crate) async fn save_index(index: &impl Serialize, to: &Location) -> Result<()> {
    let json = serde_json::to_vec(index)
        .map_err(|e| Error::internal(format!("cannot encode the index: {e}")))?;
    to.publish(json, PublishMode::Overwrite).await?;
    Ok(())
}

/// The bytes of an index and its URL; [`Error::NoIndex`] when missing.
pub(crate) async fn read_index(from: &Location) -> Result<(bytes::Bytes, String)> {
    let url = from.url();
    match from.read().await {
        Ok(b) => Ok((b, url)),
        Err(e) if e.is_not_found() => Err(Error::NoIndex { index: url }),
        Err(e) => Err(Error::Store(e)),
    }
}

/// Parse an index document and check its format version.
pub(crate) fn parse_index<T: DeserializeOwned>(
    bytes: &[u8],
    url: &str,
    version: impl Fn(&T) -> u32,
) -> Result<T> {
    let index: T = serde_json::from_slice(bytes).map_err(|e| Error::InvalidIndex {
        index: url.to_string(),
        message: format!("not a tessera index: {e}"),
    })?;
    let v = version(&index);
    if v != INDEX_VERSION {
        return Err(Error::InvalidIndex {
            index: url.to_string(),
            message: format!(
                "index format version {v} is not supported (this tessera reads version {INDEX_VERSION})"
            ),
        });
    }
    Ok(index)
}

fn describe(size: u64, etag: Option<&str>) -> String {
    format!("{size} bytes, ETag {}", etag.unwrap_or("none"))
}

pub(crate) fn check_current(
    url: &str,
    size: u64,
    etag: Option<&str>,
    meta: &ObjectMeta,
) -> Result<()> {
    if meta.size != size || (etag.is_some() && meta.e_tag.as_deref() != etag) {
        return Err(Error::StaleIndex {
            object: url.to_string(),
            indexed: describe(size, etag),
            now: describe(meta.size, meta.e_tag.as_deref()),
        });
    }
    Ok(())
}

/// Bytes `a..b` of `object`, only if it still has ETag `etag`.
pub(crate) async fn ranged_get(
    object: &Location,
    url: &str,
    etag: Option<&str>,
    size: u64,
    a: u64,
    b: u64,
) -> Result<bytes::Bytes> {
    let opts = GetOptions {
        if_match: etag.map(str::to_string),
        range: Some(GetRange::Bounded(a..b)),
        ..Default::default()
    };
    let got = match object.store().get_opts(object.path(), opts).await {
        Ok(r) => r.bytes().await,
        Err(e) => Err(e),
    };
    let bytes = got.map_err(|e| match e {
        object_store::Error::NotFound { .. } => Error::NotFound {
            object: url.to_string(),
        },
        object_store::Error::Precondition { .. } => Error::StaleIndex {
            object: url.to_string(),
            indexed: describe(size, etag),
            now: "a different ETag".into(),
        },
        other => Error::Store(tessera_store::Error::from_object_store(url, other)),
    })?;
    if (bytes.len() as u64) < b - a {
        return Err(Error::Truncated {
            object: url.to_string(),
            message: format!(
                "asked for bytes {a}..{b}, got {}: the object is shorter than when it was indexed",
                bytes.len()
            ),
        });
    }
    Ok(bytes)
}

/// What a format is asked to index; built by [`Registry::index`].
#[non_exhaustive]
pub struct IndexRequest<'a> {
    /// The object.
    pub object: &'a Location,
    /// Its metadata, read once before indexing (size, ETag).
    pub meta: &'a ObjectMeta,
    /// The format name the object is indexed as (one of the format's names).
    pub format: &'static str,
    /// Distance between checkpoints, for formats that place them.
    pub spacing: Option<u64>,
    /// Whether a text object starts with a header line.
    pub header: bool,
    /// Whether to also scan the records once to record where they lie in
    /// space, for grid plans (LAS/LAZ).
    pub spatial: bool,
    /// Report bytes read so far, now and then.
    pub progress: Arc<dyn Fn(u64) + Send + Sync>,
}

impl fmt::Debug for IndexRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IndexRequest")
            .field("object", &self.object.url())
            .field("format", &self.format)
            .field("spacing", &self.spacing)
            .field("header", &self.header)
            .field("spatial", &self.spatial)
            .finish_non_exhaustive()
    }
}

/// A format that tessera can slice.
///
/// Implement it to add a format from outside this crate, then add it to a
/// [`Registry`] with [`Registry::with_format`]. The three steps:
///
/// - [`index`](SliceFormat::index) reads the object (once, or its header
///   and a few ranges) and returns an [`AnyIndex`] built with
///   [`AnyIndex::new`], holding what planning needs in its own fields.
/// - [`plan`](SliceFormat::plan) cuts the object from the index alone
///   (no I/O) into [`AnySlice`]s built with [`AnyIndex::slice`]; a strategy
///   the format cannot apply is [`Error::Unsupported`].
/// - [`fetch`](SliceFormat::fetch) evaluates one slice, reading the object
///   through [`AnySlice::read_range`] (which refuses a changed object), and
///   writes the slice's bytes (for binary formats a standalone file).
///
/// Slices of one plan must hold every record of the object exactly once.
pub trait SliceFormat: Send + Sync + 'static {
    /// The names this format answers to; the first is its own. Several
    /// names let one implementation serve related formats (`las`, `laz`).
    fn names(&self) -> &'static [&'static str];

    /// The name (one of [`names`](SliceFormat::names)) that `name` means,
    /// if this format answers to it; override to accept aliases. Called
    /// with a lower-case name.
    fn resolve(&self, name: &str) -> Option<&'static str> {
        self.names().iter().copied().find(|n| *n == name)
    }

    /// The name to index an object as, judged from its name (its
    /// extension); `None` when the name does not say.
    fn detect(&self, object_name: &str) -> Option<&'static str>;

    /// Whether a slice evaluates to a tar stream of several files (a
    /// dataset made of several files, such as imzML's XML and binary pair)
    /// rather than to one file; front ends unpack it ([`unpack`]).
    fn archive(&self) -> bool {
        false
    }

    /// For a dataset that is a folder of files (a MeasurementSet): the file
    /// inside it whose size and ETag stand for the dataset's in the index
    /// and its slices (the format checks every other file's own when it
    /// reads it). `None` (the default): the object is one file.
    fn folder_marker(&self) -> Option<&'static str> {
        None
    }

    /// Index one object.
    fn index<'a>(&'a self, request: IndexRequest<'a>) -> BoxFuture<'a, Result<AnyIndex>>;

    /// Plan slices from the index alone.
    fn plan(&self, index: &AnyIndex, strategy: Strategy) -> Result<Vec<AnySlice>>;

    /// Evaluate one slice into `out`; returns the bytes written.
    fn fetch<'a>(
        &'a self,
        slice: &'a AnySlice,
        object: &'a Location,
        out: &'a mut (dyn Write + Send),
    ) -> BoxFuture<'a, Result<u64>>;

    /// Evaluate a slice of a dataset of several files
    /// ([`archive`](SliceFormat::archive)) into those files: each one's
    /// path inside the slice (`/`-separated) and its bytes. The default
    /// reads back the tar stream [`fetch`](SliceFormat::fetch) writes;
    /// a format overrides it to hand its files over without the stream.
    fn fetch_files<'a>(
        &'a self,
        slice: &'a AnySlice,
        object: &'a Location,
    ) -> BoxFuture<'a, Result<Vec<SliceFile>>> {
        Box::pin(async move {
            let mut tar = Vec::new();
            self.fetch(slice, object, &mut tar).await?;
            untar(&tar)
        })
    }
}

/// The formats a program can slice, found by name.
///
/// ```
/// use tessera_slice::Registry;
/// let formats = Registry::builtin();
/// assert!(formats.names().contains(&"fastq"));
/// assert_eq!(formats.detect("s3://b/tile.laz"), Some("laz"));
/// ```
#[derive(Clone)]
pub struct Registry {
    formats: Vec<Arc<dyn SliceFormat>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("formats", &self.names())
            .finish()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::builtin()
    }
}

impl Registry {
    /// No formats at all.
    pub fn empty() -> Registry {
        Registry {
            formats: Vec::new(),
        }
    }

    /// tessera's own formats: CSV, TSV, text, JSON Lines, FASTA, FASTQ,
    /// VCF (plain, gzip, BGZF), LAS/LAZ/COPC point clouds, Cloud-Optimized
    /// GeoTIFFs (any tiled TIFF), imzML mass-spectrometry images and
    /// radio-astronomy MeasurementSets (folders).
    pub fn builtin() -> Registry {
        Registry::empty()
            .with_format(crate::text::RecordFormats)
            .with_format(crate::las::LasFormat)
            .with_format(crate::cog::CogFormat)
            .with_format(crate::imzml::ImzmlFormat)
            .with_format(crate::ms::MsFormat)
    }

    /// Add a format. Its names take precedence over earlier formats' (a
    /// plugin may replace a built-in format).
    pub fn with_format(mut self, format: impl SliceFormat) -> Registry {
        self.formats.insert(0, Arc::new(format));
        self
    }

    /// Every name a format answers to.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Vec::new();
        for f in self.formats.iter().rev() {
            for n in f.names() {
                if !names.contains(n) {
                    names.push(n);
                }
            }
        }
        names
    }

    /// The format answering to `name` (case-insensitive), with the name as
    /// it knows it; [`Error::NoSuchFormat`] if none does.
    pub fn format(&self, name: &str) -> Result<(&dyn SliceFormat, &'static str)> {
        let lower = name.to_ascii_lowercase();
        for f in &self.formats {
            if let Some(n) = f.resolve(&lower) {
                return Ok((f.as_ref(), n));
            }
        }
        Err(Error::NoSuchFormat {
            format: name.to_string(),
            known: self.names().join(", "),
        })
    }

    /// The format name an object's name suggests, if any format claims it.
    pub fn detect(&self, object_name: &str) -> Option<&'static str> {
        self.formats.iter().find_map(|f| f.detect(object_name))
    }

    /// Index `object`: an [`IndexAny`] builder (the format comes from the
    /// object's name unless one is given).
    pub fn index(&self, object: &Location) -> IndexAny {
        IndexAny {
            registry: self.clone(),
            object: object.clone(),
            format: None,
            spacing: None,
            header: true,
            spatial: false,
            progress: Arc::new(|_| {}),
        }
    }

    /// Open the index of `object` (beside it, or under `index_store`) and
    /// check it is current.
    pub async fn open_index(
        &self,
        object: &Location,
        index_store: Option<&Location>,
    ) -> Result<AnyIndex> {
        // A folder dataset stands for its version through a file inside it;
        // which one, the index's format says (the folder's name need not).
        let marker = |format: &str| {
            self.format(format)
                .ok()
                .and_then(|(f, _)| f.folder_marker())
        };
        let meta_of = |format: Option<&'static str>| async move {
            match format {
                Some(m) => head(&object.join(m)?).await,
                None => head(object).await,
            }
        };
        let index = match AnyIndex::load(&AnyIndex::location_for(object, index_store)?).await {
            Ok(index) => index,
            Err(e) => {
                // A missing object is said before a missing index.
                let guess = self.detect(object.path().as_ref()).and_then(marker);
                meta_of(guess).await?;
                return Err(e);
            }
        };
        let meta = meta_of(marker(&index.format)).await?;
        index.check_current(&meta)?;
        Ok(index)
    }

    /// Plan slices of an indexed object with its format.
    pub fn plan(&self, index: &AnyIndex, strategy: Strategy) -> Result<Vec<AnySlice>> {
        let (format, _) = self.format(&index.format)?;
        let slices = format.plan(index, strategy)?;
        if slices.iter().any(|s| s.format != index.format) {
            return Err(Error::internal(format!(
                "the {} format planned slices of another format",
                index.format
            )));
        }
        Ok(slices)
    }

    /// Evaluate one slice with its format: a [`FetchAny`] builder.
    pub fn fetch<'a>(&'a self, slice: &'a AnySlice, object: &'a Location) -> FetchAny<'a> {
        FetchAny {
            registry: self,
            slice,
            object: Some(object),
            opts: None,
        }
    }

    /// [`Registry::fetch`] from the slice's own URL, opened with `opts`
    /// (the worker's credentials: slices carry none).
    pub fn fetch_from_url<'a>(
        &'a self,
        slice: &'a AnySlice,
        opts: &'a StoreOptions,
    ) -> FetchAny<'a> {
        FetchAny {
            registry: self,
            slice,
            object: None,
            opts: Some(opts),
        }
    }
}

/// Index one object with the registry's formats; started by
/// [`Registry::index`]. Awaiting it returns the index (not yet saved: see
/// [`AnyIndex::save`]).
#[must_use = "indexing does nothing until the builder is awaited"]
pub struct IndexAny {
    registry: Registry,
    object: Location,
    format: Option<String>,
    spacing: Option<u64>,
    header: bool,
    spatial: bool,
    progress: Arc<dyn Fn(u64) + Send + Sync>,
}

impl fmt::Debug for IndexAny {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IndexAny")
            .field("object", &self.object.url())
            .field("format", &self.format)
            .field("spacing", &self.spacing)
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl IndexAny {
    /// Index as this format (a name the registry knows), instead of
    /// judging from the object's name.
    pub fn with_format(mut self, format: impl Into<String>) -> Self {
        self.format = Some(format.into());
        self
    }

    /// Distance between checkpoints, for formats that place them.
    pub fn with_spacing(mut self, bytes: u64) -> Self {
        self.spacing = Some(bytes);
        self
    }

    /// Whether a CSV/TSV object starts with a header line (default true).
    pub fn with_header(mut self, header: bool) -> Self {
        self.header = header;
        self
    }

    /// Also scan the records once to record where they lie in space, so
    /// that grid plans can be made from the index (LAS/LAZ: reads every
    /// point once; other formats ignore it). Default false.
    pub fn with_spatial(mut self, spatial: bool) -> Self {
        self.spatial = spatial;
        self
    }

    /// Report bytes read so far, now and then.
    pub fn with_progress(mut self, progress: impl Fn(u64) + Send + Sync + 'static) -> Self {
        self.progress = Arc::new(progress);
        self
    }

    async fn run(self) -> Result<AnyIndex> {
        let url = self.object.url();
        let (format, name) = match &self.format {
            Some(f) => self.registry.format(f)?,
            None => {
                let name = self
                    .registry
                    .detect(self.object.path().as_ref())
                    .ok_or_else(|| Error::UnknownFormat {
                        object: url.clone(),
                    })?;
                self.registry.format(name)?
            }
        };
        let meta = match format.folder_marker() {
            Some(marker) => head(&self.object.join(marker)?).await?,
            None => head(&self.object).await?,
        };
        let request = IndexRequest {
            object: &self.object,
            meta: &meta,
            format: name,
            spacing: self.spacing,
            header: self.header,
            spatial: self.spatial,
            progress: self.progress.clone(),
        };
        let index = format.index(request).await?;
        if index.format != name || index.url != url {
            return Err(Error::internal(format!(
                "the {name} format returned an index of another format or object"
            )));
        }
        Ok(index)
    }
}

impl IntoFuture for IndexAny {
    type Output = Result<AnyIndex>;
    type IntoFuture = BoxFuture<'static, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

/// Evaluate one slice with its format; started by [`Registry::fetch`] or
/// [`Registry::fetch_from_url`]. Awaiting it returns the slice's bytes;
/// [`FetchAny::write_to`] streams them.
#[must_use = "fetching does nothing until the builder is awaited or written out"]
pub struct FetchAny<'a> {
    registry: &'a Registry,
    slice: &'a AnySlice,
    object: Option<&'a Location>,
    opts: Option<&'a StoreOptions>,
}

impl fmt::Debug for FetchAny<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchAny")
            .field("slice", &self.slice.slice)
            .field("url", &self.slice.url)
            .finish_non_exhaustive()
    }
}

impl<'a> FetchAny<'a> {
    /// The slice's format and its object, opened unless given.
    async fn open(&self) -> Result<(&'a dyn SliceFormat, std::borrow::Cow<'a, Location>)> {
        self.slice.validate()?;
        let (format, _) = self.registry.format(&self.slice.format)?;
        let object = match (self.object, self.opts) {
            (Some(o), _) => std::borrow::Cow::Borrowed(o),
            (None, opts) => {
                let default = StoreOptions::default();
                std::borrow::Cow::Owned(
                    Location::open(&self.slice.url, opts.unwrap_or(&default)).await?,
                )
            }
        };
        Ok((format, object))
    }

    /// Write the slice into `out`; returns the bytes written.
    pub async fn write_to(self, out: &mut (dyn Write + Send)) -> Result<u64> {
        let (format, object) = self.open().await?;
        format.fetch(self.slice, &object, out).await
    }

    /// The files of a slice of a dataset of several files
    /// ([`SliceFormat::archive`]): each one's path inside the slice and
    /// its bytes, without a tar stream between.
    pub async fn files(self) -> Result<Vec<SliceFile>> {
        let (format, object) = self.open().await?;
        if !format.archive() {
            return Err(Error::unsupported(
                self.slice.url.clone(),
                format!(
                    "a {} slice is one file, not a dataset of several",
                    self.slice.format
                ),
            ));
        }
        format.fetch_files(self.slice, &object).await
    }

    /// Write the files of a slice of a dataset of several files into the
    /// folder `dir` (created if missing); returns the files written.
    pub async fn write_into(self, dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
        let files = self.files().await?;
        write_files(&files, dir)
    }
}

impl<'a> IntoFuture for FetchAny<'a> {
    type Output = Result<Vec<u8>>;
    type IntoFuture = BoxFuture<'a, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let mut out = Vec::new();
            self.write_to(&mut out).await?;
            Ok(out)
        })
    }
}

/// One file of a slice of a dataset of several files
/// ([`SliceFormat::archive`]): its path inside the slice (`/`-separated)
/// and its bytes, in parts to be written one after the other. The parts
/// are often views of the bytes read from the store, so a file is not
/// copied to be assembled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceFile {
    pub path: String,
    pub parts: Vec<Bytes>,
}

impl SliceFile {
    /// A file of one part.
    pub fn new(path: impl Into<String>, bytes: impl Into<Bytes>) -> SliceFile {
        SliceFile {
            path: path.into(),
            parts: vec![bytes.into()],
        }
    }

    /// Its size in bytes.
    pub fn len(&self) -> u64 {
        self.parts.iter().map(|p| p.len() as u64).sum()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.parts.iter().all(|p| p.is_empty())
    }

    /// Its bytes in one piece (copied unless it has one part).
    pub fn to_bytes(&self) -> Bytes {
        match &self.parts[..] {
            [] => Bytes::new(),
            [one] => one.clone(),
            many => Bytes::from(many.concat()),
        }
    }
}

/// Write the files of a dataset slice ([`SliceFormat::archive`]) to `out`
/// as a tar stream (plain entries, mode 644, no dates, so the same slice
/// gives the same bytes); returns the bytes written.
pub(crate) fn write_tar(files: &[SliceFile], out: &mut (dyn Write + Send)) -> Result<u64> {
    // Straight into `out`, counted: a slice is not copied once more.
    struct Counted<'w> {
        out: &'w mut (dyn Write + Send),
        n: u64,
    }
    impl Write for Counted<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let k = self.out.write(buf)?;
            self.n += k as u64;
            Ok(k)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.out.flush()
        }
    }
    /// A file's parts read one after the other.
    struct Parts<'p>(std::slice::Iter<'p, Bytes>, &'p [u8]);
    impl std::io::Read for Parts<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            while self.1.is_empty() {
                match self.0.next() {
                    Some(p) => self.1 = p,
                    None => return Ok(0),
                }
            }
            self.1.read(buf)
        }
    }
    let w = |e: std::io::Error| Error::io("writing the slice", e);
    let mut tar = tar::Builder::new(Counted { out, n: 0 });
    for f in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(f.len());
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        tar.append_data(&mut h, &f.path, Parts(f.parts.iter(), &[]))
            .map_err(w)?;
    }
    Ok(tar.into_inner().map_err(w)?.n)
}

/// The files of a tar stream a slice evaluated to: each one's path and
/// bytes.
pub(crate) fn untar(tar_bytes: &[u8]) -> Result<Vec<SliceFile>> {
    let bad = |e: std::io::Error| Error::io("reading the slice's tar stream", e);
    let mut archive = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path().map_err(bad)?.to_string_lossy().into_owned();
        let mut data = Vec::with_capacity(entry.size() as usize);
        std::io::Read::read_to_end(&mut entry, &mut data).map_err(bad)?;
        out.push(SliceFile::new(name, data));
    }
    Ok(out)
}

/// Write the files of a slice (each one's path inside the slice and its
/// bytes) into the folder `dir`, creating it and the sub-folders a path
/// names; returns the files written. Absolute paths and `..` are refused.
pub fn write_files(files: &[SliceFile], dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
    let io = |what: &str, e: std::io::Error| Error::io(format!("{what} {}", dir.display()), e);
    std::fs::create_dir_all(dir).map_err(|e| io("cannot create", e))?;
    let mut written = Vec::with_capacity(files.len());
    for f in files {
        let name = &f.path;
        let path = std::path::Path::new(name);
        if name.is_empty()
            || path.is_absolute()
            || path.components().any(|c| {
                !matches!(
                    c,
                    std::path::Component::Normal(_) | std::path::Component::CurDir
                )
            })
        {
            return Err(Error::internal(format!(
                "a slice file outside its folder: {name}"
            )));
        }
        let to = dir.join(path);
        // A folder dataset (a MeasurementSet) has files in sub-folders.
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io("cannot create a folder in", e))?;
        }
        let write = || -> std::io::Result<()> {
            let mut out = std::fs::File::create(&to)?;
            for part in &f.parts {
                out.write_all(part)?;
            }
            Ok(())
        };
        write().map_err(|e| io("cannot write into", e))?;
        written.push(to);
    }
    Ok(written)
}

/// Unpack a slice that evaluated to a tar stream ([`SliceFormat::archive`])
/// into the folder `dir` (created if missing); returns the files written.
/// Entries with absolute paths or `..` are refused.
pub fn unpack(tar_bytes: &[u8], dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
    write_files(&untar(tar_bytes)?, dir)
}

/// Read slice `i` of a slices file of any format without decoding the others.
pub fn pick_any_slice(json: &[u8], name: &str, i: usize) -> Result<AnySlice> {
    let not_slices = |e: serde_json::Error| Error::InvalidSlicesFile {
        file: name.to_string(),
        message: e.to_string(),
    };
    let list: Vec<&serde_json::value::RawValue> =
        serde_json::from_slice(json).map_err(not_slices)?;
    let Some(raw) = list.get(i) else {
        return Err(Error::NoSuchSlice {
            file: name.to_string(),
            slice: i,
            count: list.len(),
        });
    };
    let slice: AnySlice = serde_json::from_str(raw.get()).map_err(not_slices)?;
    slice.validate()?;
    Ok(slice)
}

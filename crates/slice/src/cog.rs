//! Cloud-Optimized GeoTIFFs (and any tiled TIFF) as a [`SliceFormat`].
//!
//! The index holds every image directory's tags (raw, as stored) and its
//! tiles' offsets and byte counts; it is built from a few ranged reads of
//! the file's start (a COG keeps its directories there), never a read of
//! the pixels. A record is a tile. Plans cut one directory (the full
//! resolution, or an overview with [`Strategy::Level`]) into tile-aligned
//! windows; a slice evaluates to a standalone GeoTIFF of its window: one
//! directory, the tiles copied byte for byte (compression, predictor, JPEG
//! tables, GeoKeys and nodata kept), width and height clipped at the
//! image's edges, and the georeferencing moved to the window's origin.
//! Sparse tiles (offset and byte count 0) stay sparse; planar configuration
//! 2 (one tile set per band) is kept. Striped TIFFs are refused.

use std::collections::BTreeMap;
use std::io::Write;

use base64::Engine;
use serde::{Deserialize, Serialize};
use tessera_store::Location;

use crate::error::{Error, Result};
use crate::plugin::{
    coalesce, ranged_get, AnyIndex, AnySlice, BoxFuture, IndexRequest, SliceFormat,
};
use crate::slice::Strategy;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Cloud-Optimized GeoTIFF and tiled TIFF (`cog`), for a [`Registry`](crate::Registry).
#[derive(Debug, Clone, Copy, Default)]
pub struct CogFormat;

/// Bytes read at a time while indexing.
const BLOCK: u64 = 64 << 10;
/// Most directories a file may have (a loop guard).
const MAX_IFDS: usize = 1024;
/// Tiles closer than this are read with one GET.
const GAP: u64 = 64 << 10;

// Tags tessera reads or rewrites.
const NEW_SUBFILE_TYPE: u16 = 254;
const IMAGE_WIDTH: u16 = 256;
const IMAGE_LENGTH: u16 = 257;
const STRIP_OFFSETS: u16 = 273;
const SAMPLES_PER_PIXEL: u16 = 277;
const ROWS_PER_STRIP: u16 = 278;
const STRIP_BYTE_COUNTS: u16 = 279;
const PLANAR_CONFIGURATION: u16 = 284;
const TILE_WIDTH: u16 = 322;
const TILE_LENGTH: u16 = 323;
const TILE_OFFSETS: u16 = 324;
const TILE_BYTE_COUNTS: u16 = 325;
const SUB_IFDS: u16 = 330;
const MODEL_PIXEL_SCALE: u16 = 33550;
const MODEL_TIEPOINT: u16 = 33922;
const MODEL_TRANSFORMATION: u16 = 34264;
/// Tags describing georeferencing and nodata, which overviews inherit from
/// the full-resolution image when they have none of their own.
const GEO_TAGS: &[u16] = &[33550, 33922, 34264, 34735, 34736, 34737, 42112, 42113];

// Field types.
const SHORT: u16 = 3;
const LONG: u16 = 4;
const DOUBLE: u16 = 12;
const LONG8: u16 = 16;

fn type_size(t: u16) -> Option<u64> {
    Some(match t {
        1 | 2 | 6 | 7 => 1,
        3 | 8 => 2,
        4 | 9 | 11 | 13 => 4,
        5 | 10 | 12 | 16 | 17 | 18 => 8,
        _ => return None,
    })
}

/// One tag as stored: its type, count and value bytes (in the file's byte order).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RawTag {
    tag: u16,
    #[serde(rename = "type")]
    typ: u16,
    count: u64,
    /// The value bytes, base64.
    value: String,
}

/// One image directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Ifd {
    /// `image` (full resolution), `overview` or `mask`.
    kind: String,
    width: u32,
    height: u32,
    tile_width: u32,
    tile_height: u32,
    /// Tile sets: 1, or the bands with planar configuration 2.
    planes: u32,
    /// Each tile's offset, in the file's order (plane, row, column).
    offsets: Vec<u64>,
    /// Each tile's byte count.
    byte_counts: Vec<u64>,
    /// Every other tag, as stored.
    tags: Vec<RawTag>,
}

impl Ifd {
    fn across(&self) -> u32 {
        self.width.div_ceil(self.tile_width)
    }

    fn down(&self) -> u32 {
        self.height.div_ceil(self.tile_height)
    }
}

/// What a COG index holds beside the envelope.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CogIndex {
    big_endian: bool,
    bigtiff: bool,
    ifds: Vec<Ifd>,
    /// Ranged GETs the index took.
    reads: u32,
}

/// What a COG slice holds beside the envelope.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CogSlice {
    big_endian: bool,
    bigtiff: bool,
    /// The directory the window is cut from.
    ifd: usize,
    /// The window in that directory's pixels: x, y, width, height.
    window: [u32; 4],
    tile_width: u32,
    tile_height: u32,
    /// The window's tiles (offset, byte count) in output order.
    tiles: Vec<[u64; 2]>,
    /// The output directory's other tags (georeferencing already moved).
    tags: Vec<RawTag>,
}

fn invalid(url: &str, message: impl Into<String>) -> Error {
    Error::InvalidFile {
        object: url.to_string(),
        format: "TIFF".into(),
        message: message.into(),
    }
}

#[derive(Clone, Copy)]
struct Order {
    big: bool,
}

impl Order {
    fn u16(self, b: &[u8]) -> u16 {
        let a = [b[0], b[1]];
        if self.big {
            u16::from_be_bytes(a)
        } else {
            u16::from_le_bytes(a)
        }
    }
    fn u32(self, b: &[u8]) -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        if self.big {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    }
    fn u64(self, b: &[u8]) -> u64 {
        let a: [u8; 8] = b[..8].try_into().unwrap_or_default();
        if self.big {
            u64::from_be_bytes(a)
        } else {
            u64::from_le_bytes(a)
        }
    }
    fn f64(self, b: &[u8]) -> f64 {
        f64::from_bits(self.u64(b))
    }
    fn put_u16(self, v: u16) -> [u8; 2] {
        if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn put_u32(self, v: u32) -> [u8; 4] {
        if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn put_u64(self, v: u64) -> [u8; 8] {
        if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn put_f64(self, v: f64) -> [u8; 8] {
        self.put_u64(v.to_bits())
    }

    /// The unsigned integers of a SHORT, LONG or LONG8 value.
    fn uints(self, typ: u16, bytes: &[u8]) -> Option<Vec<u64>> {
        match typ {
            SHORT => Some(
                bytes
                    .chunks_exact(2)
                    .map(|c| u64::from(self.u16(c)))
                    .collect(),
            ),
            LONG | 13 => Some(
                bytes
                    .chunks_exact(4)
                    .map(|c| u64::from(self.u32(c)))
                    .collect(),
            ),
            LONG8 | 18 => Some(bytes.chunks_exact(8).map(|c| self.u64(c)).collect()),
            _ => None,
        }
    }
}

/// Reads a remote object in 64 KiB blocks, counting the GETs.
struct Blocks<'a> {
    object: &'a Location,
    url: String,
    etag: Option<String>,
    size: u64,
    blocks: BTreeMap<u64, bytes::Bytes>,
    reads: u32,
}

impl Blocks<'_> {
    async fn read(&mut self, at: u64, len: u64) -> Result<Vec<u8>> {
        let end = at
            .checked_add(len)
            .filter(|e| *e <= self.size)
            .ok_or_else(|| {
                invalid(
                    &self.url,
                    format!(
                        "bytes {at}..{} lie past the end of the file ({} bytes)",
                        at.saturating_add(len),
                        self.size
                    ),
                )
            })?;
        // Fetch the missing blocks, adjacent ones in one GET.
        let first = at / BLOCK;
        let last = if len == 0 { first } else { (end - 1) / BLOCK };
        let mut b = first;
        while b <= last {
            if self.blocks.contains_key(&b) {
                b += 1;
                continue;
            }
            let mut e = b;
            while e < last && !self.blocks.contains_key(&(e + 1)) {
                e += 1;
            }
            let (ra, rb) = (b * BLOCK, ((e + 1) * BLOCK).min(self.size));
            let got = ranged_get(
                self.object,
                &self.url,
                self.etag.as_deref(),
                self.size,
                ra,
                rb,
            )
            .await?;
            self.reads += 1;
            for k in b..=e {
                let s = ((k - b) * BLOCK) as usize;
                let t = (s + BLOCK as usize).min(got.len());
                self.blocks.insert(k, got.slice(s..t));
            }
            b = e + 1;
        }
        let mut out = Vec::with_capacity(len as usize);
        let mut pos = at;
        while pos < end {
            let k = pos / BLOCK;
            let block = &self.blocks[&k];
            let s = (pos - k * BLOCK) as usize;
            let t = ((end - k * BLOCK) as usize).min(block.len());
            if s >= t {
                return Err(invalid(&self.url, "the file ends inside a directory"));
            }
            out.extend_from_slice(&block[s..t]);
            pos += (t - s) as u64;
        }
        Ok(out)
    }
}

async fn build_index(req: IndexRequest<'_>) -> Result<AnyIndex> {
    let url = req.object.url();
    let mut r = Blocks {
        object: req.object,
        url: url.clone(),
        etag: req.meta.e_tag.clone(),
        size: req.meta.size,
        blocks: BTreeMap::new(),
        reads: 0,
    };
    if r.size < 8 {
        return Err(invalid(
            &url,
            format!("{} bytes is too short for a TIFF header", r.size),
        ));
    }
    let head = r.read(0, r.size.min(16)).await?;
    let o = match &head[..2] {
        b"II" => Order { big: false },
        b"MM" => Order { big: true },
        _ => {
            return Err(invalid(
                &url,
                "not a TIFF file (no II or MM byte order mark)",
            ))
        }
    };
    let (bigtiff, mut next) = match o.u16(&head[2..4]) {
        42 => (false, u64::from(o.u32(&head[4..8]))),
        43 if head.len() >= 16 => (true, o.u64(&head[8..16])),
        v => return Err(invalid(&url, format!("not a TIFF file (version {v})"))),
    };
    let mut ifds = Vec::new();
    let mut seen = std::collections::HashSet::new();
    while next != 0 {
        if !seen.insert(next) || ifds.len() >= MAX_IFDS {
            return Err(invalid(
                &url,
                format!("the directory chain loops at byte {next}"),
            ));
        }
        let (ifd, after) = read_ifd(&mut r, o, bigtiff, next, ifds.len()).await?;
        ifds.push(ifd);
        next = after;
    }
    (req.progress)(u64::from(r.reads) * BLOCK);
    let Some(first) = ifds.first() else {
        return Err(invalid(&url, "no image directory"));
    };
    let records = first.offsets.len() as u64;
    let detail = CogIndex {
        big_endian: o.big,
        bigtiff,
        ifds,
        reads: r.reads,
    };
    AnyIndex::new(req.object, req.meta, req.format, records, &detail)
}

/// Read the directory at `at`; returns it and the next directory's offset.
async fn read_ifd(
    r: &mut Blocks<'_>,
    o: Order,
    bigtiff: bool,
    at: u64,
    number: usize,
) -> Result<(Ifd, u64)> {
    let url = r.url.clone();
    let (count_len, entry_len, next_len) = if bigtiff { (8, 20, 8) } else { (2, 12, 4) };
    let n = r.read(at, count_len).await?;
    let n = if bigtiff {
        o.u64(&n)
    } else {
        u64::from(o.u16(&n))
    };
    if n > 4096 {
        return Err(invalid(
            &url,
            format!("directory {number} claims {n} entries"),
        ));
    }
    let body = r.read(at + count_len, n * entry_len + next_len).await?;
    let inline = if bigtiff { 8 } else { 4 };
    let mut tags: BTreeMap<u16, RawTag> = BTreeMap::new();
    let mut numbers: BTreeMap<u16, Vec<u64>> = BTreeMap::new();
    for e in body[..(n * entry_len) as usize].chunks_exact(entry_len as usize) {
        let tag = o.u16(&e[0..2]);
        let typ = o.u16(&e[2..4]);
        let count = if bigtiff {
            o.u64(&e[4..12])
        } else {
            u64::from(o.u32(&e[4..8]))
        };
        let field = &e[if bigtiff { 12..20 } else { 8..12 }];
        let Some(size) = type_size(typ) else {
            // An unknown type cannot be copied faithfully; leave it out.
            continue;
        };
        let len = count
            .checked_mul(size)
            .ok_or_else(|| invalid(&url, format!("tag {tag}: count {count} overflows")))?;
        let value = if len <= inline {
            field[..len as usize].to_vec()
        } else {
            let off = if bigtiff {
                o.u64(field)
            } else {
                u64::from(o.u32(field))
            };
            r.read(off, len).await?
        };
        if let Some(v) = o.uints(typ, &value) {
            numbers.insert(tag, v);
        }
        tags.insert(
            tag,
            RawTag {
                tag,
                typ,
                count,
                value: B64.encode(&value),
            },
        );
    }
    let next_at = &body[(n * entry_len) as usize..];
    let next = if bigtiff {
        o.u64(next_at)
    } else {
        u64::from(o.u32(next_at))
    };
    let one = |t: u16| numbers.get(&t).and_then(|v| v.first().copied());
    let need = |t: u16, name: &str| {
        one(t).ok_or_else(|| invalid(&url, format!("directory {number} has no {name}")))
    };
    let width = need(IMAGE_WIDTH, "ImageWidth")?;
    let height = need(IMAGE_LENGTH, "ImageLength")?;
    if tags.contains_key(&STRIP_OFFSETS) && !tags.contains_key(&TILE_OFFSETS) {
        return Err(Error::unsupported(
            url,
            format!(
                "directory {number} is striped, not tiled: only tiled TIFFs (such as Cloud-Optimized GeoTIFFs) can be cut into windows; convert it with `gdal_translate -of COG`"
            ),
        ));
    }
    let tile_width = need(TILE_WIDTH, "TileWidth")?;
    let tile_height = need(TILE_LENGTH, "TileLength")?;
    let samples = one(SAMPLES_PER_PIXEL).unwrap_or(1);
    let planes = if one(PLANAR_CONFIGURATION) == Some(2) {
        samples
    } else {
        1
    };
    let subfile = one(NEW_SUBFILE_TYPE).unwrap_or(0);
    let offsets = numbers.remove(&TILE_OFFSETS).unwrap_or_default();
    let byte_counts = numbers.remove(&TILE_BYTE_COUNTS).unwrap_or_default();
    let (w32, h32) = (u32::try_from(width), u32::try_from(height));
    let (Ok(width), Ok(height), Ok(tw), Ok(th), Ok(planes)) = (
        w32,
        h32,
        u32::try_from(tile_width),
        u32::try_from(tile_height),
        u32::try_from(planes),
    ) else {
        return Err(invalid(
            &url,
            format!("directory {number}: sizes past 2^32"),
        ));
    };
    if width == 0 || height == 0 || tw == 0 || th == 0 {
        return Err(invalid(
            &url,
            format!("directory {number}: an empty image or tile"),
        ));
    }
    let tiles = u64::from(width.div_ceil(tw)) * u64::from(height.div_ceil(th)) * u64::from(planes);
    if offsets.len() as u64 != tiles || byte_counts.len() as u64 != tiles {
        return Err(invalid(
            &url,
            format!(
                "directory {number}: {tiles} tiles of {tw}x{th} in a {width}x{height} image, but {} offsets and {} byte counts",
                offsets.len(),
                byte_counts.len()
            ),
        ));
    }
    for (i, (off, len)) in offsets.iter().zip(&byte_counts).enumerate() {
        if off.checked_add(*len).is_none_or(|e| e > r.size) {
            return Err(invalid(
                &url,
                format!("directory {number}, tile {i}: bytes {off}..+{len} lie past the end of the file ({} bytes)", r.size),
            ));
        }
    }
    let kind = if subfile & 4 != 0 {
        "mask"
    } else if subfile & 1 != 0 || number > 0 {
        "overview"
    } else {
        "image"
    };
    for t in [
        TILE_OFFSETS,
        TILE_BYTE_COUNTS,
        STRIP_OFFSETS,
        STRIP_BYTE_COUNTS,
        ROWS_PER_STRIP,
        SUB_IFDS,
    ] {
        tags.remove(&t);
    }
    Ok((
        Ifd {
            kind: kind.into(),
            width,
            height,
            tile_width: tw,
            tile_height: th,
            planes,
            offsets,
            byte_counts,
            tags: tags.into_values().collect(),
        },
        next,
    ))
}

/// Split `n` items into `parts` near-even runs: the run starts, then `n`.
fn even(n: u32, parts: u32) -> Vec<u32> {
    let parts = parts.clamp(1, n.max(1));
    (0..=parts)
        .map(|i| (u64::from(n) * u64::from(i) / u64::from(parts)) as u32)
        .collect()
}

fn plan(index: &AnyIndex, strategy: Strategy) -> Result<Vec<AnySlice>> {
    let d: CogIndex = index.detail()?;
    let images: Vec<usize> = (0..d.ifds.len())
        .filter(|&i| d.ifds[i].kind != "mask")
        .collect();
    let (level, strategy) = match strategy {
        Strategy::Level { level, count } => {
            let Some(&i) = images.get(level as usize) else {
                return Err(Error::unsupported(
                    index.url.clone(),
                    format!("level {level} does not exist: the file has levels 0 to {} (0 is the full resolution)", images.len().saturating_sub(1)),
                ));
            };
            (i, Strategy::Count(count))
        }
        other => (images.first().copied().unwrap_or(0), other),
    };
    let ifd = &d.ifds[level];
    let (across, down) = (ifd.across(), ifd.down());
    // Tile-aligned windows: column and row cuts in tiles.
    let (cols, rows): (Vec<u32>, Vec<u32>) =
        match strategy {
            Strategy::Count(0)
            | Strategy::Bytes(0)
            | Strategy::Records(0)
            | Strategy::Grid { columns: 0, .. }
            | Strategy::Grid { rows: 0, .. }
            | Strategy::Level { count: 0, .. } => return Err(Error::InvalidStrategy { strategy }),
            Strategy::Count(n) => {
                // The grid of at most `down` rows and `across` columns nearest
                // `n` windows, not fewer when that can be helped (a worker
                // asked for is not left idle); fewer columns on a tie (rows of
                // tiles lie together in a COG).
                let n = u64::try_from(n).unwrap_or(u64::MAX);
                let reach = n.min(u64::from(across) * u64::from(down));
                let mut best = ((true, u64::MAX, u32::MAX), 1, 1);
                for r in 1..=u64::from(down).min(n) {
                    for c in [n / r, n.div_ceil(r)] {
                        let c = c.clamp(1, u64::from(across));
                        let key = (c * r < reach, (c * r).abs_diff(n), c as u32);
                        if key < best.0 {
                            best = (key, c as u32, r as u32);
                        }
                    }
                }
                (even(across, best.1), even(down, best.2))
            }
            Strategy::Grid { columns, rows } => (even(across, columns), even(down, rows)),
            Strategy::Records(k) => {
                // A record is a stored tile: a window position holds one per
                // band when the bands are stored apart.
                let k = u32::try_from(k / u64::from(ifd.planes))
                    .unwrap_or(u32::MAX)
                    .max(1);
                if k >= across {
                    let per = k / across;
                    (
                        vec![0, across],
                        (0..down).step_by(per as usize).chain([down]).collect(),
                    )
                } else {
                    (
                        (0..across).step_by(k as usize).chain([across]).collect(),
                        (0..=down).collect(),
                    )
                }
            }
            Strategy::Bytes(b) => {
                // Bands of whole tile rows of about `b` bytes.
                let row_bytes = |y: u32| -> u64 {
                    (0..ifd.planes)
                        .flat_map(|p| (0..across).map(move |x| (p * down + y) * across + x))
                        .map(|i| ifd.byte_counts[i as usize])
                        .sum()
                };
                let mut cuts = vec![0];
                let mut acc = 0u64;
                for y in 0..down {
                    if acc >= b && y > 0 {
                        cuts.push(y);
                        acc = 0;
                    }
                    acc += row_bytes(y);
                }
                cuts.push(down);
                (vec![0, across], cuts)
            }
            Strategy::Level { .. } => unreachable!("levels were resolved above"),
            Strategy::Interval(_) => return Err(Error::unsupported(
                index.url.clone(),
                "a raster has no time to cut by; cut by a count, a size, tiles, a grid or a level",
            )),
        };
    let o = Order { big: d.big_endian };
    let mut windows = Vec::new();
    for r in rows.windows(2).filter(|w| w[0] < w[1]) {
        for c in cols.windows(2).filter(|w| w[0] < w[1]) {
            windows.push((c[0], r[0], c[1], r[1]));
        }
    }
    let total = windows.len();
    let full = &d.ifds[images.first().copied().unwrap_or(0)];
    let mut first_tile = 0u64;
    let mut out = Vec::with_capacity(total);
    for (i, (tx0, ty0, tx1, ty1)) in windows.into_iter().enumerate() {
        let x0 = tx0 * ifd.tile_width;
        let y0 = ty0 * ifd.tile_height;
        let w = (tx1 * ifd.tile_width).min(ifd.width) - x0;
        let h = (ty1 * ifd.tile_height).min(ifd.height) - y0;
        let mut tiles = Vec::new();
        for p in 0..ifd.planes {
            for ty in ty0..ty1 {
                for tx in tx0..tx1 {
                    let k = ((p * down + ty) * across + tx) as usize;
                    tiles.push([ifd.offsets[k], ifd.byte_counts[k]]);
                }
            }
        }
        let tags = window_tags(ifd, full, o, x0, y0)?;
        let n = tiles.len() as u64;
        let detail = CogSlice {
            big_endian: d.big_endian,
            bigtiff: d.bigtiff,
            ifd: level,
            window: [x0, y0, w, h],
            tile_width: ifd.tile_width,
            tile_height: ifd.tile_height,
            tiles,
            tags,
        };
        out.push(index.slice(i, total, first_tile, n, &detail)?);
        first_tile += n;
    }
    Ok(out)
}

fn raw_doubles(t: &RawTag, o: Order) -> Option<Vec<f64>> {
    if t.typ != DOUBLE {
        return None;
    }
    let bytes = B64.decode(&t.value).ok()?;
    Some(bytes.chunks_exact(8).map(|c| o.f64(c)).collect())
}

fn doubles_tag(tag: u16, values: &[f64], o: Order) -> RawTag {
    let bytes: Vec<u8> = values.iter().flat_map(|v| o.put_f64(*v)).collect();
    RawTag {
        tag,
        typ: DOUBLE,
        count: values.len() as u64,
        value: B64.encode(bytes),
    }
}

/// The tags of a window at (`x0`, `y0`) of `ifd`: georeferencing taken from
/// the full-resolution image when `ifd` (an overview) has none, scaled to
/// its pixels, and moved to the window's origin.
fn window_tags(ifd: &Ifd, full: &Ifd, o: Order, x0: u32, y0: u32) -> Result<Vec<RawTag>> {
    let mut tags: BTreeMap<u16, RawTag> = ifd.tags.iter().map(|t| (t.tag, t.clone())).collect();
    let own_geo = [MODEL_PIXEL_SCALE, MODEL_TIEPOINT, MODEL_TRANSFORMATION]
        .iter()
        .any(|g| tags.contains_key(g));
    // Overview pixels are this many full-resolution pixels.
    let (mut sx, mut sy) = (1.0, 1.0);
    if !own_geo {
        for t in &full.tags {
            if GEO_TAGS.contains(&t.tag) {
                tags.entry(t.tag).or_insert_with(|| t.clone());
            }
        }
        sx = f64::from(full.width) / f64::from(ifd.width);
        sy = f64::from(full.height) / f64::from(ifd.height);
    }
    let (x0, y0) = (f64::from(x0), f64::from(y0));
    if let Some(m) = tags
        .get(&MODEL_TRANSFORMATION)
        .and_then(|t| raw_doubles(t, o))
    {
        if m.len() == 16 {
            // Pixel (i, j) maps to (a i + b j + d, e i + f j + h).
            let mut m = m;
            let (a, b, e, f) = (m[0] * sx, m[1] * sy, m[4] * sx, m[5] * sy);
            m[3] += a * x0 + b * y0;
            m[7] += e * x0 + f * y0;
            (m[0], m[1], m[4], m[5]) = (a, b, e, f);
            tags.insert(
                MODEL_TRANSFORMATION,
                doubles_tag(MODEL_TRANSFORMATION, &m, o),
            );
        }
    } else if let Some(mut tie) = tags.get(&MODEL_TIEPOINT).and_then(|t| raw_doubles(t, o)) {
        let scale = tags.get(&MODEL_PIXEL_SCALE).and_then(|t| raw_doubles(t, o));
        match scale {
            Some(mut scale) if scale.len() >= 2 && tie.len() == 6 => {
                // One tie point and a pixel size: raster point (I, J) is at
                // model (X, Y); move it to the window's (0, 0), which is
                // full-resolution pixel (x0 sx, y0 sy).
                let (i, j) = (tie[0], tie[1]);
                tie[3] += (x0 * sx - i) * scale[0];
                tie[4] -= (y0 * sy - j) * scale[1];
                tie[0] = 0.0;
                tie[1] = 0.0;
                scale[0] *= sx;
                scale[1] *= sy;
                tags.insert(MODEL_PIXEL_SCALE, doubles_tag(MODEL_PIXEL_SCALE, &scale, o));
            }
            _ => {
                // Ground control points: each keeps its model point and
                // moves to the window's (and level's) raster coordinates.
                for gcp in tie.chunks_exact_mut(6) {
                    gcp[0] = gcp[0] / sx - x0;
                    gcp[1] = gcp[1] / sy - y0;
                }
            }
        }
        tags.insert(MODEL_TIEPOINT, doubles_tag(MODEL_TIEPOINT, &tie, o));
    }
    for t in [
        NEW_SUBFILE_TYPE,
        IMAGE_WIDTH,
        IMAGE_LENGTH,
        TILE_WIDTH,
        TILE_LENGTH,
    ] {
        tags.remove(&t);
    }
    Ok(tags.into_values().collect())
}

async fn fetch(slice: &AnySlice, object: &Location, out: &mut (dyn Write + Send)) -> Result<u64> {
    let d: CogSlice = slice.detail()?;
    let o = Order { big: d.big_endian };
    let spans: Vec<[u64; 2]> = d.tiles.iter().map(|t| [t[0], t[0] + t[1]]).collect();
    let (ranges, place) = coalesce(&spans, GAP);
    let got = slice.read_ranges(object, &ranges).await?;
    let tile_bytes = |i: usize| -> &[u8] {
        match place[i] {
            Some((r, s)) => &got[r][s..s + d.tiles[i][1] as usize],
            None => &[],
        }
    };
    // Entries: the kept tags and the rewritten ones, sorted by tag.
    let wide = d.bigtiff;
    let off_type = if wide { LONG8 } else { LONG };
    let uint = |v: u64| -> Vec<u8> {
        if wide {
            o.put_u64(v).to_vec()
        } else {
            o.put_u32(v as u32).to_vec()
        }
    };
    let mut entries: BTreeMap<u16, (u16, u64, Vec<u8>)> = BTreeMap::new();
    for t in &d.tags {
        let v = B64
            .decode(&t.value)
            .map_err(|e| slice.invalid(format!("tag {} is not base64: {e}", t.tag)))?;
        entries.insert(t.tag, (t.typ, t.count, v));
    }
    entries.insert(NEW_SUBFILE_TYPE, (LONG, 1, o.put_u32(0).to_vec()));
    entries.insert(IMAGE_WIDTH, (LONG, 1, o.put_u32(d.window[2]).to_vec()));
    entries.insert(IMAGE_LENGTH, (LONG, 1, o.put_u32(d.window[3]).to_vec()));
    entries.insert(TILE_WIDTH, (LONG, 1, o.put_u32(d.tile_width).to_vec()));
    entries.insert(TILE_LENGTH, (LONG, 1, o.put_u32(d.tile_height).to_vec()));
    let n = d.tiles.len() as u64;
    let counts: Vec<u8> = d.tiles.iter().flat_map(|t| uint(t[1])).collect();
    entries.insert(TILE_BYTE_COUNTS, (off_type, n, counts));
    // Offsets are placeholders until the layout is known.
    entries.insert(
        TILE_OFFSETS,
        (
            off_type,
            n,
            vec![0; (n * if wide { 8 } else { 4 }) as usize],
        ),
    );

    let (head_len, count_len, entry_len, next_len, inline) = if wide {
        (16u64, 8u64, 20u64, 8u64, 8u64)
    } else {
        (8, 2, 12, 4, 4)
    };
    let ifd_len = count_len + entries.len() as u64 * entry_len + next_len;
    // Out-of-line values after the directory, word-aligned; tiles after them.
    let mut value_at = head_len + ifd_len;
    let mut places: BTreeMap<u16, u64> = BTreeMap::new();
    for (tag, (_, _, v)) in &entries {
        if v.len() as u64 > inline {
            value_at += value_at % 2;
            places.insert(*tag, value_at);
            value_at += v.len() as u64;
        }
    }
    let data_at = value_at + value_at % 2;
    let mut offsets = Vec::with_capacity(d.tiles.len() * 8);
    let mut at = data_at;
    for t in &d.tiles {
        if t[1] == 0 {
            offsets.extend(uint(0));
        } else {
            offsets.extend(uint(at));
            at += t[1];
        }
    }
    if !wide && at > u64::from(u32::MAX) {
        return Err(Error::unsupported(
            slice.url.clone(),
            "the window is larger than a classic TIFF can hold; slice it smaller",
        ));
    }
    if let Some(e) = entries.get_mut(&TILE_OFFSETS) {
        e.2 = offsets;
    }
    // Header and directory.
    let mut head = Vec::with_capacity(data_at as usize);
    head.extend_from_slice(if o.big { b"MM" } else { b"II" });
    if wide {
        head.extend_from_slice(&o.put_u16(43));
        head.extend_from_slice(&o.put_u16(8));
        head.extend_from_slice(&o.put_u16(0));
        head.extend_from_slice(&o.put_u64(16));
        head.extend_from_slice(&o.put_u64(entries.len() as u64));
    } else {
        head.extend_from_slice(&o.put_u16(42));
        head.extend_from_slice(&o.put_u32(8));
        head.extend_from_slice(&o.put_u16(entries.len() as u16));
    }
    for (tag, (typ, count, v)) in &entries {
        head.extend_from_slice(&o.put_u16(*tag));
        head.extend_from_slice(&o.put_u16(*typ));
        if wide {
            head.extend_from_slice(&o.put_u64(*count));
        } else {
            head.extend_from_slice(&o.put_u32(*count as u32));
        }
        match places.get(tag) {
            Some(p) => head.extend(uint(*p)),
            None => {
                let mut field = v.clone();
                field.resize(inline as usize, 0);
                head.extend_from_slice(&field);
            }
        }
    }
    head.extend(if wide { vec![0; 8] } else { vec![0; 4] });
    for (tag, (_, _, v)) in &entries {
        if let Some(p) = places.get(tag) {
            head.resize(*p as usize, 0);
            head.extend_from_slice(v);
        }
    }
    head.resize(data_at as usize, 0);
    let w = |e: std::io::Error| Error::io("writing the slice", e);
    out.write_all(&head).map_err(w)?;
    for i in 0..d.tiles.len() {
        out.write_all(tile_bytes(i)).map_err(w)?;
    }
    Ok(at)
}

impl SliceFormat for CogFormat {
    fn names(&self) -> &'static [&'static str] {
        &["cog", "tiff"]
    }

    fn resolve(&self, name: &str) -> Option<&'static str> {
        match name {
            "cog" | "geotiff" => Some("cog"),
            "tiff" | "tif" => Some("tiff"),
            _ => None,
        }
    }

    fn detect(&self, object_name: &str) -> Option<&'static str> {
        let lower = object_name.to_ascii_lowercase();
        (lower.ends_with(".tif") || lower.ends_with(".tiff")).then_some("cog")
    }

    fn index<'a>(&'a self, request: IndexRequest<'a>) -> BoxFuture<'a, Result<AnyIndex>> {
        Box::pin(build_index(request))
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

//! LAS and LAZ point clouds as a [`SliceFormat`].
//!
//! The index holds the header's layout, where the VLRs, points and EVLRs
//! are, and for LAZ the chunk table (each chunk's points and bytes); it is
//! built from the header and a few ranged reads, never a read of the points.
//! A record is a point; LAZ slices are cut at chunk boundaries (a chunk is
//! only decodable whole). A slice evaluates to a standalone LAS/LAZ file:
//! the header with its point counts, counts by return and bounds recomputed
//! for the slice's points, every VLR and EVLR, the points (LAS) or chunks
//! (LAZ) copied byte for byte, and for LAZ a rebuilt chunk table.
//!
//! COPC (`copc`, `*.copc.laz`) is LAZ whose chunks are the nodes of an
//! octree: the index adds the flattened hierarchy, and besides the LAZ
//! strategies a plan may cut by a grid (each node goes to the cell that
//! holds its centre, so every point is in exactly one slice) or take one
//! level of detail. A COPC slice is a standalone LAZ file without the COPC
//! VLRs (its octree is the source's, not the slice's).

use std::collections::BTreeMap;
use std::io::{Cursor, Write};

use las::raw;
use laz::laszip::{ChunkTable, ChunkTableEntry};
use laz::{DecompressionSelection, LasZipDecompressor, LazItemType, LazVlr};
use serde::{Deserialize, Serialize};
use tessera_store::Location;

use crate::error::{Error, Result};
use crate::plugin::{AnyIndex, AnySlice, BoxFuture, IndexRequest, SliceFormat};
use crate::slice::Strategy;

/// LAS (`las`) and LAZ (`laz`) point clouds, for a [`Registry`](crate::Registry).
#[derive(Debug, Clone, Copy, Default)]
pub struct LasFormat;

/// The smallest LAS header (versions 1.0 to 1.2).
const MIN_HEADER: u64 = 227;
/// Bytes read first: the header and, usually, every VLR.
const FIRST_READ: u64 = 64 << 10;
const LASZIP_USER: &[u8] = b"laszip encoded";
const LASZIP_RECORD: u16 = 22204;
const COPC_USER: &[u8] = b"copc";
const COPC_INFO: u16 = 1;
const COPC_HIERARCHY: u16 = 1000;
/// Most hierarchy pages a COPC file may have (a loop guard).
const MAX_PAGES: usize = 100_000;

fn user_id(v: &raw::Vlr) -> &[u8] {
    v.user_id.split(|b| *b == 0).next().unwrap_or(&[])
}

/// Where one VLR lies in a run of VLRs: start, end, user id, record id.
type VlrSpan = (usize, usize, Vec<u8>, u16);

/// Bytes of a VLR's header (an EVLR's, when `extended`).
fn vlr_header_len(extended: bool) -> usize {
    if extended {
        60
    } else {
        54
    }
}

/// The payload length a (E)VLR header at `at` in `bytes` declares, if its
/// header is there.
fn vlr_payload(bytes: &[u8], at: usize, extended: bool) -> Option<u64> {
    let h = bytes.get(at..at.checked_add(vlr_header_len(extended))?)?;
    Some(if extended {
        u64::from_le_bytes(h[20..28].try_into().ok()?)
    } else {
        u64::from(u16::from_le_bytes([h[20], h[21]]))
    })
}

/// Read VLR `i` of `count` at the cursor, after checking that its payload
/// lies in the bytes (the `las` crate allocates the length it reads first:
/// a hostile one overflowed).
fn read_vlr(
    cur: &mut Cursor<&[u8]>,
    extended: bool,
    i: u32,
    count: u32,
    url: &str,
) -> Result<raw::Vlr> {
    let e = if extended { "E" } else { "" };
    let bytes = *cur.get_ref();
    let at = cur.position() as usize;
    let fits = vlr_payload(bytes, at, extended)
        .is_some_and(|n| (at + vlr_header_len(extended)) as u64 + n <= bytes.len() as u64);
    if !fits {
        return Err(invalid(
            url,
            format!("{e}VLR {i} of {count} runs past the end of its bytes"),
        ));
    }
    raw::Vlr::read_from(cur, extended)
        .map_err(|err| invalid(url, format!("{e}VLR {i} of {count} cannot be read: {err}")))
}

/// The byte spans of `count` VLRs (or EVLRs) in `bytes`.
fn vlr_spans(bytes: &[u8], count: u32, extended: bool, url: &str) -> Result<Vec<VlrSpan>> {
    let mut cur = Cursor::new(bytes);
    let mut out = Vec::new();
    for i in 0..count {
        let start = cur.position() as usize;
        let vlr = read_vlr(&mut cur, extended, i, count, url)?;
        out.push((
            start,
            cur.position() as usize,
            user_id(&vlr).to_vec(),
            vlr.record_id,
        ));
    }
    Ok(out)
}

/// What the index of a LAS/LAZ object holds beside the envelope.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LasIndex {
    /// LAS version, `major.minor`.
    version: String,
    /// Point data record format (0–10), without LAZ's compression bits.
    point_format: u8,
    /// Bytes per point record (uncompressed).
    record_length: u16,
    /// Header size; the VLRs follow it.
    header_size: u16,
    /// Where the point data starts (after the VLRs).
    point_data: u64,
    /// Where the point data ends (LAS: after the last point; LAZ: where the
    /// chunk table starts).
    point_data_end: u64,
    /// The EVLRs' byte range, when there are any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    evlrs: Option<[u64; 2]>,
    /// Bounds from the header: min x, y, z, max x, y, z.
    bounds: [f64; 6],
    /// LAZ only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    laz: Option<LazChunks>,
    /// COPC only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    copc: Option<Copc>,
    /// Where the points lie, when indexed with a spatial scan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    blocks: Option<Blocks>,
}

/// The bounding box of each run of points, from a spatial scan.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Blocks {
    /// Points per block (LAS); 0 when a block is a LAZ chunk.
    points: u64,
    /// Each block's raw (unscaled) min x, min y, max x, max y.
    boxes: Vec<[i32; 4]>,
}

/// Points per block of a LAS spatial scan.
const BLOCK_POINTS: u64 = 4096;
/// Bytes read at a time by a spatial scan.
const SCAN_READ: u64 = 8 << 20;

/// A COPC file's octree.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Copc {
    /// Centre of the root cube.
    center: [f64; 3],
    /// Half its side.
    halfsize: f64,
    /// Nodes holding points: voxel key (level, x, y, z) and its chunk's
    /// number in the chunk table.
    nodes: Vec<([i32; 4], usize)>,
}

impl Copc {
    /// The centre of a node's cube.
    fn node_center(&self, key: [i32; 4]) -> [f64; 3] {
        let side = 2.0 * self.halfsize / f64::from(1u32 << key[0].clamp(0, 30));
        let mut c = [0.0; 3];
        for k in 0..3 {
            c[k] = self.center[k] - self.halfsize + (f64::from(key[k + 1]) + 0.5) * side;
        }
        c
    }
}

/// A LAZ object's chunk table.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LazChunks {
    /// Whether chunks hold varying numbers of points.
    variable: bool,
    /// Points in each chunk.
    points: Vec<u64>,
    /// Compressed bytes of each chunk.
    bytes: Vec<u64>,
}

/// What a LAS/LAZ slice holds beside the envelope.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LasSlice {
    /// Header and VLRs: bytes `0..point_data` of the object.
    head: [u64; 2],
    /// The slice's points (LAS) or chunks (LAZ), as byte ranges in order.
    data: Vec<[u64; 2]>,
    /// Grid plans: the cell, raw (unscaled) coordinates, half-open: the
    /// slice holds the points of `data` with `x0 <= x < x1`, `y0 <= y < y1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cell: Option<[i64; 4]>,
    /// COPC: leave out the COPC VLR and hierarchy EVLR.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    drop_copc: bool,
    /// The EVLRs, copied after the points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    evlrs: Option<[u64; 2]>,
    /// LAZ: each chunk's points and bytes, to rebuild the chunk table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    chunks: Option<LazChunks>,
}

fn invalid(url: &str, message: impl Into<String>) -> Error {
    Error::InvalidFile {
        object: url.to_string(),
        format: "LAS".into(),
        message: message.into(),
    }
}

/// Point count, from the 1.4 field when the legacy one is zero.
fn point_count(h: &raw::Header) -> u64 {
    match (h.number_of_point_records, h.large_file) {
        (0, Some(lf)) => lf.number_of_point_records,
        (n, _) => u64::from(n),
    }
}

fn parse_header(bytes: &[u8], url: &str) -> Result<raw::Header> {
    raw::Header::read_from(bytes).map_err(|e| match e {
        las::Error::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            // The header says its own size at byte 94, when that much is there.
            let needs = bytes
                .get(94..96)
                .map(|b| u64::from(u16::from_le_bytes([b[0], b[1]])))
                .filter(|n| *n > bytes.len() as u64)
                .unwrap_or(MIN_HEADER);
            invalid(
                url,
                format!(
                    "the header is truncated: {} bytes where the header needs {needs}",
                    bytes.len()
                ),
            )
        }
        other => invalid(url, format!("bad header: {other}")),
    })
}

/// The LASzip VLR among the VLRs in `vlrs` (the bytes after the header).
fn laszip_vlr(vlrs: &[u8], count: u32, url: &str) -> Result<Option<LazVlr>> {
    let mut cur = Cursor::new(vlrs);
    for i in 0..count {
        let vlr = read_vlr(&mut cur, false, i, count, url)?;
        if user_id(&vlr) == LASZIP_USER && vlr.record_id == LASZIP_RECORD {
            let laz = LazVlr::from_buffer(&vlr.data)
                .map_err(|e| invalid(url, format!("bad LASzip VLR: {e}")))?;
            // The decoder panics on a VLR of no items (found by fuzzing).
            if laz.items().is_empty() {
                return Err(invalid(url, "a LASzip VLR that lists no point items"));
            }
            // The decoder reads each item at its type's own size, whatever
            // size the VLR declares: a VLR that declares another one makes
            // every offset computed from it wrong (found by fuzzing).
            for item in laz.items() {
                let own = match item.item_type() {
                    LazItemType::Point10 => 20,
                    LazItemType::Point14 => 30,
                    LazItemType::GpsTime => 8,
                    LazItemType::RGB12 | LazItemType::RGB14 => 6,
                    LazItemType::RGBNIR14 => 8,
                    LazItemType::WavePacket13 | LazItemType::WavePacket14 => 29,
                    LazItemType::Byte(n) | LazItemType::Byte14(n) => n,
                };
                if item.size() != own {
                    return Err(invalid(
                        url,
                        format!(
                            "the LASzip VLR declares {:?} items of {} bytes; they have {own}",
                            item.item_type(),
                            item.size()
                        ),
                    ));
                }
            }
            return Ok(Some(laz));
        }
    }
    Ok(None)
}

use crate::plugin::ranged_get as read_at;

async fn build_index(req: IndexRequest<'_>) -> Result<AnyIndex> {
    let url = req.object.url();
    let size = req.meta.size;
    let etag = req.meta.e_tag.as_deref();
    if size < MIN_HEADER {
        return Err(invalid(
            &url,
            format!("the header is truncated: {size} bytes where a LAS header needs at least {MIN_HEADER}"),
        ));
    }
    let mut head = read_at(req.object, &url, etag, size, 0, size.min(FIRST_READ)).await?;
    let header = parse_header(&head, &url)?;
    let point_data = u64::from(header.offset_to_point_data);
    if point_data > size || point_data < u64::from(header.header_size) {
        return Err(invalid(
            &url,
            format!(
                "the point data offset {point_data} is outside the object ({size} bytes) or inside the header"
            ),
        ));
    }
    if point_data > head.len() as u64 {
        head = read_at(req.object, &url, etag, size, 0, point_data).await?;
    }
    (req.progress)(head.len() as u64);
    if header.global_encoding & 2 != 0 {
        return Err(Error::unsupported(
            url,
            "waveform data packets stored inside the file cannot be sliced",
        ));
    }
    let vlrs = &head[usize::from(header.header_size)..point_data as usize];
    let laz = laszip_vlr(vlrs, header.number_of_variable_length_records, &url)?;
    let compressed = header.point_data_record_format & 0x80 != 0;
    if compressed && laz.is_none() {
        return Err(invalid(&url, "compressed points without a LASzip VLR"));
    }
    let points = point_count(&header);
    let record_length = u64::from(header.point_data_record_length);
    if let Some(vlr) = laz.as_ref().filter(|_| compressed) {
        // The decoder writes points of the VLR's size; the slices cut them
        // by the header's.
        if vlr.items_size() != record_length {
            return Err(invalid(
                &url,
                format!(
                    "the LASzip VLR's items hold {} bytes a point, the header's records {record_length}",
                    vlr.items_size()
                ),
            ));
        }
    }
    let format_id = header.point_data_record_format & 0x3f;
    let point_format = las::point::Format::new(format_id)
        .map_err(|e| invalid(&url, format!("point format {format_id}: {e}")))?;
    if !header.version.supports_point_format(point_format) {
        // What LAS readers refuse (so would every slice's reader).
        return Err(invalid(
            &url,
            format!(
                "LAS {}.{} has no point format {format_id}",
                header.version.major, header.version.minor
            ),
        ));
    }
    let least = point_format.len();
    if record_length < u64::from(least) {
        return Err(invalid(
            &url,
            format!(
                "points of format {format_id} take at least {least} bytes; the header says {record_length}"
            ),
        ));
    }
    let evlr_start = header
        .evlr
        .filter(|e| e.number_of_evlrs > 0)
        .map(|e| e.start_of_first_evlr);
    if let Some(s) = evlr_start {
        if s < point_data || s > size {
            return Err(invalid(
                &url,
                format!("the EVLRs start at {s}, outside the object's {point_data}..{size}"),
            ));
        }
    }
    if let (Some(start), Some(e)) = (evlr_start, header.evlr.as_ref()) {
        // Every EVLR's header, one after the other, and its payload inside
        // the object (slices copy them, and LAS readers allocate what the
        // headers say).
        let n = e.number_of_evlrs;
        if u64::from(n) * vlr_header_len(true) as u64 > size - start {
            return Err(invalid(
                &url,
                format!(
                    "{n} EVLRs cannot fit in the object's last {} bytes",
                    size - start
                ),
            ));
        }
        let mut at = start;
        for i in 0..n {
            let end = (at + vlr_header_len(true) as u64).min(size);
            let h = read_at(req.object, &url, etag, size, at, end).await?;
            let next = vlr_payload(&h, 0, true)
                .and_then(|len| (at + vlr_header_len(true) as u64).checked_add(len))
                .filter(|&next| next <= size)
                .ok_or_else(|| {
                    invalid(
                        &url,
                        format!("EVLR {i} of {n} runs past the end of the object"),
                    )
                })?;
            at = next;
        }
    }
    let data_limit = evlr_start.unwrap_or(size);
    let (point_data_end, chunks) = match laz.as_ref().filter(|_| compressed) {
        None => {
            let end = points
                .checked_mul(record_length)
                .and_then(|n| n.checked_add(point_data))
                .unwrap_or(u64::MAX);
            if end > data_limit {
                return Err(invalid(
                    &url,
                    format!(
                        "the header counts {points} points of {record_length} bytes from byte {point_data}, past the end of the point data at {data_limit} (truncated object?)"
                    ),
                ));
            }
            (end, None)
        }
        Some(vlr) => {
            let (table_at, chunks) = chunk_table(
                req.object, &url, etag, size, point_data, data_limit, vlr, points,
            )
            .await?;
            (table_at, Some(chunks))
        }
    };
    let copc = if req.format == "copc" {
        let chunks = chunks
            .as_ref()
            .ok_or_else(|| invalid(&url, "a COPC file must be LAZ"))?;
        Some(read_copc(req.object, &url, etag, size, vlrs, point_data, chunks).await?)
    } else {
        None
    };
    let blocks = if req.spatial && copc.is_none() {
        Some(
            scan_blocks(
                req.object,
                &url,
                etag,
                size,
                point_data,
                record_length,
                points,
                chunks.as_ref(),
                laz.as_ref(),
                &*req.progress,
            )
            .await?,
        )
    } else {
        None
    };
    let detail = LasIndex {
        version: format!("{}.{}", header.version.major, header.version.minor),
        point_format: header.point_data_record_format & 0x3f,
        record_length: header.point_data_record_length,
        header_size: header.header_size,
        point_data,
        point_data_end,
        evlrs: evlr_start.map(|s| [s, size]),
        bounds: [
            header.min_x,
            header.min_y,
            header.min_z,
            header.max_x,
            header.max_y,
            header.max_z,
        ],
        laz: chunks,
        copc,
        blocks,
    };
    AnyIndex::new(req.object, req.meta, req.format, points, &detail)
}

/// Grow a raw bounding box by point records of `len` bytes.
fn grow(b: &mut [i32; 4], records: &[u8], len: usize) {
    for p in records.chunks_exact(len) {
        let x = i32::from_le_bytes([p[0], p[1], p[2], p[3]]);
        let y = i32::from_le_bytes([p[4], p[5], p[6], p[7]]);
        b[0] = b[0].min(x);
        b[1] = b[1].min(y);
        b[2] = b[2].max(x);
        b[3] = b[3].max(y);
    }
}

const EMPTY_BOX: [i32; 4] = [i32::MAX, i32::MAX, i32::MIN, i32::MIN];

/// Check the layer sizes of LAZ chunks in the layered encoding (point
/// formats 6 to 10): `data` holds consecutive chunks of `bytes[i]` bytes.
///
/// Such a chunk starts with its first point, a point count and one size per
/// layer; the decoder allocates each layer at its stated size before
/// reading it, so a hostile 643-byte file once cost 4 GB. Sizes that the
/// chunk cannot hold are refused here, before decoding.
fn check_layer_sizes(data: &[u8], bytes: &[u64], vlr: &LazVlr) -> std::result::Result<(), String> {
    let (mut first, mut layers) = (0usize, 0usize);
    for item in vlr.items() {
        if item.version() < 3 {
            // Point formats 0 to 5: one arithmetic stream, no sizes.
            return Ok(());
        }
        first += usize::from(item.size());
        layers += match item.item_type() {
            LazItemType::Point14 => 9,
            LazItemType::RGBNIR14 => 2,
            LazItemType::Byte14(n) => usize::from(n),
            _ => 1,
        };
    }
    let head = first + 4 + 4 * layers;
    let mut at = 0usize;
    for (i, &b) in bytes.iter().enumerate() {
        let b = usize::try_from(b).map_err(|_| format!("chunk {i} is too large"))?;
        let chunk = at
            .checked_add(b)
            .and_then(|end| data.get(at..end))
            .ok_or_else(|| format!("chunk {i} lies past the point data"))?;
        at += b;
        if chunk.is_empty() {
            continue;
        }
        let sizes = chunk.get(first + 4..head).ok_or_else(|| {
            format!("chunk {i} is truncated: {b} bytes, its layer sizes need {head}")
        })?;
        let total: u64 = sizes
            .chunks_exact(4)
            .map(|c| u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .sum();
        if total > (b - head) as u64 {
            return Err(format!(
                "chunk {i}: its layers claim {total} bytes, the chunk holds {}",
                b - head
            ));
        }
    }
    Ok(())
}

/// Run the LAZ decoder on bytes from outside, turning a panic in it into
/// an error: its consistency checks are assertions (`sym < 1 << 16` on a
/// damaged arithmetic-coded stream, found by fuzzing), and a damaged file
/// must be an error naming it, not the end of the process. This relies on
/// panics unwinding (the workspace never sets `panic = "abort"`).
fn guarded<T>(
    decode: impl FnOnce() -> std::result::Result<T, String>,
) -> std::result::Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode)).unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        Err(format!("the LAZ decoder failed on damaged data ({why})"))
    })
}

/// Decode consecutive LAZ chunks (`data`: their bytes; `points`, `bytes`:
/// each one's points and bytes) into point records, all at once.
#[cfg(test)]
fn decode_chunks(
    data: &[u8],
    points: &[u64],
    bytes: &[u64],
    vlr: &LazVlr,
    selection: DecompressionSelection,
) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let len = vlr.items_size() as usize;
    scan_chunks(data, points, bytes, vlr, len, selection, &mut |_, r| {
        out.extend_from_slice(r)
    })?;
    Ok(out)
}

/// A LAZ point section for `data` (consecutive chunks of `points[i]`
/// points and `bytes[i]` bytes): the offset to its chunk table, the chunks,
/// then the table, as the decoder reads it and a slice file holds it.
fn laz_section(
    data: &[u8],
    points: &[u64],
    bytes: &[u64],
    vlr: &LazVlr,
) -> std::result::Result<Vec<u8>, String> {
    let mut table = ChunkTable::with_capacity(points.len());
    for (p, b) in points.iter().zip(bytes) {
        table.push(ChunkTableEntry {
            point_count: *p,
            byte_count: *b,
        });
    }
    let mut section = Vec::with_capacity(data.len() + 16 + 8 * points.len());
    section.extend_from_slice(&(8 + data.len() as u64).to_le_bytes());
    section.extend_from_slice(data);
    table
        .write_to(&mut section, vlr)
        .map_err(|e| e.to_string())?;
    Ok(section)
}

/// Decode consecutive LAZ chunks (`data`: their bytes; `points`, `bytes`:
/// each one's points and bytes) 64 Ki points at a
/// time, handing each batch of records (`len` bytes each) to `batch` with
/// its chunk's number: memory is bounded by the batch, not by the point
/// counts a chunk table claims (a 643-byte file once claimed 32 GB).
fn scan_chunks(
    data: &[u8],
    points: &[u64],
    bytes: &[u64],
    vlr: &LazVlr,
    len: usize,
    selection: DecompressionSelection,
    batch: &mut dyn FnMut(usize, &[u8]),
) -> std::result::Result<(), String> {
    check_layer_sizes(data, bytes, vlr)?;
    let section = laz_section(data, points, bytes, vlr)?;
    let most = points.iter().copied().max().unwrap_or(0).min(65536) as usize;
    let mut buf = vec![0u8; most * len];
    guarded(|| {
        let mut dec =
            LasZipDecompressor::selective(Cursor::new(&section[..]), vlr.clone(), selection)
                .map_err(|e| e.to_string())?;
        for (k, &p) in points.iter().enumerate() {
            let mut left = p;
            while left > 0 {
                let n = left.min(65536) as usize;
                dec.decompress_many(&mut buf[..n * len])
                    .map_err(|e| e.to_string())?;
                batch(k, &buf[..n * len]);
                left -= n as u64;
            }
        }
        Ok(())
    })
}

/// The spatial scan: each block's raw bounding box (LAS: blocks of
/// [`BLOCK_POINTS`] points; LAZ: chunks), reading the points once.
#[allow(clippy::too_many_arguments)]
async fn scan_blocks(
    object: &Location,
    url: &str,
    etag: Option<&str>,
    size: u64,
    point_data: u64,
    record_length: u64,
    points: u64,
    chunks: Option<&LazChunks>,
    vlr: Option<&LazVlr>,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<Blocks> {
    let len = record_length as usize;
    match (chunks, vlr) {
        (Some(c), Some(vlr)) => {
            let mut boxes = Vec::with_capacity(c.points.len());
            let starts = chunk_starts(c, point_data);
            let mut i = 0;
            while i < c.points.len() {
                // A run of chunks of about SCAN_READ bytes, read at once.
                let mut j = i + 1;
                let mut run = c.bytes[i];
                while j < c.points.len() && run + c.bytes[j] <= SCAN_READ {
                    run += c.bytes[j];
                    j += 1;
                }
                let data = read_at(object, url, etag, size, starts[i], starts[i] + run).await?;
                // Decoded a batch at a time: memory is bounded whatever
                // point counts the chunk table claims.
                let first = boxes.len();
                boxes.extend(std::iter::repeat_n(EMPTY_BOX, j - i));
                let sel = DecompressionSelection::xy_returns_channel();
                scan_chunks(
                    &data,
                    &c.points[i..j],
                    &c.bytes[i..j],
                    vlr,
                    len,
                    sel,
                    &mut |k, records| {
                        grow(&mut boxes[first + k], records, len);
                    },
                )
                .map_err(|e| invalid(url, format!("chunks {i}..{j} do not decode: {e}")))?;
                progress(starts[i] + run);
                i = j;
            }
            Ok(Blocks { points: 0, boxes })
        }
        _ => {
            let block_bytes = BLOCK_POINTS * record_length;
            let per_read = (SCAN_READ / block_bytes).max(1) * block_bytes;
            let end = point_data + points * record_length;
            let mut boxes = Vec::with_capacity(points.div_ceil(BLOCK_POINTS) as usize);
            let mut at = point_data;
            while at < end {
                let to = (at + per_read).min(end);
                let data = read_at(object, url, etag, size, at, to).await?;
                for block in data.chunks(block_bytes as usize) {
                    let mut b = EMPTY_BOX;
                    grow(&mut b, block, len);
                    boxes.push(b);
                }
                progress(to);
                at = to;
            }
            Ok(Blocks {
                points: BLOCK_POINTS,
                boxes,
            })
        }
    }
}

/// Read a COPC file's info VLR and hierarchy: every node with points, and
/// the chunk that holds them.
async fn read_copc(
    object: &Location,
    url: &str,
    etag: Option<&str>,
    size: u64,
    vlrs: &[u8],
    point_data: u64,
    chunks: &LazChunks,
) -> Result<Copc> {
    let mut cur = Cursor::new(vlrs);
    let first = read_vlr(&mut cur, false, 0, 1, url)
        .map_err(|e| invalid(url, format!("no COPC info VLR: {e}")))?;
    if user_id(&first) != COPC_USER || first.record_id != COPC_INFO || first.data.len() < 160 {
        return Err(invalid(
            url,
            "not a COPC file: its first VLR is not the COPC info VLR",
        ));
    }
    let f =
        |i: usize| f64::from_le_bytes(first.data[i * 8..i * 8 + 8].try_into().unwrap_or_default());
    let u =
        |i: usize| u64::from_le_bytes(first.data[i * 8..i * 8 + 8].try_into().unwrap_or_default());
    let center = [f(0), f(1), f(2)];
    let halfsize = f(3);
    let (root_at, root_len) = (u(5), u(6));
    // Chunk starts, to find each node's chunk.
    let mut starts = std::collections::HashMap::with_capacity(chunks.bytes.len());
    let mut at = point_data + 8;
    for (i, b) in chunks.bytes.iter().enumerate() {
        starts.insert(at, i);
        at += b;
    }
    let mut nodes = Vec::new();
    let mut pages = vec![(root_at, root_len)];
    let mut seen = 0usize;
    while let Some((page_at, page_len)) = pages.pop() {
        seen += 1;
        if seen > MAX_PAGES
            || !page_len.is_multiple_of(32)
            || page_at.checked_add(page_len).is_none_or(|e| e > size)
        {
            return Err(invalid(
                url,
                format!("bad COPC hierarchy page at byte {page_at} ({page_len} bytes)"),
            ));
        }
        let page = read_at(object, url, etag, size, page_at, page_at + page_len).await?;
        for e in page.chunks_exact(32) {
            let i32_at = |i: usize| i32::from_le_bytes([e[i], e[i + 1], e[i + 2], e[i + 3]]);
            let key = [i32_at(0), i32_at(4), i32_at(8), i32_at(12)];
            let offset = u64::from_le_bytes(e[16..24].try_into().unwrap_or_default());
            let bytes = i32_at(24);
            let count = i32_at(28);
            match count {
                -1 => pages.push((offset, u64::try_from(bytes).unwrap_or(0))),
                0 => {}
                n => {
                    let Some(&chunk) = starts.get(&offset) else {
                        return Err(invalid(
                            url,
                            format!("COPC node {key:?} at byte {offset} is not at a chunk start"),
                        ));
                    };
                    if i64::from(n) != chunks.points[chunk] as i64
                        || i64::from(bytes) != chunks.bytes[chunk] as i64
                    {
                        return Err(invalid(
                            url,
                            format!("COPC node {key:?} says {n} points in {bytes} bytes; its chunk holds {} in {}", chunks.points[chunk], chunks.bytes[chunk]),
                        ));
                    }
                    nodes.push((key, chunk));
                }
            }
        }
    }
    nodes.sort_by_key(|n| n.1);
    if nodes.windows(2).any(|w| w[0].1 == w[1].1) {
        return Err(invalid(url, "two COPC nodes share a chunk"));
    }
    Ok(Copc {
        center,
        halfsize,
        nodes,
    })
}

/// Read a LAZ object's chunk table: returns where it starts (the end of
/// the chunks) and each chunk's points and bytes.
#[allow(clippy::too_many_arguments)]
async fn chunk_table(
    object: &Location,
    url: &str,
    etag: Option<&str>,
    size: u64,
    point_data: u64,
    data_limit: u64,
    vlr: &LazVlr,
    points: u64,
) -> Result<(u64, LazChunks)> {
    let missing = || {
        invalid(
            url,
            "a LAZ file without a chunk table (written by a streaming writer that could not seek back?) cannot be sliced; rewrite it with a chunk table (laszip, PDAL or laspy)",
        )
    };
    if point_data + 8 > data_limit {
        return Err(missing());
    }
    let at = read_at(object, url, etag, size, point_data, point_data + 8).await?;
    let mut table_at = i64::from_le_bytes(at[..8].try_into().unwrap_or_default());
    if table_at <= point_data as i64 || table_at as u64 >= data_limit {
        // A writer that could not seek back puts the offset last.
        let tail = read_at(object, url, etag, size, size - 8, size).await?;
        table_at = i64::from_le_bytes(tail[..8].try_into().unwrap_or_default());
        if table_at <= point_data as i64 || table_at as u64 >= data_limit {
            return Err(missing());
        }
    }
    let table_at = table_at as u64;
    let bytes = read_at(object, url, etag, size, table_at, data_limit).await?;
    // Check the table's head before decoding it: a damaged offset must not
    // make the decoder size a table from garbage. Every chunk holds at
    // least one point and one byte.
    if bytes.len() < 8 {
        return Err(invalid(
            url,
            format!("the chunk table at byte {table_at} is cut off"),
        ));
    }
    let version = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let chunks = u64::from(u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]));
    let room = table_at - point_data - 8;
    if points == 0 && version == 0 && chunks <= 1 {
        // An empty file: writers leave one empty chunk, or none.
        return Ok((
            table_at,
            LazChunks {
                variable: vlr.uses_variable_size_chunks(),
                points: Vec::new(),
                bytes: Vec::new(),
            },
        ));
    }
    if version != 0 || chunks > points || chunks > room || (chunks == 0 && points > 0) {
        return Err(invalid(
            url,
            format!(
                "no valid chunk table at byte {table_at} (version {version}, {chunks} chunks for {points} points in {room} bytes)"
            ),
        ));
    }
    let variable = vlr.uses_variable_size_chunks();
    // The chunk table is arithmetic-coded too.
    let table = guarded(|| {
        ChunkTable::read(&mut Cursor::new(&bytes[..]), variable).map_err(|e| e.to_string())
    })
    .map_err(|e| {
        invalid(
            url,
            format!("the chunk table at byte {table_at} cannot be read: {e}"),
        )
    })?;
    let entries: &[ChunkTableEntry] = table.as_ref();
    let mut chunk_points: Vec<u64> = entries.iter().map(|e| e.point_count).collect();
    if !variable {
        let per = u64::from(vlr.chunk_size());
        let n = chunk_points.len() as u64;
        for p in chunk_points.iter_mut() {
            *p = per;
        }
        if let Some(last) = chunk_points.last_mut() {
            *last = points.saturating_sub(per.saturating_mul(n.saturating_sub(1)));
            if *last == 0 || *last > per {
                return Err(invalid(
                    url,
                    format!("{n} chunks of {per} points cannot hold the header's {points} points"),
                ));
            }
        }
    }
    let chunk_bytes: Vec<u64> = entries.iter().map(|e| e.byte_count).collect();
    // Sums of hostile tables can overflow: a sum that does is no match.
    let sum = |v: &[u64]| v.iter().try_fold(0u64, |a, &b| a.checked_add(b));
    let total_points = sum(&chunk_points).unwrap_or(u64::MAX);
    let total_bytes = sum(&chunk_bytes).unwrap_or(u64::MAX);
    if total_points != points {
        return Err(invalid(
            url,
            format!("the chunk table holds {total_points} points, the header {points}"),
        ));
    }
    let end = point_data.saturating_add(8).saturating_add(total_bytes);
    if end != table_at {
        return Err(invalid(
            url,
            format!(
                "the chunk table's chunks end at byte {end}, but the table starts at {table_at}"
            ),
        ));
    }
    Ok((
        table_at,
        LazChunks {
            variable,
            points: chunk_points,
            bytes: chunk_bytes,
        },
    ))
}

/// Cut `units` (points per unit, in order) into slices: the unit indices
/// where slices start. `weights` are what `Bytes` counts.
fn cuts(
    units: &[u64],
    weights: &[u64],
    strategy: Strategy,
    url: &str,
    format: &str,
) -> Result<Vec<usize>> {
    let total: u64 = units.iter().sum();
    let mut cuts = vec![0usize];
    match strategy {
        Strategy::Count(0) | Strategy::Bytes(0) | Strategy::Records(0) => {
            return Err(Error::InvalidStrategy { strategy })
        }
        Strategy::Count(n) => {
            // Cut at the unit boundary nearest each even share of points.
            let mut before = Vec::with_capacity(units.len() + 1);
            let mut acc = 0u64;
            for u in units {
                before.push(acc);
                acc += u;
            }
            for i in 1..n as u64 {
                let target = (total as u128 * i as u128 / n as u128) as u64;
                let j = before.partition_point(|b| *b < target);
                let j = if j > 0
                    && j < before.len()
                    && target - before[j - 1] < before[j] - target
                {
                    j - 1
                } else {
                    j
                };
                if j < units.len() && j > *cuts.last().unwrap_or(&0) {
                    cuts.push(j);
                }
            }
        }
        Strategy::Records(n) | Strategy::Bytes(n) => {
            let w = if matches!(strategy, Strategy::Records(_)) {
                units
            } else {
                weights
            };
            let mut acc = 0u64;
            for (i, x) in w.iter().enumerate() {
                if acc >= n && i > 0 {
                    cuts.push(i);
                    acc = 0;
                }
                acc += x;
            }
        }
        Strategy::Grid { .. } => {
            return Err(Error::unsupported(
                url,
                format!("a {format} object is cut by a grid once it is indexed with a spatial scan (which records where its points lie); this index has none"),
            ))
        }
        Strategy::Level { .. } => {
            return Err(Error::unsupported(
                url,
                format!("a {format} object has no levels of detail (a COPC file has)"),
            ))
        }
        Strategy::Interval(_) => {
            return Err(Error::unsupported(
                url,
                format!("a {format} object has no time to cut by"),
            ))
        }
    }
    Ok(cuts)
}

fn plan(index: &AnyIndex, strategy: Strategy) -> Result<Vec<AnySlice>> {
    let d: LasIndex = index.detail()?;
    if index.records == 0 {
        return Ok(Vec::new());
    }
    let len = u64::from(d.record_length);
    let head = [0, d.point_data];
    if let (Strategy::Grid { columns, rows }, Some(blocks)) = (strategy, &d.blocks) {
        return grid_plan(index, &d, blocks, columns, rows);
    }
    let mut out = Vec::new();
    match &d.laz {
        None => {
            // A point is a unit; splitting by bytes means by points of `len` bytes.
            let n = index.records;
            let bounds: Vec<u64> = match strategy {
                Strategy::Count(c) if c > 0 => {
                    let c = (c as u64).min(n);
                    (0..=c)
                        .map(|i| (n as u128 * i as u128 / c as u128) as u64)
                        .collect()
                }
                Strategy::Records(k) | Strategy::Bytes(k) if k > 0 => {
                    let step = if matches!(strategy, Strategy::Bytes(_)) {
                        (k / len.max(1)).max(1)
                    } else {
                        k
                    };
                    let mut b: Vec<u64> = (0..n).step_by(step as usize).collect();
                    b.push(n);
                    b
                }
                other => {
                    cuts(&[], &[], other, &index.url, &index.format)?;
                    unreachable!("cuts refuses every other strategy")
                }
            };
            let total = bounds.len() - 1;
            for (i, w) in bounds.windows(2).enumerate() {
                let detail = LasSlice {
                    head,
                    data: vec![[d.point_data + w[0] * len, d.point_data + w[1] * len]],
                    cell: None,
                    drop_copc: false,
                    evlrs: d.evlrs,
                    chunks: None,
                };
                out.push(index.slice(i, total, w[0], w[1] - w[0], &detail)?);
            }
        }
        Some(laz)
            if d.copc.is_some()
                && matches!(strategy, Strategy::Grid { .. } | Strategy::Level { .. }) =>
        {
            let copc = d
                .copc
                .as_ref()
                .ok_or_else(|| Error::internal("no COPC hierarchy"))?;
            let groups = copc_groups(copc, &d.bounds, strategy, &index.url)?;
            let total = groups.len();
            let starts = chunk_starts(laz, d.point_data);
            for (i, group) in groups.iter().enumerate() {
                let mut data: Vec<[u64; 2]> = Vec::new();
                for &c in group {
                    let (a, b) = (starts[c], starts[c] + laz.bytes[c]);
                    match data.last_mut() {
                        Some(last) if last[1] == a => last[1] = b,
                        _ => data.push([a, b]),
                    }
                }
                let points: u64 = group.iter().map(|&c| laz.points[c]).sum();
                let first = group.first().map_or(0, |&c| laz.points[..c].iter().sum());
                let detail = LasSlice {
                    head,
                    data,
                    cell: None,
                    drop_copc: true,
                    evlrs: d.evlrs,
                    chunks: Some(LazChunks {
                        variable: laz.variable,
                        points: group.iter().map(|&c| laz.points[c]).collect(),
                        bytes: group.iter().map(|&c| laz.bytes[c]).collect(),
                    }),
                };
                out.push(index.slice(i, total, first, points, &detail)?);
            }
        }
        Some(laz) => {
            let starts = cuts(&laz.points, &laz.bytes, strategy, &index.url, &index.format)?;
            let total = starts.len();
            let mut first_point = 0u64;
            let mut first_byte = d.point_data + 8;
            for (i, &a) in starts.iter().enumerate() {
                let b = starts.get(i + 1).copied().unwrap_or(laz.points.len());
                let points: u64 = laz.points[a..b].iter().sum();
                let bytes: u64 = laz.bytes[a..b].iter().sum();
                let detail = LasSlice {
                    head,
                    data: vec![[first_byte, first_byte + bytes]],
                    cell: None,
                    drop_copc: d.copc.is_some(),
                    evlrs: d.evlrs,
                    chunks: Some(LazChunks {
                        variable: laz.variable,
                        points: laz.points[a..b].to_vec(),
                        bytes: laz.bytes[a..b].to_vec(),
                    }),
                };
                out.push(index.slice(i, total, first_point, points, &detail)?);
                first_point += points;
                first_byte += bytes;
            }
        }
    }
    Ok(out)
}

/// Edges of `n` half-open cells over raw coordinates `lo..=hi`.
fn edges(lo: i32, hi: i32, n: u32) -> Vec<i64> {
    let span = i64::from(hi) - i64::from(lo) + 1;
    (0..=i64::from(n))
        .map(|i| i64::from(lo) + span * i / i64::from(n))
        .collect()
}

/// A grid plan from a spatial scan: for each cell, the blocks whose box
/// meets it; the slice keeps the points of those blocks inside the cell.
fn grid_plan(
    index: &AnyIndex,
    d: &LasIndex,
    blocks: &Blocks,
    columns: u32,
    rows: u32,
) -> Result<Vec<AnySlice>> {
    if columns == 0 || rows == 0 {
        return Err(Error::InvalidStrategy {
            strategy: Strategy::Grid { columns, rows },
        });
    }
    let used: Vec<&[i32; 4]> = blocks.boxes.iter().filter(|b| b[0] <= b[2]).collect();
    let Some(first) = used.first() else {
        return Ok(Vec::new());
    };
    let mut all = **first;
    for b in &used {
        all = [
            all[0].min(b[0]),
            all[1].min(b[1]),
            all[2].max(b[2]),
            all[3].max(b[3]),
        ];
    }
    let (xs, ys) = (edges(all[0], all[2], columns), edges(all[1], all[3], rows));
    let len = u64::from(d.record_length);
    let n = index.records;
    // Each block: its byte range and points; LAZ also its chunk's sizes.
    let block = |i: usize| -> ([u64; 2], u64) {
        match &d.laz {
            None => {
                let a = i as u64 * blocks.points;
                let b = (a + blocks.points).min(n);
                ([d.point_data + a * len, d.point_data + b * len], b - a)
            }
            Some(laz) => {
                let start = d.point_data + 8 + laz.bytes[..i].iter().sum::<u64>();
                ([start, start + laz.bytes[i]], laz.points[i])
            }
        }
    };
    let mut cells = Vec::new();
    for r in 0..rows as usize {
        for c in 0..columns as usize {
            let cell = [xs[c], ys[r], xs[c + 1], ys[r + 1]];
            let hits: Vec<usize> = (0..blocks.boxes.len())
                .filter(|&i| {
                    let b = blocks.boxes[i];
                    b[0] <= b[2]
                        && i64::from(b[0]) < cell[2]
                        && i64::from(b[2]) >= cell[0]
                        && i64::from(b[1]) < cell[3]
                        && i64::from(b[3]) >= cell[1]
                })
                .collect();
            if !hits.is_empty() {
                cells.push((cell, hits));
            }
        }
    }
    let total = cells.len();
    let mut out = Vec::with_capacity(total);
    for (k, (cell, hits)) in cells.into_iter().enumerate() {
        let mut data: Vec<[u64; 2]> = Vec::new();
        let mut candidates = 0;
        for &i in &hits {
            let (r, p) = block(i);
            candidates += p;
            match data.last_mut() {
                Some(last) if last[1] == r[0] => last[1] = r[1],
                _ => data.push(r),
            }
        }
        let chunks = d.laz.as_ref().map(|laz| LazChunks {
            variable: laz.variable,
            points: hits.iter().map(|&i| laz.points[i]).collect(),
            bytes: hits.iter().map(|&i| laz.bytes[i]).collect(),
        });
        let detail = LasSlice {
            head: [0, d.point_data],
            data,
            cell: Some(cell),
            drop_copc: false,
            evlrs: d.evlrs,
            chunks,
        };
        // The count is the points read; the slice file's header has the
        // exact number inside the cell.
        out.push(index.slice(k, total, 0, candidates, &detail)?);
    }
    Ok(out)
}

/// Where each LAZ chunk starts in the object.
fn chunk_starts(laz: &LazChunks, point_data: u64) -> Vec<u64> {
    let mut at = point_data + 8;
    laz.bytes
        .iter()
        .map(|b| {
            let s = at;
            at += b;
            s
        })
        .collect()
}

/// COPC plans by grid (each node in the cell holding its centre) or by
/// level of detail (that level's nodes in file order, in `count` groups of
/// about even points): the chunk numbers of each slice, in file order.
fn copc_groups(
    copc: &Copc,
    bounds: &[f64; 6],
    strategy: Strategy,
    url: &str,
) -> Result<Vec<Vec<usize>>> {
    match strategy {
        Strategy::Grid { columns, rows } if columns > 0 && rows > 0 => {
            let (x0, y0, x1, y1) = (bounds[0], bounds[1], bounds[3], bounds[4]);
            let cell = |v: f64, lo: f64, hi: f64, n: u32| -> usize {
                if hi <= lo {
                    return 0;
                }
                // Half-open cells; the last one also holds the upper edge.
                (((v - lo) / (hi - lo) * f64::from(n)).floor().max(0.0) as usize)
                    .min(n as usize - 1)
            };
            let mut cells: BTreeMap<(usize, usize), Vec<usize>> = BTreeMap::new();
            for &(key, chunk) in &copc.nodes {
                let c = copc.node_center(key);
                let k = (cell(c[1], y0, y1, rows), cell(c[0], x0, x1, columns));
                cells.entry(k).or_default().push(chunk);
            }
            Ok(cells.into_values().collect())
        }
        Strategy::Level { level, count } if count > 0 => {
            let chunks: Vec<usize> = copc
                .nodes
                .iter()
                .filter(|(k, _)| k[0] == level as i32)
                .map(|n| n.1)
                .collect();
            if chunks.is_empty() {
                let deepest = copc.nodes.iter().map(|n| n.0[0]).max().unwrap_or(0);
                return Err(Error::unsupported(
                    url,
                    format!("level {level} has no points: the octree's levels are 0 to {deepest}"),
                ));
            }
            let per = chunks.len().div_ceil(count);
            Ok(chunks.chunks(per).map(<[usize]>::to_vec).collect())
        }
        _ => Err(Error::InvalidStrategy { strategy }),
    }
}

/// Bounds and counts by return of a run of point records.
#[derive(Debug)]
struct Stats {
    min: [i32; 3],
    max: [i32; 3],
    by_return: [u64; 15],
    points: u64,
}

impl Stats {
    fn new() -> Stats {
        Stats {
            min: [i32::MAX; 3],
            max: [i32::MIN; 3],
            by_return: [0; 15],
            points: 0,
        }
    }

    /// Add `records` (point records of `len` bytes in point format `format`).
    fn add(&mut self, records: &[u8], len: usize, format: u8) {
        for p in records.chunks_exact(len) {
            for (k, c) in p[..12].chunks_exact(4).enumerate() {
                let v = i32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                self.min[k] = self.min[k].min(v);
                self.max[k] = self.max[k].max(v);
            }
            let r = if format >= 6 {
                p[14] & 0x0f
            } else {
                p[14] & 0x07
            };
            if (1..=15).contains(&r) {
                self.by_return[usize::from(r) - 1] += 1;
            }
            self.points += 1;
        }
    }

    /// Write the slice's counts and bounds into `h`.
    fn patch(&self, h: &mut raw::Header, format: u8) {
        let n = self.points;
        let legacy = format < 6 && n <= u64::from(u32::MAX);
        h.number_of_point_records = if legacy { n as u32 } else { 0 };
        for (i, slot) in h.number_of_points_by_return.iter_mut().enumerate() {
            *slot = if legacy {
                self.by_return[i].min(u64::from(u32::MAX)) as u32
            } else {
                0
            };
        }
        if let Some(lf) = h.large_file.as_mut() {
            lf.number_of_point_records = n;
            lf.number_of_points_by_return = self.by_return;
        }
        if n == 0 {
            (h.min_x, h.min_y, h.min_z, h.max_x, h.max_y, h.max_z) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
            return;
        }
        let s = |k: usize, v: i32| {
            let (scale, offset) = match k {
                0 => (h.x_scale_factor, h.x_offset),
                1 => (h.y_scale_factor, h.y_offset),
                _ => (h.z_scale_factor, h.z_offset),
            };
            f64::from(v) * scale + offset
        };
        let (min, max) = (self.min, self.max);
        (h.min_x, h.min_y, h.min_z) = (s(0, min[0]), s(1, min[1]), s(2, min[2]));
        (h.max_x, h.max_y, h.max_z) = (s(0, max[0]), s(1, max[1]), s(2, max[2]));
    }
}

async fn fetch(slice: &AnySlice, object: &Location, out: &mut (dyn Write + Send)) -> Result<u64> {
    let d: LasSlice = slice.detail()?;
    let mut ranges = vec![(d.head[0], d.head[1])];
    if let Some(e) = d.evlrs {
        ranges.push((e[0], e[1]));
    }
    ranges.extend(d.data.iter().map(|r| (r[0], r[1])));
    let mut got = slice.read_ranges(object, &ranges).await?;
    let parts = got.split_off(1 + usize::from(d.evlrs.is_some()));
    let data: Vec<u8> = if parts.len() == 1 {
        parts[0].to_vec()
    } else {
        parts.concat()
    };
    let data = &data[..];
    let head = &got[0];
    let url = slice.url.clone();
    let mut header = parse_header(head, &url)?;
    let header_size = usize::from(header.header_size);
    if header_size > head.len() {
        return Err(slice.invalid("the header range is shorter than the header"));
    }
    // VLRs and EVLRs kept: all, or all but COPC's own.
    let vlr_bytes: Vec<u8>;
    let mut evlr_bytes: Vec<u8> = got.get(1).map(|b| b.to_vec()).unwrap_or_default();
    if d.drop_copc {
        let spans = vlr_spans(
            &head[header_size..],
            header.number_of_variable_length_records,
            false,
            &url,
        )?;
        let tail = spans.last().map_or(0, |s| s.1);
        let mut kept = Vec::new();
        let mut n = 0u32;
        for (a, b, user, record) in &spans {
            if !(user == COPC_USER && *record == COPC_INFO) {
                kept.extend_from_slice(&head[header_size + a..header_size + b]);
                n += 1;
            }
        }
        kept.extend_from_slice(&head[header_size + tail..]);
        header.offset_to_point_data = (header_size + kept.len()) as u32;
        header.number_of_variable_length_records = n;
        vlr_bytes = kept;
        if let Some(ev) = header.evlr.as_mut() {
            let spans = vlr_spans(&evlr_bytes, ev.number_of_evlrs, true, &url)?;
            let mut kept = Vec::new();
            let mut n = 0u32;
            for (a, b, user, record) in &spans {
                if !(user == COPC_USER && *record == COPC_HIERARCHY) {
                    kept.extend_from_slice(&evlr_bytes[*a..*b]);
                    n += 1;
                }
            }
            ev.number_of_evlrs = n;
            evlr_bytes = kept;
        }
    } else {
        vlr_bytes = head[header_size..].to_vec();
    }
    let evlrs = &evlr_bytes[..];
    let format = header.point_data_record_format & 0x3f;
    let len = usize::from(header.point_data_record_length);
    if len < 20 {
        return Err(invalid(&url, format!("a point record of {len} bytes")));
    }
    let mut stats = Stats::new();
    // The point section: points (LAS), or offset + chunks + table (LAZ).
    let section: Vec<u8> = match (&d.chunks, d.cell) {
        (None, None) => {
            if !data.len().is_multiple_of(len) {
                return Err(slice.invalid("the point range is not a whole number of points"));
            }
            stats.add(data, len, format);
            data.to_vec()
        }
        (None, Some(cell)) => {
            if !data.len().is_multiple_of(len) {
                return Err(slice.invalid("the point range is not a whole number of points"));
            }
            let kept = keep_inside(data, len, &cell);
            stats.add(&kept, len, format);
            kept
        }
        (Some(chunks), None) => {
            let vlr = laszip_vlr(&vlr_bytes, header.number_of_variable_length_records, &url)?
                .ok_or_else(|| invalid(&url, "compressed points without a LASzip VLR"))?;
            let mut section = laz_section(data, &chunks.points, &chunks.bytes, &vlr)
                .map_err(|e| Error::internal(format!("cannot write a chunk table: {e}")))?;
            let points: u64 = chunks.points.iter().sum();
            check_layer_sizes(data, &chunks.bytes, &vlr)
                .and_then(|()| decode_stats(&section, vlr, points, len, format, &mut stats))
                .map_err(|e| {
                    invalid(
                        &url,
                        format!("slice {}: its LAZ chunks do not decode: {e}", slice.slice),
                    )
                })?;
            // The offset to the chunk table counts from the file's start.
            let at = u64::from(header.offset_to_point_data) + 8 + data.len() as u64;
            section[..8].copy_from_slice(&at.to_le_bytes());
            section
        }
        (Some(chunks), Some(cell)) => {
            // Points of a cell are not whole chunks: decode, keep the
            // cell's points, compress them again with the file's settings.
            let vlr = laszip_vlr(&vlr_bytes, header.number_of_variable_length_records, &url)?
                .ok_or_else(|| invalid(&url, "compressed points without a LASzip VLR"))?;
            // Batch by batch: only the cell's points are kept in memory.
            let mut kept = Vec::new();
            scan_chunks(
                data,
                &chunks.points,
                &chunks.bytes,
                &vlr,
                len,
                DecompressionSelection::all(),
                &mut |_, records| kept.extend(keep_inside(records, len, &cell)),
            )
            .map_err(|e| {
                invalid(
                    &url,
                    format!("slice {}: its LAZ chunks do not decode: {e}", slice.slice),
                )
            })?;
            stats.add(&kept, len, format);
            let start = u64::from(header.offset_to_point_data);
            let mut cur = Cursor::new(Vec::with_capacity(kept.len() / 4 + start as usize));
            cur.set_position(start);
            let compress = |cur: &mut Cursor<Vec<u8>>| -> std::io::Result<()> {
                let mut c = laz::LasZipCompressor::new(cur, vlr.clone())
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                if vlr.uses_variable_size_chunks() {
                    // One chunk per this many points, as the fixed default.
                    for run in kept.chunks(len * 50_000) {
                        c.compress_many(run)?;
                        c.finish_current_chunk()?;
                    }
                } else {
                    c.compress_many(&kept)?;
                }
                c.done()
            };
            compress(&mut cur)
                .map_err(|e| Error::internal(format!("cannot compress the cell's points: {e}")))?;
            cur.into_inner().split_off(start as usize)
        }
    };
    if d.cell.is_none() && stats.points != slice.record_count {
        return Err(slice.invalid(format!(
            "the slice should hold {} points and holds {}",
            slice.record_count, stats.points
        )));
    }
    stats.patch(&mut header, format);
    if let Some(e) = header.evlr.as_mut() {
        e.start_of_first_evlr = if e.number_of_evlrs == 0 {
            0
        } else {
            u64::from(header.offset_to_point_data) + section.len() as u64
        };
    }
    let mut h = Vec::with_capacity(header_size);
    header
        .write_to(&mut h)
        .map_err(|e| Error::internal(format!("cannot write a LAS header: {e}")))?;
    if h.len() != header_size {
        return Err(Error::internal(format!(
            "the LAS header was written as {} bytes, not {header_size}",
            h.len()
        )));
    }
    let w = |e: std::io::Error| Error::io("writing the slice", e);
    out.write_all(&h).map_err(w)?;
    out.write_all(&vlr_bytes).map_err(w)?;
    out.write_all(&section).map_err(w)?;
    out.write_all(evlrs).map_err(w)?;
    Ok((h.len() + vlr_bytes.len() + section.len() + evlrs.len()) as u64)
}

/// The point records of `records` (each `len` bytes) whose raw x and y
/// lie in the half-open `cell` (x0, y0, x1, y1).
fn keep_inside(records: &[u8], len: usize, cell: &[i64; 4]) -> Vec<u8> {
    records
        .chunks_exact(len)
        .filter(|p| {
            let x = i64::from(i32::from_le_bytes([p[0], p[1], p[2], p[3]]));
            let y = i64::from(i32::from_le_bytes([p[4], p[5], p[6], p[7]]));
            cell[0] <= x && x < cell[2] && cell[1] <= y && y < cell[3]
        })
        .flatten()
        .copied()
        .collect()
}

/// Decode the chunks in `section` (offset + chunks + table) and add the
/// points to `stats`, 64 Ki points at a time.
fn decode_stats(
    section: &[u8],
    vlr: LazVlr,
    points: u64,
    len: usize,
    format: u8,
    stats: &mut Stats,
) -> std::result::Result<(), String> {
    let selection = DecompressionSelection::xy_returns_channel().decompress_z();
    guarded(|| {
        let mut dec = LasZipDecompressor::selective(Cursor::new(section), vlr, selection)
            .map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; len * 65536];
        let mut left = points;
        while left > 0 {
            let n = left.min(65536) as usize;
            dec.decompress_many(&mut buf[..n * len])
                .map_err(|e| e.to_string())?;
            stats.add(&buf[..n * len], len, format);
            left -= n as u64;
        }
        Ok(())
    })
}

impl SliceFormat for LasFormat {
    fn names(&self) -> &'static [&'static str] {
        &["las", "laz", "copc"]
    }

    fn detect(&self, object_name: &str) -> Option<&'static str> {
        let lower = object_name.to_ascii_lowercase();
        if lower.ends_with(".copc.laz") {
            Some("copc")
        } else if lower.ends_with(".las") {
            Some("las")
        } else if lower.ends_with(".laz") {
            Some("laz")
        } else {
            None
        }
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

/// The points of a LAS or LAZ file (a fetched slice) as an Arrow record
/// batch: `x`, `y`, `z` (scaled), `intensity`, `return_number`,
/// `number_of_returns`, `classification`, `scan_angle` (degrees),
/// `user_data`, `point_source_id`, and `gps_time` when the point format has
/// it. `name` names the file in errors.
pub fn points_to_arrow(bytes: &[u8], name: &str) -> Result<arrow_array::RecordBatch> {
    use arrow_array::{ArrayRef, Float32Array, Float64Array, RecordBatch, UInt16Array, UInt8Array};
    use arrow_schema::{DataType, Field, Schema};
    use std::sync::Arc;

    let mut reader = las::Reader::new(Cursor::new(bytes.to_vec()))
        .map_err(|e| invalid(name, format!("cannot read it: {e}")))?;
    let pts = guarded(|| reader.read_all().map_err(|e| e.to_string()))
        .map_err(|e| invalid(name, format!("cannot read its points: {e}")))?;
    let f64s = |v: Vec<f64>| Arc::new(Float64Array::from(v)) as ArrayRef;
    let mut fields = vec![
        Field::new("x", DataType::Float64, false),
        Field::new("y", DataType::Float64, false),
        Field::new("z", DataType::Float64, false),
        Field::new("intensity", DataType::UInt16, false),
        Field::new("return_number", DataType::UInt8, false),
        Field::new("number_of_returns", DataType::UInt8, false),
        Field::new("classification", DataType::UInt8, false),
        Field::new("scan_angle", DataType::Float32, false),
        Field::new("user_data", DataType::UInt8, false),
        Field::new("point_source_id", DataType::UInt16, false),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        f64s(pts.x().collect()),
        f64s(pts.y().collect()),
        f64s(pts.z().collect()),
        Arc::new(UInt16Array::from_iter_values(pts.intensity())),
        Arc::new(UInt8Array::from_iter_values(pts.return_number())),
        Arc::new(UInt8Array::from_iter_values(pts.number_of_returns())),
        Arc::new(UInt8Array::from_iter_values(pts.classification())),
        Arc::new(Float32Array::from_iter_values(pts.scan_angle_degrees())),
        Arc::new(UInt8Array::from_iter_values(pts.user_data())),
        Arc::new(UInt16Array::from_iter_values(pts.point_source_id())),
    ];
    if let Some(t) = pts.gps_time() {
        fields.push(Field::new("gps_time", DataType::Float64, false));
        columns.push(f64s(t.collect()));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| Error::internal(format!("cannot build the point batch: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use laz::{LasZipCompressor, LazItemRecordBuilder, LazVlrBuilder};

    /// One compressed chunk of `n` points of point format 7 (layered).
    fn chunk(n: usize) -> (LazVlr, Vec<u8>, usize) {
        let items = LazItemRecordBuilder::default_for_point_format_id(7, 0).unwrap();
        let vlr = LazVlrBuilder::new(items)
            .with_fixed_chunk_size(50_000)
            .build();
        let len = vlr.items_size() as usize;
        let mut points = vec![0u8; n * len];
        for (i, p) in points.chunks_exact_mut(len).enumerate() {
            p[..4].copy_from_slice(&(i as i32 * 3).to_le_bytes());
            p[4..8].copy_from_slice(&(i as i32 * 5).to_le_bytes());
            p[14] = 0x11; // return 1 of 1
        }
        let mut c = LasZipCompressor::new(Cursor::new(Vec::new()), vlr.clone()).unwrap();
        c.compress_many(&points).unwrap();
        c.done().unwrap();
        let out = c.into_inner().into_inner();
        let table_at = u64::from_le_bytes(out[..8].try_into().unwrap()) as usize;
        (vlr, out[8..table_at].to_vec(), len)
    }

    #[test]
    fn layer_sizes_a_chunk_cannot_hold_are_refused_before_decoding() {
        let (vlr, data, len) = chunk(100);
        let bytes = [data.len() as u64];
        check_layer_sizes(&data, &bytes, &vlr).unwrap();
        let got =
            decode_chunks(&data, &[100], &bytes, &vlr, DecompressionSelection::all()).unwrap();
        assert_eq!(got.len(), 100 * len);
        // The first layer's size (after the first point and the count), made
        // 4 GiB: refused by the check, before the decoder allocates it.
        let at = len + 4;
        let mut bad = data.clone();
        bad[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = check_layer_sizes(&bad, &bytes, &vlr).unwrap_err();
        assert!(e.contains("chunk 0") && e.contains("claim"), "{e}");
        let e =
            decode_chunks(&bad, &[100], &bytes, &vlr, DecompressionSelection::all()).unwrap_err();
        assert!(e.contains("claim"), "{e}");
        // A chunk cut before its sizes end; a chunk past the data.
        let e = check_layer_sizes(&data[..at], &[at as u64], &vlr).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
        let e = check_layer_sizes(&data, &[data.len() as u64 + 1], &vlr).unwrap_err();
        assert!(e.contains("past the point data"), "{e}");
    }
}

//! imzML mass-spectrometry images as a [`SliceFormat`].
//!
//! An imzML dataset is an XML file (`NAME.imzML`) describing every spectrum
//! (its pixel coordinates and where its m/z and intensity arrays lie) and a
//! binary file (`NAME.ibd`, beside it) that starts with the dataset's UUID
//! and holds the arrays. The index reads the XML once with a streaming
//! parser (quick-xml) and the `.ibd`'s first 16 bytes: the mode
//! (continuous: one m/z array shared by all spectra; processed: one each),
//! the UUID, and per spectrum its coordinates, the span of its element in
//! the XML and each array's offset, length and encoded length, with the
//! encoding given by referenceable parameter groups. A record is a
//! spectrum. Plans cut by spectrum count, byte size (a shared array counted
//! once), or a grid over the pixel coordinates (bands of pixel rows are a
//! grid of one column).
//!
//! A slice evaluates to a standalone imzML + ibd pair, written as a tar
//! stream of two entries (`NAME.sliceN.imzML`, `NAME.sliceN.ibd`; the
//! command line unpacks it): the XML keeps everything outside the spectrum
//! list, lists the slice's spectra renumbered with their offsets rewritten,
//! and drops the `.ibd` checksum (it described the whole file); the `.ibd`
//! starts with the same UUID and holds the slice's arrays (a shared m/z
//! array once), read with coalesced ranged GETs whatever their order.

use std::collections::HashMap;
use std::io::Write;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use serde::{Deserialize, Serialize};
use tessera_store::object_store::path::Path;
use tessera_store::{Location, ObjectMeta};

use crate::error::{Error, Result};
use crate::plugin::{
    coalesce, head, ranged_get, write_tar, AnyIndex, AnySlice, BoxFuture, IndexRequest, SliceFile,
    SliceFormat,
};
use crate::slice::Strategy;

/// imzML (`imzml`), for a [`Registry`](crate::Registry).
#[derive(Debug, Clone, Copy, Default)]
pub struct ImzmlFormat;

/// Reads closer than this are merged into one GET.
const GAP: u64 = 64 << 10;

// Controlled vocabulary accessions used.
const CONTINUOUS: &str = "IMS:1000030";
const PROCESSED: &str = "IMS:1000031";
const UUID: &str = "IMS:1000080";
const CHECKSUMS: &[&str] = &["IMS:1000090", "IMS:1000091"];
const POS_X: &str = "IMS:1000050";
const POS_Y: &str = "IMS:1000051";
const POS_Z: &str = "IMS:1000052";
const EXT_OFFSET: &str = "IMS:1000102";
const EXT_LENGTH: &str = "IMS:1000103";
const EXT_ENCODED: &str = "IMS:1000104";
const MZ_ARRAY: &str = "MS:1000514";
const INTENSITY_ARRAY: &str = "MS:1000515";
const ZLIB: &str = "MS:1000574";

/// Data types: accession → bytes per element.
fn type_bytes(accession: &str) -> Option<u64> {
    Some(match accession {
        "MS:1000521" | "IMS:1000141" | "MS:1000519" => 4, // 32-bit float, 32-bit integer
        "MS:1000523" | "IMS:1000142" | "MS:1000522" => 8, // 64-bit float, 64-bit integer
        "IMS:1000101" => return None,                     // "external data", not a type
        _ => return None,
    })
}

/// The `.ibd` of the dataset: where it is and what it was when indexed.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Ibd {
    url: String,
    /// Its path in the store (beside the XML).
    path: String,
    size: u64,
    etag: Option<String>,
}

/// One binary array of a spectrum.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
struct Array {
    /// Byte offset in the `.ibd`.
    offset: u64,
    /// Elements.
    length: u64,
    /// Bytes.
    encoded: u64,
    /// `m` (m/z), `i` (intensity) or `o` (other).
    kind: char,
    /// Bytes per element (before compression); 0 when unknown.
    width: u8,
    /// zlib-compressed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    zlib: bool,
    /// Integers, not floating point.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    int: bool,
}

/// One spectrum.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Spectrum {
    /// Its element's bytes in the XML.
    span: [u64; 2],
    /// Pixel coordinates (x, y, z; z is 1 when absent).
    at: [u32; 3],
    arrays: Vec<Array>,
}

/// What an imzML index holds beside the envelope.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ImzIndex {
    ibd: Ibd,
    /// The UUID, 32 lower-case hex digits.
    uuid: String,
    /// `continuous` or `processed`.
    mode: String,
    /// The `<spectrumList …>` start tag's bytes; the spectra follow it.
    list_tag: [u64; 2],
    /// Where `</spectrumList>` starts.
    list_end: u64,
    /// The `.ibd` checksum parameters' bytes (dropped from slices).
    checksums: Vec<[u64; 2]>,
    spectra: Vec<Spectrum>,
}

/// What an imzML slice holds beside the envelope.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ImzSlice {
    ibd: Ibd,
    uuid: String,
    list_tag: [u64; 2],
    list_end: u64,
    checksums: Vec<[u64; 2]>,
    spectra: Vec<Spectrum>,
}

fn invalid(url: &str, message: impl Into<String>) -> Error {
    Error::InvalidFile {
        object: url.to_string(),
        format: "imzML".into(),
        message: message.into(),
    }
}

/// The `.ibd` beside `NAME.imzML`: `NAME.ibd` (or `NAME.IBD`).
async fn find_ibd(object: &Location) -> Result<(Location, ObjectMeta)> {
    let path = object.path().as_ref().to_string();
    let stem = path
        .rfind('.')
        .map(|i| &path[..i])
        .unwrap_or(path.as_str())
        .to_string();
    let mut tried = Vec::new();
    for ext in [".ibd", ".IBD", ".Ibd"] {
        let key = format!("{stem}{ext}");
        // The stem is already in the store's encoding: parse, do not encode again.
        let loc = object.with_path(Path::parse(&key).unwrap_or_else(|_| key.as_str().into()));
        match head(&loc).await {
            Ok(meta) => return Ok((loc, meta)),
            Err(Error::NotFound { .. }) => tried.push(loc.url()),
            Err(e) => return Err(e),
        }
    }
    Err(Error::NotFound {
        object: format!("{} (the .ibd of {})", tried.join(" or "), object.url()),
    })
}

fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.try_get_attribute(name)
        .ok()
        .flatten()
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

/// The parameters a `cvParam` or a referenced group adds to an array.
#[derive(Debug, Clone, Default)]
struct Params {
    offset: Option<u64>,
    length: Option<u64>,
    encoded: Option<u64>,
    kind: Option<char>,
    width: Option<u8>,
    int: bool,
    zlib: bool,
}

impl Params {
    fn add(&mut self, accession: &str, value: Option<&str>) {
        let num = || value.and_then(|v| v.trim().parse::<u64>().ok());
        match accession {
            EXT_OFFSET => self.offset = num(),
            EXT_LENGTH => self.length = num(),
            EXT_ENCODED => self.encoded = num(),
            MZ_ARRAY => self.kind = Some('m'),
            INTENSITY_ARRAY => self.kind = Some('i'),
            ZLIB => self.zlib = true,
            a => {
                if let Some(w) = type_bytes(a) {
                    self.width = Some(w as u8);
                    self.int = matches!(
                        a,
                        "IMS:1000141" | "MS:1000519" | "IMS:1000142" | "MS:1000522"
                    );
                }
            }
        }
    }

    fn merge(&mut self, other: &Params) {
        self.offset = self.offset.or(other.offset);
        self.length = self.length.or(other.length);
        self.encoded = self.encoded.or(other.encoded);
        self.kind = self.kind.or(other.kind);
        if self.width.is_none() {
            self.width = other.width;
            self.int = other.int;
        }
        self.zlib |= other.zlib;
    }
}

/// A spectrum being read: where its element starts, its coordinates, its arrays.
type Open = (u64, [Option<u32>; 3], Vec<Array>);

/// Everything the index needs from the XML, in one streaming pass.
struct Parsed {
    uuid: Option<String>,
    mode: Option<&'static str>,
    list_tag: Option<[u64; 2]>,
    list_end: Option<u64>,
    checksums: Vec<[u64; 2]>,
    spectra: Vec<Spectrum>,
}

fn parse(xml: &[u8], url: &str) -> Result<Parsed> {
    let mut r = Reader::from_reader(xml);
    let mut groups: HashMap<String, Params> = HashMap::new();
    let mut group: Option<(String, Params)> = None;
    let mut out = Parsed {
        uuid: None,
        mode: None,
        list_tag: None,
        list_end: None,
        checksums: Vec::new(),
        spectra: Vec::new(),
    };
    // The spectrum being read: start, coordinates, arrays, the array being read.
    let mut spectrum: Option<Open> = None;
    let mut array: Option<Params> = None;
    let mut in_scan = false;
    let line_of = |pos: u64| {
        xml[..(pos as usize).min(xml.len())]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    };
    loop {
        let before = r.buffer_position();
        let ev = r.read_event().map_err(|e| {
            invalid(
                url,
                format!(
                    "line {}: not well-formed XML: {e}",
                    line_of(r.buffer_position())
                ),
            )
        })?;
        let after = r.buffer_position();
        let mut closing = None;
        match ev {
            Event::Eof => break,
            Event::Start(_) | Event::Empty(_) => {
                let (e, empty) = match ev {
                    Event::Start(e) => (e, false),
                    Event::Empty(e) => (e, true),
                    _ => unreachable!("matched above"),
                };
                let name = e.local_name();
                match name.as_ref() {
                    b"referenceableParamGroup" => {
                        if let Some(id) = attr(&e, "id") {
                            group = Some((id, Params::default()));
                        }
                    }
                    // A slice keeps the XML around the one spectrum list
                    // and replaces what is inside it: a second list, or a
                    // spectrum outside the list, would be copied unchanged
                    // into every slice, its offsets pointing nowhere.
                    b"spectrumList" if !empty => {
                        if out.list_tag.is_some() {
                            return Err(invalid(
                                url,
                                format!("line {}: a second spectrumList", line_of(before)),
                            ));
                        }
                        out.list_tag = Some([before, after]);
                    }
                    b"spectrum" => {
                        if out.list_tag.is_none() || out.list_end.is_some() {
                            return Err(invalid(
                                url,
                                format!(
                                    "line {}: a spectrum outside the spectrumList",
                                    line_of(before)
                                ),
                            ));
                        }
                        spectrum = Some((before, [None; 3], Vec::new()));
                    }
                    b"scan" => in_scan = true,
                    b"binaryDataArray" => array = Some(Params::default()),
                    b"referenceableParamGroupRef" => {
                        if let Some(g) = attr(&e, "ref").and_then(|id| groups.get(&id).cloned()) {
                            if let Some(a) = array.as_mut() {
                                a.merge(&g);
                            }
                        }
                    }
                    b"cvParam" => {
                        let acc = attr(&e, "accession").unwrap_or_default();
                        let value = attr(&e, "value");
                        if let Some((_, g)) = group.as_mut() {
                            g.add(&acc, value.as_deref());
                        } else if let Some(a) = array.as_mut() {
                            a.add(&acc, value.as_deref());
                        } else if let (Some(s), true) = (spectrum.as_mut(), in_scan) {
                            let v = value.as_deref().and_then(|v| v.trim().parse::<u32>().ok());
                            match acc.as_str() {
                                POS_X => s.1[0] = v,
                                POS_Y => s.1[1] = v,
                                POS_Z => s.1[2] = v,
                                _ => {}
                            }
                        } else if spectrum.is_none() {
                            match acc.as_str() {
                                CONTINUOUS => out.mode = Some("continuous"),
                                PROCESSED => out.mode = Some("processed"),
                                UUID => out.uuid = value.map(|v| normalize_uuid(&v)),
                                // Only the file description's checksums
                                // are dropped from slices; one anywhere
                                // else would stay, describing the whole.
                                a if CHECKSUMS.contains(&a) => {
                                    if out.list_tag.is_some() {
                                        return Err(invalid(
                                            url,
                                            format!(
                                                "line {}: an .ibd checksum after the spectrumList starts",
                                                line_of(before)
                                            ),
                                        ));
                                    }
                                    out.checksums.push([before, after]);
                                }
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
                if empty {
                    // An empty element closes at once.
                    closing = closes(name.as_ref());
                }
            }
            Event::End(e) => {
                let name = e.local_name();
                if name.as_ref() == b"spectrumList" {
                    out.list_end = Some(before);
                }
                closing = closes(name.as_ref());
            }
            _ => {}
        }
        if let Some(name) = closing {
            close(
                name,
                &mut group,
                &mut groups,
                &mut spectrum,
                &mut array,
                &mut in_scan,
                &mut out,
                after,
                url,
            )?;
        }
    }
    Ok(out)
}

/// The elements whose end [`close`] acts on.
fn closes(name: &[u8]) -> Option<&'static [u8]> {
    const ENDS: [&[u8]; 4] = [
        b"referenceableParamGroup",
        b"scan",
        b"binaryDataArray",
        b"spectrum",
    ];
    ENDS.into_iter().find(|n| *n == name)
}

/// The end of an element: finish a group, an array or a spectrum.
#[allow(clippy::too_many_arguments)]
fn close(
    name: &[u8],
    group: &mut Option<(String, Params)>,
    groups: &mut HashMap<String, Params>,
    spectrum: &mut Option<Open>,
    array: &mut Option<Params>,
    in_scan: &mut bool,
    out: &mut Parsed,
    after: u64,
    url: &str,
) -> Result<()> {
    match name {
        b"referenceableParamGroup" => {
            if let Some((id, p)) = group.take() {
                groups.insert(id, p);
            }
        }
        b"scan" => *in_scan = false,
        b"binaryDataArray" => {
            if let (Some(p), Some(s)) = (array.take(), spectrum.as_mut()) {
                let n = out.spectra.len();
                let (Some(offset), Some(length)) = (p.offset, p.length) else {
                    return Err(invalid(
                        url,
                        format!("spectrum {n}: an array without its external offset or length"),
                    ));
                };
                let Some(width) = p.width else {
                    return Err(invalid(
                        url,
                        format!(
                            "spectrum {n}: an array without its data type (32- or 64-bit float or integer)"
                        ),
                    ));
                };
                let encoded = match p.encoded {
                    Some(e) => e,
                    None if !p.zlib => length.saturating_mul(u64::from(width)),
                    None => {
                        return Err(invalid(
                            url,
                            format!("spectrum {n}: an array without its encoded length"),
                        ))
                    }
                };
                s.2.push(Array {
                    offset,
                    length,
                    encoded,
                    kind: p.kind.unwrap_or('o'),
                    width,
                    zlib: p.zlib,
                    int: p.int,
                });
            }
        }
        b"spectrum" => {
            if let Some((start, at, arrays)) = spectrum.take() {
                let n = out.spectra.len();
                let (Some(x), Some(y)) = (at[0], at[1]) else {
                    return Err(invalid(
                        url,
                        format!("spectrum {n}: no pixel position (x, y)"),
                    ));
                };
                out.spectra.push(Spectrum {
                    span: [start, after],
                    at: [x, y, at[2].unwrap_or(1)],
                    arrays,
                });
            }
        }
        _ => {}
    }
    Ok(())
}

/// `{8a1b…}` or `8A1B-…` → 32 lower-case hex digits.
fn normalize_uuid(v: &str) -> String {
    v.chars()
        .filter(char::is_ascii_hexdigit)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn build_index(req: IndexRequest<'_>) -> Result<AnyIndex> {
    let url = req.object.url();
    let xml = req.object.read().await?;
    (req.progress)(xml.len() as u64);
    let (ibd_loc, ibd_meta) = find_ibd(req.object).await?;
    let ibd_url = ibd_loc.url();
    let p = tokio::task::spawn_blocking({
        let xml = xml.clone();
        let url = url.clone();
        move || parse(&xml, &url)
    })
    .await
    .map_err(|e| Error::internal(format!("the imzML parse failed: {e}")))??;
    let mode = p.mode.ok_or_else(|| {
        invalid(
            &url,
            "neither continuous (IMS:1000030) nor processed (IMS:1000031)",
        )
    })?;
    let uuid = p
        .uuid
        .ok_or_else(|| invalid(&url, "no UUID (IMS:1000080)"))?;
    let (Some(list_tag), Some(list_end)) = (p.list_tag, p.list_end) else {
        return Err(invalid(&url, "no spectrumList"));
    };
    if ibd_meta.size < 16 {
        return Err(invalid(
            &ibd_url,
            "shorter than the 16-byte UUID it starts with",
        ));
    }
    let head16 = ranged_get(
        &ibd_loc,
        &ibd_url,
        ibd_meta.e_tag.as_deref(),
        ibd_meta.size,
        0,
        16,
    )
    .await?;
    if hex(&head16) != uuid {
        return Err(invalid(
            &ibd_url,
            format!(
                "its UUID {} is not the XML's {uuid}: the pair does not belong together",
                hex(&head16)
            ),
        ));
    }
    for (n, s) in p.spectra.iter().enumerate() {
        for a in &s.arrays {
            if a.offset < 16
                || a.offset
                    .checked_add(a.encoded)
                    .is_none_or(|e| e > ibd_meta.size)
            {
                return Err(invalid(
                    &ibd_url,
                    format!(
                        "spectrum {n}: bytes {}..+{} lie outside the .ibd's 16..{}",
                        a.offset, a.encoded, ibd_meta.size
                    ),
                ));
            }
        }
    }
    let records = p.spectra.len() as u64;
    let detail = ImzIndex {
        ibd: Ibd {
            path: ibd_loc.path().as_ref().to_string(),
            url: ibd_url,
            size: ibd_meta.size,
            etag: ibd_meta.e_tag.clone(),
        },
        uuid,
        mode: mode.to_string(),
        list_tag,
        list_end,
        checksums: p.checksums,
        spectra: p.spectra,
    };
    AnyIndex::new(req.object, req.meta, req.format, records, &detail)
}

fn plan(index: &AnyIndex, strategy: Strategy) -> Result<Vec<AnySlice>> {
    let d: ImzIndex = index.detail()?;
    let n = d.spectra.len();
    let groups: Vec<Vec<usize>> =
        match strategy {
            Strategy::Count(0) | Strategy::Bytes(0) | Strategy::Records(0) => {
                return Err(Error::InvalidStrategy { strategy })
            }
            Strategy::Grid { columns: 0, .. } | Strategy::Grid { rows: 0, .. } => {
                return Err(Error::InvalidStrategy { strategy })
            }
            _ if n == 0 => Vec::new(),
            Strategy::Count(c) => {
                let c = c.min(n);
                (0..c)
                    .map(|i| (n * i / c..n * (i + 1) / c).collect())
                    .collect()
            }
            Strategy::Records(k) => (0..n)
                .collect::<Vec<_>>()
                .chunks(k.min(n as u64) as usize)
                .map(<[usize]>::to_vec)
                .collect(),
            Strategy::Bytes(b) => {
                let mut out: Vec<Vec<usize>> = vec![Vec::new()];
                let mut acc = 0u64;
                let mut seen = std::collections::HashSet::new();
                for (i, s) in d.spectra.iter().enumerate() {
                    if acc >= b && !out.last().is_some_and(Vec::is_empty) {
                        out.push(Vec::new());
                        acc = 0;
                        seen.clear();
                    }
                    // A shared array (continuous m/z) is stored once per slice.
                    let bytes: u64 = s
                        .arrays
                        .iter()
                        .filter(|a| seen.insert(a.offset))
                        .map(|a| a.encoded)
                        .sum();
                    acc += bytes;
                    if let Some(v) = out.last_mut() {
                        v.push(i);
                    }
                }
                out
            }
            Strategy::Grid { columns, rows } => {
                // Half-open cells over the pixel coordinates; spectra in file order.
                let (x0, x1) = min_max(d.spectra.iter().map(|s| s.at[0]));
                let (y0, y1) = min_max(d.spectra.iter().map(|s| s.at[1]));
                let cell = |v: u32, lo: u32, hi: u32, k: u32| -> usize {
                    let span = u64::from(hi - lo) + 1;
                    (u64::from(v - lo) * u64::from(k) / span) as usize
                };
                let mut cells: std::collections::BTreeMap<(usize, usize), Vec<usize>> =
                    Default::default();
                for (i, s) in d.spectra.iter().enumerate() {
                    let key = (cell(s.at[1], y0, y1, rows), cell(s.at[0], x0, x1, columns));
                    cells.entry(key).or_default().push(i);
                }
                cells.into_values().collect()
            }
            Strategy::Level { .. } | Strategy::Interval(_) => return Err(Error::unsupported(
                index.url.clone(),
                "imzML has no levels or times; cut by a count, a size, spectra or a grid of pixels",
            )),
        };
    let total = groups.len();
    groups
        .iter()
        .enumerate()
        .map(|(k, g)| {
            let detail = ImzSlice {
                ibd: d.ibd.clone(),
                uuid: d.uuid.clone(),
                list_tag: d.list_tag,
                list_end: d.list_end,
                checksums: d.checksums.clone(),
                spectra: g.iter().map(|&i| d.spectra[i].clone()).collect(),
            };
            index.slice(
                k,
                total,
                g.first().map_or(0, |&i| i as u64),
                g.len() as u64,
                &detail,
            )
        })
        .collect()
}

fn min_max(it: impl Iterator<Item = u32>) -> (u32, u32) {
    it.fold((u32::MAX, 0), |(a, b), v| (a.min(v), b.max(v)))
}

/// The start or empty tag at the start of `tag` with the value of
/// `attribute` set to `value` (a number: nothing to escape), then the
/// bytes after the tag unchanged; `None` when the tag lacks the attribute.
///
/// The tag is written again from the attributes the XML parser reads in
/// it (their values as written: the XML may be Latin-1, as pyimzml
/// declares it), so the attribute set is the one indexing read, however
/// the tag is spaced (fuzzing found `name="x"value="208"`, which the parser
/// accepts and a byte search for ` value=` misses).
fn set_attr(tag: &[u8], attribute: &str, value: &str) -> Option<Vec<u8>> {
    let mut r = Reader::from_reader(tag);
    let (e, empty) = match r.read_event().ok()? {
        Event::Start(e) => (e, false),
        Event::Empty(e) => (e, true),
        _ => return None,
    };
    let end = usize::try_from(r.buffer_position()).ok()?;
    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
    let mut new = BytesStart::new(name);
    let mut found = false;
    for a in e.attributes() {
        let a = a.ok()?;
        if a.key.as_ref() == attribute.as_bytes() && !found {
            found = true;
            new.push_attribute(quick_xml::events::attributes::Attribute {
                key: a.key,
                value: std::borrow::Cow::Borrowed(value.as_bytes()),
            });
        } else {
            new.push_attribute(a);
        }
    }
    if !found {
        return None;
    }
    let mut out = Vec::with_capacity(tag.len() + value.len());
    let mut w = quick_xml::Writer::new(&mut out);
    w.write_event(if empty {
        Event::Empty(new)
    } else {
        Event::Start(new)
    })
    .ok()?;
    out.extend_from_slice(tag.get(end..)?);
    Some(out)
}

/// A spectrum's XML with its index and its arrays' offsets rewritten.
fn rewrite_spectrum(xml: &[u8], index: usize, offsets: &[u64], url: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(xml.len() + 16);
    let mut r = Reader::from_reader(xml);
    let mut last = 0usize;
    let mut next = 0usize;
    let mut first = true;
    loop {
        let before = r.buffer_position() as usize;
        let ev = r
            .read_event()
            .map_err(|e| invalid(url, format!("spectrum {index}: {e}")))?;
        let after = r.buffer_position() as usize;
        match ev {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => {
                let tag = &xml[before..after];
                let new = if first && e.local_name().as_ref() == b"spectrum" {
                    set_attr(tag, "index", &index.to_string())
                } else if e.local_name().as_ref() == b"cvParam"
                    && attr(&e, "accession").as_deref() == Some(EXT_OFFSET)
                {
                    let v = offsets.get(next).copied();
                    next += 1;
                    // An offset that cannot be set would leave the
                    // original's in the slice, pointing elsewhere.
                    match v.map(|v| set_attr(tag, "value", &v.to_string())) {
                        Some(None) => {
                            return Err(invalid(
                                url,
                                format!("spectrum {index}: an array offset without a value"),
                            ))
                        }
                        other => other.flatten(),
                    }
                } else {
                    None
                };
                first = false;
                if let Some(new) = new {
                    out.extend_from_slice(&xml[last..before]);
                    out.extend_from_slice(&new);
                    last = after;
                }
            }
            _ => {}
        }
    }
    out.extend_from_slice(&xml[last..]);
    if next != offsets.len() {
        return Err(invalid(
            url,
            format!(
                "spectrum {index}: {} offsets found, {} expected",
                next,
                offsets.len()
            ),
        ));
    }
    Ok(out)
}

async fn fetch(slice: &AnySlice, object: &Location, out: &mut (dyn Write + Send)) -> Result<u64> {
    write_tar(&fetch_files(slice, object).await?, out)
}

/// A slice's pair of files: its imzML and its ibd.
async fn fetch_files(slice: &AnySlice, object: &Location) -> Result<Vec<SliceFile>> {
    let d: ImzSlice = slice.detail()?;
    let url = slice.url.clone();
    // The XML: everything before the spectra, the slice's spectra, the rest.
    let mut xml_ranges: Vec<[u64; 2]> = vec![[0, d.list_tag[1]], [d.list_end, slice.size]];
    xml_ranges.extend(d.spectra.iter().map(|s| s.span));
    let (reads, place) = coalesce(&xml_ranges, GAP);
    let got = slice.read_ranges(object, &reads).await?;
    let piece = |i: usize| -> &[u8] {
        let Some((r, s)) = place[i] else {
            return &[];
        };
        let len = (xml_ranges[i][1] - xml_ranges[i][0]) as usize;
        &got[r][s..s + len]
    };
    // The arrays: each distinct one once (a continuous m/z array is shared).
    let ibd =
        object.with_path(Path::parse(&d.ibd.path).unwrap_or_else(|_| d.ibd.path.as_str().into()));
    let mut distinct: Vec<[u64; 2]> = Vec::new();
    let mut slot: HashMap<[u64; 2], usize> = HashMap::new();
    for s in &d.spectra {
        for a in &s.arrays {
            let key = [a.offset, a.offset + a.encoded];
            if let std::collections::hash_map::Entry::Vacant(v) = slot.entry(key) {
                v.insert(distinct.len());
                distinct.push(key);
            }
        }
    }
    let (ibd_reads, ibd_place) = coalesce(&distinct, GAP);
    let mut ibd_got = Vec::with_capacity(ibd_reads.len());
    for (a, b) in &ibd_reads {
        ibd_got
            .push(ranged_get(&ibd, &d.ibd.url, d.ibd.etag.as_deref(), d.ibd.size, *a, *b).await?);
    }
    // The new .ibd: the UUID, then each distinct array.
    let uuid: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&d.uuid[2 * i..2 * i + 2], 16))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| slice.invalid("the UUID is not 32 hex digits"))?;
    let mut new_ibd = uuid;
    let mut new_at = Vec::with_capacity(distinct.len());
    for (k, r) in distinct.iter().enumerate() {
        new_at.push(new_ibd.len() as u64);
        if let Some((read, start)) = ibd_place[k] {
            new_ibd.extend_from_slice(&ibd_got[read][start..start + (r[1] - r[0]) as usize]);
        }
    }
    // The new XML.
    let prefix = piece(0);
    // The descriptor's positions must lie in order inside the prefix.
    let mut marks: Vec<u64> = d.checksums.iter().flatten().copied().collect();
    marks.push(d.list_tag[0]);
    if marks.windows(2).any(|w| w[0] > w[1]) || d.list_tag[0] as usize > prefix.len() {
        return Err(slice.invalid("its checksum and spectrumList positions are out of order"));
    }
    let list_tag = &prefix[d.list_tag[0] as usize..];
    let list_tag = set_attr(list_tag, "count", &d.spectra.len().to_string())
        .unwrap_or_else(|| list_tag.to_vec());
    let mut new_xml: Vec<u8> = Vec::with_capacity(prefix.len() + 4096);
    // Drop the .ibd checksums (they described the whole file).
    let mut at = 0usize;
    for c in &d.checksums {
        new_xml.extend_from_slice(&prefix[at..c[0] as usize]);
        at = c[1] as usize;
    }
    new_xml.extend_from_slice(&prefix[at..d.list_tag[0] as usize]);
    new_xml.extend_from_slice(&list_tag);
    for (i, s) in d.spectra.iter().enumerate() {
        let text = piece(i + 2);
        let offsets: Vec<u64> = s
            .arrays
            .iter()
            .map(|a| new_at[slot[&[a.offset, a.offset + a.encoded]]])
            .collect();
        new_xml.extend_from_slice(b"\n");
        new_xml.extend_from_slice(&rewrite_spectrum(text, i, &offsets, &url)?);
    }
    new_xml.extend_from_slice(b"\n");
    new_xml.extend_from_slice(piece(1));
    // A tar of the pair.
    let name = url.rsplit('/').next().unwrap_or("dataset.imzML");
    let stem = name.rfind('.').map_or(name, |i| &name[..i]);
    Ok([("imzML", new_xml), ("ibd", new_ibd)]
        .map(|(ext, data)| SliceFile::new(format!("{stem}.slice{}.{ext}", slice.slice), data))
        .into())
}

/// The spectra of an imzML slice (the tar stream a slice evaluates to) as
/// an Arrow record batch: `x`, `y`, `z` and the `mz` and `intensity` arrays
/// as lists of float64 (32-bit values and integers widened). `name` names
/// the slice in errors.
pub fn spectra_to_arrow(slice_bytes: &[u8], name: &str) -> Result<arrow_array::RecordBatch> {
    use arrow_array::builder::{Float64Builder, ListBuilder};
    use arrow_array::{ArrayRef, RecordBatch, UInt32Array};
    use std::io::Read;
    use std::sync::Arc;

    let mut xml = None;
    let mut ibd = None;
    let mut archive = tar::Archive::new(slice_bytes);
    let entries = archive.entries().map_err(|e| {
        invalid(
            name,
            format!("not an imzML slice (a tar of .imzML and .ibd): {e}"),
        )
    })?;
    for entry in entries {
        let mut entry = entry.map_err(|e| invalid(name, format!("a damaged tar entry: {e}")))?;
        let path = entry
            .path()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let mut data = Vec::new();
        entry
            .read_to_end(&mut data)
            .map_err(|e| invalid(name, format!("a damaged tar entry: {e}")))?;
        if path.to_ascii_lowercase().ends_with(".imzml") {
            xml = Some(data);
        } else if path.to_ascii_lowercase().ends_with(".ibd") {
            ibd = Some(data);
        }
    }
    let (Some(xml), Some(ibd)) = (xml, ibd) else {
        return Err(invalid(name, "not an imzML slice: no .imzML and .ibd pair"));
    };
    let parsed = parse(&xml, name)?;
    let n = parsed.spectra.len();
    let mut mz = ListBuilder::new(Float64Builder::new());
    let mut intensity = ListBuilder::new(Float64Builder::new());
    for (k, s) in parsed.spectra.iter().enumerate() {
        for (kind, list) in [('m', &mut mz), ('i', &mut intensity)] {
            let Some(a) = s.arrays.iter().find(|a| a.kind == kind) else {
                list.append(false);
                continue;
            };
            let raw = ibd
                .get(a.offset as usize..(a.offset + a.encoded) as usize)
                .ok_or_else(|| {
                    invalid(
                        name,
                        format!("spectrum {k}: its array lies past the .ibd's end"),
                    )
                })?;
            let data = if a.zlib {
                let mut out = Vec::new();
                flate2::read::ZlibDecoder::new(raw)
                    .read_to_end(&mut out)
                    .map_err(|e| {
                        invalid(
                            name,
                            format!("spectrum {k}: a zlib array does not inflate: {e}"),
                        )
                    })?;
                out
            } else {
                raw.to_vec()
            };
            let values = list.values();
            match (a.width, a.int) {
                (4, false) => data.chunks_exact(4).for_each(|c| {
                    values.append_value(f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                }),
                (8, false) => data.chunks_exact(8).for_each(|c| {
                    values.append_value(f64::from_le_bytes(c.try_into().unwrap_or_default()))
                }),
                (4, true) => data.chunks_exact(4).for_each(|c| {
                    values.append_value(f64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                }),
                (8, true) => data.chunks_exact(8).for_each(|c| {
                    values.append_value(i64::from_le_bytes(c.try_into().unwrap_or_default()) as f64)
                }),
                (w, _) => {
                    return Err(invalid(
                        name,
                        format!("spectrum {k}: an array of {w}-byte values"),
                    ))
                }
            }
            list.append(true);
        }
    }
    let col = |f: fn(&Spectrum) -> u32| {
        Arc::new(UInt32Array::from_iter_values(parsed.spectra.iter().map(f))) as ArrayRef
    };
    let columns: Vec<ArrayRef> = vec![
        col(|s| s.at[0]),
        col(|s| s.at[1]),
        col(|s| s.at[2]),
        Arc::new(mz.finish()),
        Arc::new(intensity.finish()),
    ];
    let batch =
        RecordBatch::try_from_iter(["x", "y", "z", "mz", "intensity"].into_iter().zip(columns))
            .map_err(|e| Error::internal(format!("cannot build the spectra batch: {e}")))?;
    debug_assert_eq!(batch.num_rows(), n);
    Ok(batch)
}

impl SliceFormat for ImzmlFormat {
    fn names(&self) -> &'static [&'static str] {
        &["imzml"]
    }

    fn detect(&self, object_name: &str) -> Option<&'static str> {
        object_name
            .to_ascii_lowercase()
            .ends_with(".imzml")
            .then_some("imzml")
    }

    fn archive(&self) -> bool {
        true
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

    fn fetch_files<'a>(
        &'a self,
        slice: &'a AnySlice,
        object: &'a Location,
    ) -> BoxFuture<'a, Result<Vec<SliceFile>>> {
        Box::pin(fetch_files(slice, object))
    }
}

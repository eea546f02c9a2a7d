//! The MeasurementSet slice format: index a table folder, plan row ranges
//! that never split a timestamp, and write each range as a standalone
//! MeasurementSet (a tar of its folder).

use std::collections::BTreeMap;
use std::io::Write;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use tessera_store::Location;

use super::convert::{ism_cells, table_dat_rebound, write_ssm, Cells};
use super::slice::{ssm_buckets, ssm_layout, ssm_slice, table_dat_with_rows, Ranges, Source};
use super::table::{lock_rows, parse_table_dat, Manager, TableDat};
use super::{double_runs, Files};
use super::{ssm, tsm};
use crate::error::{Error, Result};
use crate::plugin::{
    ranged_get, write_tar, AnyIndex, AnySlice, IndexRequest, SliceFile, SliceFormat,
};
use crate::Strategy;

/// The storage managers whose files a slice can be written from: a
/// StandardStMan and the tiled managers are cut natively; an
/// IncrementalStMan's columns are read cell by cell and written into one
/// new StandardStMan (see `convert`).
const WRITABLE: &[&str] = &[
    "StandardStMan",
    "IncrementalStMan",
    "TiledColumnStMan",
    "TiledShapeStMan",
];

/// MeasurementSets (casacore table folders), by the folder's URL.
#[derive(Debug, Clone, Copy, Default)]
pub struct MsFormat;

/// One file of the folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct MsFile {
    /// Its path inside the folder (`table.f0`, `ANTENNA/table.dat`).
    path: String,
    size: u64,
    etag: Option<String>,
}

/// What a MeasurementSet index holds beside the envelope.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct MsIndex {
    /// Every file of the folder but the main table's lock file.
    files: Vec<MsFile>,
    /// Per data manager of the main table: its type and the columns it
    /// stores.
    managers: BTreeMap<String, MsManager>,
    /// The rows where TIME takes a new value (the first is 0).
    time_starts: Vec<u64>,
    /// TIME at each of those rows.
    times: Vec<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct MsManager {
    kind: String,
    columns: Vec<String>,
}

/// What a MeasurementSet slice holds beside the envelope.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct MsSlice {
    files: Vec<MsFile>,
    /// The slice's rows of the main table: `[first, end)`.
    rows: [u64; 2],
}

fn invalid(url: &str, message: impl Into<String>) -> Error {
    Error::InvalidFile {
        object: url.to_string(),
        format: "MeasurementSet".into(),
        message: message.into(),
    }
}

/// Whole files of the folder, read into memory for the readers.
struct Loaded(BTreeMap<String, Bytes>);

impl Files for Loaded {
    fn size(&self, file: &str) -> Result<u64> {
        self.0
            .get(file)
            .map(|b| b.len() as u64)
            .ok_or_else(|| super::invalid(file, "missing from the table folder"))
    }
    fn read(&self, file: &str, range: std::ops::Range<u64>) -> Result<Vec<u8>> {
        let b = self
            .0
            .get(file)
            .ok_or_else(|| super::invalid(file, "missing from the table folder"))?;
        let end = (range.end as usize).min(b.len());
        Ok(b.get(range.start as usize..end).unwrap_or(&[]).to_vec())
    }
}

/// One file of the folder, whole, if it still has its indexed ETag.
async fn read_file(folder: &Location, f: &MsFile) -> Result<Bytes> {
    let loc = folder.join(&f.path)?;
    let url = loc.url();
    if f.size == 0 {
        return Ok(Bytes::new());
    }
    ranged_get(&loc, &url, f.etag.as_deref(), f.size, 0, f.size).await
}

/// The file `path` of the index's list, or an error naming it.
fn file<'a>(files: &'a [MsFile], folder: &str, path: &str) -> Result<&'a MsFile> {
    files
        .iter()
        .find(|f| f.path == path)
        .ok_or_else(|| Error::NotFound {
            object: format!("{folder}/{path}"),
        })
}

/// The main table's row count: `table.lock`'s when it has one (casacore
/// rewrites `table.dat` only when the description changes), else
/// `table.dat`'s.
fn row_count(dat: &TableDat, lock: Option<&[u8]>, url: &str) -> Result<u64> {
    match lock {
        Some(l) => Ok(lock_rows(l, &format!("{url}/table.lock"))?.unwrap_or(dat.rows)),
        None => Ok(dat.rows),
    }
}

/// Refuse a main table whose managers a slice cannot be written from,
/// naming the columns and the manager.
fn check_writable(dat: &TableDat, url: &str) -> Result<()> {
    for m in &dat.managers {
        if !WRITABLE.contains(&m.kind.as_str()) {
            let cols: Vec<&str> = dat
                .columns
                .iter()
                .filter(|c| c.manager == m.seqnr)
                .map(|c| c.name.as_str())
                .collect();
            return Err(Error::Unsupported {
                object: format!("{url}/table.f{}", m.seqnr),
                reason: format!(
                    "column{} {} stored by {}: tessera reads StandardStMan, IncrementalStMan, TiledColumnStMan and TiledShapeStMan",
                    if cols.len() == 1 { "" } else { "s" },
                    cols.join(", "),
                    m.kind
                ),
            });
        }
    }
    Ok(())
}

async fn build_index(req: IndexRequest<'_>) -> Result<AnyIndex> {
    let url = req.object.url();
    let prefix = req.object.path().as_ref().to_string();
    let listed: Vec<tessera_store::ObjectMeta> = req.object.list().try_collect().await?;
    let mut files = Vec::with_capacity(listed.len());
    for m in listed {
        let key = m.location.as_ref();
        let Some(rel) = key
            .strip_prefix(prefix.as_str())
            .map(|r| r.trim_start_matches('/'))
        else {
            continue;
        };
        // The main table's lock file holds its old row count: a slice has
        // none (casacore then takes table.dat's). A subtable's is copied
        // with it: its table.dat may hold a stale count too.
        if rel.is_empty() || rel == "table.lock" {
            continue;
        }
        files.push(MsFile {
            path: rel.to_string(),
            size: m.size,
            etag: m.e_tag,
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let dat_file = file(&files, &url, "table.dat")?.clone();
    let dat_bytes = read_file(req.object, &dat_file).await?;
    let dat = parse_table_dat(&dat_bytes, &format!("{url}/table.dat"))?;
    check_writable(&dat, &url)?;
    // The lock file is not listed in `files` (slices never copy it), but
    // it holds the current row count.
    let lock = match req.object.join("table.lock")?.read().await {
        Ok(b) => Some(b.to_vec()),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e.into()),
    };
    let rows = row_count(&dat, lock.as_deref(), &url)?;
    if rows > i32::MAX as u64 {
        return Err(Error::Unsupported {
            object: format!("{url}/table.dat"),
            reason: format!("{rows} rows: tables of more than 2^31 rows are not sliced yet"),
        });
    }
    // TIME, from its manager's file.
    let time = dat
        .columns
        .iter()
        .find(|c| c.name == "TIME")
        .ok_or_else(|| invalid(&format!("{url}/table.dat"), "no TIME column"))?;
    let dm = format!("table.f{}", time.manager);
    let dm_file = file(&files, &url, &dm)?.clone();
    let loaded = Loaded([(dm.clone(), read_file(req.object, &dm_file).await?)].into());
    (req.progress)(dat_file.size + dm_file.size);
    let runs = double_runs(&dat, "TIME", rows, &loaded)
        .map_err(|e| rename(e, &dm, &format!("{url}/{dm}")))?;
    let mut time_starts = Vec::new();
    let mut starts_at: Vec<f64> = Vec::new();
    for &(r, t) in &runs {
        if starts_at.last().is_none_or(|l| l.to_bits() != t.to_bits()) {
            time_starts.push(r);
            starts_at.push(t);
        }
    }
    // Every manager's files must be there: its own, and a StandardStMan's
    // array file when it stores arrays of no fixed place in its buckets.
    let mut managers = BTreeMap::new();
    for m in &dat.managers {
        file(&files, &url, &format!("table.f{}", m.seqnr))?;
        let indirect = dat
            .columns
            .iter()
            .any(|c| c.manager == m.seqnr && c.array && c.options & 1 == 0);
        if m.kind == "StandardStMan" && indirect {
            file(&files, &url, &format!("table.f{}i", m.seqnr))?;
        }
        managers.insert(
            m.seqnr.to_string(),
            MsManager {
                kind: m.kind.clone(),
                columns: dat
                    .columns
                    .iter()
                    .filter(|c| c.manager == m.seqnr)
                    .map(|c| c.name.clone())
                    .collect(),
            },
        );
    }
    let detail = MsIndex {
        files,
        managers,
        time_starts,
        times: starts_at,
    };
    AnyIndex::new(req.object, req.meta, req.format, rows, &detail)
}

/// An error about file `short` (as the readers name it) renamed to its URL.
fn rename(e: Error, short: &str, url: &str) -> Error {
    match e {
        Error::InvalidFile {
            object,
            format,
            message,
        } if object == short => Error::InvalidFile {
            object: url.to_string(),
            format,
            message,
        },
        other => other,
    }
}

/// Row ranges over whole timestamps: cut points are taken from
/// `starts` (and the end), the first at or after each wanted cut.
fn cut(starts: &[u64], rows: u64, wanted: impl Iterator<Item = u64>) -> Vec<[u64; 2]> {
    let mut out = Vec::new();
    let mut a = 0u64;
    for w in wanted {
        if w <= a {
            continue;
        }
        let i = starts.partition_point(|&s| s < w);
        let b = starts.get(i).copied().unwrap_or(rows);
        if b > a {
            out.push([a, b]);
            a = b;
        }
    }
    if a < rows {
        out.push([a, rows]);
    }
    out
}

/// The row ranges of a plan: contiguous, covering every row, each cut at
/// a row where TIME changes.
fn row_ranges(d: &MsIndex, rows: u64, url: &str, strategy: Strategy) -> Result<Vec<[u64; 2]>> {
    let ranges =
        match strategy {
            Strategy::Count(0) | Strategy::Bytes(0) | Strategy::Records(0) => {
                return Err(Error::InvalidStrategy { strategy })
            }
            _ if rows == 0 => Vec::new(),
            Strategy::Count(c) => {
                let c = c as u64;
                cut(&d.time_starts, rows, (1..c).map(|i| rows * i / c))
            }
            Strategy::Records(k) => {
                // Greedy: each slice takes whole timestamps until it holds k rows.
                let mut out = Vec::new();
                let mut a = 0u64;
                while a < rows {
                    let i = d.time_starts.partition_point(|&s| s < a.saturating_add(k));
                    let b = d.time_starts.get(i).copied().unwrap_or(rows).max(a + 1);
                    let b = if b <= a { rows } else { b.min(rows) };
                    out.push([a, b]);
                    a = b;
                }
                out
            }
            Strategy::Bytes(b) => {
                let bytes: u64 = d
                    .files
                    .iter()
                    .filter(|f| !f.path.contains('/'))
                    .map(|f| f.size)
                    .sum();
                let per_row = (bytes / rows.max(1)).max(1);
                return row_ranges(d, rows, url, Strategy::Records((b / per_row).max(1)));
            }
            Strategy::Interval(span) if span.is_zero() => {
                return Err(Error::InvalidStrategy { strategy })
            }
            Strategy::Interval(span) => {
                // Each slice starts at a timestamp and takes the following
                // ones while they lie less than `span` after it.
                let span = span.as_secs_f64();
                let mut cuts = Vec::new();
                let mut start = d.times.first().copied().unwrap_or(0.0);
                for (i, &t) in d.times.iter().enumerate().skip(1) {
                    if t - start >= span || t < start {
                        cuts.push(d.time_starts[i]);
                        start = t;
                    }
                }
                cut(&d.time_starts, rows, cuts.into_iter())
            }
            Strategy::Grid { .. } | Strategy::Level { .. } => return Err(Error::unsupported(
                url.to_string(),
                "a MeasurementSet is cut by rows over whole timestamps: by a count, a size, rows or a time interval",
            )),
        };
    Ok(ranges)
}

fn plan(index: &AnyIndex, strategy: Strategy) -> Result<Vec<AnySlice>> {
    let d: MsIndex = index.detail()?;
    let ranges = row_ranges(&d, index.records, &index.url, strategy)?;
    let total = ranges.len();
    ranges
        .iter()
        .enumerate()
        .map(|(k, r)| {
            let detail = MsSlice {
                files: d.files.clone(),
                rows: *r,
            };
            index.slice(k, total, r[0], r[1] - r[0], &detail)
        })
        .collect()
}

/// One slice being written: what each storage manager's part of it reads.
struct Job<'a> {
    dat: &'a TableDat,
    folder: &'a Location,
    files: &'a [MsFile],
    /// The folder's URL.
    url: &'a str,
    /// The slice's rows of the main table.
    rows: std::ops::Range<u64>,
}

impl Job<'_> {
    /// Manager `m`'s file: its name in the folder and its URL.
    fn names(&self, m: &Manager) -> (String, String) {
        let main = format!("table.f{}", m.seqnr);
        let url = format!("{}/{main}", self.url);
        (main, url)
    }

    /// The folder's file `path`, as indexed.
    fn file(&self, path: &str) -> Result<&MsFile> {
        file(self.files, self.url, path)
    }
}

/// The cells of rows `rows` of every column IncrementalStMan `m` stores:
/// (column number, cells).
async fn convert_manager(job: &Job<'_>, m: &Manager) -> Result<Vec<(usize, Cells)>> {
    let (dat, rows) = (job.dat, job.rows.clone());
    let (main, main_url) = job.names(m);
    let header = read_file(job.folder, job.file(&main)?).await?;
    let loaded = Loaded([(main.clone(), header)].into());
    let mut out = Vec::new();
    let columns = (0..dat.columns.len()).filter(|&i| dat.columns[i].manager == m.seqnr);
    for (place, i) in columns.enumerate() {
        let cells = ism_cells(
            &dat.columns[i],
            place,
            rows.clone(),
            dat.big_endian,
            &main,
            &loaded,
        )
        .map_err(|e| rename(e, &main, &main_url))?;
        out.push((i, cells));
    }
    Ok(out)
}

/// The files of a tiled manager `m` (TiledColumnStMan, TiledShapeStMan)
/// for rows `rows`: its header and its data files, the tiles of the
/// slice's rows in the same tile shape.
async fn tiled_manager(job: &Job<'_>, m: &Manager) -> Result<Vec<SliceFile>> {
    let (folder, files, url, rows) = (job.folder, job.files, job.url, job.rows.clone());
    let (main, main_url) = job.names(m);
    let header = read_file(folder, job.file(&main)?).await?;
    let t = tsm::parse(&header, &main).map_err(|e| rename(e, &main, &main_url))?;
    if rows.end > t.rows {
        return Err(invalid(
            &main_url,
            format!(
                "rows {}..{} asked, the manager holds {}",
                rows.start, rows.end, t.rows
            ),
        ));
    }
    let plan = t.plan(rows.clone()).ok_or_else(|| {
        invalid(
            &main_url,
            format!(
                "rows {}..{} lie outside the cubes that hold them",
                rows.start, rows.end
            ),
        )
    })?;
    let spans = t
        .spans(&plan)
        .ok_or_else(|| invalid(&main_url, "the tiles' places overflow"))?;
    let reads = spans.into_iter().map(|(c, f, range)| {
        let name = format!("{main}_TSM{f}");
        let plan = &plan;
        let t = &t;
        async move {
            let mf = file(files, url, &name)?;
            if range.end > mf.size {
                return Err(invalid(
                    &format!("{url}/{name}"),
                    format!("tiles up to byte {}, past the end ({})", range.end, mf.size),
                ));
            }
            let loc = folder.join(&name)?;
            let got = ranged_get(
                &loc,
                &loc.url(),
                mf.etag.as_deref(),
                mf.size,
                range.start,
                range.end,
            )
            .await?;
            let tiles = t
                .copy_cube(c, plan, &got, range.start)
                .ok_or_else(|| invalid(&loc.url(), "the tiles read are cut short"))?;
            Ok::<_, Error>((c, f, tiles))
        }
    });
    let mut cubes: Vec<(usize, u32, Vec<Bytes>)> = futures::stream::iter(reads)
        .buffered(4)
        .try_collect()
        .await?;
    cubes.sort_by_key(|x| x.0);
    // Each data file: its cubes one after the other, in cube order.
    let nfiles = t
        .cubes
        .iter()
        .filter_map(|c| c.file)
        .max()
        .map_or(0, |f| f as usize + 1);
    let mut offsets = vec![0u64; t.cubes.len()];
    let mut parts: Vec<Vec<Bytes>> = vec![Vec::new(); nfiles];
    let mut lengths = vec![0u64; nfiles];
    for (c, f, tiles) in cubes {
        let f = f as usize;
        offsets[c] = lengths[f];
        lengths[f] += tiles.iter().map(|p| p.len() as u64).sum::<u64>();
        parts[f].extend(tiles);
    }
    let header = t.write_header(&header, rows.end - rows.start, &plan, &offsets, &lengths);
    let mut out = vec![SliceFile::new(main.clone(), header)];
    for f in t.data_files() {
        out.push(SliceFile {
            path: format!("{main}_TSM{f}"),
            parts: parts
                .get_mut(f as usize)
                .map(std::mem::take)
                .unwrap_or_default(),
        });
    }
    Ok(out)
}

/// What a slice of rows `rows` reads of StandardStMan file `f` (named
/// `name` in errors): its header, its index and the buckets holding the
/// rows, in three ranged reads; the whole file when its index is chained
/// over buckets that do not follow each other.
async fn ssm_source(
    dat: &TableDat,
    folder: &Location,
    f: &MsFile,
    name: &str,
    rows: std::ops::Range<u64>,
) -> Result<(Ranges, (ssm::Header, ssm::Index))> {
    let loc = folder.join(&f.path)?;
    let url = loc.url();
    let get = |a: u64, b: u64| ranged_get(&loc, &url, f.etag.as_deref(), f.size, a, b);
    let whole = || async {
        let source = Ranges {
            size: f.size,
            parts: vec![(0, read_file(folder, f).await?)],
        };
        let layout = ssm_layout(&source, dat.big_endian, name)?;
        Ok::<_, Error>((source, layout))
    };
    let head = get(0, f.size.min(ssm::HEADER as u64)).await?;
    let header = ssm::Header::parse(&head, dat.big_endian, name)?;
    let mut source = Ranges {
        size: f.size,
        parts: vec![(0, head)],
    };
    // The index: in one bucket, or in the chain's buckets, read as one
    // range when they follow each other.
    let index_at = match header.index_range() {
        Some(r) => r,
        None => {
            let first = header.bucket(u64::from(header.first_index_bucket as u32));
            first
                ..first.saturating_add(
                    u64::from(header.index_buckets).saturating_mul(header.bucket_size),
                )
        }
    };
    if index_at.end > f.size {
        return whole().await;
    }
    source
        .parts
        .push((index_at.start, get(index_at.start, index_at.end).await?));
    let mut missing = false;
    let index = header.index_bytes(name, f.size, &mut |a, b| {
        source
            .get(a, b.saturating_sub(a))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| {
                missing = true;
                super::invalid(name, "not read")
            })
    });
    let index = match index {
        Ok(i) => ssm::Index::parse(&i, dat.big_endian, name)?,
        Err(_) if missing => return whole().await,
        Err(e) => return Err(e),
    };
    index.check(&header, f.size, name)?;
    if let Some(r) = ssm_buckets(&header, &index, rows) {
        if r.end > f.size {
            return Err(super::invalid(
                name,
                format!("buckets up to byte {}, past the end ({})", r.end, f.size),
            ));
        }
        source.parts.push((r.start, get(r.start, r.end).await?));
    }
    Ok((source, (header, index)))
}

/// The files of StandardStMan `m` for rows `rows`: its file and its array
/// file, if it has one.
async fn ssm_manager(job: &Job<'_>, m: &Manager) -> Result<Vec<SliceFile>> {
    let (dat, folder, files, url, rows) =
        (job.dat, job.folder, job.files, job.url, job.rows.clone());
    let (main, main_url) = job.names(m);
    let (source, layout) = ssm_source(dat, folder, job.file(&main)?, &main, rows.clone())
        .await
        .map_err(|e| rename(e, &main, &main_url))?;
    let mut s = ssm_slice(dat, m, &source, &layout, rows, &main)
        .map_err(|e| rename(e, &main, &main_url))?;
    let mut out = Vec::new();
    let arrays = format!("{main}i");
    let arrays_file = files.iter().find(|f| f.path == arrays);
    if arrays_file.is_none() && s.arrays_span().is_some() {
        return Err(Error::NotFound {
            object: format!("{url}/{arrays}"),
        });
    }
    if let Some(f) = arrays_file {
        let loc = folder.join(&f.path)?;
        let arrays_url = loc.url();
        let head = ranged_get(
            &loc,
            &arrays_url,
            f.etag.as_deref(),
            f.size,
            0,
            16.min(f.size),
        )
        .await?;
        let word: [u8; 4] = head
            .get(..4)
            .and_then(|w| w.try_into().ok())
            .ok_or_else(|| invalid(&arrays_url, "shorter than its 16-byte header"))?;
        let version = if dat.big_endian {
            u32::from_be_bytes(word)
        } else {
            u32::from_le_bytes(word)
        };
        let (base, bytes) = match s.arrays_span() {
            None => (0, Bytes::new()),
            Some(span) => {
                // Every array from the first to the last the slice's
                // cells point at (they were written in row order): the
                // last one's shape says where the read ends.
                if span.end >= f.size {
                    return Err(invalid(
                        &arrays_url,
                        format!("an array at byte {}, past the end ({})", span.end, f.size),
                    ));
                }
                let get =
                    |a: u64, b: u64| ranged_get(&loc, &arrays_url, f.etag.as_deref(), f.size, a, b);
                // A shape header: a reference count, a rank, 64 extents at most.
                let head = get(span.end, (span.end + 8 + 4 * 64).min(f.size)).await?;
                let u32_at = |at: u64| -> Option<u32> {
                    let i = at.checked_sub(span.end)? as usize;
                    let w: [u8; 4] = head.get(i..i + 4)?.try_into().ok()?;
                    Some(if dat.big_endian {
                        u32::from_be_bytes(w)
                    } else {
                        u32::from_le_bytes(w)
                    })
                };
                // Any element type: the widest (16 bytes) bounds the read.
                let last = super::slice::array_len(
                    span.end,
                    version,
                    super::table::Type::DComplex,
                    &u32_at,
                )
                .ok_or_else(|| {
                    invalid(
                        &arrays_url,
                        format!("the array at byte {} is cut short", span.end),
                    )
                })?;
                let end = span.end.saturating_add(last).min(f.size);
                (span.start, get(span.start, end).await?)
            }
        };
        let new = s
            .rebuild_arrays(&bytes, base, version, &arrays_url)
            .map_err(|e| rename(e, &arrays_url, &arrays_url))?;
        out.push(SliceFile::new(arrays, new));
    }
    out.push(SliceFile::new(main, s.file));
    Ok(out)
}

/// What one storage manager gives a slice: its own files, or (an
/// IncrementalStMan) its columns' cells for the new StandardStMan.
enum Written {
    Files(Vec<SliceFile>),
    Converted(Vec<(usize, Cells)>),
}

async fn fetch(slice: &AnySlice, folder: &Location, out: &mut (dyn Write + Send)) -> Result<u64> {
    write_tar(&fetch_files(slice, folder).await?, out)
}

/// A slice's files: the folder `NAME.sliceK.ms/` and everything in it.
async fn fetch_files(slice: &AnySlice, folder: &Location) -> Result<Vec<SliceFile>> {
    let d: MsSlice = slice.detail()?;
    let url = slice.url.clone();
    let [a, b] = d.rows;
    if a > b {
        return Err(slice.invalid(format!("rows {a}..{b}")));
    }
    let dat_file = file(&d.files, &url, "table.dat")?;
    let dat_bytes = read_file(folder, dat_file).await?;
    let dat = parse_table_dat(&dat_bytes, &format!("{url}/table.dat"))?;
    check_writable(&dat, &url)?;
    let name = url
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("table.ms");
    let stem = name.strip_suffix(".ms").unwrap_or(name);
    let root = format!("{stem}.slice{}.ms", slice.slice);
    // Every manager at once (each reads its own files).
    let job = Job {
        dat: &dat,
        folder,
        files: &d.files,
        url: &url,
        rows: a..b,
    };
    let managers = dat.managers.iter().map(|m| {
        let job = &job;
        async move {
            Ok::<_, Error>(match m.kind.as_str() {
                "StandardStMan" => Written::Files(ssm_manager(job, m).await?),
                "IncrementalStMan" => Written::Converted(convert_manager(job, m).await?),
                _ => Written::Files(tiled_manager(job, m).await?),
            })
        }
    });
    let done = futures::future::try_join_all(managers).await?;
    let mut written: BTreeMap<String, Vec<Bytes>> = BTreeMap::new();
    // Columns of IncrementalStMans, with their cells, for one new manager.
    let mut converted: Vec<(usize, Cells)> = Vec::new();
    for w in done {
        match w {
            Written::Files(f) => written.extend(f.into_iter().map(|f| (f.path, f.parts))),
            Written::Converted(c) => converted.extend(c),
        }
    }
    let rows = b - a;
    if converted.is_empty() {
        written.insert(
            "table.dat".into(),
            vec![table_dat_with_rows(&dat, &dat_bytes, rows)?.into()],
        );
    } else {
        // A manager's columns lie in its buckets in the table's column order.
        converted.sort_by_key(|(i, _)| *i);
        let seq = dat.managers.iter().map(|m| m.seqnr + 1).max().unwrap_or(0);
        let columns: Vec<(&super::table::Column, Cells)> = converted
            .into_iter()
            .map(|(i, cells)| (&dat.columns[i], cells))
            .collect();
        let (file, blob) = write_ssm(&columns, rows, dat.big_endian, "TesseraConverted")?;
        written.insert(format!("table.f{seq}"), vec![file.into()]);
        let kept = |kind: &str| kind != "IncrementalStMan";
        let mut managers: Vec<(String, u32, Vec<u8>)> = dat
            .managers
            .iter()
            .filter(|m| kept(&m.kind))
            .map(|m| (m.kind.clone(), m.seqnr, m.blob.clone()))
            .collect();
        managers.push(("StandardStMan".into(), seq, blob));
        let bind: Vec<u32> = dat
            .columns
            .iter()
            .map(|c| {
                let stays = dat
                    .managers
                    .iter()
                    .any(|m| m.seqnr == c.manager && kept(&m.kind));
                if stays {
                    c.manager
                } else {
                    seq
                }
            })
            .collect();
        written.insert(
            "table.dat".into(),
            vec![table_dat_rebound(&dat, &dat_bytes, rows, &managers, &bind)?.into()],
        );
    }
    // Everything else (table.info, the subtables) is copied as it is,
    // several files at a time (a MeasurementSet has dozens of small ones).
    let copied: Vec<MsFile> = d
        .files
        .iter()
        .filter(|f| {
            let main_dm = !f.path.contains('/') && f.path.starts_with("table.f");
            !(written.contains_key(&f.path) || main_dm || f.path == "table.dat")
        })
        .cloned()
        .collect();
    let reads = copied.into_iter().map(|f| {
        let folder = folder.clone();
        async move {
            let bytes = read_file(&folder, &f).await?;
            Ok::<_, Error>((f.path, vec![bytes]))
        }
    });
    let read: Vec<(String, Vec<Bytes>)> = futures::stream::iter(reads)
        .buffered(16)
        .try_collect()
        .await?;
    written.extend(read);
    Ok(written
        .into_iter()
        .map(|(path, parts)| SliceFile {
            path: format!("{root}/{path}"),
            parts,
        })
        .collect())
}

impl SliceFormat for MsFormat {
    fn names(&self) -> &'static [&'static str] {
        &["ms"]
    }

    fn detect(&self, object_name: &str) -> Option<&'static str> {
        let lower = object_name.trim_end_matches('/').to_ascii_lowercase();
        lower.ends_with(".ms").then_some("ms")
    }

    fn archive(&self) -> bool {
        true
    }

    fn folder_marker(&self) -> Option<&'static str> {
        Some("table.dat")
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{prop_assert, prop_assert_eq, proptest};

    /// An index of `sizes[i]` rows at time `10 * i`.
    fn index_of(sizes: &[u64]) -> (MsIndex, u64) {
        let mut starts = Vec::new();
        let mut at = 0;
        for s in sizes {
            starts.push(at);
            at += s;
        }
        let d = MsIndex {
            files: vec![MsFile {
                path: "table.f0".into(),
                size: at * 100,
                etag: None,
            }],
            managers: BTreeMap::new(),
            time_starts: starts,
            times: (0..sizes.len()).map(|i| 10.0 * i as f64).collect(),
        };
        (d, at)
    }

    proptest! {
        /// Every plan covers every row once, in order, and cuts only where
        /// TIME changes.
        #[test]
        fn plans_cover_every_row_and_never_split_a_timestamp(
            sizes in proptest::collection::vec(1u64..20, 1..40),
            k in 1u64..60,
            which in 0u8..4,
        ) {
            let (d, rows) = index_of(&sizes);
            let strategy = match which {
                0 => Strategy::Count(k as usize),
                1 => Strategy::Records(k),
                2 => Strategy::Bytes(k * 150),
                _ => Strategy::Interval(std::time::Duration::from_secs(k)),
            };
            let ranges = row_ranges(&d, rows, "t.ms", strategy).unwrap();
            let mut at = 0;
            for r in &ranges {
                prop_assert_eq!(r[0], at);
                prop_assert!(r[1] > r[0]);
                prop_assert!(d.time_starts.contains(&r[0]));
                at = r[1];
            }
            prop_assert_eq!(at, rows);
            if let Strategy::Count(c) = strategy {
                prop_assert!(ranges.len() <= c);
            }
            if let Strategy::Interval(span) = strategy {
                // Each slice spans less than the interval, or is one timestamp.
                for r in &ranges {
                    let first = d.time_starts.iter().position(|&s| s == r[0]).unwrap();
                    let last = d.time_starts.iter().rposition(|&s| s < r[1]).unwrap();
                    let spanned = d.times[last] - d.times[first];
                    prop_assert!(first == last || spanned < span.as_secs_f64());
                }
            }
        }
    }

    #[test]
    fn bad_strategies_are_refused() {
        let (d, rows) = index_of(&[3, 4]);
        for s in [
            Strategy::Count(0),
            Strategy::Records(0),
            Strategy::Bytes(0),
            Strategy::Interval(std::time::Duration::ZERO),
        ] {
            let e = row_ranges(&d, rows, "t.ms", s).unwrap_err();
            assert!(matches!(e, Error::InvalidStrategy { .. }), "{e}");
        }
        let e = row_ranges(
            &d,
            rows,
            "t.ms",
            Strategy::Grid {
                columns: 2,
                rows: 2,
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("whole timestamps"), "{e}");
    }
}

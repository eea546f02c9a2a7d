//! The tiled storage managers (TiledColumnStMan, TiledShapeStMan): a
//! header file `table.fN` (always big-endian) describing hypercubes, and
//! their tiles in `table.fN_TSMk`. A cell is a plane of its cube (the last
//! axis is the row); tiles are numbered with the first axis varying
//! fastest, and inside a tile the elements are in the same order, one
//! column after the other when the manager stores several.
//!
//! A slice keeps the manager: each cube becomes a cube of the slice's
//! rows with the same tile shape, its tiles copied plane by plane (a
//! row's plane of a tile is contiguous, so this is a run of `memcpy`s,
//! and whole tiles when the slice starts on a tile boundary), and the
//! header is written again with the new row count, cube shapes, file
//! lengths and row map. Everything else in the header is kept byte for
//! byte.

use std::ops::Range;

use super::aipsio::{Reader, Writer};
use super::slice::copy_bits;
use super::table::Type;
use crate::error::Result;

/// One hypercube.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cube {
    /// Its shape; the last axis counts rows.
    pub(crate) shape: Vec<u64>,
    /// The tile shape.
    pub(crate) tile: Vec<u64>,
    /// The data file's number (`table.fN_TSM<file>`), or `None` (no data).
    pub(crate) file: Option<u32>,
    /// Where the cube starts in its file.
    pub(crate) offset: u64,
    /// Its coordinate values (an AipsIO `Record`), as stored.
    values: Range<usize>,
    extensible: bool,
    ndim: u32,
}

impl Cube {
    /// Tiles along each axis.
    pub(crate) fn grid(&self) -> Vec<u64> {
        self.shape
            .iter()
            .zip(&self.tile)
            .map(|(s, t)| s.div_ceil(*t))
            .collect()
    }
}

/// What a tiled manager's header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tsm {
    /// The rows the manager holds.
    pub(crate) rows: u64,
    /// casacore data type of each of its columns.
    pub(crate) types: Vec<i32>,
    pub(crate) cubes: Vec<Cube>,
    /// TiledShapeStMan: for each interval of rows, its last row, its cube
    /// and the position in the cube of that last row. `None`:
    /// TiledColumnStMan (one cube, row `r` at position `r`).
    pub(crate) row_map: Option<Vec<(u64, usize, u64)>>,
    /// The data files: each one's sequence number when it exists.
    files: Vec<Option<u32>>,
    /// Where the header's kept fields lie (see [`Tsm::write_header`]).
    layout: Layout,
}

/// The parts of a header a slice copies as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Layout {
    /// TiledColumnStMan's tile shape (an `IPosition`).
    column_tile: Option<Range<usize>>,
    /// The `TiledStMan` object's version.
    base_version: u32,
    /// The endian flag and sequence number (before the row count).
    head: Range<usize>,
    /// Column count and types, hypercolumn name, cache size, dimensions.
    mid: Range<usize>,
    /// TiledShapeStMan's default tile shape (an `IPosition`).
    default_tile: Option<Range<usize>>,
}

/// Rows of a tiled manager as a slice's own manager: which positions of
/// each cube it keeps, where they go, and its row map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SlicePlan {
    /// Per cube: runs of (first old position, first new position, count).
    pub(crate) runs: Vec<Vec<(u64, u64, u64)>>,
    /// Per cube: the positions it has in the slice.
    pub(crate) counts: Vec<u64>,
    /// The slice's row map (TiledShapeStMan).
    pub(crate) row_map: Option<Vec<(u64, usize, u64)>>,
}

impl Tsm {
    /// The numbers of its data files.
    pub(crate) fn data_files(&self) -> impl Iterator<Item = u32> + '_ {
        self.files.iter().flatten().copied()
    }

    /// Bits each column takes per element in a tile, in tile order (`None`:
    /// a type tiles cannot hold).
    fn element_bits(&self) -> Option<Vec<u64>> {
        self.types
            .iter()
            .map(|&t| match Type::from_code(t)?.0 {
                Type::Bool => Some(1),
                Type::String => None,
                other => Some(8 * other.size()? as u64),
            })
            .collect()
    }

    /// The bytes of one tile of `cube` and where each column's part of it
    /// starts, with the column's bits per element (Bools are packed per
    /// tile, so a part is a whole number of bytes).
    fn tile_parts(&self, cube: &Cube) -> Option<(u64, Vec<(u64, u64)>)> {
        let n: u64 = cube
            .tile
            .iter()
            .try_fold(1u64, |acc, &t| acc.checked_mul(t))?;
        let mut at = 0u64;
        let mut parts = Vec::new();
        for bits in self.element_bits()? {
            parts.push((at, bits));
            at = at.checked_add(n.checked_mul(bits)?.div_ceil(8))?;
        }
        Some((at, parts))
    }

    /// The bytes of `cube`'s data file that hold its positions
    /// `first..=last`: whole rows of tiles, the last axis being the
    /// slowest. `None` when the geometry overflows.
    pub(crate) fn cell_span(&self, cube: &Cube, first: u64, last: u64) -> Option<Range<u64>> {
        let nd = cube.shape.len();
        let grid = cube.grid();
        let plane: u64 = grid[..nd.checked_sub(1)?]
            .iter()
            .try_fold(1u64, |acc, &g| acc.checked_mul(g))?;
        let (tile_bytes, _) = self.tile_parts(cube)?;
        let t_last = *cube.tile.last()?;
        let row_bytes = plane.checked_mul(tile_bytes)?;
        let a = cube
            .offset
            .checked_add((first / t_last).checked_mul(row_bytes)?)?;
        let b = cube
            .offset
            .checked_add((last / t_last + 1).checked_mul(row_bytes)?)?;
        Some(a..b)
    }

    /// Which positions rows `rows` take in each cube, where they go in the
    /// slice's cubes (in row order, as casacore places rows it is given
    /// one after the other) and the slice's row map, built as casacore
    /// builds it: consecutive rows at consecutive positions of one cube
    /// share an entry; rows without a cell shape map to cube 0.
    pub(crate) fn plan(&self, rows: Range<u64>) -> Option<SlicePlan> {
        let mut runs = vec![Vec::new(); self.cubes.len()];
        let mut counts = vec![0u64; self.cubes.len()];
        let push =
            |runs: &mut Vec<(u64, u64, u64)>, old: u64, new: u64, n: u64| match runs.last_mut() {
                Some(r) if r.0 + r.2 == old && r.1 + r.2 == new => r.2 += n,
                _ => runs.push((old, new, n)),
            };
        let Some(map) = &self.row_map else {
            let cube = self.cubes.first()?;
            if rows.end > *cube.shape.last()? {
                return None;
            }
            let n = rows.end - rows.start;
            if n > 0 {
                runs[0].push((rows.start, 0, n));
            }
            counts[0] = n;
            return Some(SlicePlan {
                runs,
                counts,
                row_map: None,
            });
        };
        let mut new_map: Vec<(u64, usize, u64)> = Vec::new();
        let mut i = map.partition_point(|&(last, _, _)| last < rows.start);
        let mut row = rows.start;
        while row < rows.end && i < map.len() {
            let (last, cube, pos) = map[i];
            let first_of_entry = if i == 0 { 0 } else { map[i - 1].0 + 1 };
            let lo = row.max(first_of_entry);
            let hi = (last + 1).min(rows.end);
            i += 1;
            if lo >= hi {
                continue;
            }
            row = hi;
            let has_data = self.cubes.get(cube)?.file.is_some() && cube != 0;
            if !has_data {
                continue;
            }
            let old = pos.checked_sub(last - lo)?;
            let new = counts[cube];
            let n = hi - lo;
            if old + n > *self.cubes[cube].shape.last()? {
                return None;
            }
            push(&mut runs[cube], old, new, n);
            counts[cube] += n;
            // The slice's rows lo..hi, as casacore's updateRowMap records
            // rows added one after the other.
            let (nlo, nhi) = (lo - rows.start, hi - rows.start);
            let next = new_map.last().map_or(0, |e| e.0 + 1);
            if nlo > next {
                new_map.push((nlo - 1, 0, 0));
            }
            match new_map.last_mut() {
                Some(e) if e.0 + 1 == nlo && e.1 == cube && e.2 + 1 == new => {
                    e.0 = nhi - 1;
                    e.2 = new + n - 1;
                }
                _ => new_map.push((nhi - 1, cube, new + n - 1)),
            }
        }
        Some(SlicePlan {
            runs,
            counts,
            row_map: Some(new_map),
        })
    }

    /// The byte range of each cube's data file a slice reads: per cube
    /// with rows in the slice, (cube, file number, range).
    pub(crate) fn spans(&self, plan: &SlicePlan) -> Option<Vec<(usize, u32, Range<u64>)>> {
        let mut out = Vec::new();
        for (c, runs) in plan.runs.iter().enumerate() {
            let lo = runs.iter().map(|r| r.0).min();
            let hi = runs.iter().map(|r| r.0 + r.2 - 1).max();
            let (Some(lo), Some(hi)) = (lo, hi) else {
                continue;
            };
            let cube = &self.cubes[c];
            out.push((c, cube.file?, self.cell_span(cube, lo, hi)?));
        }
        Some(out)
    }

    /// The slice's tiles of cube `c` from `src` (its data file's bytes
    /// `base..`, holding the span [`Tsm::spans`] named): whole tiles with
    /// the same tile shape, the kept positions at their new places, as
    /// parts to write one after the other. A row's plane of a tile is
    /// contiguous (the row axis is the slowest inside a tile), so the parts
    /// are views of `src` (one part when the slice's positions are one run
    /// starting on a tile boundary), zeros for the last tiles' padding,
    /// and copies only for Bool planes that do not fill whole bytes.
    /// `None` when `src` is too short.
    pub(crate) fn copy_cube(
        &self,
        c: usize,
        plan: &SlicePlan,
        src: &bytes::Bytes,
        base: u64,
    ) -> Option<Vec<bytes::Bytes>> {
        let cube = &self.cubes[c];
        let runs = &plan.runs[c];
        let count = plan.counts[c];
        let nd = cube.shape.len();
        let t = *cube.tile.last()?;
        let grid = cube.grid();
        let plane_tiles: u64 = grid[..nd.checked_sub(1)?]
            .iter()
            .try_fold(1u64, |acc, &g| acc.checked_mul(g))?;
        let plane_elems: u64 = cube.tile[..nd - 1]
            .iter()
            .try_fold(1u64, |acc, &g| acc.checked_mul(g))?;
        let (tile_bytes, parts) = self.tile_parts(cube)?;
        // (Every range taken from `src` is checked against its length.)
        // Where old tile `tile` starts in `src`.
        let src_at = |tile: u64| -> Option<u64> {
            cube.offset
                .checked_add(tile.checked_mul(tile_bytes)?)?
                .checked_sub(base)
        };
        // The old position of each new one, run by run.
        let old_of = |q: u64| -> Option<(u64, u64)> {
            let i = runs.partition_point(|r| r.1 + r.2 <= q);
            let &(old, new, n) = runs.get(i)?;
            (q >= new).then_some((old + (q - new), new + n - q))
        };
        let mut out = Pieces::new(src);
        for j in 0..count.div_ceil(t) {
            for i in 0..plane_tiles {
                for (k, &(part, bits)) in parts.iter().enumerate() {
                    let plane = plane_elems.checked_mul(bits)?;
                    let part_end = parts.get(k + 1).map_or(tile_bytes, |p| p.0);
                    let part_bytes = part_end - part;
                    if plane.is_multiple_of(8) {
                        let plane = plane / 8;
                        let mut kk = 0u64;
                        // Where the last plane copied ends in `src`, and its
                        // old position's place in its tile.
                        let mut last: Option<(u64, u64)> = None;
                        while kk < t {
                            let q = j * t + kk;
                            let Some((p, left)) = (q < count).then(|| old_of(q)).flatten() else {
                                break;
                            };
                            let g = (t - kk).min(t - p % t).min(left);
                            let at = src_at(p / t * plane_tiles + i)? + part + (p % t) * plane;
                            let end = at.checked_add(g * plane)?;
                            if end > src.len() as u64 {
                                return None;
                            }
                            out.view(at as usize..end as usize);
                            last = Some((end, (p + g) % t));
                            kk += g;
                        }
                        // The padding: whatever follows in the old tile when
                        // it has room (the bytes then stay one view), else
                        // zeros.
                        let pad = part_bytes - kk * plane;
                        match last {
                            Some((end, place))
                                if place != 0
                                    && t - place >= t - kk
                                    && end + pad <= src.len() as u64 =>
                            {
                                out.view(end as usize..(end + pad) as usize)
                            }
                            _ => out.zeros(pad),
                        }
                    } else {
                        // Bool planes of a fraction of a byte: the part is
                        // assembled bit by bit.
                        let mut buf = vec![0u8; usize::try_from(part_bytes).ok()?];
                        let mut kk = 0u64;
                        while kk < t {
                            let q = j * t + kk;
                            let Some((p, left)) = (q < count).then(|| old_of(q)).flatten() else {
                                break;
                            };
                            let g = (t - kk).min(t - p % t).min(left);
                            let from =
                                (src_at(p / t * plane_tiles + i)? + part) * 8 + (p % t) * plane;
                            if (from + g * plane).div_ceil(8) > src.len() as u64 {
                                return None;
                            }
                            copy_bits(src, from, &mut buf, kk * plane, g * plane);
                            kk += g;
                        }
                        out.owned(buf);
                    }
                }
            }
        }
        Some(out.finish())
    }

    /// The header of the slice's manager: `rows` rows, the cubes of
    /// `plan` (cube `c` at `offsets[c]` of its file), data files of
    /// `lengths` bytes. `header` is the original header file, whose other
    /// fields are copied.
    pub(crate) fn write_header(
        &self,
        header: &[u8],
        rows: u64,
        plan: &SlicePlan,
        offsets: &[u64],
        lengths: &[u64],
    ) -> Vec<u8> {
        let l = &self.layout;
        let wide = l.base_version >= 3;
        let mut w = Writer::new(true);
        match &l.column_tile {
            Some(tile) => {
                w.start("TiledColumnStMan", 1);
                w.raw(&header[tile.clone()]);
            }
            None => w.start("TiledShapeStMan", 1),
        }
        w.start("TiledStMan", l.base_version);
        w.raw(&header[l.head.clone()]);
        if wide {
            w.u64(rows);
        } else {
            w.u32(rows as u32);
        }
        w.raw(&header[l.mid.clone()]);
        let count = |w: &mut Writer, n: usize| {
            if wide {
                w.u64(n as u64);
            } else {
                w.u32(n as u32);
            }
        };
        count(&mut w, self.files.len());
        for (f, seq) in self.files.iter().enumerate() {
            match seq {
                None => w.bool(false),
                Some(seq) => {
                    w.bool(true);
                    let len = lengths.get(f).copied().unwrap_or(0);
                    if len < 1 << 31 {
                        w.u32(1);
                        w.u32(*seq);
                        w.u32(len as u32);
                    } else {
                        w.u32(2);
                        w.u32(*seq);
                        w.u64(len);
                    }
                }
            }
        }
        count(&mut w, self.cubes.len());
        for (c, cube) in self.cubes.iter().enumerate() {
            let offset = offsets.get(c).copied().unwrap_or(0);
            let small = offset < 1 << 31;
            w.i32(if small { 1 } else { 2 });
            w.raw(&header[cube.values.clone()]);
            w.bool(cube.extensible);
            w.u32(cube.ndim);
            let mut shape = cube.shape.clone();
            if cube.file.is_some() {
                if let Some(last) = shape.last_mut() {
                    *last = plan.counts[c];
                }
            }
            w.iposition(&shape);
            w.iposition(&cube.tile);
            w.i32(cube.file.map_or(-1, |f| f as i32));
            if small {
                w.u32(offset as u32);
            } else {
                w.u64(offset);
            }
        }
        w.end();
        if let Some(tile) = &l.default_tile {
            w.raw(&header[tile.clone()]);
            let map = plan.row_map.as_deref().unwrap_or(&[]);
            w.u32(map.len() as u32);
            w.block_u32(&map.iter().map(|e| e.0 as u32).collect::<Vec<_>>());
            w.block_u32(&map.iter().map(|e| e.1 as u32).collect::<Vec<_>>());
            w.block_u32(&map.iter().map(|e| e.2 as u32).collect::<Vec<_>>());
        }
        w.end();
        w.finish()
    }
}

/// A file assembled from views of one buffer, zeros and owned bytes;
/// adjacent views are merged.
struct Pieces<'s> {
    src: &'s bytes::Bytes,
    out: Vec<bytes::Bytes>,
    /// A view not yet cut: its range in `src`.
    open: Option<Range<usize>>,
}

/// Zeros to pad tiles with.
static ZEROS: [u8; 1 << 16] = [0; 1 << 16];

impl<'s> Pieces<'s> {
    fn new(src: &'s bytes::Bytes) -> Self {
        Pieces {
            src,
            out: Vec::new(),
            open: None,
        }
    }

    fn close(&mut self) {
        if let Some(r) = self.open.take() {
            self.out.push(self.src.slice(r));
        }
    }

    fn view(&mut self, r: Range<usize>) {
        match &mut self.open {
            Some(o) if o.end == r.start => o.end = r.end,
            _ => {
                self.close();
                self.open = Some(r);
            }
        }
    }

    fn zeros(&mut self, mut n: u64) {
        if n == 0 {
            return;
        }
        self.close();
        while n > 0 {
            let k = n.min(ZEROS.len() as u64) as usize;
            self.out.push(bytes::Bytes::from_static(&ZEROS[..k]));
            n -= k as u64;
        }
    }

    fn owned(&mut self, b: Vec<u8>) {
        self.close();
        self.out.push(b.into());
    }

    fn finish(mut self) -> Vec<bytes::Bytes> {
        self.close();
        self.out
    }
}

fn iposition_u64(r: &mut Reader<'_>) -> Result<Vec<u64>> {
    let v = r.iposition()?;
    v.iter()
        .map(|&x| u64::try_from(x).map_err(|_| r.invalid(format!("a negative extent in {v:?}"))))
        .collect()
}

/// Parse a tiled manager's header file.
pub(crate) fn parse(buf: &[u8], file: &str) -> Result<Tsm> {
    let mut r = Reader::new(buf, true, file);
    r.magic()?;
    let outer = r.object(None)?;
    let column_tile = match outer.kind.as_str() {
        "TiledColumnStMan" => {
            let at = r.pos();
            r.iposition()?; // the tile shape (the cube's own is read below)
            Some(at..r.pos())
        }
        "TiledShapeStMan" => None,
        other => {
            return Err(r.invalid(format!(
                "a {other} header; only TiledColumnStMan and TiledShapeStMan are read"
            )))
        }
    };
    let base = r.object(Some("TiledStMan"))?;
    let wide = base.version >= 3;
    let head_at = r.pos();
    if base.version >= 2 {
        r.bool()?; // big endian, as table.dat says
    }
    r.u32()?; // sequence number
    let head = head_at..r.pos();
    let rows = if wide { r.u64()? } else { u64::from(r.u32()?) };
    let mid_at = r.pos();
    let ncol = r.u32()? as usize;
    let mut types = Vec::with_capacity(ncol.min(64));
    for _ in 0..ncol {
        types.push(r.i32()?);
    }
    r.string()?; // hypercolumn name
    if wide {
        r.u64()?;
    } else {
        r.u32()?; // cache size
    }
    r.u32()?; // dimensions
    let mid = mid_at..r.pos();
    let nfiles = if wide { r.u64()? } else { u64::from(r.u32()?) };
    let mut files = Vec::with_capacity(nfiles.min(1 << 16) as usize);
    for f in 0..nfiles {
        if r.bool()? {
            let v = r.u32()?;
            let seq = r.u32()?;
            if u64::from(seq) != f {
                return Err(r.invalid(format!("data file {f} is numbered {seq}")));
            }
            if v >= 2 {
                r.u64()?;
            } else {
                r.u32()?; // length
            }
            files.push(Some(seq));
        } else {
            files.push(None);
        }
    }
    let ncubes = if wide { r.u64()? } else { u64::from(r.u32()?) };
    let mut cubes = Vec::with_capacity(ncubes.min(1 << 16) as usize);
    for _ in 0..ncubes {
        let v = r.i32()?;
        let at = r.pos();
        r.skip_object(Some("Record"))?; // coordinate values
        let values = at..r.pos();
        let extensible = r.bool()?;
        let ndim = r.u32()?;
        let shape = iposition_u64(&mut r)?;
        let tile = iposition_u64(&mut r)?;
        let seq = r.i32()?;
        let offset = if v >= 2 {
            r.u64()?
        } else {
            u64::from(r.u32()?)
        };
        if shape.len() != tile.len() || tile.contains(&0) && !shape.is_empty() {
            return Err(r.invalid(format!("a cube of shape {shape:?} in tiles of {tile:?}")));
        }
        let file = u32::try_from(seq).ok();
        if file.is_some() && shape.is_empty() {
            return Err(r.invalid("a cube of no dimensions has a data file"));
        }
        cubes.push(Cube {
            shape,
            tile,
            file,
            offset,
            values,
            extensible,
            ndim,
        });
    }
    r.end_object(&base)?;
    let (row_map, default_tile) = if column_tile.is_none() {
        let at = r.pos();
        r.iposition()?; // default tile shape
        let default_tile = at..r.pos();
        let n = r.u32()? as usize;
        let rows_of = r.block_u32()?;
        let cube_of = r.block_u32()?;
        let pos_of = r.block_u32()?;
        if rows_of.len() < n || cube_of.len() < n || pos_of.len() < n {
            return Err(r.invalid("a row map shorter than it says"));
        }
        let mut map = Vec::with_capacity(n);
        for i in 0..n {
            let cube = cube_of[i] as usize;
            if cube >= cubes.len() {
                return Err(r.invalid(format!("rows in cube {cube} of {}", cubes.len())));
            }
            map.push((u64::from(rows_of[i]), cube, u64::from(pos_of[i])));
        }
        if map.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(r.invalid("the row map is not in row order"));
        }
        (Some(map), Some(default_tile))
    } else {
        if cubes.len() != 1 {
            return Err(r.invalid(format!("{} cubes in a TiledColumnStMan", cubes.len())));
        }
        (None, None)
    };
    let tsm = Tsm {
        rows,
        types,
        cubes,
        row_map,
        files,
        layout: Layout {
            column_tile,
            base_version: base.version,
            head,
            mid,
            default_tile,
        },
    };
    if tsm.element_bits().is_none() {
        return Err(r.invalid(format!(
            "column types {:?}: tiles hold numbers and Bools only",
            tsm.types
        )));
    }
    for c in &tsm.cubes {
        if let Some(f) = c.file {
            if tsm.files.get(f as usize) != Some(&Some(f)) {
                return Err(r.invalid(format!("a cube in data file {f}, which it does not list")));
            }
        }
    }
    Ok(tsm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Bit offset in its data file of element `idx` (over the cell axes)
    /// of column `col` at position `pos` of `cube`: the layout written out
    /// element by element, as the format describes it.
    fn bit_of(t: &Tsm, cube: &Cube, pos: u64, idx: &[u64], col: usize) -> u64 {
        let nd = cube.shape.len();
        let grid = cube.grid();
        let (tile_bytes, parts) = t.tile_parts(cube).unwrap();
        let (mut tile_no, mut in_tile, mut st, mut se) = (0u64, 0u64, 1u64, 1u64);
        for k in 0..nd - 1 {
            tile_no += idx[k] / cube.tile[k] * st;
            in_tile += idx[k] % cube.tile[k] * se;
            st *= grid[k];
            se *= cube.tile[k];
        }
        let tl = cube.tile[nd - 1];
        tile_no += pos / tl * st;
        in_tile += pos % tl * se;
        (cube.offset + tile_no * tile_bytes + parts[col].0) * 8 + in_tile * parts[col].1
    }

    fn bit(bytes: &[u8], at: u64) -> u8 {
        (bytes[(at / 8) as usize] >> (at % 8)) & 1
    }

    /// Rows given one after the other their cube (0: no shape) as a row
    /// map: runs of rows at consecutive positions of one cube, trailing
    /// rows without a shape left out.
    fn row_map_of(cubes_of_rows: &[usize]) -> Vec<(u64, usize, u64)> {
        let mut count = [0u64; 8];
        let mut map: Vec<(u64, usize, u64)> = Vec::new();
        for (r, &c) in cubes_of_rows.iter().enumerate() {
            let pos = if c == 0 { 0 } else { count[c] };
            if c != 0 {
                count[c] += 1;
            }
            match map.last_mut() {
                Some(e) if e.0 + 1 == r as u64 && e.1 == c && (c == 0 || e.2 + 1 == pos) => {
                    e.0 = r as u64;
                    e.2 = pos;
                }
                _ => map.push((r as u64, c, pos)),
            }
        }
        while map.last().is_some_and(|e| e.1 == 0) {
            map.pop();
        }
        map
    }

    fn every_index(shape: &[u64]) -> Vec<Vec<u64>> {
        let mut out = vec![vec![]];
        for &d in shape {
            out = out
                .into_iter()
                .flat_map(|v| {
                    (0..d).map(move |i| {
                        let mut w = v.clone();
                        w.push(i);
                        w
                    })
                })
                .collect();
        }
        out
    }

    fn fixture(name: &str) -> Vec<u8> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/ms/tsm")
            .join(name);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// Headers python-casacore wrote (`make_ms.py build OUT --layout casa
    /// | tiledcolumn --ntimes 6 --nant 4 --nchan 6 --ncorr 2 --spw-chans
    /// 4,8 --tile-chan 4 --tile-rows 5 --seed 3`: 30 rows, DATA, FLAG and
    /// WEIGHT_SPECTRUM in `table.f2` to `f4`; the casa layout alternates
    /// two spectral windows, so two cubes of different shapes), with the
    /// sizes of their data files.
    const HEADERS: &[(&str, &[u64])] = &[
        ("shape.f2", &[0, 960, 2560]),
        ("shape.f3", &[0, 15, 40]),
        ("shape.f4", &[0, 480, 1280]),
        ("column.f2", &[3840]),
        ("column.f3", &[60]),
        ("column.f4", &[1920]),
    ];

    /// Written for all its rows, a header is the one casacore wrote, byte
    /// for byte: every field this module writes is placed as casacore
    /// places it.
    #[test]
    fn a_header_for_every_row_is_casacores() {
        for (name, lengths) in HEADERS {
            let bytes = fixture(name);
            let t = parse(&bytes, name).unwrap();
            assert_eq!(t.rows, 30, "{name}");
            let plan = t.plan(0..30).unwrap();
            let offsets: Vec<u64> = t.cubes.iter().map(|c| c.offset).collect();
            let written = t.write_header(&bytes, 30, &plan, &offsets, lengths);
            assert_eq!(written, bytes, "{name}");
            assert_eq!(plan.row_map, t.row_map, "{name}");
        }
    }

    /// A header for some rows parses back with their count, the cubes'
    /// new shapes and the row map.
    #[test]
    fn a_header_for_some_rows_reads_back() {
        for (name, _) in HEADERS {
            let bytes = fixture(name);
            let t = parse(&bytes, name).unwrap();
            for (a, b) in [(0, 0), (3, 17), (4, 30), (29, 30)] {
                let plan = t.plan(a..b).unwrap();
                let lengths = vec![7; t.files.len()];
                let offsets = vec![0; t.cubes.len()];
                let written = t.write_header(&bytes, b - a, &plan, &offsets, &lengths);
                let back = parse(&written, name).unwrap();
                assert_eq!(back.rows, b - a, "{name} {a}..{b}");
                assert_eq!(back.row_map, plan.row_map, "{name} {a}..{b}");
                assert_eq!(back.types, t.types);
                for (c, (new, old)) in back.cubes.iter().zip(&t.cubes).enumerate() {
                    assert_eq!(new.tile, old.tile);
                    assert_eq!(new.file, old.file);
                    if old.file.is_some() {
                        assert_eq!(new.shape.last(), Some(&plan.counts[c]), "{name} {a}..{b}");
                        assert_eq!(
                            new.shape[..new.shape.len() - 1],
                            old.shape[..old.shape.len() - 1]
                        );
                    }
                }
                let total: u64 = plan.counts.iter().sum();
                assert_eq!(total, b - a, "{name} {a}..{b}: every row has a cell");
            }
        }
    }

    /// Damaged headers are refused, not misread.
    #[test]
    fn damaged_headers_are_refused() {
        let bytes = fixture("shape.f2");
        for cut in [0, 4, 40, bytes.len() / 2, bytes.len() - 1] {
            assert!(parse(&bytes[..cut], "table.f2").is_err(), "cut at {cut}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Every element of every kept row lands where the layout says,
        /// the row map is the one casacore keeps for rows given in order,
        /// and a slice that starts on a tile boundary is the bytes read.
        #[test]
        fn a_slice_keeps_every_element_of_its_rows(
            shapes in proptest::collection::vec(proptest::collection::vec(1u64..6, 1..3), 2),
            tiles in proptest::collection::vec(1u64..6, 3),
            row_tile in 1u64..6,
            types in proptest::collection::vec(prop_oneof![Just(0i32), Just(3), Just(7), Just(9)], 1..3),
            cubes_of_rows in proptest::collection::vec(0usize..3, 0..40),
            column in any::<bool>(),
            cut in any::<(u16, u16)>(),
            seed in any::<u64>(),
        ) {
            // TiledColumnStMan: one cube holding every row; else a dummy
            // cube 0 and two cubes of different cell shapes.
            let cubes_of_rows: Vec<usize> = if column {
                vec![1; cubes_of_rows.len()]
            } else {
                cubes_of_rows
            };
            let n = cubes_of_rows.len() as u64;
            let mut cubes = vec![Cube {
                shape: vec![],
                tile: vec![],
                file: None,
                offset: 0,
                values: 0..0,
                extensible: true,
                ndim: 0,
            }];
            let mut files = vec![None];
            let mut data: Vec<Vec<u8>> = vec![vec![]];
            let mut x = seed | 1;
            for c in 1..3usize {
                let cell = if column { &shapes[0] } else { &shapes[c - 1] };
                let rows = cubes_of_rows.iter().filter(|&&k| k == c).count() as u64;
                let mut shape = cell.clone();
                shape.push(rows);
                let mut tile: Vec<u64> = cell.iter().zip(&tiles).map(|(&s, &t)| t.min(s)).collect();
                tile.push(row_tile);
                cubes.push(Cube {
                    shape,
                    tile,
                    file: Some(c as u32),
                    offset: 0,
                    values: 0..0,
                    extensible: true,
                    ndim: cell.len() as u32 + 1,
                });
                files.push(Some(c as u32));
                data.push(vec![]);
            }
            if column {
                cubes = vec![cubes[1].clone()];
                cubes[0].file = Some(0);
                files = vec![Some(0)];
                data = vec![vec![]];
            }
            let mut t = Tsm {
                rows: n,
                types: types.clone(),
                cubes,
                row_map: (!column).then(|| row_map_of(&cubes_of_rows)),
                files,
                layout: Layout {
                    column_tile: None,
                    base_version: 2,
                    head: 0..0,
                    mid: 0..0,
                    default_tile: None,
                },
            };
            // Random tiles for each cube, the cube at a random offset.
            for (c, cube) in t.cubes.clone().iter().enumerate() {
                if cube.file.is_none() {
                    continue;
                }
                let (tile_bytes, _) = t.tile_parts(cube).unwrap();
                let tiles: u64 = cube.grid().iter().product();
                let offset = seed % 7 * 8;
                t.cubes[c].offset = offset;
                let f = cube.file.unwrap() as usize;
                data[f] = (0..offset + tiles * tile_bytes)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect();
            }
            let (mut a, mut b) = (u64::from(cut.0) % (n + 1), u64::from(cut.1) % (n + 1));
            if a > b {
                std::mem::swap(&mut a, &mut b);
            }
            let plan = t.plan(a..b).expect("a plan");
            let spans = t.spans(&plan).expect("spans");
            for (c, f, span) in spans {
                let src = bytes::Bytes::from(data[f as usize][span.start as usize..span.end as usize].to_vec());
                let pieces = t.copy_cube(c, &plan, &src, span.start).expect("copied");
                let out = pieces.concat();
                let old = &t.cubes[c];
                let mut new = old.clone();
                new.offset = 0;
                *new.shape.last_mut().unwrap() = plan.counts[c];
                let (tile_bytes, _) = t.tile_parts(&new).unwrap();
                prop_assert_eq!(out.len() as u64, new.grid().iter().product::<u64>() * tile_bytes);
                // Each row of the slice in this cube, in row order.
                let mut pos_old = 0u64;
                let mut k = 0u64;
                for (r, &cr) in cubes_of_rows.iter().enumerate() {
                    let in_cube = if column { true } else { cr == c };
                    if !in_cube {
                        continue;
                    }
                    let p = if column { r as u64 } else { pos_old };
                    pos_old += 1;
                    if (r as u64) < a || (r as u64) >= b {
                        continue;
                    }
                    for idx in every_index(&old.shape[..old.shape.len() - 1]) {
                        for (col, ty) in types.iter().enumerate() {
                            let bits = if *ty == 0 { 1 } else { t.element_bits().unwrap()[col] };
                            for j in 0..bits {
                                prop_assert_eq!(
                                    bit(&data[f as usize], bit_of(&t, old, p, &idx, col) + j),
                                    bit(&out, bit_of(&t, &new, k, &idx, col) + j),
                                    "cube {} row {} element {:?} column {}", c, r, idx, col
                                );
                            }
                        }
                    }
                    k += 1;
                }
                prop_assert_eq!(k, plan.counts[c]);
                if let [(old_first, 0, _)] = plan.runs[c][..] {
                    // (Bool planes of a fraction of a byte are assembled.)
                    let plane: u64 = old.tile[..old.tile.len() - 1].iter().product();
                    let whole = t.element_bits().unwrap().iter().all(|b| (plane * b).is_multiple_of(8));
                    if whole && old_first % old.tile.last().unwrap() == 0 {
                        prop_assert_eq!(pieces.len(), 1, "a tile-aligned slice is one view");
                        prop_assert_eq!(pieces[0].as_ptr(), src.as_ptr(), "a tile-aligned slice is not copied");
                    }
                }
            }
            if !column {
                prop_assert_eq!(plan.row_map.clone().unwrap(), row_map_of(&cubes_of_rows[a as usize..b as usize]));
            }
        }
    }
}

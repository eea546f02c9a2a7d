//! The tiled storage managers (TiledColumnStMan, TiledShapeStMan): a
//! header file `table.fN` (always big-endian) describing hypercubes, and
//! their tiles in `table.fN_TSMk`. A cell is a plane of its cube (the last
//! axis is the row); tiles are numbered with the first axis varying
//! fastest, and inside a tile the elements are in the same order.

use super::aipsio::Reader;
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

    /// Elements in one tile.
    pub(crate) fn tile_len(&self) -> u64 {
        self.tile.iter().product()
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
}

impl Tsm {
    /// The cube and position holding row `r`, if any.
    pub(crate) fn locate(&self, r: u64) -> Option<(usize, u64)> {
        match &self.row_map {
            None => (r < self.cubes.first()?.shape.last().copied()?).then_some((0, r)),
            Some(map) => {
                let i = map.partition_point(|&(last, _, _)| last < r);
                let &(last, cube, pos) = map.get(i)?;
                let p = pos.checked_sub(last - r)?;
                Some((cube, p))
            }
        }
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
    let shape_kind = match outer.kind.as_str() {
        "TiledColumnStMan" => {
            r.iposition()?; // the tile shape (the cube's own is read below)
            false
        }
        "TiledShapeStMan" => true,
        other => {
            return Err(r.invalid(format!(
                "a {other} header; only TiledColumnStMan and TiledShapeStMan are read"
            )))
        }
    };
    let base = r.object(Some("TiledStMan"))?;
    let wide = base.version >= 3;
    if base.version >= 2 {
        r.bool()?; // big endian, as table.dat says
    }
    r.u32()?; // sequence number
    let rows = if wide { r.u64()? } else { u64::from(r.u32()?) };
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
    let nfiles = if wide { r.u64()? } else { u64::from(r.u32()?) };
    for _ in 0..nfiles {
        if r.bool()? {
            let v = r.u32()?;
            r.u32()?; // its sequence number
            if v >= 2 {
                r.u64()?;
            } else {
                r.u32()?; // length
            }
        }
    }
    let ncubes = if wide { r.u64()? } else { u64::from(r.u32()?) };
    let mut cubes = Vec::with_capacity(ncubes.min(1 << 16) as usize);
    for _ in 0..ncubes {
        let v = r.i32()?;
        r.skip_object(Some("Record"))?; // coordinate values
        r.bool()?; // extensible
        r.u32()?; // dimensions
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
        cubes.push(Cube {
            shape,
            tile,
            file: u32::try_from(seq).ok(),
            offset,
        });
    }
    r.end_object(&base)?;
    let row_map = if shape_kind {
        r.iposition()?; // default tile shape
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
        Some(map)
    } else {
        if cubes.len() != 1 {
            return Err(r.invalid(format!("{} cubes in a TiledColumnStMan", cubes.len())));
        }
        None
    };
    Ok(Tsm {
        rows,
        types,
        cubes,
        row_map,
    })
}

/// The elements of the cell at position `pos` of `cube`, from the cube's
/// tiles (`tiles`: the bytes of its data file from byte `base`), in
/// Fortran order over the cell shape. `size`: bytes per element, or 0 for
/// Bool (bits; returned one byte per element, 0 or 1). `None` when a tile
/// lies outside `tiles`.
pub(crate) fn read_cell(
    cube: &Cube,
    pos: u64,
    size: usize,
    tiles: &[u8],
    base: u64,
) -> Option<Vec<u8>> {
    let nd = cube.shape.len();
    if nd == 0 {
        return None;
    }
    let cell_shape = &cube.shape[..nd - 1];
    let n: u64 = cell_shape.iter().product();
    let per = if size == 0 { 1 } else { size };
    let mut out = vec![0u8; (n as usize).checked_mul(per)?];
    let grid = cube.grid();
    let tile_len = cube.tile_len();
    let tile_bytes = if size == 0 {
        tile_len.div_ceil(8)
    } else {
        tile_len * size as u64
    };
    let t_last = cube.tile[nd - 1];
    let (tp, pl) = (pos / t_last, pos % t_last);
    // Every element of the cell: its index along each cell axis.
    let mut idx = vec![0u64; nd - 1];
    for e in 0..n {
        // Tile number and place inside the tile, first axis fastest.
        let (mut tile_no, mut in_tile, mut stride_t, mut stride_e) = (0u64, 0u64, 1u64, 1u64);
        for k in 0..nd - 1 {
            tile_no += (idx[k] / cube.tile[k]) * stride_t;
            in_tile += (idx[k] % cube.tile[k]) * stride_e;
            stride_t *= grid[k];
            stride_e *= cube.tile[k];
        }
        tile_no += tp * stride_t;
        in_tile += pl * stride_e;
        let tile_at = cube.offset.checked_add(tile_no.checked_mul(tile_bytes)?)?;
        let at = tile_at.checked_sub(base)?;
        if size == 0 {
            let byte = *tiles.get(usize::try_from(at + in_tile / 8).ok()?)?;
            out[e as usize] = (byte >> (in_tile % 8)) & 1;
        } else {
            let s = usize::try_from(at + in_tile * size as u64).ok()?;
            out[e as usize * size..(e as usize + 1) * size]
                .copy_from_slice(tiles.get(s..s + size)?);
        }
        // Next element, first axis fastest.
        for k in 0..nd - 1 {
            idx[k] += 1;
            if idx[k] < cell_shape[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    Some(out)
}

/// The bytes of `cube`'s data file that hold the cells at positions
/// `first..=last`: whole rows of tiles, the last axis being the slowest.
pub(crate) fn cell_span(cube: &Cube, size: usize, first: u64, last: u64) -> Option<(u64, u64)> {
    let nd = cube.shape.len();
    let grid = cube.grid();
    let plane: u64 = grid[..nd.checked_sub(1)?].iter().product();
    let tile_len = cube.tile_len();
    let tile_bytes = if size == 0 {
        tile_len.div_ceil(8)
    } else {
        tile_len.checked_mul(size as u64)?
    };
    let t_last = *cube.tile.last()?;
    let row_bytes = plane.checked_mul(tile_bytes)?;
    let a = cube
        .offset
        .checked_add((first / t_last).checked_mul(row_bytes)?)?;
    let b = cube
        .offset
        .checked_add((last / t_last + 1).checked_mul(row_bytes)?)?;
    Some((a, b))
}

"""Cloud-Optimized GeoTIFFs and tiled GeoTIFFs through the ``tessera``
command line: index, plan tile-aligned windows, fetch every window, and
check each window with rasterio (GDAL).

Each test runs on a local folder and on the test S3 server. The rasters are
written here with rasterio (the COG driver, or the GTiff driver with tiles
and internal overviews), uploaded when the store is S3, and every window is
fetched with ``tessera slice get`` into a local GeoTIFF. The windows of a
plan must cover the image (or the overview level) exactly once, and each
window must open in rasterio as a GeoTIFF of the window's size whose pixels
are those of the original's window (exactly: the tiles are copied, so even
JPEG tiles decode to the same pixels), with the original's data type, band
count, nodata value, CRS and compression, and the geotransform of the
window in the original.

Every expected value is computed from the files the tests wrote.
"""

from __future__ import annotations

import json
import math
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")

from affine import Affine  # noqa: E402  (installed with rasterio)
from rasterio.enums import Resampling  # noqa: E402
from rasterio.transform import from_origin  # noqa: E402
from rasterio.windows import Window  # noqa: E402

from _objects import exists, get, put, put_file  # noqa: E402
from _cli import index, plan, run  # noqa: E402
from conftest import unique  # noqa: E402

# rasterio 1.4 multiplies affines with ``*``, which affine 3 warns about
pytestmark = pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning")

# -- running tessera ---------------------------------------------------------------








def fetch(tessera_bin: Path, plan_file: Path, i: int, out: Path) -> Path:
    """Fetch window ``i`` of a plan into the GeoTIFF ``out``."""
    run(tessera_bin, "slice", "get", str(plan_file), "--slice", str(i), "-o", str(out))
    return out


# -- writing rasters ---------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """A raster to write: its shape, pixel type, layout and georeferencing."""

    name: str
    width: int
    height: int
    count: int
    dtype: str
    compress: str
    predictor: int | None = None
    nodata: float | None = None
    driver: str = "COG"
    interleave: str = "pixel"
    photometric: str | None = None
    blocksize: int = 256
    overviews: bool = True
    rotated: bool = False
    crs: str = "EPSG:32633"
    bigtiff: bool = False
    big_endian: bool = False
    sparse: bool = False


SPECS = [
    # 1000x777 in 256-pixel tiles: 4x4 tiles, the last column and row partial.
    Spec("u8-rgb-deflate-pred2", 1000, 777, 3, "uint8", "DEFLATE", predictor=2, nodata=0),
    Spec("u16-lzw-no-overviews", 1000, 777, 1, "uint16", "LZW", nodata=65535, overviews=False),
    Spec("f32-deflate-pred3", 1000, 777, 1, "float32", "DEFLATE", predictor=3, nodata=-9999.0, crs="EPSG:4326"),
    Spec("u8-rgb-jpeg-ycbcr", 1000, 777, 3, "uint8", "JPEG"),
    Spec("u8-rgb-jpeg-rgb-gtiff", 1000, 777, 3, "uint8", "JPEG", driver="GTiff", photometric="RGB"),
    Spec("u16-3band-planar-gtiff", 1000, 777, 3, "uint16", "DEFLATE", predictor=2, nodata=0,
         driver="GTiff", interleave="band"),
    Spec("u8-rotated-modeltransformation", 900, 700, 1, "uint8", "DEFLATE", nodata=255, rotated=True),
    Spec("f32-2band-lzw-512-blocks", 1300, 1100, 2, "float32", "LZW", predictor=2, blocksize=512),
    Spec("u8-rgb-zstd-bigtiff", 1000, 777, 3, "uint8", "ZSTD", predictor=2, bigtiff=True),
    Spec("u16-big-endian-gtiff", 1000, 777, 1, "uint16", "DEFLATE", predictor=2, driver="GTiff",
         big_endian=True),
    # the first row of tiles is all nodata: GDAL writes no bytes for it
    Spec("u16-sparse-gtiff", 1000, 777, 2, "uint16", "DEFLATE", nodata=0, driver="GTiff", sparse=True),
]
SPEC_BY_NAME = {s.name: s for s in SPECS}


def pixels(spec: Spec) -> np.ndarray:
    """Bands of smooth patterns with some noise (so that tiles differ and
    compress), and a corner of nodata when the raster has a nodata value."""
    rng = np.random.default_rng(zlib.crc32(spec.name.encode()))
    rows, cols = np.mgrid[0 : spec.height, 0 : spec.width].astype(np.float64)
    bands = []
    for b in range(spec.count):
        base = (
            cols * (0.21 + 0.05 * b) + rows * 0.13
            + 40.0 * np.sin(cols / (31.0 + 7 * b)) + 30.0 * np.cos(rows / 23.0)
        )
        noise = rng.normal(0.0, 3.0, base.shape)
        v = base + noise
        if spec.dtype == "uint8":
            band = np.mod(v, 250.0).astype(np.uint8) + 1
        elif spec.dtype == "uint16":
            band = np.mod(v * 97.0, 60000.0).astype(np.uint16) + 1
        else:
            band = (v * 0.0137 - 3.0).astype(np.float32)
        if spec.nodata is not None:
            band[: spec.height // 5, : spec.width // 7] = spec.nodata
        if spec.sparse:
            band[: spec.blocksize, :] = spec.nodata
        bands.append(band)
    return np.stack(bands)


def transform_of(spec: Spec) -> Affine:
    """North-up, or rotated (written as a ModelTransformation tag)."""
    if spec.rotated:
        return Affine(10.0, 2.5, 512_345.0, 1.5, -10.0, 4_101_234.0)
    if spec.crs == "EPSG:4326":
        return from_origin(12.25, 48.5, 0.0005, 0.0005)
    return from_origin(512_345.0, 4_101_234.0, 10.0, 10.0)


def write_raster(spec: Spec, path: Path) -> Path:
    """Write ``spec`` as a COG, or as a tiled GTiff with internal overviews."""
    profile: dict[str, Any] = dict(
        driver=spec.driver, width=spec.width, height=spec.height, count=spec.count,
        dtype=spec.dtype, crs=spec.crs, transform=transform_of(spec), compress=spec.compress,
        blocksize=spec.blocksize,
    )
    if spec.predictor is not None:
        profile["predictor"] = spec.predictor
    if spec.nodata is not None:
        profile["nodata"] = spec.nodata
    if spec.compress == "JPEG":
        profile["quality" if spec.driver == "COG" else "jpeg_quality"] = 90
    if spec.bigtiff:
        profile["bigtiff"] = "YES"
    if spec.big_endian:
        profile["endianness"] = "BIG"
    if spec.sparse:
        profile["sparse_ok"] = True
    if spec.driver == "COG":
        if not spec.overviews:
            profile["overviews"] = "NONE"
    else:
        profile.update(tiled=True, blockxsize=spec.blocksize, blockysize=spec.blocksize,
                       interleave=spec.interleave)
        del profile["blocksize"]
        if spec.photometric:
            profile["photometric"] = spec.photometric
    data = pixels(spec)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if spec.driver != "COG" and spec.overviews:
            dst.build_overviews([2, 4], Resampling.average)
    with rasterio.open(path) as src:
        assert src.transform == transform_of(spec)
        assert src.compression is not None
        assert all(bs == (spec.blocksize, spec.blocksize) for bs in src.block_shapes)
        assert bool(src.overviews(1)) == spec.overviews
        if spec.driver != "COG" and spec.count > 1:
            assert src.interleaving.name == spec.interleave
        if spec.compress == "JPEG":
            want = "JPEG" if spec.photometric == "RGB" else "YCbCr JPEG"
            assert src.tags(ns="IMAGE_STRUCTURE")["COMPRESSION"] == want
        # GDAL reports no offset for a tile it did not write
        first_tile = src.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1)
        assert (first_tile is None) == spec.sparse, first_tile
    head = path.read_bytes()[:4]
    assert head[:2] == (b"MM" if spec.big_endian else b"II")
    assert head[2:4] == (43 if spec.bigtiff else 42).to_bytes(2, "big" if spec.big_endian else "little")
    return path


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every spec written once, locally (placed in each test's store)."""
    folder = tmp_path_factory.mktemp("cog-originals")
    return {s.name: write_raster(s, folder / f"{s.name}.tif") for s in SPECS}


def place(original: Path, store_base: str, name: str | None = None) -> str:
    """Put a local raster into the test's store and return its URL."""
    url = f"{store_base}/{name or original.name}"
    put_file(url, original)
    return url


# -- checks ------------------------------------------------------------------------


def tiles_of(width: int, height: int, tile_w: int, tile_h: int) -> int:
    """How many tiles an image of this size has."""
    return math.ceil(width / tile_w) * math.ceil(height / tile_h)


def planes_of(ds: Any) -> int:
    """Tiles stored per tile position: one per band when band-interleaved
    (planar), else one."""
    return ds.count if ds.interleaving.name == "band" else 1


def assert_exact_cover(windows: list[list[int]], width: int, height: int, tile_w: int, tile_h: int) -> None:
    """Tile-aligned windows inside the image, without overlap, whose union is
    the whole image."""
    for x, y, w, h in windows:
        assert w > 0 and h > 0, (x, y, w, h)
        assert 0 <= x and 0 <= y and x + w <= width and y + h <= height, ((x, y, w, h), width, height)
        assert x % tile_w == 0 and y % tile_h == 0, (x, y, w, h)
        assert w % tile_w == 0 or x + w == width, (x, y, w, h)
        assert h % tile_h == 0 or y + h == height, (x, y, w, h)
    covered = np.zeros((height, width), dtype=np.uint16)
    for x, y, w, h in windows:
        covered[y : y + h, x : x + w] += 1
    assert covered.min() == 1 and covered.max() == 1, (
        f"pixels covered 0 times: {int((covered == 0).sum())}, more than once: {int((covered > 1).sum())}"
    )
    assert sum(w * h for _, _, w, h in windows) == width * height


def assert_transform_close(got: Affine, want: Affine) -> None:
    """The same geotransform up to rounding."""
    for g, w in zip(got[:6], want[:6]):
        assert math.isclose(g, w, rel_tol=1e-12, abs_tol=1e-9), (got, want)


def structure(ds: Any) -> dict[str, str]:
    """GDAL's IMAGE_STRUCTURE metadata without the COG layout marker (a
    window is a plain tiled GeoTIFF)."""
    tags = dict(ds.tags(ns="IMAGE_STRUCTURE"))
    tags.pop("LAYOUT", None)
    return tags


def assert_same_pixels(got: np.ndarray, want: np.ndarray) -> None:
    """Exactly equal arrays (NaN equal to NaN)."""
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, got.shape, want.dtype, want.shape)
    if np.issubdtype(want.dtype, np.floating):
        assert np.array_equal(got, want, equal_nan=True)
    else:
        diff = int((got != want).sum())
        assert diff == 0, f"{diff} pixels differ"


def check_window(part: Path, ref: Any, window: list[int], original: Any) -> None:
    """A fetched window against the original (``ref`` is the original or
    its overview)."""
    x, y, w, h = window
    with rasterio.open(part) as got:
        assert got.driver == "GTiff"
        assert (got.width, got.height) == (w, h)
        assert got.count == ref.count
        assert got.dtypes == ref.dtypes
        assert got.crs == original.crs
        if original.nodata is not None and math.isnan(original.nodata):
            assert got.nodata is not None and math.isnan(got.nodata)
        else:
            assert got.nodata == original.nodata
        assert got.compression == original.compression
        assert got.interleaving == original.interleaving
        assert got.photometric == original.photometric
        assert structure(got) == structure(original)
        assert got.block_shapes == ref.block_shapes
        assert got.overviews(1) == []
        assert_transform_close(got.transform, ref.window_transform(Window(x, y, w, h)))
        assert_same_pixels(got.read(), ref.read(window=Window(x, y, w, h)))


PLANS: dict[str, list[str]] = {
    "count1": ["--count", "1"],
    "count4": ["--count", "4"],
    "count7": ["--count", "7"],
    "grid3x2": ["--grid", "3x2"],
    "records5": ["--records", "5"],
    "level1-count3": ["--level", "1", "--count", "3"],
}


def plan_level(args: list[str]) -> int:
    """The overview level a plan cuts (0: full resolution)."""
    return int(args[args.index("--level") + 1]) if "--level" in args else 0


# -- the laws ----------------------------------------------------------------------


@pytest.mark.parametrize("spec_name", [s.name for s in SPECS])
def test_index_describes_the_tiles(
    store_base: str, tmp_path: Path, tessera_bin: Path, originals: dict[str, Path], spec_name: str
) -> None:
    """The index: format cog, the object's size, one record per tile of the
    full-resolution image, a few reads; written beside the object."""
    original = originals[spec_name]
    url = place(original, store_base)
    idx = index(tessera_bin, url)
    assert exists(f"{url}.tessera-index.json")
    assert idx["format"] == "cog"
    assert idx["size"] == original.stat().st_size
    assert idx["bigtiff"] is SPEC_BY_NAME[spec_name].bigtiff
    assert idx["big_endian"] is SPEC_BY_NAME[spec_name].big_endian
    with rasterio.open(original) as src:
        tile_h, tile_w = src.block_shapes[0]
        assert idx["records"] == tiles_of(src.width, src.height, tile_w, tile_h) * planes_of(src)
    assert 1 <= idx["reads"] <= 4, idx["reads"]


@pytest.mark.parametrize("plan_name", list(PLANS))
@pytest.mark.parametrize("spec_name", [s.name for s in SPECS])
def test_windows_cover_the_image_and_match_rasterio(
    store_base: str, tmp_path: Path, tessera_bin: Path, originals: dict[str, Path],
    spec_name: str, plan_name: str,
) -> None:
    """Every window of a plan, fetched, equals rasterio's read of that window
    (pixels, georeferencing, metadata), and the windows cover the image or
    the overview exactly once."""
    spec = SPEC_BY_NAME[spec_name]
    original = originals[spec_name]
    args = PLANS[plan_name]
    level = plan_level(args)
    url = place(original, store_base)
    idx = index(tessera_bin, url)
    plan_file = tmp_path / "windows.json"
    if level and not spec.overviews:
        proc = run(tessera_bin, "slice", url, *args, "-o", str(plan_file), ok=False)
        assert f"level {level} does not exist" in proc.stderr, proc.stderr
        assert not plan_file.exists()
        return
    slices = plan(tessera_bin, url, args, plan_file)

    with rasterio.open(original) as src:
        ref = rasterio.open(original, overview_level=level - 1) if level else src
        try:
            width, height = ref.width, ref.height
            tile_h, tile_w = ref.block_shapes[0]
            planes = planes_of(src)
            n_tiles = tiles_of(width, height, tile_w, tile_h)

            for d in slices:
                assert d["format"] == "cog"
                assert (d["tile_width"], d["tile_height"]) == (tile_w, tile_h)
                assert d["slices"] == len(slices)
                assert d["size"] == idx["size"] and d["etag"] == idx["etag"]
            assert [d["slice"] for d in slices] == list(range(len(slices)))
            assert len({d["ifd"] for d in slices}) == 1
            windows = [d["window"] for d in slices]
            assert_exact_cover(windows, width, height, tile_w, tile_h)
            # the tiles of each window (of each band, when planar) are its records
            for d in slices:
                x, y, w, h = d["window"]
                assert d["record_count"] == len(d["tiles"]) == tiles_of(w, h, tile_w, tile_h) * planes
            assert sum(d["record_count"] for d in slices) == n_tiles * planes

            if "--count" in args:
                n = int(args[args.index("--count") + 1])
                assert min(n, n_tiles) <= len(slices) <= 2 * n, len(slices)
            if "--grid" in args:
                cols, rows = (int(v) for v in args[args.index("--grid") + 1].split("x"))
                assert len({x for x, _, _, _ in windows}) == min(cols, math.ceil(width / tile_w))
                assert len({y for _, y, _, _ in windows}) == min(rows, math.ceil(height / tile_h))
                assert len(slices) == len({x for x, *_ in windows}) * len({y for _, y, *_ in windows})

            for i, d in enumerate(slices):
                part = fetch(tessera_bin, plan_file, i, tmp_path / f"part{i}.tif")
                check_window(part, ref, d["window"], src)
        finally:
            if level:
                ref.close()


@pytest.mark.parametrize("level", [1, 2])
def test_every_overview_level_of_a_planar_tiff(
    store_base: str, tmp_path: Path, tessera_bin: Path, originals: dict[str, Path], level: int
) -> None:
    """The deepest overviews too, one window per tile, of a band-interleaved
    tiled GeoTIFF; one level past the last is an error naming the levels."""
    original = originals["u16-3band-planar-gtiff"]
    url = place(original, store_base)
    index(tessera_bin, url)
    plan_file = tmp_path / "windows.json"
    slices = plan(tessera_bin, url, ["--level", str(level), "--count", "1000"], plan_file)
    with rasterio.open(original) as src, rasterio.open(original, overview_level=level - 1) as ov:
        tile_h, tile_w = ov.block_shapes[0]
        assert len(slices) == tiles_of(ov.width, ov.height, tile_w, tile_h)
        assert_exact_cover([d["window"] for d in slices], ov.width, ov.height, tile_w, tile_h)
        for i, d in enumerate(slices):
            check_window(fetch(tessera_bin, plan_file, i, tmp_path / f"p{i}.tif"), ov, d["window"], src)
        n_levels = 1 + len(src.overviews(1))
    proc = run(tessera_bin, "slice", url, "--level", str(n_levels), "-o", str(tmp_path / "no.json"), ok=False)
    assert f"level {n_levels} does not exist" in proc.stderr, proc.stderr


def test_bytes_plan_and_format_option(
    store_base: str, tmp_path: Path, tessera_bin: Path, originals: dict[str, Path]
) -> None:
    """``--format cog`` on a name without a TIFF extension, and windows of
    about a third of the stored bytes each."""
    original = originals["u8-rgb-deflate-pred2"]
    url = place(original, store_base, name="scene.raster")
    idx = index(tessera_bin, url, "--format", "cog")
    assert idx["format"] == "cog"
    plan_file = tmp_path / "windows.json"
    third = original.stat().st_size // 3
    slices = plan(tessera_bin, url, ["--bytes", str(third)], plan_file)
    assert 2 <= len(slices) <= 6, len(slices)
    with rasterio.open(original) as src:
        tile_h, tile_w = src.block_shapes[0]
        assert_exact_cover([d["window"] for d in slices], src.width, src.height, tile_w, tile_h)
        for i, d in enumerate(slices):
            check_window(fetch(tessera_bin, plan_file, i, tmp_path / f"p{i}.tif"), src, d["window"], src)


def test_slice_to_stdout_is_the_same_geotiff(
    tmp_path: Path, tessera_bin: Path, originals: dict[str, Path]
) -> None:
    """Without ``-o`` the window's GeoTIFF is written to stdout, byte for
    byte the same as the file."""
    url = place(originals["f32-deflate-pred3"], str(tmp_path / "store"))
    index(tessera_bin, url)
    plan_file = tmp_path / "windows.json"
    plan(tessera_bin, url, ["--count", "4"], plan_file)
    part = fetch(tessera_bin, plan_file, 2, tmp_path / "p2.tif")
    out = subprocess.run([str(tessera_bin), "slice", "get", str(plan_file), "--slice", "2"],
                         capture_output=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout == part.read_bytes()


@pytest.mark.parametrize("plan_name", ["count4", "level1-count3"])
def test_gcps_move_with_the_window(
    store_base: str, tmp_path: Path, tessera_bin: Path, plan_name: str
) -> None:
    """A raster georeferenced by ground control points (several tiepoints,
    no pixel scale): a window's GCPs are those of the original (or of its
    overview) with their pixel positions moved to the window's origin, as
    rasterio has them for the window; a raster tessera cannot move them for
    must be refused with an error that names them."""
    from rasterio.control import GroundControlPoint

    path = tmp_path / "gcps.tif"
    width, height = 700, 600
    gcps = [
        GroundControlPoint(row=0, col=0, x=10.0, y=50.0),
        GroundControlPoint(row=0, col=width, x=10.7, y=50.05),
        GroundControlPoint(row=height, col=0, x=9.95, y=49.4),
        GroundControlPoint(row=height, col=width, x=10.66, y=49.45),
        GroundControlPoint(row=321.5, col=123.25, x=10.1, y=49.8),
    ]
    data = np.random.default_rng(11).integers(0, 250, (1, height, width), dtype=np.uint8)
    with rasterio.open(path, "w", driver="GTiff", tiled=True, blockxsize=256, blockysize=256,
                       width=width, height=height, count=1, dtype="uint8", compress="DEFLATE",
                       gcps=gcps, crs="EPSG:4326") as dst:
        dst.write(data)
        dst.build_overviews([2], Resampling.nearest)
    url = place(path, store_base)
    args = PLANS[plan_name]
    level = plan_level(args)
    plan_file = tmp_path / "windows.json"
    steps = [["index", url], ["slice", url, *args, "-o", str(plan_file)]]
    for step in steps:
        proc = subprocess.run([str(tessera_bin), *step], capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            assert "GCP" in proc.stderr or "tiepoint" in proc.stderr.lower(), proc.stderr
            return
    slices = json.loads(plan_file.read_text())
    with rasterio.open(path) as src:
        ref = rasterio.open(path, overview_level=level - 1) if level else src
        try:
            ref_gcps, ref_crs = ref.gcps
            assert len(ref_gcps) == len(gcps)
            for i, d in enumerate(slices):
                x, y, w, h = d["window"]
                out = tmp_path / f"p{i}.tif"
                proc = subprocess.run(
                    [str(tessera_bin), "slice", "get", str(plan_file), "--slice", str(i), "-o", str(out)],
                    capture_output=True, text=True, timeout=600,
                )
                if proc.returncode != 0:
                    assert "GCP" in proc.stderr or "tiepoint" in proc.stderr.lower(), proc.stderr
                    return
                with rasterio.open(out) as got:
                    assert_same_pixels(got.read(), ref.read(window=Window(x, y, w, h)))
                    got_gcps, got_crs = got.gcps
                    assert got_crs == ref_crs
                    assert len(got_gcps) == len(ref_gcps)
                    for g, r in zip(got_gcps, ref_gcps):
                        assert (g.x, g.y) == (r.x, r.y)
                        assert math.isclose(g.col, r.col - x, abs_tol=1e-6), (i, d["window"], g, r)
                        assert math.isclose(g.row, r.row - y, abs_tol=1e-6), (i, d["window"], g, r)
        finally:
            if level:
                ref.close()


# -- index cost on a large COG ---------------------------------------------------------


@pytest.fixture(scope="module")
def large_cog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An 8000x8000 uint8 COG of noise (DEFLATE cannot shrink it), 256-pixel
    tiles: over 50 MB, 1024 tiles at full resolution, and overviews."""
    path = tmp_path_factory.mktemp("cog-large") / "large.tif"
    size = 8000
    rng = np.random.default_rng(7)
    profile = dict(driver="COG", width=size, height=size, count=1, dtype="uint8", crs="EPSG:32633",
                   transform=from_origin(600_000.0, 5_000_000.0, 1.0, 1.0), compress="DEFLATE",
                   level=1, blocksize=256, num_threads="ALL_CPUS")
    with rasterio.open(path, "w", **profile) as dst:
        step = 1000
        for y in range(0, size, step):
            block = rng.integers(0, 256, (1, step, size), dtype=np.uint8)
            dst.write(block, window=Window(0, y, size, step))
    assert path.stat().st_size >= 50_000_000
    return path


def test_index_of_a_large_cog_takes_few_reads(
    store_base: str, tmp_path: Path, tessera_bin: Path, large_cog: Path
) -> None:
    """Indexing reads the directories only, in a few ranged reads, however
    big the tile tables; the last (partial) tile still comes out right."""
    url = place(large_cog, store_base)
    idx = index(tessera_bin, url)
    with rasterio.open(large_cog) as src:
        tile_h, tile_w = src.block_shapes[0]
        assert idx["records"] == tiles_of(src.width, src.height, tile_w, tile_h)
        assert idx["size"] == large_cog.stat().st_size
        assert 1 <= idx["reads"] <= 4, idx["reads"]
        plan_file = tmp_path / "windows.json"
        slices = plan(tessera_bin, url, ["--records", "1"], plan_file)
        assert len(slices) == idx["records"]
        for i in (0, len(slices) - 1):
            check_window(fetch(tessera_bin, plan_file, i, tmp_path / f"p{i}.tif"), src, slices[i]["window"], src)


# -- bad input -----------------------------------------------------------------------


def test_striped_geotiff_is_refused(store_base: str, tmp_path: Path, tessera_bin: Path) -> None:
    """A striped (not tiled) GeoTIFF cannot be cut into windows: an error
    that says so, and no index."""
    path = tmp_path / "striped.tif"
    data = np.arange(300 * 200, dtype=np.uint16).reshape(1, 200, 300)
    with rasterio.open(path, "w", driver="GTiff", width=300, height=200, count=1, dtype="uint16",
                       crs="EPSG:32633", transform=from_origin(1000.0, 2000.0, 1.0, 1.0),
                       compress="DEFLATE") as dst:
        dst.write(data)
    with rasterio.open(path) as src:
        assert src.block_shapes[0][1] == src.width  # strips
    url = place(path, store_base)
    proc = run(tessera_bin, "index", url, ok=False)
    assert "striped" in proc.stderr, proc.stderr
    assert not exists(f"{url}.tessera-index.json")


def _not_tiff(kind: str, originals: dict[str, Path]) -> bytes:
    """Bytes that are not a usable TIFF."""
    if kind == "random":
        return np.random.default_rng(3).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    if kind == "text":
        return b"hello, this is not a TIFF\n" * 40
    if kind == "empty":
        return b""
    if kind == "header-only":
        return b"II*\x00"
    # a COG cut short: the directories are there, the tiles are not
    return originals["u8-rgb-deflate-pred2"].read_bytes()[:3000]


@pytest.mark.parametrize("kind", ["random", "text", "empty", "header-only", "truncated"])
def test_not_a_tiff_is_a_clear_error(
    store_base: str, tessera_bin: Path, originals: dict[str, Path], kind: str
) -> None:
    """A file named .tif that is not a (whole) TIFF: an error naming the
    object and TIFF, and no index."""
    if kind == "empty" and store_base.startswith("s3://"):
        pytest.skip("pyarrow cannot put an empty object on the test S3 server")
    url = f"{store_base}/{unique('x')}.tif"
    put(url, _not_tiff(kind, originals))
    proc = run(tessera_bin, "index", url, ok=False)
    assert "TIFF" in proc.stderr, proc.stderr
    assert url.rsplit("/", 1)[1] in proc.stderr, proc.stderr
    assert not exists(f"{url}.tessera-index.json")


def test_modified_after_indexing_is_refused(
    store_base: str, tmp_path: Path, tessera_bin: Path, originals: dict[str, Path]
) -> None:
    """A COG rewritten after indexing (same size, one byte of a tile
    changed): fetching a window fails, saying the object changed since it
    was indexed, and writes no file."""
    original = originals["u8-rgb-deflate-pred2"]
    url = place(original, store_base, name="changing.tif")
    idx = index(tessera_bin, url)
    plan_file = tmp_path / "windows.json"
    slices = plan(tessera_bin, url, ["--count", "4"], plan_file)
    fetch(tessera_bin, plan_file, 0, tmp_path / "before.tif")

    data = bytearray(original.read_bytes())
    offset = slices[1]["tiles"][0][0] + 10
    data[offset] ^= 0xFF
    if url.startswith("s3://"):
        put(url, bytes(data))
    else:
        with open(url, "r+b") as f:  # in place: the same file, the same size
            f.seek(offset)
            f.write(data[offset : offset + 1])
    assert len(get(url)) == idx["size"]

    out = tmp_path / "after.tif"
    proc = run(tessera_bin, "slice", "get", str(plan_file), "--slice", "1", "-o", str(out), ok=False)
    assert "changed since it was indexed" in proc.stderr, proc.stderr
    assert not out.exists()


def test_bad_plans_are_refused(store_base: str, tmp_path: Path, tessera_bin: Path, originals: dict[str, Path]) -> None:
    """Malformed grids, zero sizes and a level past the last overview are
    errors, and write no plan."""
    original = originals["u8-rgb-deflate-pred2"]
    url = place(original, store_base)
    index(tessera_bin, url)
    with rasterio.open(original) as src:
        n_levels = 1 + len(src.overviews(1))
    proc = run(tessera_bin, "slice", url, "--level", str(n_levels), "-o", str(tmp_path / "a.json"), ok=False)
    assert f"level {n_levels} does not exist" in proc.stderr, proc.stderr
    for grid in ["3", "0x2", "2x0", "ax2"]:
        run(tessera_bin, "slice", url, "--grid", grid, "-o", str(tmp_path / "b.json"), ok=False)
    for option in ["--count", "--records", "--bytes"]:
        run(tessera_bin, "slice", url, option, "0", "-o", str(tmp_path / "b.json"), ok=False)
    # --level cuts by --count only
    run(tessera_bin, "slice", url, "--level", "1", "--grid", "2x2", "-o", str(tmp_path / "b.json"), ok=False)
    assert not (tmp_path / "a.json").exists() and not (tmp_path / "b.json").exists()

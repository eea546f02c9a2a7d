"""Point clouds and rasters through the Python API: the same registry as
the command line, slices that pickle, a point slice as a pyarrow.Table."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest

import tessera

laspy = pytest.importorskip("laspy")


def _write_las(path, n: int = 5000, compressed: bool = False) -> "laspy.LasData":
    header = laspy.LasHeader(point_format=1, version="1.2")
    header.scales = np.array([0.01, 0.01, 0.01])
    header.offsets = np.array([1000.0, 2000.0, 0.0])
    las = laspy.LasData(header)
    rng = np.random.default_rng(11)
    las.x = 1000.0 + rng.uniform(0, 500, n)
    las.y = 2000.0 + rng.uniform(0, 500, n)
    las.z = rng.uniform(0, 50, n)
    las.intensity = rng.integers(0, 4000, n, dtype=np.uint16)
    las.return_number = rng.integers(1, 3, n, dtype=np.uint8)
    las.number_of_returns = np.full(n, 2, dtype=np.uint8)
    las.classification = rng.integers(0, 10, n, dtype=np.uint8)
    las.gps_time = np.arange(n, dtype=np.float64) * 0.25
    las.write(str(path))
    return laspy.read(str(path))


@pytest.mark.parametrize("ext", ["las", "laz"])
def test_point_cloud_slices_from_python(tmp_path, ext):
    path = tmp_path / f"tile.{ext}"
    original = _write_las(path, n=130_000 if ext == "laz" else 5000)
    index = tessera.index(str(path))
    assert index.format == ext and index.records == len(original.points)
    assert index.compression is None and index.checkpoints is None
    slices = index.plan(count=3)
    assert sum(s.record_count for s in slices) == len(original.points)
    xs, times = [], []
    for s in slices:
        # A slice pickles small and fetches as a standalone file.
        s2 = pickle.loads(pickle.dumps(s))
        assert s2 == s and len(pickle.dumps(s)) < 4096
        part = laspy.read(io.BytesIO(s2.fetch()))
        assert part.header.point_count == s.record_count == len(part.points)
        table = s2.to_arrow()
        assert table.num_rows == s.record_count
        np.testing.assert_allclose(table["x"].to_numpy(), np.asarray(part.x))
        assert table["gps_time"].to_pylist() == list(np.asarray(part.gps_time))
        xs.append(np.asarray(part.x))
        times.append(np.asarray(part.gps_time))
        assert s.ranges is None and s.detail["head"][0] == 0
    np.testing.assert_array_equal(np.concatenate(times), np.asarray(original.gps_time))
    np.testing.assert_allclose(np.concatenate(xs), np.asarray(original.x))
    with pytest.raises(tessera.InvalidInputError):
        list(slices[0].records())
    with pytest.raises(tessera.InvalidInputError):
        index.plan(count=2, grid=(2, 2))


def test_point_cloud_bad_input_from_python(tmp_path):
    path = tmp_path / "short.las"
    path.write_bytes(b"LASF" + b"\0" * 100)
    with pytest.raises(tessera.InvalidInputError, match="truncated"):
        tessera.index(str(path))
    with pytest.raises(tessera.InvalidInputError, match="unknown format"):
        tessera.index(str(path), format="bam")
    good = tmp_path / "tile.las"
    _write_las(good, n=100)
    tessera.index(str(good))
    slices = tessera.plan(str(good), count=2)
    data = bytearray(good.read_bytes())
    data[-1] ^= 1
    good.write_bytes(bytes(data))
    with pytest.raises(tessera.StaleIndexError):
        slices[0].fetch()
    with pytest.raises(tessera.StaleIndexError):
        tessera.plan(str(good), count=2)


def test_cog_windows_from_python(tmp_path):
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    path = tmp_path / "scene.tif"
    data = (np.arange(3 * 300 * 200, dtype=np.uint32) % 251).astype(np.uint8).reshape(3, 300, 200)
    with rasterio.open(
        path, "w", driver="GTiff", width=200, height=300, count=3, dtype="uint8",
        tiled=True, blockxsize=64, blockysize=64, compress="deflate",
        transform=from_origin(500000, 4000000, 10, 10), crs="EPSG:32633", nodata=0,
    ) as dst:
        dst.write(data)
    index = tessera.index(str(path))
    assert index.format == "cog" and index.records == 4 * 5
    windows = index.plan(grid=(2, 2))
    seen = 0
    with rasterio.open(path) as src:
        for w in windows:
            x, y, width, height = w.detail["window"]
            with rasterio.open(io.BytesIO(pickle.loads(pickle.dumps(w)).fetch())) as part:
                win = Window(x, y, width, height)
                np.testing.assert_array_equal(part.read(), src.read(window=win))
                assert part.transform == src.window_transform(win)
                assert part.crs == src.crs and part.nodata == 0
            seen += width * height
    assert seen == 200 * 300
    with pytest.raises(tessera.InvalidInputError):
        windows[0].to_arrow()

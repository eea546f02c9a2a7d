"""LAS/LAZ point clouds through the ``tessera`` command line: index, plan,
fetch every slice, and check each slice with laspy and lazrs.

Each test runs on a local folder and on the test S3 server. The point
clouds are written here with laspy (LAZ through lazrs, with small or
variable-size chunks so that a few thousand points make several chunks),
uploaded when the store is S3, and every slice is fetched with
``tessera slice get`` into a local file. A slice must be a standalone file
whose header counts, counts by return and bounds are those of its own
points, with the original's VLRs and EVLRs byte for byte and, for LAZ, the
original's chunks byte for byte behind a rebuilt chunk table; all slices
together must hold the original's points exactly and in order.

Every expected value is computed from the files the tests wrote.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import laspy
import lazrs
import numpy as np
import pytest
from laspy._compression.lazrsbackend import LazrsBackend, LazrsPointWriter
from laspy.vlrs.vlrlist import VLRList

from _objects import put_at
from conftest import unique

# -- writing point clouds -------------------------------------------------------


class _ChunkedLazrsWriter(LazrsPointWriter):
    """A lazrs point writer with a chosen chunk size, or variable-size chunks.

    laspy always compresses with lazrs' default of 50,000 points a chunk;
    this writer swaps the LASzip VLR before laspy writes it: with a fixed
    ``chunk_size`` (the VLR's chunk size field), or with variable-size
    chunks of the sizes in ``chunk_sizes`` (used in turn, cyclically).
    """

    def __init__(
        self,
        dest: BinaryIO,
        point_format: laspy.PointFormat,
        chunk_size: int | None,
        chunk_sizes: list[int] | None,
    ) -> None:
        super().__init__(dest, point_format, parallel=False)
        self._sizes = chunk_sizes
        self._chunk = 0
        self._in_chunk = 0
        if chunk_sizes is not None:
            self.vlr = lazrs.LazVlr.new_for_compression(
                point_format.id, point_format.num_extra_bytes, use_variable_size_chunks=True
            )
        elif chunk_size is not None:
            record = bytearray(self.vlr.record_data())
            struct.pack_into("<I", record, 12, chunk_size)  # the LASzip VLR's chunk size
            self.vlr = lazrs.LazVlr(bytes(record))
            assert self.vlr.chunk_size() == chunk_size

    def write_points(self, points: laspy.PackedPointRecord) -> None:
        """Compress ``points``, closing a chunk whenever it is full."""
        assert self.compressor is not None
        data = np.frombuffer(points.array, np.uint8)
        if self._sizes is None:
            self.compressor.compress_many(data)
            return
        size = self.vlr.item_size()
        done, n = 0, len(points)
        while done < n:
            room = self._sizes[self._chunk % len(self._sizes)] - self._in_chunk
            if room == 0:
                # Close the full chunk only when more points follow, so the
                # last chunk is closed by done() and never left empty.
                self.compressor.finish_current_chunk()
                self._chunk += 1
                self._in_chunk = 0
                continue
            take = min(room, n - done)
            self.compressor.compress_many(data[done * size : (done + take) * size])
            done += take
            self._in_chunk += take


class ChunkedLazrs(LazrsBackend):
    """A laspy LAZ backend writing with :class:`_ChunkedLazrsWriter`."""

    def __init__(self, chunk_size: int | None = None, chunk_sizes: list[int] | None = None) -> None:
        super().__init__(parallel=False)
        self.chunk_size = chunk_size
        self.chunk_sizes = chunk_sizes

    def create_writer(self, dest: Any, header: laspy.LasHeader) -> _ChunkedLazrsWriter:
        """The writer laspy's LasWriter compresses through."""
        return _ChunkedLazrsWriter(dest, header.point_format, self.chunk_size, self.chunk_sizes)


@dataclass(frozen=True)
class Cloud:
    """A point cloud to write: LAS version, point format and how it is stored."""

    name: str
    version: str
    point_format: int
    points: int
    laz: bool = False
    chunk_size: int | None = None
    chunk_sizes: list[int] | None = None
    evlrs: bool = False
    extra_bytes: bool = False
    seed: int = 0

    @property
    def suffix(self) -> str:
        """The file name's extension, which tells tessera the format."""
        return ".laz" if self.laz else ".las"


CLOUDS = [
    Cloud("las12-pf1", "1.2", 1, 5_003, seed=1),
    Cloud("las14-pf1", "1.4", 1, 3_001, seed=2),
    Cloud("las14-pf6-evlr", "1.4", 6, 5_000, evlrs=True, extra_bytes=True, seed=3),
    Cloud("laz12-pf1-chunks1000", "1.2", 1, 7_777, laz=True, chunk_size=1_000, seed=4),
    # laspy's own chunk size (50,000 points): three chunks, the last partial.
    Cloud("laz14-pf6-evlr-default-chunks", "1.4", 6, 120_000, laz=True, evlrs=True, seed=5),
    Cloud(
        "laz14-pf7-variable-chunks",
        "1.4",
        7,
        9_000,
        laz=True,
        chunk_sizes=[900, 2_500, 300, 1_700, 1],
        evlrs=True,
        extra_bytes=True,
        seed=6,
    ),
]


def make_points(cloud: Cloud) -> laspy.LasData:
    """Random points of every kind the slices must keep: coordinates with
    scales and offsets, intensity, returns 1..3 of 3, classification, GPS
    time, scan angle, user data, point source, flags (and RGB, extra bytes)."""
    rng = np.random.default_rng(cloud.seed)
    header = laspy.LasHeader(point_format=cloud.point_format, version=cloud.version)
    header.scales = np.array([0.001, 0.001, 0.01])
    header.offsets = np.array([500_000.0, 4_000_000.0, -50.0])
    header.system_identifier = "tessera test"
    header.generating_software = f"test_geo {cloud.name}"[:32]
    if cloud.extra_bytes:
        header.add_extra_dim(laspy.ExtraBytesParams(name="height", type=np.float32))
    header.vlrs.append(
        laspy.VLR(
            user_id="tessera-test", record_id=7, description="a custom VLR", record_data=b"\x00\x01\xfe\xffsome bytes"
        )
    )
    las = laspy.LasData(header)
    n = cloud.points
    las.x = rng.uniform(500_000.0, 501_000.0, n)
    las.y = rng.uniform(4_000_000.0, 4_001_000.0, n)
    las.z = rng.uniform(-40.0, 900.0, n)
    las.intensity = rng.integers(0, 65_536, n, dtype=np.uint16)
    las.return_number = rng.integers(1, 4, n, dtype=np.uint8)
    las.number_of_returns = np.full(n, 3, dtype=np.uint8)
    las.scan_direction_flag = rng.integers(0, 2, n, dtype=np.uint8)
    las.classification = rng.integers(0, 32, n, dtype=np.uint8)
    las.user_data = rng.integers(0, 256, n, dtype=np.uint8)
    las.point_source_id = rng.integers(0, 65_536, n, dtype=np.uint16)
    las.gps_time = rng.uniform(0.0, 1e6, n)
    if cloud.point_format >= 6:
        las.scan_angle = rng.integers(-30_000, 30_001, n, dtype=np.int16)
    else:
        las.scan_angle_rank = rng.integers(-90, 91, n, dtype=np.int8)
    if cloud.point_format in (7, 8):
        las.red = rng.integers(0, 65_536, n, dtype=np.uint16)
        las.green = rng.integers(0, 65_536, n, dtype=np.uint16)
        las.blue = rng.integers(0, 65_536, n, dtype=np.uint16)
    if cloud.extra_bytes:
        las.height = rng.uniform(0.0, 30.0, n).astype(np.float32)
    if cloud.evlrs:
        wkt = (
            'PROJCS["WGS 84 / UTM zone 31N",GEOGCS["WGS 84",DATUM["WGS_1984",'
            'SPHEROID["WGS 84",6378137,298.257223563]],PRIMEM["Greenwich",0],'
            'UNIT["degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],'
            'UNIT["metre",1],AUTHORITY["EPSG","32631"]]'
        )
        las.evlrs = VLRList(
            [
                laspy.VLR(
                    user_id="LASF_Projection", record_id=2112, description="OGC WKT", record_data=wkt.encode() + b"\0"
                ),
                # Larger than a VLR can hold (65,535 bytes): only an EVLR can.
                laspy.VLR(user_id="tessera-test", record_id=8, description="a big EVLR", record_data=rng.bytes(70_001)),
            ]
        )
    return las


def write_cloud(cloud: Cloud, path: Path) -> None:
    """Write ``cloud`` to the local file ``path`` (.las or .laz)."""
    las = make_points(cloud)
    if cloud.laz:
        backend = ChunkedLazrs(cloud.chunk_size, cloud.chunk_sizes)
        with open(path, "wb") as f:
            las.write(f, do_compress=True, laz_backend=backend)
    else:
        las.write(str(path))


# -- reading LAS bytes ----------------------------------------------------------


@dataclass
class Raw:
    """A LAS/LAZ file's bytes and the header fields the checks need."""

    data: bytes
    header_size: int = 0
    point_data: int = 0
    vlr_count: int = 0
    point_format: int = 0
    record_length: int = 0
    legacy_count: int = 0
    legacy_by_return: tuple[int, ...] = ()
    minor: int = 0
    evlr_start: int = 0
    evlr_count: int = 0
    count: int = 0
    by_return: tuple[int, ...] = ()
    laszip: bytes | None = None
    vlrs: list[tuple[bytes, int, bytes]] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> Raw:
        """Parse the header and the VLRs of the file at ``path`` (LAS 1.0–1.4)."""
        d = path.read_bytes()
        assert d[:4] == b"LASF", path
        r = cls(d)
        r.minor = d[25]
        r.header_size, r.point_data, r.vlr_count = struct.unpack_from("<HII", d, 94)
        r.point_format = d[104] & 0x3F
        r.record_length, r.legacy_count = struct.unpack_from("<HI", d, 105)
        r.legacy_by_return = struct.unpack_from("<5I", d, 111)
        r.count = r.legacy_count
        if r.minor >= 4:
            r.evlr_start, r.evlr_count, r.count = struct.unpack_from("<QIQ", d, 235)
            r.by_return = struct.unpack_from("<15Q", d, 255)
        pos = r.header_size
        for _ in range(r.vlr_count):
            user = d[pos + 2 : pos + 18].rstrip(b"\0")
            record_id, length = struct.unpack_from("<HH", d, pos + 18)
            body = d[pos + 54 : pos + 54 + length]
            r.vlrs.append((user, record_id, body))
            if user == b"laszip encoded" and record_id == 22204:
                r.laszip = body
            pos += 54 + length
        assert pos == r.point_data, "the VLRs must end where the points start"
        return r

    @property
    def vlr_bytes(self) -> bytes:
        """The VLRs, as stored."""
        return self.data[self.header_size : self.point_data]

    @property
    def evlr_bytes(self) -> bytes:
        """The EVLRs, as stored (to the end of the file)."""
        return self.data[self.evlr_start :] if self.evlr_count else b""

    def chunk_table(self) -> tuple[int, list[int], list[int]]:
        """LAZ: where the chunk table starts, each chunk's points and bytes."""
        assert self.laszip is not None
        vlr = lazrs.LazVlr(self.laszip)
        (table_at,) = struct.unpack_from("<q", self.data, self.point_data)
        src = io.BytesIO(self.data)
        src.seek(self.point_data)
        entries = lazrs.read_chunk_table(src, vlr)
        byte_counts = [b for _, b in entries]
        if vlr.uses_variable_size_chunks():
            points = [p for p, _ in entries]
        else:
            # Fixed-size chunks: every chunk is full but the last.
            left, points = self.count, []
            for _ in entries:
                points.append(min(vlr.chunk_size(), left))
                left -= points[-1]
        return table_at, points, byte_counts


# -- the command line and the store ---------------------------------------------


def run(tessera_bin: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``tessera ARGS``; with ``ok``, fail the test on a non-zero exit."""
    out = subprocess.run([str(tessera_bin), *args], capture_output=True, text=True, timeout=300)
    if ok:
        assert out.returncode == 0, f"tessera {' '.join(args)} failed:\n{out.stderr}"
    return out


def plan(tessera_bin: Path, url: str, out: Path, *strategy: str) -> list[dict[str, Any]]:
    """``tessera slice URL STRATEGY -o OUT``: the slices."""
    run(tessera_bin, "slice", url, *strategy, "-o", str(out))
    slices = json.loads(out.read_text())
    assert isinstance(slices, list)
    return slices


def fetch_all(tessera_bin: Path, slices_file: Path, count: int, folder: Path, suffix: str) -> list[Path]:
    """``tessera slice get`` every slice into ``folder``: the files."""
    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    for i in range(count):
        part = folder / f"part{i}{suffix}"
        run(tessera_bin, "slice", "get", str(slices_file), "--slice", str(i), "-o", str(part))
        parts.append(part)
    return parts


# -- the checks -----------------------------------------------------------------

# Header bytes a slice recomputes: legacy counts (107..131), bounds
# (179..227), and in 1.4 the first EVLR's offset and the 64-bit counts.
RECOMPUTED = [(107, 131), (179, 227), (235, 243), (247, 375)]


def masked_header(raw: Raw) -> bytes:
    """The header's bytes with the recomputed fields zeroed."""
    h = bytearray(raw.data[: raw.header_size])
    for a, b in RECOMPUTED:
        h[a : min(b, len(h))] = bytes(max(0, min(b, len(h)) - a))
    return bytes(h)


def check_slice(orig: Raw, orig_las: laspy.LasData, desc: dict[str, Any], part: Path) -> np.ndarray:
    """Check one fetched slice against the original; its points' array."""
    las = laspy.read(str(part))
    raw = Raw.read(part)
    first, count = desc["first_record"], desc["record_count"]
    pts = las.points.array
    where = f"slice {desc['slice']} ({part.name})"

    # Counts: the header's, the points read, and the plan's agree.
    assert len(pts) == count, where
    assert las.header.point_count == count, where
    assert raw.count == count, where
    assert pts.dtype == orig_las.points.array.dtype, where
    assert pts.tobytes() == orig_las.points.array[first : first + count].tobytes(), where

    # Bounds of the slice's own points, scaled as laspy scales them.
    assert count > 0, where
    assert list(las.header.mins) == [las.x.min(), las.y.min(), las.z.min()], where
    assert list(las.header.maxs) == [las.x.max(), las.y.max(), las.z.max()], where

    # Counts by return (1..15 where the format has them, legacy 1..5).
    by_return = np.bincount(np.asarray(las.return_number), minlength=16)[1:16]
    header_by_return = list(las.header.number_of_points_by_return)
    assert header_by_return == list(by_return[: len(header_by_return)]), where
    if raw.minor >= 4:
        assert list(raw.by_return) == list(by_return), where
    if raw.point_format < 6:
        assert raw.legacy_count == count, where
        assert list(raw.legacy_by_return) == list(by_return[:5]), where
    else:
        # Point formats 6..10 must leave the legacy counts zero.
        assert raw.legacy_count == 0 and raw.legacy_by_return == (0,) * 5, where

    # Everything else in the header, the VLRs and the EVLRs: byte for byte.
    assert masked_header(raw) == masked_header(orig), where
    assert raw.vlr_bytes == orig.vlr_bytes, where
    assert raw.evlr_count == orig.evlr_count, where
    assert raw.evlr_bytes == orig.evlr_bytes, where
    evlr_data = [v.record_data_bytes() for v in las.evlrs or []]
    assert evlr_data == [v.record_data_bytes() for v in orig_las.evlrs or []], where
    assert len(las.vlrs) == len(orig_las.vlrs), where

    # Where the points end: the EVLRs, or the end of the file.
    data_end = raw.evlr_start if raw.evlr_count else len(raw.data)
    if orig.laszip is None:
        assert raw.point_data + count * raw.record_length == data_end, where
        assert raw.data[raw.point_data : data_end] == orig.data[desc["data"][0][0] : desc["data"][-1][1]], where
    else:
        # The original's chunks, byte for byte, then a rebuilt chunk table.
        table_at, points, byte_counts = raw.chunk_table()
        chunks = raw.data[raw.point_data + 8 : table_at]
        assert chunks == orig.data[desc["data"][0][0] : desc["data"][-1][1]], where
        assert points == desc["chunks"]["points"] and byte_counts == desc["chunks"]["bytes"], where
        assert sum(points) == count and sum(byte_counts) == len(chunks), where
        assert table_at < data_end, where
    return pts


def expected_laz_records(chunk_points: list[int], n: int) -> list[int]:
    """Points per slice of ``--records n`` over whole chunks: chunks are
    added to a slice until it holds at least ``n`` points."""
    out: list[int] = []
    acc = 0
    for p in chunk_points:
        if acc >= n:
            out.append(acc)
            acc = 0
        acc += p
    out.append(acc)
    return out


STRATEGIES = ["count1", "count3", "count7", "records", "bytes"]


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("cloud", CLOUDS, ids=[c.name for c in CLOUDS])
def test_slices_are_standalone_files(
    tessera_bin: Path, store_base: str, tmp_path: Path, cloud: Cloud, strategy: str
) -> None:
    """Index, plan, fetch every slice; each slice is a valid standalone
    LAS/LAZ file of its own points, and the slices hold every point once."""
    local = tmp_path / f"cloud{cloud.suffix}"
    write_cloud(cloud, local)
    orig = Raw.read(local)
    orig_las = laspy.read(str(local))
    n = cloud.points
    assert orig_las.header.point_count == n and orig.count == n
    chunk_points: list[int] = []
    chunk_bytes: list[int] = []
    if cloud.laz:
        assert orig.laszip is not None
        _, chunk_points, chunk_bytes = orig.chunk_table()
        assert len(chunk_points) >= 3, "the test needs several chunks"
        if cloud.chunk_sizes:
            assert len(set(chunk_points)) > 2, "the test needs chunks of several sizes"

    url = put_at(store_base, f"{unique('geo')}/{cloud.name}{cloud.suffix}", local.read_bytes())
    out = run(tessera_bin, "index", url)
    assert f"{n} records" in out.stderr, out.stderr
    if not url.startswith("s3://"):
        index = json.loads(Path(url + ".tessera-index.json").read_text())
        assert index["records"] == n

    # The strategy, with the sizes expected of it from the file itself.
    records = max(1, n // 4 + 7)
    size = len(orig.data)
    if strategy.startswith("count"):
        args = ["--count", strategy[len("count") :]]
    elif strategy == "records":
        args = ["--records", str(records)]
    else:
        args = ["--bytes", str(size // 5)]
    slices = plan(tessera_bin, url, tmp_path / "slices.json", *args)
    counts = [s["record_count"] for s in slices]

    # The plan: in order, every point once, the strategy obeyed.
    assert sum(counts) == n
    assert [s["first_record"] for s in slices] == list(np.cumsum([0, *counts[:-1]]))
    assert [s["slice"] for s in slices] == list(range(len(slices)))
    assert all(s["slices"] == len(slices) for s in slices)
    assert all(c > 0 for c in counts)
    starts: set[int] = set()
    if cloud.laz:
        # Slices are cut at chunk boundaries.
        bounds = set(np.cumsum([0, *chunk_points]).tolist())
        starts = {s["first_record"] for s in slices}
        assert starts <= bounds, (starts, bounds)
    if strategy.startswith("count"):
        c = int(args[1])
        if cloud.laz:
            assert 1 <= len(slices) <= min(c, len(chunk_points))
            if len(slices) == c:
                # Even: each cut is at the chunk boundary nearest its share.
                assert max(abs(k - n / c) for k in counts) <= max(chunk_points)
        else:
            assert len(slices) == min(c, n)
            assert max(counts) - min(counts) <= 1
        if c == 1:
            assert len(slices) == 1
    elif strategy == "records":
        if cloud.laz:
            assert counts == expected_laz_records(chunk_points, records)
        else:
            assert counts[:-1] == [records] * (len(counts) - 1) and 0 < counts[-1] <= records
    else:
        stored = [sum(b - a for a, b in s["data"]) for s in slices]
        unit = max(chunk_bytes) if cloud.laz else orig.record_length
        assert all(abs(b - size // 5) <= unit for b in stored[:-1]), (stored, size // 5, unit)
        assert len(slices) >= 2

    parts = fetch_all(tessera_bin, tmp_path / "slices.json", len(slices), tmp_path / "parts", cloud.suffix)
    arrays = [check_slice(orig, orig_las, s, p) for s, p in zip(slices, parts)]
    whole = np.concatenate(arrays)
    assert whole.dtype == orig_las.points.array.dtype
    assert len(whole) == n
    assert whole.tobytes() == orig_las.points.array.tobytes()
    assert np.array_equal(whole, orig_las.points.array)


# -- bad input ------------------------------------------------------------------


def small_las(tmp_path: Path, cloud: Cloud) -> bytes:
    """The bytes of a small file written from ``cloud``."""
    p = tmp_path / f"small{cloud.suffix}"
    write_cloud(cloud, p)
    return p.read_bytes()


@pytest.mark.parametrize(
    ("cloud", "keep"),
    [(CLOUDS[0], 100), (CLOUDS[0], 226), (CLOUDS[2], 100), (CLOUDS[2], 300)],
    ids=["1.2-100", "1.2-226", "1.4-100", "1.4-300"],
)
def test_truncated_header_is_refused(
    tessera_bin: Path, store_base: str, tmp_path: Path, cloud: Cloud, keep: int
) -> None:
    """A file cut inside its header (LAS 1.2: 227 bytes, 1.4: 375 bytes):
    indexing fails and says so."""
    data = small_las(tmp_path, cloud)
    assert keep < struct.unpack_from("<H", data, 94)[0]
    url = put_at(store_base, f"{unique('geo')}/cut.las", data[:keep])
    out = run(tessera_bin, "index", url, ok=False)
    assert out.returncode != 0
    assert "header" in out.stderr and "truncated" in out.stderr, out.stderr
    assert str(keep) in out.stderr, out.stderr


def test_truncated_points_are_refused(tessera_bin: Path, store_base: str, tmp_path: Path) -> None:
    """A LAS file cut inside its points: indexing fails and says the
    header counts more points than the object holds."""
    data = small_las(tmp_path, CLOUDS[0])
    url = put_at(store_base, f"{unique('geo')}/cut.las", data[: len(data) - 1000])
    out = run(tessera_bin, "index", url, ok=False)
    assert out.returncode != 0
    assert "truncated" in out.stderr and str(CLOUDS[0].points) in out.stderr, out.stderr


def test_not_a_las_file_is_refused(tessera_bin: Path, store_base: str) -> None:
    """An object named .las that is not LAS: indexing fails at the signature."""
    url = put_at(store_base, f"{unique('geo')}/text.las", b"x,y,z\n" * 100)
    out = run(tessera_bin, "index", url, ok=False)
    assert out.returncode != 0
    assert "LASF" in out.stderr, out.stderr


@pytest.mark.parametrize("damage", ["minus-one-no-tail", "inside-the-chunks", "past-the-end"])
def test_bad_chunk_table_offset_is_refused(tessera_bin: Path, store_base: str, tmp_path: Path, damage: str) -> None:
    """A LAZ file whose chunk table cannot be found: a clear error naming it."""
    cloud = CLOUDS[3]
    data = bytearray(small_las(tmp_path, cloud))
    raw = Raw.read(tmp_path / f"small{cloud.suffix}")
    table_at, _, byte_counts = raw.chunk_table()
    if damage == "minus-one-no-tail":
        # What a streaming writer leaves, without the offset it puts last.
        struct.pack_into("<q", data, raw.point_data, -1)
        data[-8:] = bytes(8)
    elif damage == "inside-the-chunks":
        struct.pack_into("<q", data, raw.point_data, raw.point_data + 8 + byte_counts[0] // 2)
    else:
        struct.pack_into("<q", data, raw.point_data, len(data) + 10)
        data[-8:] = bytes(8)
    assert bytes(data) != raw.data
    url = put_at(store_base, f"{unique('geo')}/damaged.laz", bytes(data))
    out = run(tessera_bin, "index", url, ok=False)
    assert out.returncode != 0, out.stderr
    assert "chunk table" in out.stderr, out.stderr
    assert table_at > raw.point_data


def test_chunk_table_offset_at_the_end(tessera_bin: Path, store_base: str, tmp_path: Path) -> None:
    """A LAZ file whose writer could not seek back: offset -1 at the points,
    the real offset in the file's last 8 bytes. It is indexed and sliced."""
    cloud = CLOUDS[3]
    data = bytearray(small_las(tmp_path, cloud))
    raw = Raw.read(tmp_path / f"small{cloud.suffix}")
    table_at, chunk_points, _ = raw.chunk_table()
    struct.pack_into("<q", data, raw.point_data, -1)
    data += struct.pack("<q", table_at)
    url = put_at(store_base, f"{unique('geo')}/streamed.laz", bytes(data))
    run(tessera_bin, "index", url)
    slices = plan(tessera_bin, url, tmp_path / "slices.json", "--count", "3")
    assert len(slices) == 3 and sum(s["record_count"] for s in slices) == cloud.points
    parts = fetch_all(tessera_bin, tmp_path / "slices.json", len(slices), tmp_path / "parts", ".laz")
    orig_las = laspy.read(str(tmp_path / f"small{cloud.suffix}"))
    got = np.concatenate([laspy.read(str(p)).points.array for p in parts])
    assert got.tobytes() == orig_las.points.array.tobytes()
    for p, s in zip(parts, slices):
        # Each slice is a regular LAZ file: the offset is where the table is.
        table_at_part, points, _ = Raw.read(p).chunk_table()
        assert table_at_part > 0 and sum(points) == s["record_count"]


@pytest.mark.parametrize("same_size", [True, False], ids=["same-size", "appended"])
@pytest.mark.parametrize("when", ["before-plan", "after-plan"])
def test_object_changed_after_indexing_is_refused(
    tessera_bin: Path, store_base: str, tmp_path: Path, when: str, same_size: bool
) -> None:
    """An object rewritten after it was indexed: planning (or, for a plan
    made before, fetching a slice) fails and says the object changed."""
    cloud = CLOUDS[3]
    data = small_las(tmp_path, cloud)
    raw = Raw.read(tmp_path / f"small{cloud.suffix}")
    key = f"{unique('geo')}/changing.laz"
    url = put_at(store_base, key, data)
    run(tessera_bin, "index", url)
    slices_file = tmp_path / "slices.json"
    if when == "after-plan":
        assert len(plan(tessera_bin, url, slices_file, "--count", "2")) == 2
    changed = bytearray(data)
    if same_size:
        # Another object of the same size: a point's bytes differ.
        at = raw.point_data + 8 + 100
        changed[at] ^= 0xFF
    else:
        changed += b"\0" * 16
    put_at(store_base, key, bytes(changed))
    if when == "before-plan":
        out = run(tessera_bin, "slice", url, "--count", "2", "-o", str(slices_file), ok=False)
    else:
        part = str(tmp_path / "p.laz")
        out = run(tessera_bin, "slice", "get", str(slices_file), "--slice", "1", "-o", part, ok=False)
    assert out.returncode != 0, out.stderr
    assert "changed since it was indexed" in out.stderr, out.stderr


def test_slice_number_out_of_range_is_refused(tessera_bin: Path, store_base: str, tmp_path: Path) -> None:
    """``slice get --slice N`` past the plan: an error, and no file."""
    cloud = CLOUDS[0]
    url = put_at(store_base, f"{unique('geo')}/a.las", small_las(tmp_path, cloud))
    run(tessera_bin, "index", url)
    slices = plan(tessera_bin, url, tmp_path / "slices.json", "--count", "2")
    part = tmp_path / "p.las"
    beyond = str(len(slices))
    out = run(tessera_bin, "slice", "get", str(tmp_path / "slices.json"), "--slice", beyond, "-o", str(part), ok=False)
    assert out.returncode != 0
    assert str(len(slices)) in out.stderr, out.stderr
    assert not part.exists() or part.stat().st_size == 0

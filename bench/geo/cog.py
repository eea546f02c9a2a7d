#!/usr/bin/env python3
"""Cloud-Optimized GeoTIFF slicing benchmark: a generated COG indexed by
tessera, cut into tile-aligned windows fetched two processes at a time,
against rasterio (GDAL) reading the same windows of the COG.

One generated COG (COG_SIZE x COG_SIZE pixels, default 16384: three uint8
bands of smooth patterns with noise, DEFLATE with the horizontal predictor,
512-pixel tiles, overviews: about 370 MB), then, medians of RUNS runs:

  (a) ``tessera index`` (the directories only: a few ranged reads; the
      index's ``reads`` is printed);
  (b) planning GRID (4x4) tile-aligned windows (``tessera slice --grid``) and
      evaluating all of them (``tessera slice get``, one process per window,
      WORKERS (2) at a time through xargs -P, each writing a standalone
      GeoTIFF: tiles copied, nothing decoded);
  (c) the peer: rasterio reading the same windows of the COG
      (``src.read(window=...)``, WORKERS processes of a multiprocessing pool);
  (d) rasterio decoding tessera's window files (open each, ``read()``),
      WORKERS processes, so that (b) + (d) compares with (c) decoded pixels
      for decoded pixels. (c) and (d) must give the same pixels: checked.

Every case runs in its own process, under /usr/bin/time when it is there:
its peak RSS is the largest of the process and the children it waited for,
its CPU time includes the children. This process never imports rasterio.
The file is local, so it is read through the page cache (warm after the
first run): the figures compare the work done on the bytes, not a network.

    python bench/geo/cog.py --tessera target/release/tessera --work /tmp/cog-bench
    COG_SIZE=2048 RUNS=1 python bench/geo/cog.py --tessera ... --work ...   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

from _measure import Cases, Run, spawn

TILE = 512
BANDS = 3
STRIP = 512  # rows generated at a time


# -- in a child process: generating and reading with rasterio -----------------------


def generate(path: Path, size: int) -> None:
    """Write a COG of ``size`` x ``size`` pixels, three uint8 bands: smooth
    patterns plus Gaussian noise (sigma 1), so that DEFLATE with the
    horizontal predictor keeps a bit under half the bytes. Written as an
    uncompressed tiled GTiff strip by strip (little memory), then copied
    to a COG by GDAL (tiles, overviews, layout)."""
    import numpy as np
    import rasterio
    import rasterio.shutil
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    rng = np.random.default_rng(1)
    tmp = path.with_suffix(".tmp.tif")
    profile = dict(driver="GTiff", width=size, height=size, count=BANDS, dtype="uint8",
                   tiled=True, blockxsize=TILE, blockysize=TILE, compress="NONE", bigtiff="IF_SAFER",
                   crs="EPSG:32633", transform=from_origin(500_000.0, 4_200_000.0, 1.0, 1.0))
    x = np.arange(size, dtype=np.float32)[None, :]
    with rasterio.open(tmp, "w", **profile) as dst:
        for r0 in range(0, size, STRIP):
            rows = min(STRIP, size - r0)
            y = np.arange(r0, r0 + rows, dtype=np.float32)[:, None]
            block = np.empty((BANDS, rows, size), np.uint8)
            for b in range(BANDS):
                v = (110.0 + 50.0 * np.sin(x / (97.0 + 13 * b) + y / 211.0)
                     + 40.0 * np.cos(y / (53.0 + 7 * b) - x / 389.0)
                     + rng.normal(0.0, 1.0, (rows, size)).astype(np.float32))
                block[b] = np.clip(v, 0, 255).astype(np.uint8)
            dst.write(block, window=Window(0, r0, size, rows))
    rasterio.shutil.copy(tmp, path, driver="COG", compress="DEFLATE", predictor=2,
                         blocksize=TILE, num_threads="ALL_CPUS", bigtiff="IF_SAFER")
    tmp.unlink()


def _read_window(task: tuple[str, list[int]]) -> tuple[int, int]:
    """Read one window of a raster with rasterio: (pixel bytes, CRC32)."""
    import zlib

    import rasterio
    from rasterio.windows import Window

    path, (x, y, w, h) = task
    with rasterio.open(path) as src:
        a = src.read(window=Window(x, y, w, h))
    return a.nbytes, zlib.crc32(a.tobytes())


def _read_whole(path: str) -> tuple[int, int]:
    """Read a whole raster with rasterio: (pixel bytes, CRC32)."""
    import zlib

    import rasterio

    with rasterio.open(path) as src:
        a = src.read()
    return a.nbytes, zlib.crc32(a.tobytes())


def read_windows(cog: str, windows_file: str, workers: int) -> None:
    """(c): the plan's windows read from the COG by a pool of processes;
    print their pixel bytes and CRCs."""
    import multiprocessing as mp

    windows = [d["window"] for d in json.loads(Path(windows_file).read_text())]
    with mp.get_context("spawn").Pool(workers) as pool:
        out = pool.map(_read_window, [(cog, w) for w in windows], chunksize=1)
    print(f"PIXELS {sum(n for n, _ in out)} CRCS {' '.join(str(c) for _, c in out)}")


def read_slices(folder: str, n: int, workers: int) -> None:
    """(d): tessera's window files read whole by a pool of processes; print
    their pixel bytes and CRCs."""
    import multiprocessing as mp

    paths = [str(Path(folder) / f"{i}.tif") for i in range(n)]
    with mp.get_context("spawn").Pool(workers) as pool:
        out = pool.map(_read_whole, paths, chunksize=1)
    print(f"PIXELS {sum(n for n, _ in out)} CRCS {' '.join(str(c) for _, c in out)}")


# -- measuring -------------------------------------------------------------------------


class Table(Cases):
    """Runs of named cases: medians of time and CPU, the largest peak RSS."""

    def measure(self, label: str, cmd: list[str], runs: int, mb: float | None = None,
                before: Callable[[], None] | None = None) -> Run:
        """Run ``cmd`` ``runs`` times (``before`` each run); print the
        medians (MB/s of ``mb`` megabytes when given); return the last run."""
        last = None
        for _ in range(runs):
            if before:
                before()
            last = spawn(cmd)
            self.runs.setdefault(label, []).append(last)
        self.show(label, self.seconds(label), mb, self.cpu(label), self.rss(label))
        assert last is not None
        return last

    @staticmethod
    def show(label: str, t: float, mb: float | None, cpu: float | None, rss: float | None) -> None:
        """One line of the table."""
        rate = f"{mb / t:8.1f} MB/s" if mb else " " * 13
        cpu_s = f"CPU {cpu:7.2f} s" if cpu is not None else " " * 13
        rss_s = f"peak RSS {rss:7.0f} MiB" if rss is not None else ""
        print(f"  {label:52} {t:8.3f} s {rate}  {cpu_s}  {rss_s}".rstrip(), flush=True)


def pixels_of(run: Run) -> tuple[int, list[int]]:
    """The ``PIXELS n CRCS ...`` line a reading case printed."""
    line = next(l for l in run.stdout.splitlines() if l.startswith("PIXELS "))
    head, _, crcs = line.partition(" CRCS ")
    return int(head.split()[1]), [int(c) for c in crcs.split()]


def main() -> None:
    """Generate the COG if missing, measure every case, print the results."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tessera", required=True, help="the tessera binary")
    ap.add_argument("--work", required=True, help="a folder for the COG, the index and the windows")
    ap.add_argument("--size", type=int, default=int(os.environ.get("COG_SIZE", "16384")),
                    help="width and height in pixels [COG_SIZE, 16384]")
    ap.add_argument("--runs", type=int, default=int(os.environ.get("RUNS", "3")), help="[RUNS, 3]")
    ap.add_argument("--grid", default=os.environ.get("GRID", "4x4"), help="windows, COLSxROWS [GRID, 4x4]")
    ap.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS", "2")),
                    help="processes at a time [WORKERS, 2]")
    a = ap.parse_args()
    if min(a.size, a.runs, a.workers) < 1:
        sys.exit("--size, --runs and --workers must be at least 1")
    tessera = str(Path(a.tessera).resolve())
    if not os.access(tessera, os.X_OK):
        sys.exit(f"not an executable: {tessera}")
    work = Path(a.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    me = [sys.executable, str(Path(__file__).resolve())]

    cog = work / f"cog-{a.size}.tif"
    if not cog.exists():
        print(f"== generating a {a.size}x{a.size} COG ({BANDS} uint8 bands, DEFLATE, {TILE}-pixel tiles)",
              flush=True)
        start = time.perf_counter()
        spawn([*me, "_generate", str(cog), str(a.size)])
        print(f"   {time.perf_counter() - start:.1f} s", flush=True)
    mb = cog.stat().st_size / 1e6
    print(f"\n== input: {cog.name}, {a.size}x{a.size}x{BANDS} uint8, {mb:.0f} MB (with overviews); "
          f"{a.runs} runs, medians", flush=True)
    table = Table()

    print("\n== (a) indexing")
    table.measure("tessera index", [tessera, "index", str(cog), "-q"], a.runs, mb=None)
    index = json.loads(Path(f"{cog}.tessera-index.json").read_text())
    print(f"  ({index['records']} tiles at full resolution, {index['reads']} ranged reads)")

    print(f"\n== (b) {a.grid} windows: plan, then slice get, {a.workers} processes at a time (xargs -P)")
    windows_file = work / "windows.json"
    table.measure(f"tessera slice --grid {a.grid}", [tessera, "slice", str(cog), "--grid", a.grid,
                                                    "-o", str(windows_file), "-q"], a.runs)
    windows = json.loads(windows_file.read_text())
    n = len(windows)
    stored_mb = sum(size for d in windows for _, size in d["tiles"]) / 1e6
    pixel_mb = sum(d["window"][2] * d["window"][3] for d in windows) * BANDS / 1e6
    slices = work / "windows"

    def clean() -> None:
        shutil.rmtree(slices, ignore_errors=True)
        slices.mkdir()

    get_cmd = ["sh", "-c", f'seq 0 {n - 1} | xargs -P {a.workers} -I{{}} "$0" slice get "$1" --slice {{}} '
               f'-o "$2/{{}}.tif" -q', tessera, str(windows_file), str(slices)]
    label_get = f"tessera slice get x{n} (files)"
    table.measure(label_get, get_cmd, a.runs, mb=stored_mb, before=clean)
    out_mb = sum(p.stat().st_size for p in slices.glob("*.tif")) / 1e6
    print(f"  ({n} windows, {stored_mb:.0f} MB of tiles copied into {out_mb:.0f} MB of GeoTIFFs; "
          f"{pixel_mb:.0f} MB of pixels decoded; MB/s: tiles' stored bytes for slice get, "
          f"decoded pixels for reads)")

    print(f"\n== (c) rasterio: the same windows of the COG, {a.workers} processes")
    label_c = f"rasterio src.read(window) x{n}"
    run_c = table.measure(label_c, [*me, "_read_windows", str(cog), str(windows_file), str(a.workers)],
                          a.runs, mb=pixel_mb)

    print(f"\n== (d) rasterio decoding tessera's window files, {a.workers} processes")
    label_d = f"rasterio read() of the {n} window files"
    run_d = table.measure(label_d, [*me, "_read_slices", str(slices), str(n), str(a.workers)],
                          a.runs, mb=pixel_mb)
    if pixels_of(run_c) != pixels_of(run_d):
        sys.exit("the window files do not hold the pixels rasterio reads from the COG")
    print("  (same pixels as (c): checked)")

    t_get, t_c, t_d = table.seconds(label_get), table.seconds(label_c), table.seconds(label_d)
    print("\n== summary (medians)")
    Table.show("tessera index", table.seconds("tessera index"), None, None, None)
    Table.show(f"tessera slice get x{n}", t_get, stored_mb, None, None)
    Table.show(f"tessera slice get + rasterio decode x{n}", t_get + t_d, pixel_mb, None, None)
    Table.show(f"rasterio windowed reads x{n}", t_c, pixel_mb, None, None)
    print("\n== ratios (rasterio / tessera; higher: tessera faster)")
    print(f"  {'windows to files (no decoding) vs windowed reads':52} {t_c / t_get:7.2f}x")
    print(f"  {'windows to files + decoding vs windowed reads':52} {t_c / (t_get + t_d):7.2f}x")
    print(f"\n  (indexing: {index['reads']} reads; planning: {table.seconds(f'tessera slice --grid {a.grid}'):.3f} s; "
          f"each tessera window is a standalone GeoTIFF anyone can open, each rasterio "
          f"window an array in a worker's memory)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].startswith("_"):
        case, args = sys.argv[1], sys.argv[2:]
        if case == "_generate":
            generate(Path(args[0]), int(args[1]))
        elif case == "_read_windows":
            read_windows(args[0], args[1], int(args[2]))
        elif case == "_read_slices":
            read_slices(args[0], int(args[1]), int(args[2]))
        else:
            sys.exit(f"unknown case {case}")
    else:
        main()

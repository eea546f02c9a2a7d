#!/usr/bin/env python3
"""MeasurementSet slicing benchmark: a generated radio-astronomy
MeasurementSet indexed by tessera, cut into slices by time fetched two
processes at a time, against python-casacore reading every column of the
main table. See run.sh.

One generated dataset, written by python-casacore in blocks of rows: TIMES
(256) timestamps 10 s apart of BASELINES (351, the cross-correlations of 27
antennas) rows each, CHANS (64) channels of 4 correlations a row, laid out
as CASA's simulator and importers write them: TIME and the id columns in an
IncrementalStMan; ANTENNA1/2, UVW and the (indirect) WEIGHT/SIGMA in a
StandardStMan; DATA (complex64), FLAG (bool) and WEIGHT_SPECTRUM (float32)
in TiledShapeStMans tiled by TILE_CHANS (32) channels and TILE_ROWS (256)
rows; a main table of about 290 MB. Then, medians of RUNS runs:

  (a) ``tessera index`` (table.dat and the storage managers' headers read);
  (b) planning SLICES (16) slices over whole timestamps (``tessera slice
      --count SLICES``, or with ``--interval``: ``--interval D``, D the
      span of TIMES/SLICES timestamps) and fetching all of them (``tessera
      slice get -o DIR``, one process per slice, WORKERS (2) at a time
      through xargs -P), each a standalone MeasurementSet folder;
  (b2) the same, each slice evaluated as the tar stream the server and
      Python's ``Slice.fetch()`` return (``tessera slice get`` to stdout,
      into /dev/null): evaluation without a file system;
  (c) the peer: python-casacore opening the main table and reading every
      column in full (``getcol``: scalar columns at once, array columns in
      blocks of about 1 MiB of rows), in one process, and the same split
      across WORKERS processes by row ranges;
  (d) (b) followed by python-casacore reading every column of every slice
      the same way, the slices shared out among WORKERS processes.

(c) and (d) must read the same data (rows, and per column the bytes and an
order-independent checksum of its rows), and no timestamp may be in two
slices: checked (the timed runs count rows and bytes; the checksums are
taken in untimed runs of (c) and over the last run's slices of (d), so
that the times are of reading alone). Every case runs in its own process, under /usr/bin/time
when it is there: its peak RSS is the largest of the process and the
children it waited for, its CPU time includes the children. This process
never imports casacore. The files are local, so they are read through the
page cache (warm after the first run): the figures compare the work done on
the bytes, not a network. MB/s are of the main table's files (the folder's
own files, not its subtables).

    python bench/science/ms.py --tessera target/release/tessera --work /tmp/ms-bench
    python bench/science/ms.py --tessera ... --work ... --times 32 --baselines 45 --runs 1   # a quick look
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

# The process measurements the geo benchmarks use, and the imzML benchmark's table.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "geo"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import Run, spawn  # noqa: E402
from imzml import Table  # noqa: E402

TIME0 = 4.9e9  # MJD seconds (2014)
STEP = 10.0  # seconds between timestamps
CORRS = 4  # XX XY YX YY
WRITE_BYTES = 16 << 20  # rows a putcol of an array column, in bytes
# rows a getcol of an array column, in bytes: 1 MiB was about as fast as
# 256 KiB and faster than 4 MiB, 16 MiB or whole columns (fresh big arrays
# fault their pages in)
READ_BYTES = 1 << 20
ISM_COLUMNS = ["TIME", "TIME_CENTROID", "INTERVAL", "EXPOSURE", "SCAN_NUMBER", "ARRAY_ID",
               "OBSERVATION_ID", "PROCESSOR_ID", "STATE_ID", "FIELD_ID", "DATA_DESC_ID",
               "FEED1", "FEED2", "FLAG_ROW"]
SSM_COLUMNS = ["ANTENNA1", "ANTENNA2", "UVW", "WEIGHT", "SIGMA", "FLAG_CATEGORY"]
TILED_COLUMNS = ["DATA", "FLAG", "WEIGHT_SPECTRUM"]


# -- in a child process: generating and reading with python-casacore --------------------


def antennas_for(baselines: int) -> int:
    """The fewest antennas whose cross-correlations number at least ``baselines``."""
    n = 2
    while n * (n - 1) // 2 < baselines:
        n += 1
    return n


def generate(path: Path, times: int, baselines: int, chans: int, tile_chans: int, tile_rows: int) -> None:
    """Write a MeasurementSet of ``times`` timestamps of ``baselines`` rows
    of ``chans`` x ``CORRS`` visibilities, in the CASA-like layout the module
    describes, to a temporary name renamed to ``path`` when complete.
    Deterministic: a seeded generator, written in blocks of whole
    timestamps."""
    import casacore.tables as pt
    import numpy as np

    tmp = path.with_name(path.stem + ".tmp.ms")
    shutil.rmtree(tmp, ignore_errors=True)
    data = pt.makearrcoldesc("DATA", 0j, ndim=2, valuetype="complex")
    data["desc"]["keywords"] = {"UNIT": "Jy"}
    wsp = pt.makearrcoldesc("WEIGHT_SPECTRUM", 0.0, ndim=2, valuetype="float")
    tile = np.array([CORRS, min(tile_chans, chans), tile_rows], dtype=np.int32)  # Fortran order
    dminfo: dict[str, Any] = {
        "*1": {"TYPE": "IncrementalStMan", "NAME": "ISMData", "SPEC": {"BUCKETSIZE": 32768},
               "COLUMNS": ISM_COLUMNS},
        "*2": {"TYPE": "StandardStMan", "NAME": "SSMData", "SPEC": {"BUCKETSIZE": 32768},
               "COLUMNS": SSM_COLUMNS},
    }
    for i, col in enumerate(TILED_COLUMNS):
        dminfo[f"*{3 + i}"] = {"TYPE": "TiledShapeStMan", "NAME": f"Tiled{col}",
                               "SPEC": {"DEFAULTTILESHAPE": tile}, "COLUMNS": [col]}
    pt.default_ms(str(tmp), pt.maketabdesc([data, wsp]), dminfo).close()

    nant = antennas_for(baselines)
    pairs = [(i, j) for i in range(nant) for j in range(i + 1, nant)][:baselines]
    ant1 = np.array([p[0] for p in pairs], dtype=np.int32)
    ant2 = np.array([p[1] for p in pairs], dtype=np.int32)
    freqs = 1.4e9 + np.arange(chans) * 1e6
    with pt.table(f"{tmp}/ANTENNA", readonly=False, ack=False) as t:
        t.addrows(nant)
        t.putcol("NAME", [f"ANT{i:02d}" for i in range(nant)])
        t.putcol("STATION", [f"PAD{i:03d}" for i in range(nant)])
        t.putcol("TYPE", ["GROUND-BASED"] * nant)
        t.putcol("MOUNT", ["ALT-AZ"] * nant)
        angle = np.arange(nant) * 2.39996
        radius = 50.0 * np.sqrt(np.arange(nant) + 1.0)
        t.putcol("POSITION", np.stack([-1.6e6 + radius * np.cos(angle), -5.04e6 + radius * np.sin(angle),
                                       np.full(nant, 3.55e6)], axis=1))
        t.putcol("OFFSET", np.zeros((nant, 3)))
        t.putcol("DISH_DIAMETER", np.full(nant, 25.0))
    with pt.table(f"{tmp}/SPECTRAL_WINDOW", readonly=False, ack=False) as t:
        t.addrows(1)
        t.putcell("NUM_CHAN", 0, chans)
        t.putcell("CHAN_FREQ", 0, freqs)
        for col in ("CHAN_WIDTH", "EFFECTIVE_BW", "RESOLUTION"):
            t.putcell(col, 0, np.full(chans, 1e6))
        t.putcell("REF_FREQUENCY", 0, freqs[0])
        t.putcell("TOTAL_BANDWIDTH", 0, chans * 1e6)
        t.putcell("NAME", 0, "L-BAND")
    with pt.table(f"{tmp}/POLARIZATION", readonly=False, ack=False) as t:
        t.addrows(1)
        t.putcell("NUM_CORR", 0, CORRS)
        t.putcell("CORR_TYPE", 0, np.array([9, 10, 11, 12], dtype=np.int32))
        t.putcell("CORR_PRODUCT", 0, np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.int32))
    with pt.table(f"{tmp}/DATA_DESCRIPTION", readonly=False, ack=False) as t:
        t.addrows(1)
        t.putcol("SPECTRAL_WINDOW_ID", np.zeros(1, dtype=np.int32))
        t.putcol("POLARIZATION_ID", np.zeros(1, dtype=np.int32))
    with pt.table(f"{tmp}/FIELD", readonly=False, ack=False) as t:
        t.addrows(1)
        t.putcol("NAME", ["TARGET"])
        for col in ("PHASE_DIR", "DELAY_DIR", "REFERENCE_DIR"):
            t.putcol(col, np.array([[[1.2, 0.6]]]))
    with pt.table(f"{tmp}/OBSERVATION", readonly=False, ack=False) as t:
        t.addrows(1)
        t.putcell("TELESCOPE_NAME", 0, "SIMULATED")
        t.putcell("OBSERVER", 0, "benchmark")
        t.putcell("TIME_RANGE", 0, np.array([TIME0, TIME0 + STEP * times]))

    rng = np.random.default_rng(1)
    per_block = max(1, (WRITE_BYTES // (chans * CORRS * 8)) // baselines)  # whole timestamps
    with pt.table(str(tmp), readonly=False, ack=False) as t:
        t.addrows(times * baselines)
        for first in range(0, times, per_block):
            nt = min(per_block, times - first)
            n, row = nt * baselines, first * baselines
            at = dict(startrow=row, nrow=n)
            stamp = np.repeat(TIME0 + STEP * np.arange(first, first + nt), baselines)
            t.putcol("TIME", stamp, **at)
            t.putcol("TIME_CENTROID", stamp, **at)
            t.putcol("INTERVAL", np.full(n, STEP), **at)
            t.putcol("EXPOSURE", np.full(n, STEP), **at)
            t.putcol("SCAN_NUMBER", (1 + np.arange(row, row + n) // (baselines * 32)).astype(np.int32), **at)
            t.putcol("ANTENNA1", np.tile(ant1, nt), **at)
            t.putcol("ANTENNA2", np.tile(ant2, nt), **at)
            t.putcol("UVW", rng.normal(0.0, 500.0, (n, 3)), **at)
            vis = np.empty((n, chans, CORRS), dtype=np.complex64)
            vis.real = rng.standard_normal((n, chans, CORRS), dtype=np.float32)
            vis.imag = rng.standard_normal((n, chans, CORRS), dtype=np.float32)
            t.putcol("DATA", vis, **at)
            flag = rng.random((n, chans, CORRS), dtype=np.float32) < 0.05
            t.putcol("FLAG", flag, **at)
            t.putcol("FLAG_ROW", flag.all(axis=(1, 2)), **at)
            weights = rng.uniform(0.5, 2.0, (n, chans, CORRS)).astype(np.float32)
            t.putcol("WEIGHT_SPECTRUM", weights, **at)
            weight = weights.mean(axis=1)
            t.putcol("WEIGHT", weight, **at)
            t.putcol("SIGMA", 1.0 / np.sqrt(weight), **at)
        t.rename(str(path))


def _digest(block: Any, weights: dict[int, Any]) -> int:
    """An order-independent checksum of the rows of ``block`` (an array
    whose first axis is the row): every row's bytes as unsigned words mixed
    with fixed per-position odd multipliers, then the rows' mixed sums added
    modulo 2**64. The same rows give the same sum in any order and split."""
    import numpy as np

    rows = np.ascontiguousarray(block).reshape(len(block), -1)
    raw = rows.view(np.uint8).reshape(len(block), -1)
    width = next(w for w in (8, 4, 2, 1) if raw.shape[1] % w == 0)
    words = raw.view(f"<u{width}").astype(np.uint64)
    k = words.shape[1]
    if k not in weights:
        weights[k] = np.random.default_rng(k).integers(1, 2**63, k, dtype=np.uint64) | np.uint64(1)
    h = (words * weights[k]).sum(axis=1, dtype=np.uint64)
    h ^= h >> np.uint64(31)
    h *= np.uint64(0x9E3779B97F4A7C15)
    h ^= h >> np.uint64(29)
    return int(h.sum(dtype=np.uint64))


def _read(ms: str, part: int = 0, parts: int = 1, sums: bool = False) -> str:
    """Open the main table of ``ms`` and read rows ``part`` of ``parts``
    (contiguous shares) of every column whose cells are defined: scalar
    columns with one getcol, array columns in blocks of about
    ``READ_BYTES``. One line: ``ROWS n BYTES b T0 t T1 t COLS
    name:bytes:checksum,...`` (T0/T1 the first and last TIME read; the
    checksums 0 unless ``sums``: the timed cases only read)."""
    import casacore.tables as pt
    import numpy as np

    weights: dict[int, Any] = {}
    cols: dict[str, tuple[int, int]] = {}
    with pt.table(ms, ack=False) as t:
        total = t.nrows()
        start, end = total * part // parts, total * (part + 1) // parts
        n = end - start
        t0 = t1 = float("nan")
        for col in t.colnames():
            if n == 0 or not t.iscelldefined(col, start):
                continue
            first = np.asarray(t.getcell(col, start))
            step = n if first.ndim == 0 else max(1, READ_BYTES // max(1, first.nbytes))
            nbytes = digest = 0
            for r in range(start, end, step):
                block = t.getcol(col, startrow=r, nrow=min(step, end - r))
                nbytes += block.nbytes
                if sums:
                    digest = (digest + _digest(block, weights)) & 0xFFFFFFFFFFFFFFFF
                if col == "TIME":
                    t0 = float(block[0]) if r == start else t0
                    t1 = float(block[-1])
            cols[col] = (nbytes, digest)
    listed = ",".join(f"{c}:{b}:{d}" for c, (b, d) in sorted(cols.items()))
    return f"ROWS {n} BYTES {sum(b for b, _ in cols.values())} T0 {t0!r} T1 {t1!r} COLS {listed}"


def _say(line: str) -> None:
    """One whole line on stdout at once (processes of a case share the file)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def read_dataset(ms: str, part: int, parts: int, sums: bool) -> None:
    """(c): one ``ROWS ...`` line for a share of the main table."""
    _say(_read(ms, part, parts, sums))


def read_slices(folders: list[str], sums: bool) -> None:
    """(d): every column of the slices in ``folders`` (one MeasurementSet
    folder each); one ``ROWS ...`` line a slice."""
    for folder in folders:
        tables = sorted(p for p in Path(folder).glob("*.ms") if p.is_dir())
        if len(tables) != 1:
            sys.exit(f"{folder}: {len(tables)} .ms folders, not one")
        _say(_read(str(tables[0]), sums=sums))


# -- measuring -------------------------------------------------------------------------

LINE = re.compile(r"ROWS (\d+) BYTES (\d+) T0 (\S+) T1 (\S+) COLS (\S*)")


class Totals:
    """The sums of the ``ROWS ...`` lines a reading case printed."""

    def __init__(self, run: Run) -> None:
        self.rows = self.bytes = 0
        self.cols: dict[str, tuple[int, int]] = {}
        self.spans: list[tuple[float, float]] = []
        for line in run.stdout.splitlines():
            m = LINE.fullmatch(line.strip())
            if not m:
                continue
            self.rows += int(m[1])
            self.bytes += int(m[2])
            if int(m[1]):
                self.spans.append((float(m[3]), float(m[4])))
            for item in filter(None, m[5].split(",")):
                name, b, d = item.split(":")
                have = self.cols.get(name, (0, 0))
                self.cols[name] = (have[0] + int(b), (have[1] + int(d)) & 0xFFFFFFFFFFFFFFFF)

    def differs(self, want: Totals, sums: bool) -> str | None:
        """None when this read the rows, bytes and per column the bytes
        (and with ``sums`` the checksums) ``want`` read, else what differs."""
        k = 2 if sums else 1
        cols = sorted(c for c in set(self.cols) | set(want.cols)
                      if self.cols.get(c, (0, 0))[:k] != want.cols.get(c, (0, 0))[:k])
        if (self.rows, self.bytes) == (want.rows, want.bytes) and not cols:
            return None
        return (f"read {self.rows} rows, {self.bytes} bytes, not {want.rows}, {want.bytes}; "
                f"columns that differ: {cols}")

    def whole_timestamps(self) -> str | None:
        """None when the parts' TIME spans do not overlap (no timestamp in
        two parts), else what does."""
        spans = sorted(self.spans)
        for (a0, a1), (b0, b1) in zip(spans, spans[1:]):
            if b0 <= a1:
                return f"TIME {a0!r}..{a1!r} and {b0!r}..{b1!r} overlap"
        return None


def main_table_bytes(ms: Path) -> int:
    """The bytes of the main table's own files (not its subtables')."""
    return sum(p.stat().st_size for p in ms.iterdir() if p.is_file())


def main() -> None:
    """Generate the dataset if missing, measure every case, print the results."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    env = os.environ.get
    ap.add_argument("--tessera", required=True, help="the tessera binary")
    ap.add_argument("--work", required=True, help="a folder for the dataset, the index and the slices")
    ap.add_argument("--times", type=int, default=int(env("TIMES", "256")), help="timestamps [TIMES, 256]")
    ap.add_argument("--baselines", type=int, default=int(env("BASELINES", "351")),
                    help="rows a timestamp [BASELINES, 351]")
    ap.add_argument("--chans", type=int, default=int(env("CHANS", "64")), help="channels [CHANS, 64]")
    ap.add_argument("--tile-chans", type=int, default=int(env("TILE_CHANS", "32")),
                    help="channels a tile [TILE_CHANS, 32]")
    ap.add_argument("--tile-rows", type=int, default=int(env("TILE_ROWS", "256")),
                    help="rows a tile [TILE_ROWS, 256]")
    ap.add_argument("--runs", type=int, default=int(env("RUNS", "3")), help="[RUNS, 3]")
    ap.add_argument("--slices", type=int, default=int(env("SLICES", "16")), help="[SLICES, 16]")
    ap.add_argument("--workers", type=int, default=int(env("WORKERS", "2")),
                    help="processes at a time [WORKERS, 2]")
    ap.add_argument("--interval", action="store_true", default=env("INTERVAL", "") not in ("", "0"),
                    help="plan with --interval (the span of TIMES/SLICES timestamps) instead of "
                         "--count SLICES [INTERVAL=1]")
    a = ap.parse_args()
    if min(a.times, a.baselines, a.chans, a.tile_chans, a.tile_rows, a.runs, a.slices, a.workers) < 1:
        sys.exit("--times, --baselines, --chans, --tile-chans, --tile-rows, --runs, --slices and "
                 "--workers must be at least 1")
    tessera = str(Path(a.tessera).resolve())
    if not os.access(tessera, os.X_OK):
        sys.exit(f"not an executable: {tessera}")
    work = Path(a.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    py, me = sys.executable, str(Path(__file__).resolve())
    rows = a.times * a.baselines

    ms = work / f"vis-{a.times}x{a.baselines}x{a.chans}-t{a.tile_chans}x{a.tile_rows}.ms"
    if not (ms / "table.dat").exists():
        print(f"== generating {a.times} timestamps x {a.baselines} baselines x {a.chans} channels x {CORRS} "
              "correlations (MeasurementSet, python-casacore: ISM / SSM / TiledShapeStMan)", flush=True)
        start = time.perf_counter()
        spawn([py, me, "_generate", str(ms), str(a.times), str(a.baselines), str(a.chans),
               str(a.tile_chans), str(a.tile_rows)])
        print(f"   {time.perf_counter() - start:.1f} s", flush=True)
    mb = main_table_bytes(ms) / 1e6
    print(f"\n== input: {ms.name}, main table {mb:.0f} MB, {rows} rows ({a.times} timestamps of {a.baselines}); "
          f"{a.runs} run(s), medians; MB/s = main-table MB / s", flush=True)
    table = Table()

    print("\n== (a) indexing")
    index = Path(f"{ms}.tessera-index.json")
    table.measure("tessera index", [tessera, "-q", "index", str(ms)], a.runs, mb=mb,
                  before=lambda: index.unlink(missing_ok=True))
    records = json.loads(index.read_text())["records"]
    print(f"  ({records} records)")
    if records != rows:
        sys.exit(f"the index has {records} records, not {rows} rows")

    if a.interval:
        seconds = math.ceil(a.times / a.slices) * STEP
        strategy = ["--interval", f"{seconds:.0f}s"]
    else:
        strategy = ["--count", str(a.slices)]
    how = " ".join(strategy)
    print(f"\n== (b) slices by time (tessera slice {how}), {a.workers} processes at a time (xargs -P{a.workers})")
    plan = work / "slices.json"
    parts = work / "parts"

    def clean() -> None:
        """An empty folder for the slices' folders."""
        shutil.rmtree(parts, ignore_errors=True)
        parts.mkdir()

    def slices_check(_: Run) -> None:
        """Every planned slice was written as a MeasurementSet folder, and
        the plan's row ranges cover every row once."""
        planned = json.loads(plan.read_text())
        got = sorted(p for p in parts.glob("part*/*.ms") if (p / "table.dat").is_file())
        files = sorted(p.name for p in parts.iterdir() if not p.is_dir())
        if files:
            sys.exit(f"slice get -o DIR wrote files, not folders: {files[:4]} ... in {parts}")
        if len(got) != len(planned):
            sys.exit(f"{len(got)} slice folders with a MeasurementSet for {len(planned)} slices in {parts}")
        at = 0
        for s in planned:
            if s["first_record"] != at or s["record_count"] < 1:
                sys.exit(f"slice {s['slice']} holds rows from {s['first_record']} ({s['record_count']}), "
                         f"not from {at}")
            at += s["record_count"]
        if at != rows:
            sys.exit(f"the slices hold {at} rows, not {rows}")

    label_plan = f"tessera slice {how} (plan only)"
    table.measure(label_plan, [tessera, "-q", "slice", str(ms), *strategy, "-o", str(plan)], a.runs)
    nslices = len(json.loads(plan.read_text()))
    fetch = (f'seq 0 $(( $(grep -o \'"tessera_slice"\' "{plan}" | wc -l) - 1 )) | '
             f'xargs -P{a.workers} -I@ "{tessera}" -q slice get "{plan}" --slice @ -o "{parts}/part@"')
    plan_and_fetch = f'"{tessera}" -q slice "{ms}" {how} -o "{plan}" && {fetch}'
    label_b = f"plan + slice get x{nslices}, {a.workers} at a time"
    table.measure(label_b, ["sh", "-c", plan_and_fetch], a.runs, mb=mb, before=clean, check=slices_check)
    out_mb = sum(p.stat().st_size for p in parts.rglob("*") if p.is_file()) / 1e6
    counts = [s["record_count"] for s in json.loads(plan.read_text())]
    print(f"  ({nslices} slices of {min(counts)} to {max(counts)} rows, {out_mb:.0f} MB of standalone "
          "MeasurementSet folders)")

    print(f"\n== (b2) the same slices evaluated as tar streams (stdout, to /dev/null), {a.workers} at a time")
    # What the server and Python's Slice.fetch() return: the slice in
    # memory, no file system between (writing (b)'s 1,100-odd files of
    # folders into a file system is part of (b), not of evaluating).
    to_null = (f'seq 0 $(( $(grep -o \'"tessera_slice"\' "{plan}" | wc -l) - 1 )) | '
               f'xargs -P{a.workers} -I@ sh -c \'"{tessera}" -q slice get "{plan}" --slice @ > /dev/null\'')
    label_b2 = f"plan + slice get x{nslices} as tar streams, {a.workers} at a time"
    table.measure(label_b2, ["sh", "-c", f'"{tessera}" -q slice "{ms}" {how} -o "{plan}" && {to_null}'],
                  a.runs, mb=mb)
    # untimed: a tar stream holds the files -o DIR wrote, byte for byte
    import io
    import tarfile
    import subprocess
    stream = subprocess.run([tessera, "-q", "slice", "get", str(plan), "--slice", "0"], check=True,
                            capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(stream)) as tar:
        in_tar = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    on_disk = {str(p.relative_to(parts / "part0")): p.read_bytes()
               for p in (parts / "part0").rglob("*") if p.is_file()}
    if in_tar != on_disk:
        sys.exit(f"slice 0's tar stream differs from its folder: {sorted(set(in_tar) ^ set(on_disk))[:4]}")
    print(f"  (slice 0's tar stream holds the {len(in_tar)} files of its folder, byte for byte: checked)")

    print("\n== (c) python-casacore: table() + getcol of every main-table column, in blocks of rows")
    # what every case must read: once, untimed, with the checksums (the
    # timed cases only read, counting rows and bytes)
    want = Totals(spawn([py, me, "_read", str(ms), "0", "1", "sum"]))
    if want.rows != rows:
        sys.exit(f"python-casacore read {want.rows} rows, not {rows}")

    def same(r: Run, sums: bool = False) -> Totals:
        """The case read the data (c) read (with ``sums``: checksums too)."""
        got = Totals(r)
        problem = got.differs(want, sums)
        if problem:
            sys.exit(problem)
        return got

    label_c1 = "python-casacore, one process"
    label_c2 = f"python-casacore, {a.workers} processes (row ranges)"
    table.measure(label_c1, [py, me, "_read", str(ms), "0", "1", "count"], a.runs, mb=mb, check=same)
    split = (f'seq 0 {a.workers - 1} | '
             f'xargs -P{a.workers} -I@ "{py}" "{me}" _read "{ms}" @ {a.workers} count')
    table.measure(label_c2, ["sh", "-c", split], a.runs, mb=mb, check=same)
    same(spawn(["sh", "-c", split.replace(" count", " sum")]), sums=True)
    print(f"  ({want.rows} rows, {len(want.cols)} columns, {want.bytes / 1e6:.0f} MB of arrays; "
          f"the {a.workers} processes' checksums are the one process's: checked)")

    print(f"\n== (d) tessera's slices, then python-casacore reading each, {a.workers} processes sharing them")
    label_d = f"plan + slice get + casacore x{nslices}, {a.workers} processes"
    # the slices shared out among WORKERS reading processes, as in (c)
    share = f'n=$(ls -d "{parts}"/part* | wc -l) && ls -d "{parts}"/part* | xargs -P{a.workers} ' \
            f'-n$(( (n + {a.workers} - 1) / {a.workers} )) "{py}" "{me}" _read_slices'
    read_each = f"{plan_and_fetch} && {share} count"

    def slices_read(r: Run, sums: bool = False) -> None:
        """The slices were written, python-casacore read (c)'s data from
        them, and no timestamp is in two slices."""
        slices_check(r)
        problem = same(r, sums).whole_timestamps()
        if problem:
            sys.exit(f"a timestamp in two slices: {problem}")

    table.measure(label_d, ["sh", "-c", read_each], a.runs, mb=mb, before=clean, check=slices_read)
    # the last run's slices again, untimed, with the checksums
    slices_read(spawn(["sh", "-c", f"{share} sum"]), sums=True)
    print("  (the same rows, columns and checksums as (c), no timestamp in two slices: checked)")

    t_b, t_d = table.seconds(label_b), table.seconds(label_d)
    print("\n== summary (medians)")
    Table.show("tessera index", table.seconds("tessera index"), mb, None, None)
    Table.show(f"tessera plan + slice get x{nslices}", t_b, mb, None, None)
    t_b2 = table.seconds(label_b2)
    Table.show(f"tessera plan + slice get x{nslices} (tar streams)", t_b2, mb, None, None)
    Table.show(f"tessera slices + casacore x{nslices}", t_d, mb, None, None)
    Table.show(label_c1, table.seconds(label_c1), mb, None, None)
    Table.show(label_c2, table.seconds(label_c2), mb, None, None)
    print("\n== ratios (python-casacore / tessera; higher: tessera faster)")
    table.ratio(f"one process / {nslices} slices", label_c1, t_b)
    table.ratio(f"{a.workers} processes / {nslices} slices", label_c2, t_b)
    table.ratio(f"one process / {nslices} slices as tar streams", label_c1, t_b2)
    table.ratio(f"{a.workers} processes / {nslices} slices as tar streams", label_c2, t_b2)
    table.ratio(f"{a.workers} processes / {nslices} slices + casacore each", label_c2, t_d)
    table.ratio("one process / tessera index", label_c1, table.seconds("tessera index"))
    print(f"  (planning alone: {table.seconds(label_plan):.3f} s; each tessera slice is a standalone "
          "MeasurementSet anyone can open, each casacore share arrays in a worker's memory)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].startswith("_"):
        case, args = sys.argv[1], sys.argv[2:]
        if case == "_generate":
            generate(Path(args[0]), *(int(x) for x in args[1:6]))
        elif case == "_read" and len(args) == 4 and args[3] in ("count", "sum"):
            read_dataset(args[0], int(args[1]), int(args[2]), args[3] == "sum")
        elif case == "_read_slices" and args and args[0] in ("count", "sum"):
            read_slices(args[1:], args[0] == "sum")
        else:
            sys.exit(f"unknown case or arguments: {' '.join(sys.argv[1:])}")
    else:
        main()

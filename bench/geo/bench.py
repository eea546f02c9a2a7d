#!/usr/bin/env python3
"""Point-cloud slicing benchmark: a generated LAZ file indexed by tessera,
cut into slices fetched two processes at a time, against reading the whole
file with laspy + lazrs. See run.sh.

Every case runs in its own process, under /usr/bin/time when it is there:
its peak RSS is the largest of the process and the children it waited for
(for xargs: the largest single slice process), its CPU time includes the
children. This process stays small and never imports laspy.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import sys
import time
from pathlib import Path
from typing import Callable

from _measure import Cases, Run, spawn

# The generator: one flight over terrain, scan lines of LINE points.
LINE = 2_000
BATCH = 1_000_000


def generate(path: Path, points: int) -> None:
    """Write a LAZ 1.4 file (point format 6, lazrs' 50,000-point chunks) of
    ``points`` points along scan lines, like an airborne scan: terrain with
    noise, returns 1..3, intensity, classification, increasing GPS time."""
    import laspy
    import numpy as np

    header = laspy.LasHeader(point_format=6, version="1.4")
    header.scales = np.array([0.001, 0.001, 0.001])
    header.offsets = np.array([500_000.0, 4_000_000.0, 0.0])
    header.generating_software = "tessera bench/geo"
    rng = np.random.default_rng(1)
    tmp = path.with_suffix(".tmp.laz")
    with laspy.open(tmp, mode="w", header=header, do_compress=True,
                    laz_backend=laspy.LazBackend.LazrsParallel) as w:
        for start in range(0, points, BATCH):
            n = min(BATCH, points - start)
            i = np.arange(start, start + n)
            line, pos = i // LINE, i % LINE
            across = np.where(line % 2 == 0, pos, LINE - 1 - pos) / LINE * 1_000.0
            rec = laspy.ScaleAwarePointRecord.zeros(n, header=header)
            rec.x = 500_000.0 + line * 0.5 + rng.normal(0, 0.05, n)
            rec.y = 4_000_000.0 + across + rng.normal(0, 0.05, n)
            ground = 100.0 + 20.0 * np.sin(rec.x / 50.0) * np.cos(rec.y / 70.0)
            returns = rng.choice(np.array([1, 1, 1, 2, 3], dtype=np.uint8), n)
            rn = (rng.integers(0, 3, n) % returns + 1).astype(np.uint8)
            above = np.where(rn < returns, rng.uniform(0.0, 15.0, n), 0.0)
            rec.z = ground + above + rng.normal(0, 0.03, n)
            rec.return_number = rn
            rec.number_of_returns = returns
            rec.classification = np.where(above > 0, 5, 2).astype(np.uint8)
            rec.intensity = np.clip(rng.normal(300, 40, n) - above * 10, 0, 65_535).astype(np.uint16)
            rec.scan_angle = ((pos - LINE // 2) * 15).astype(np.int16)
            rec.point_source_id = (line // 500).astype(np.uint16)
            rec.gps_time = 100_000.0 + i * 2e-6
            w.write_points(rec)
    tmp.rename(path)


def read_whole(path: str, backend: str) -> None:
    """Read every point with laspy (every dimension decompressed) and touch
    each point's record (sums of X, Y, Z); print the count."""
    import laspy

    b = {"lazrs": laspy.LazBackend.Lazrs, "lazrs-parallel": laspy.LazBackend.LazrsParallel}[backend]
    las = laspy.read(path, laz_backend=b)
    arr = las.points.array
    sums = [int(arr[k].sum()) for k in ("X", "Y", "Z")]
    print(f"POINTS {len(arr)} XYZ {sums}")


def read_slices(paths: list[str]) -> None:
    """Read slice files with laspy (single-threaded lazrs); print their points."""
    import laspy

    n = 0
    for p in paths:
        las = laspy.read(p, laz_backend=laspy.LazBackend.Lazrs)
        arr = las.points.array
        n += len(arr)
        _ = [int(arr[k].sum()) for k in ("X", "Y", "Z")]
    print(f"POINTS {n}")


def point_count(path: Path) -> int:
    """The point count in a LAS 1.4 header (its 64-bit field)."""
    with open(path, "rb") as f:
        head = f.read(375)
    if head[:4] != b"LASF" or head[24:26] != bytes([1, 4]):
        sys.exit(f"{path}: not a LAS 1.4 file")
    return struct.unpack_from("<Q", head, 247)[0]


class Table(Cases):
    """Runs of named cases: medians of time, the largest peak RSS."""

    def __init__(self, mb: float) -> None:
        super().__init__()
        self.mb = mb

    def measure(self, label: str, cmd: list[str], runs: int,
                before: Callable[[], None] | None = None,
                check: Callable[[Run], None] | None = None) -> float:
        """Run ``cmd`` ``runs`` times (``before`` each run, ``check`` after); print and return the median time."""
        for _ in range(runs):
            if before:
                before()
            r = spawn(cmd)
            if check:
                check(r)
            self.runs.setdefault(label, []).append(r)
        t = self.seconds(label)
        print(f"  {label:58} {t:8.2f} s {self.mb / t:8.1f} MB/s  CPU {self.cpu(label):7.2f} s"
              f"  peak RSS {self.rss(label):7.0f} MiB", flush=True)
        return t

    def ratio(self, what: str, peer: str, ours: str) -> None:
        """peer / tessera for time and peak RSS (higher: tessera faster or smaller)."""
        print(f"  {what:58} time {self.seconds(peer) / self.seconds(ours):7.2f}x"
              f"   peak RSS {self.rss(peer) / self.rss(ours):6.2f}x")


def main() -> None:
    """Generate the input if missing, measure every case, print the results."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--tessera", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--points", type=int, default=30_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--slices", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    if min(a.points, a.runs, a.slices, a.workers) < 1:
        sys.exit("--points, --runs, --slices and --workers must be at least 1")
    T = a.tessera
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    laz = out / f"points-{a.points}.laz"
    if not laz.exists():
        print(f"== generating {a.points} points (LAZ 1.4, point format 6, laspy + lazrs)", flush=True)
        start = time.perf_counter()
        spawn([sys.executable, os.path.abspath(__file__), "generate", str(laz), str(a.points)])
        print(f"   {time.perf_counter() - start:.1f} s", flush=True)
    size = laz.stat().st_size
    mb = size / 1e6
    py = sys.executable
    me = os.path.abspath(__file__)
    print(f"\n== input: {laz.name}, {a.points} points, {mb:.0f} MB compressed "
          f"({size / a.points:.1f} bytes a point); {a.runs} run(s), medians; MB/s = compressed MB / s")
    t = Table(mb)

    def points_are(n: int) -> Callable[[Run], None]:
        """A check that the command printed ``POINTS n``."""

        def check(r: Run) -> None:
            got = int(r.stdout.split()[1])
            if got != n:
                sys.exit(f"read {got} points, not {n}")
        return check

    print("\n== (a) indexing")
    index = Path(str(laz) + ".tessera-index.json")
    t_index = t.measure("tessera index", [T, "-q", "index", str(laz)], a.runs,
                        before=lambda: index.unlink(missing_ok=True))

    print(f"\n== (b) {a.slices} slices, {a.workers} processes at a time (xargs -P{a.workers})")
    plan = out / f"slices-{a.slices}.json"
    parts = out / "parts"

    def clean() -> None:
        """An empty folder for the slices' files."""
        shutil.rmtree(parts, ignore_errors=True)
        parts.mkdir()

    def slices_check(_: Run) -> None:
        """Every planned slice was written, and together they hold every point."""
        planned = json.loads(plan.read_text())
        files = sorted(parts.glob("part*.laz"))
        if len(files) != len(planned):
            sys.exit(f"{len(files)} slice files for {len(planned)} slices")
        got = sum(point_count(f) for f in files)
        if got != a.points:
            sys.exit(f"the slices hold {got} points, not {a.points}")

    t_plan = t.measure(f"tessera slice --count {a.slices} (plan only)",
                       [T, "-q", "slice", str(laz), "--count", str(a.slices), "-o", str(plan)], a.runs)
    fetch = (f"seq 0 $(( $(grep -o '\"tessera_slice\"' {plan} | wc -l) - 1 )) | "
             f"xargs -P{a.workers} -I@ {T} -q slice get {plan} --slice @ -o {parts}/part@.laz")
    plan_and_fetch = f"{T} -q slice {laz} --count {a.slices} -o {plan} && {fetch}"
    label_b = f"plan + slice get x{a.slices}, {a.workers} at a time"
    t.measure(label_b, ["sh", "-c", plan_and_fetch], a.runs, before=clean, check=slices_check)
    n_slices = len(sorted(parts.glob("part*.laz")))
    print(f"  ({n_slices} slices planned for --count {a.slices}; each writes a standalone LAZ file)")
    label_d = f"plan + slice get + laspy.read x{a.slices}, {a.workers} at a time"
    read_each = (f"{plan_and_fetch} && ls {parts}/part*.laz | "
                 f"xargs -P{a.workers} -n1 {py} {me} read-slices")
    t.measure(label_d, ["sh", "-c", read_each], a.runs, before=clean, check=slices_check)

    print("\n== (c) the whole file with laspy (laspy.read: every dimension decompressed into memory)")
    label_c1 = "laspy.read, lazrs (one thread)"
    label_c2 = "laspy.read, lazrs parallel (laspy's default: all cores)"
    t.measure(label_c1, [py, me, "read", str(laz), "lazrs"], a.runs, check=points_are(a.points))
    t.measure(label_c2, [py, me, "read", str(laz), "lazrs-parallel"], a.runs, check=points_are(a.points))

    print("\n== ratios (laspy / tessera; higher: tessera faster or smaller)")
    t.ratio("whole file, lazrs one thread / tessera index", label_c1, "tessera index")
    t.ratio(f"whole file, lazrs one thread / {a.slices} slices", label_c1, label_b)
    t.ratio(f"whole file, lazrs parallel / {a.slices} slices", label_c2, label_b)
    t.ratio(f"whole file, lazrs parallel / {a.slices} slices + laspy each", label_c2, label_d)
    print(f"  (planning alone: {t_plan:.3f} s; indexing: {t_index:.3f} s; the slices' files are LAZ:"
          " tessera decodes X, Y, Z and returns of each slice for its header, laspy decodes every dimension)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "generate":
        generate(Path(sys.argv[2]), int(sys.argv[3]))
    elif len(sys.argv) > 1 and sys.argv[1] == "read":
        read_whole(sys.argv[2], sys.argv[3])
    elif len(sys.argv) > 1 and sys.argv[1] == "read-slices":
        read_slices(sys.argv[2:])
    else:
        main()

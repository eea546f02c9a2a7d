#!/usr/bin/env python3
"""imzML slicing benchmark: a generated mass-spectrometry image indexed by
tessera, cut into slices fetched two processes at a time, against pyimzml
reading every spectrum. See run.sh.

One generated dataset (SPECTRA spectra, default 19,600 on a 140-pixel-wide
raster, of POINTS (2,000) centroided peaks each: processed mode, 32-bit
float m/z and intensity arrays, written by pyimzml's ``ImzMLWriter``: an
``.ibd`` of about 310 MB and an XML of about 45 MB), then, medians of RUNS
runs:

  (a) ``tessera index`` (the XML parsed once, the ``.ibd``'s UUID read);
  (b) planning SLICES (16) slices (``tessera slice --count``) and fetching
      all of them (``tessera slice get -o DIR``, one process per slice,
      WORKERS (2) at a time through xargs -P), each a standalone imzML +
      ibd pair;
  (c) the peer: pyimzml's ``ImzMLParser`` (the XML parsed) reading every
      spectrum with ``getspectrum(i)``, in one process, and the same split
      across WORKERS processes (each parses the XML and reads its share);
  (d) (b) followed by pyimzml reading every spectrum of every slice, the
      slices shared out among WORKERS processes.

(c) and (d) must read the same spectra (count, bytes and an
order-independent checksum of the arrays): checked. Every case runs in its
own process, under /usr/bin/time when it is there: its peak RSS is the
largest of the process and the children it waited for, its CPU time
includes the children. This process never imports pyimzml. The files are
local, so they are read through the page cache (warm after the first run):
the figures compare the work done on the bytes, not a network.

    python bench/science/imzml.py --tessera target/release/tessera --work /tmp/imzml-bench
    SPECTRA=2000 RUNS=1 python bench/science/imzml.py --tessera ... --work ...   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

# The process measurements the geo benchmarks use.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "geo"))
from _measure import Cases, Run, spawn  # noqa: E402

WIDTH = 140  # pixels a raster row


# -- in a child process: generating and reading with pyimzml ---------------------------


def generate(path: Path, spectra: int, points: int) -> None:
    """Write ``spectra`` spectra of ``points`` centroided peaks each
    (processed mode: an m/z array per spectrum; 32-bit float arrays) on a
    ``WIDTH``-pixel-wide raster, row by row, with pyimzml."""
    import numpy as np
    from pyimzml.ImzMLWriter import ImzMLWriter

    rng = np.random.default_rng(1)
    tmp = path.with_name(path.stem + ".tmp.imzML")
    with ImzMLWriter(str(tmp), mode="processed", mz_dtype=np.float32, intensity_dtype=np.float32) as w:
        for i in range(spectra):
            mz = np.sort(rng.uniform(100.0, 1500.0, points)).astype(np.float32)
            ints = rng.gamma(1.5, 800.0, points).astype(np.float32)
            w.addSpectrum(mz, ints, (i % WIDTH + 1, i // WIDTH + 1))
    # pyimzml names the run after the file; the pair is renamed together
    tmp.with_suffix(".ibd").rename(path.with_suffix(".ibd"))
    tmp.rename(path)


def _read(imzml: str, part: int = 0, parts: int = 1) -> tuple[int, int, int]:
    """Open ``imzml`` with ``ImzMLParser`` and read spectra ``part`` of
    ``parts`` (contiguous shares) with ``getspectrum``: (spectra, array
    bytes, the sum of the arrays' CRC32s modulo 2**32)."""
    import zlib

    from pyimzml.ImzMLParser import ImzMLParser

    n = nbytes = crc = 0
    with ImzMLParser(imzml) as p:
        total = len(p.coordinates)
        for i in range(total * part // parts, total * (part + 1) // parts):
            mz, ints = p.getspectrum(i)
            n += 1
            nbytes += mz.nbytes + ints.nbytes
            crc = (crc + zlib.crc32(ints.tobytes(), zlib.crc32(mz.tobytes()))) & 0xFFFFFFFF
    return n, nbytes, crc


def read_dataset(imzml: str, part: int, parts: int) -> None:
    """(c): print ``SPECTRA n BYTES b CRC c`` for a share of the dataset."""
    print("SPECTRA %d BYTES %d CRC %d" % _read(imzml, part, parts))


def read_slices(folders: list[str]) -> None:
    """(d): every spectrum of the slices in ``folders`` (one imzML + ibd
    pair each); print one ``SPECTRA n BYTES b CRC c`` line a slice."""
    for folder in folders:
        pairs = sorted(Path(folder).glob("*.imzML"))
        if len(pairs) != 1:
            sys.exit(f"{folder}: {len(pairs)} .imzML files, not one")
        print("SPECTRA %d BYTES %d CRC %d" % _read(str(pairs[0])))


# -- measuring -------------------------------------------------------------------------


def totals(run: Run) -> tuple[int, int, int]:
    """The sums of the ``SPECTRA n BYTES b CRC c`` lines a reading case
    printed (CRCs summed modulo 2**32)."""
    n = nbytes = crc = 0
    for line in run.stdout.splitlines():
        m = re.fullmatch(r"SPECTRA (\d+) BYTES (\d+) CRC (\d+)", line.strip())
        if m:
            n += int(m[1])
            nbytes += int(m[2])
            crc = (crc + int(m[3])) & 0xFFFFFFFF
    return n, nbytes, crc


class Table(Cases):
    """Runs of named cases: medians of time and CPU, the largest peak RSS."""

    def measure(self, label: str, cmd: list[str], runs: int, mb: float | None = None,
                before: Callable[[], None] | None = None,
                check: Callable[[Run], None] | None = None) -> Run:
        """Run ``cmd`` ``runs`` times (``before`` each run, ``check``
        after); print the medians (MB/s of ``mb`` megabytes when given);
        return the last run."""
        last = None
        for _ in range(runs):
            if before:
                before()
            last = spawn(cmd)
            if check:
                check(last)
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
        print(f"  {label:56} {t:8.3f} s {rate}  {cpu_s}  {rss_s}".rstrip(), flush=True)

    def ratio(self, what: str, peer: str, ours: float) -> None:
        """peer / tessera time (higher: tessera faster)."""
        print(f"  {what:56} {self.seconds(peer) / ours:7.2f}x")


def spectrum_count(imzml: Path) -> int:
    """The ``count`` of an imzML's ``<spectrumList>`` (read from its head)."""
    with open(imzml, "rb") as f:
        head = b""
        while True:
            chunk = f.read(1 << 16)
            head += chunk
            m = re.search(rb"<spectrumList[^>]*\scount=\"(\d+)\"", head)
            if m:
                return int(m[1])
            if not chunk:
                sys.exit(f"{imzml}: no spectrumList")


def main() -> None:
    """Generate the dataset if missing, measure every case, print the results."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tessera", required=True, help="the tessera binary")
    ap.add_argument("--work", required=True, help="a folder for the dataset, the index and the slices")
    ap.add_argument("--spectra", type=int, default=int(os.environ.get("SPECTRA", "19600")),
                    help="spectra [SPECTRA, 19600]")
    ap.add_argument("--points", type=int, default=int(os.environ.get("POINTS", "2000")),
                    help="peaks a spectrum [POINTS, 2000]")
    ap.add_argument("--runs", type=int, default=int(os.environ.get("RUNS", "3")), help="[RUNS, 3]")
    ap.add_argument("--slices", type=int, default=int(os.environ.get("SLICES", "16")), help="[SLICES, 16]")
    ap.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS", "2")),
                    help="processes at a time [WORKERS, 2]")
    a = ap.parse_args()
    if min(a.spectra, a.points, a.runs, a.slices, a.workers) < 1:
        sys.exit("--spectra, --points, --runs, --slices and --workers must be at least 1")
    tessera = str(Path(a.tessera).resolve())
    if not os.access(tessera, os.X_OK):
        sys.exit(f"not an executable: {tessera}")
    work = Path(a.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    py, me = sys.executable, str(Path(__file__).resolve())

    imzml = work / f"msi-{a.spectra}x{a.points}.imzML"
    ibd = imzml.with_suffix(".ibd")
    if not (imzml.exists() and ibd.exists()):
        print(f"== generating {a.spectra} spectra of {a.points} peaks (imzML, processed, float32, pyimzml)",
              flush=True)
        start = time.perf_counter()
        spawn([py, me, "_generate", str(imzml), str(a.spectra), str(a.points)])
        print(f"   {time.perf_counter() - start:.1f} s", flush=True)
    xml_mb, ibd_mb = imzml.stat().st_size / 1e6, ibd.stat().st_size / 1e6
    mb = xml_mb + ibd_mb
    print(f"\n== input: {imzml.name} ({xml_mb:.0f} MB) + {ibd.name} ({ibd_mb:.0f} MB), {a.spectra} spectra; "
          f"{a.runs} run(s), medians; MB/s = (XML + ibd) MB / s", flush=True)
    table = Table()

    print("\n== (a) indexing")
    index = Path(f"{imzml}.tessera-index.json")
    table.measure("tessera index", [tessera, "-q", "index", str(imzml)], a.runs, mb=mb,
                  before=lambda: index.unlink(missing_ok=True))
    print(f"  ({json.loads(index.read_text())['records']} records)")

    print(f"\n== (b) {a.slices} slices, {a.workers} processes at a time (xargs -P{a.workers})")
    plan = work / f"slices-{a.slices}.json"
    parts = work / "parts"

    def clean() -> None:
        """An empty folder for the slices' folders."""
        shutil.rmtree(parts, ignore_errors=True)
        parts.mkdir()

    def slices_check(_: Run) -> None:
        """Every planned slice was written as a pair, and together they hold every spectrum."""
        planned = len(json.loads(plan.read_text()))
        got = sorted(parts.glob("part*/*.imzML"))
        files = sorted(p.name for p in parts.iterdir() if not p.is_dir())
        if files:
            sys.exit(f"slice get -o DIR wrote files, not folders: {files[:4]} ... in {parts}")
        if len(got) != planned or len(list(parts.glob("part*/*.ibd"))) != planned:
            sys.exit(f"{len(got)} slice folders with a pair for {planned} slices in {parts}")
        n = sum(spectrum_count(p) for p in got)
        if n != a.spectra:
            sys.exit(f"the slices hold {n} spectra, not {a.spectra}")

    label_plan = f"tessera slice --count {a.slices} (plan only)"
    table.measure(label_plan, [tessera, "-q", "slice", str(imzml), "--count", str(a.slices), "-o", str(plan)],
                  a.runs)
    fetch = (f'seq 0 $(( $(grep -o \'"tessera_slice"\' "{plan}" | wc -l) - 1 )) | '
             f'xargs -P{a.workers} -I@ "{tessera}" -q slice get "{plan}" --slice @ -o "{parts}/part@"')
    plan_and_fetch = f'"{tessera}" -q slice "{imzml}" --count {a.slices} -o "{plan}" && {fetch}'
    label_b = f"plan + slice get x{a.slices}, {a.workers} at a time"
    table.measure(label_b, ["sh", "-c", plan_and_fetch], a.runs, mb=mb, before=clean, check=slices_check)
    out_mb = sum(p.stat().st_size for p in parts.glob("part*/*")) / 1e6
    print(f"  ({len(list(parts.glob('part*')))} slices, {out_mb:.0f} MB of standalone imzML + ibd pairs)")

    print("\n== (c) pyimzml: ImzMLParser + getspectrum(i) for every spectrum")
    label_c1 = "pyimzml, one process"
    label_c2 = f"pyimzml, {a.workers} processes (each parses the XML)"
    run_c = table.measure(label_c1, [py, me, "_read", str(imzml), "0", "1"], a.runs, mb=mb)
    want = totals(run_c)
    if want[0] != a.spectra:
        sys.exit(f"pyimzml read {want[0]} spectra, not {a.spectra}")

    def same(r: Run) -> None:
        """The case read the spectra (c) read."""
        if totals(r) != want:
            sys.exit(f"read {totals(r)} (spectra, bytes, CRC), not {want}")

    split = (f'seq 0 {a.workers - 1} | xargs -P{a.workers} -I@ "{py}" "{me}" _read "{imzml}" @ {a.workers}')
    table.measure(label_c2, ["sh", "-c", split], a.runs, mb=mb, check=same)
    print(f"  ({want[0]} spectra, {want[1] / 1e6:.0f} MB of arrays)")

    print(f"\n== (d) tessera's slices, then pyimzml reading each, {a.workers} processes sharing them")
    label_d = f"plan + slice get + pyimzml x{a.slices}, {a.workers} processes"
    # the slices shared out among WORKERS reading processes, as in (c)
    read_each = (f'{plan_and_fetch} && n=$(ls -d "{parts}"/part* | wc -l) && ls -d "{parts}"/part* | '
                 f'xargs -P{a.workers} -n$(( (n + {a.workers} - 1) / {a.workers} )) "{py}" "{me}" _read_slices')

    def slices_read(r: Run) -> None:
        """The slices were written, and pyimzml read the spectra (c) read from them."""
        slices_check(r)
        same(r)

    table.measure(label_d, ["sh", "-c", read_each], a.runs, mb=mb, before=clean, check=slices_read)
    print("  (the same spectra as (c): checked)")

    t_b, t_d = table.seconds(label_b), table.seconds(label_d)
    print("\n== summary (medians)")
    Table.show("tessera index", table.seconds("tessera index"), mb, None, None)
    Table.show(f"tessera plan + slice get x{a.slices}", t_b, mb, None, None)
    Table.show(f"tessera slices + pyimzml x{a.slices}", t_d, mb, None, None)
    Table.show(label_c1, table.seconds(label_c1), mb, None, None)
    Table.show(label_c2, table.seconds(label_c2), mb, None, None)
    print("\n== ratios (pyimzml / tessera; higher: tessera faster)")
    table.ratio(f"one process / {a.slices} slices", label_c1, t_b)
    table.ratio(f"{a.workers} processes / {a.slices} slices", label_c2, t_b)
    table.ratio(f"{a.workers} processes / {a.slices} slices + pyimzml each", label_c2, t_d)
    table.ratio("one process / tessera index", label_c1, table.seconds("tessera index"))
    print(f"  (planning alone: {table.seconds(label_plan):.3f} s; each tessera slice is a standalone "
          "imzML + ibd pair anyone can open, each pyimzml share arrays in a worker's memory)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].startswith("_"):
        case, args = sys.argv[1], sys.argv[2:]
        if case == "_generate":
            generate(Path(args[0]), int(args[1]), int(args[2]))
        elif case == "_read":
            read_dataset(args[0], int(args[1]), int(args[2]))
        elif case == "_read_slices":
            read_slices(args)
        else:
            sys.exit(f"unknown case {case}")
    else:
        main()

"""Radio-astronomy MeasurementSets (casacore table folders) through the
``tessera`` command line: index a folder, plan row ranges, fetch every slice,
and open each slice with python-casacore.

The MeasurementSets are written here with the fixture generator
``crates/slice/tests/fixtures/ms/make_ms.py`` (python-casacore's
``default_ms``: every main-table column in one StandardStMan, the array
columns stored indirectly in ``table.f0i``): one timestamp only, one row per
timestamp, a varying number of rows per timestamp, two spectral windows of
different channel counts (DATA changes shape from row to row), and about 2000
rows over some sixty StandardStMan buckets. Every slice is fetched with
``tessera slice get -o DIR`` into ``DIR/NAME.sliceI.ms``.

The laws and the bad-input tests run on a local folder and on the test S3
server, where every file of the folder is uploaded under the prefix and the
MeasurementSet's URL is the folder's, ``s3://bucket/prefix/NAME.ms``. A slice
reads some sixty objects, so on S3 the slices of one plan of three of the
MeasurementSets are fetched, and every plan is checked from its descriptors. What a slice is as a
MeasurementSet, and seeded random plans, are tested on a local folder.

The laws: the row ranges ``[a, b)`` of a plan follow each other from row 0 to
the last row, never cut inside a timestamp (the TIME of row ``a - 1`` is not
the TIME of row ``a``), and cut as the plan says (``--count N``: at the first
timestamp boundary at or after each of the ``N - 1`` even cuts;
``--records K``: whole timestamps until a slice holds ``K`` rows; ``--bytes``:
the same with ``K`` rows of the main table's stored bytes); each slice's
descriptor says its rows; and each fetched slice is a MeasurementSet that
casacore opens, with ``b - a`` rows equal to rows ``[a, b)`` of the original
in every column, column description, keyword and subtable (the oracle
``crates/slice/tests/fixtures/ms/check_slice.py``). Negative controls show
the oracle fails on the wrong rows and on changed cells, and the plan laws on
forged plans.

Main tables with other storage managers (IncrementalStMan,
TiledShapeStMan, TiledColumnStMan: the generator's CASA-like and
tiled-column layouts, and DATA alone tiled) are sliced by the same laws,
with ``--interval`` plans too.

Bad input: a folder without ``table.dat``, ``table.f0`` or ``table.f0i``, a
cut-short ``table.dat``, and files changed after indexing.

Every expected value is computed from the data and files the tests wrote.
"""

from __future__ import annotations

import bisect
import random
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import casacore.tables as pt
import numpy as np
import pytest

from _objects import exists, overwrite, put, put_file
from _cli import index, plan, run

FIXTURES = Path(__file__).resolve().parents[2] / "crates" / "slice" / "tests" / "fixtures" / "ms"
sys.path.insert(0, str(FIXTURES))

import check_slice as oracle  # noqa: E402  (the fixture folder's oracle)
import make_ms  # noqa: E402  (the fixture folder's generator)

# -- the MeasurementSets -------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """A MeasurementSet to generate with ``make_ms.build`` (default layout)."""

    name: str
    ntimes: int
    nant: int
    nchan: int
    ncorr: int
    seed: int
    spw_chans: tuple[int, ...] | None = None
    autocorr: bool = False


SPECS = [
    # every row at one TIME: no cut is possible
    Spec("one-timestamp", ntimes=1, nant=4, nchan=2, ncorr=1, seed=11),
    # two antennas: one baseline, one row per timestamp
    Spec("row-per-time", ntimes=9, nant=2, nchan=3, ncorr=2, seed=12),
    # a pseudo-random subset of the baselines at each timestamp
    Spec("varying", ntimes=8, nant=5, nchan=4, ncorr=4, seed=13),
    # DATA alternates between 4 and 8 channels; autocorrelations
    Spec("two-windows", ntimes=7, nant=4, nchan=4, ncorr=2, seed=14, spw_chans=(4, 8), autocorr=True),
    # ~2000 rows: the StandardStMan's rows span many buckets
    Spec("many-buckets", ntimes=60, nant=10, nchan=8, ncorr=4, seed=5),
]
# the MeasurementSets whose slices are fetched from S3 too (``--count 3``)
S3_FETCHED = {"varying", "two-windows", "many-buckets"}


@dataclass
class Original:
    """A generated MeasurementSet as casacore reads it: its folder, rows,
    TIME column and the rows where TIME changes."""

    spec: Spec
    path: Path
    summary: dict[str, Any]
    nrow: int
    times: np.ndarray
    starts: list[int]

    @property
    def stem(self) -> str:
        """The folder's name without ``.ms``."""
        return self.path.name.removesuffix(".ms")

    @property
    def main_bytes(self) -> int:
        """The main table's stored bytes: its files beside ``table.dat``
        (``table.lock`` aside: it is no part of the table's data)."""
        return sum(p.stat().st_size for p in self.path.iterdir() if p.is_file() and p.name != "table.lock")


def time_starts(times: np.ndarray) -> list[int]:
    """The rows where TIME differs from the row before (row 0 first)."""
    return [r for r in range(len(times)) if r == 0 or times[r] != times[r - 1]]


def read_original(spec: Spec, path: Path, summary: dict[str, Any]) -> Original:
    """Read back what casacore sees of a written MeasurementSet."""
    with pt.table(str(path), ack=False) as t:
        nrow = t.nrows()
        times = t.getcol("TIME") if nrow else np.array([])
    return Original(spec, path, summary, nrow, times, time_starts(times))


def build(spec: Spec, folder: Path) -> Original:
    """Generate ``spec`` as ``folder/NAME.ms``."""
    path = folder / f"{spec.name}.ms"
    summary = make_ms.build(
        str(path), spec.ntimes, spec.nant, spec.nchan, spec.ncorr, "default", 4, 5, spec.seed,
        list(spec.spw_chans) if spec.spw_chans else None, spec.autocorr,
    )
    return read_original(spec, path, summary)


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Original]:
    """Every spec generated once, locally (copied into each test's store)."""
    folder = tmp_path_factory.mktemp("ms-originals")
    return {s.name: build(s, folder) for s in SPECS}


def place(
    ms: Path, store_base: str, name: str | None = None, *,
    drop: frozenset[str] = frozenset(), replace: dict[str, bytes] | None = None,
) -> str:
    """Put every file of the folder ``ms`` under ``store_base/NAME`` (a
    local folder or an S3 prefix), without the files in ``drop`` and with
    the bytes of ``replace`` in place of others; returns the folder's URL."""
    url = f"{store_base}/{name or ms.name}"
    replace = replace or {}

    def one(p: Path) -> None:
        rel = p.relative_to(ms).as_posix()
        if rel in replace:
            put(f"{url}/{rel}", replace[rel])
        elif rel not in drop:
            put_file(f"{url}/{rel}", p)

    files = sorted(p for p in ms.rglob("*") if p.is_file())
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, files))
    return url


def on_s3(store_base: str) -> bool:
    """Whether the test's store is the S3 server."""
    return store_base.startswith("s3://")


# -- running tessera -------------------------------------------------------------------


def names(word: str, text: str) -> bool:
    """Whether ``text`` holds ``word`` as a whole name (``TIME`` is not in
    ``TIME_CENTROID``)."""
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(word)}(?![A-Za-z0-9_])", text) is not None


def fetch(tessera_bin: Path, plan_file: Path, i: int, out: Path, stem: str) -> Path:
    """Fetch slice ``i`` of a plan into the folder ``out``; it must hold
    just ``STEM.sliceI.ms``, which is returned."""
    run(tessera_bin, "slice", "get", str(plan_file), "--slice", str(i), "-o", str(out))
    listed = sorted(p.name for p in out.iterdir())
    assert listed == [f"{stem}.slice{i}.ms"], listed
    return out / listed[0]


def fetch_many(tessera_bin: Path, plan_file: Path, indexes: list[int], out: Path, stem: str) -> dict[int, Path]:
    """Fetch slices of a plan, several at a time (each into
    ``OUT-I/STEM.sliceI.ms``); returns their folders by slice number."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = pool.map(lambda i: fetch(tessera_bin, plan_file, i, out.with_name(f"{out.name}-{i}"), stem), indexes)
        return dict(zip(indexes, got))


def verify_slice(original: Original, sl: Path, a: int, b: int) -> None:
    """The slice opens in casacore with ``b - a`` rows, and the oracle finds
    it equal to rows ``[a, b)`` of the original (columns, descriptions,
    keywords, subtables)."""
    with pt.table(str(sl), ack=False) as t:
        assert t.nrows() == b - a, (sl, t.nrows(), a, b)
    errors = oracle.check(str(original.path), str(sl), a, b)
    assert errors == [], f"{sl} against rows [{a}, {b}): {errors}"


def first_start_at(original: Original, row: int) -> int:
    """The first timestamp boundary at or after ``row`` (the row count when
    there is none)."""
    i = bisect.bisect_left(original.starts, row)
    return original.starts[i] if i < len(original.starts) else original.nrow


def check_records_law(ranges: list[list[int]], original: Original, k: int, what: str) -> None:
    """Whole timestamps until a slice holds ``k`` rows: every slice but the
    last holds at least ``k`` rows, and in every slice the last timestamp
    starts less than ``k`` rows after the slice does."""
    for n, (a, b) in enumerate(ranges):
        last = max(s for s in original.starts if a <= s < b)
        assert last < a + k, (what, n, a, b, last, k)
        if n < len(ranges) - 1:
            assert b - a >= k, (what, n, a, b, k)


def check_plan(args: list[str], slices: list[dict[str, Any]], original: Original, idx: dict[str, Any]) -> None:
    """The laws of a plan: its descriptors, its row ranges (contiguous from
    row 0 to the last, cut only between timestamps) and its cuts as the
    option says."""
    what = " ".join(args)
    n = len(slices)
    ranges = [list(d["rows"]) for d in slices]
    for k, d in enumerate(slices):
        a, b = ranges[k]
        assert d["format"] == "ms" and d["slice"] == k and d["slices"] == n, (what, k)
        assert (d["url"], d["etag"], d["size"]) == (idx["url"], idx["etag"], idx["size"]), (what, k)
        assert d["first_record"] == a and d["record_count"] == b - a, (what, k, d["first_record"], d["record_count"], a, b)
        assert 0 <= a < b <= original.nrow, (what, k, a, b)
    assert ranges[0][0] == 0 and ranges[-1][1] == original.nrow, (what, ranges)
    for (_, b), (a, _) in zip(ranges, ranges[1:]):
        assert b == a, (what, "not contiguous", ranges)
    cuts = [a for a, _ in ranges[1:]]
    for c in cuts:
        assert original.times[c - 1] != original.times[c], (what, "a timestamp split at row", c)
    option, value = args[0], int(args[1])
    if option == "--count":
        assert n <= value, (what, n)
        even = {original.nrow * i // value for i in range(1, value)}
        want = sorted({first_start_at(original, w) for w in even if w > 0} - {original.nrow})
        assert cuts == want, (what, cuts, want)
    elif option == "--records":
        check_records_law(ranges, original, value, what)
    elif option == "--bytes":
        per_row = max(1, original.main_bytes // original.nrow)
        check_records_law(ranges, original, max(1, value // per_row), what)
    else:
        raise AssertionError(f"no law for {option}")


def plans_for(original: Original) -> dict[str, list[str]]:
    """The plans every MeasurementSet is cut by (row counts and byte sizes
    from the MeasurementSet itself)."""
    return {
        "count1": ["--count", "1"],
        "count3": ["--count", "3"],
        "count7": ["--count", "7"],
        "records-tenth": ["--records", str(max(1, original.nrow // 10))],
        "records-third": ["--records", str(original.nrow // 3 + 1)],
        "records-all": ["--records", str(original.nrow + 5)],
        "bytes-fifth": ["--bytes", str(original.main_bytes // 5)],
    }


# -- the generated MeasurementSets -------------------------------------------------------


def test_generated_sets_are_what_they_claim(originals: dict[str, Original]) -> None:
    """The MeasurementSets the laws are tried on: one StandardStMan holds
    every main-table column; the rows per timestamp are one everywhere,
    or vary; DATA changes shape with the spectral window; the big one spans
    many StandardStMan buckets; the generator's summary matches casacore."""
    for name, o in originals.items():
        assert o.nrow == o.summary["nrow"] > 0, name
        assert o.starts == o.summary["time_change_rows"], name
        with pt.table(str(o.path), ack=False) as t:
            kinds = {dm["TYPE"] for dm in t.getdminfo().values()}
            assert kinds == {"StandardStMan"}, (name, kinds)
    assert len(originals["one-timestamp"].starts) == 1
    assert set(originals["row-per-time"].summary["rows_per_time"]) == {1}
    assert len(set(originals["varying"].summary["rows_per_time"])) > 1
    big = originals["many-buckets"]
    assert big.nrow >= 2000 and len(set(big.summary["rows_per_time"])) > 1
    with pt.table(str(big.path), ack=False) as t:
        bucket = t.getdminfo()["*1"]["SPEC"]["BUCKETSIZE"]
    assert (big.path / "table.f0").stat().st_size > 20 * bucket
    with pt.table(str(originals["two-windows"].path), ack=False) as t:
        shapes = {tuple(t.getcell("DATA", r).shape) for r in range(t.nrows())}
    assert shapes == {(4, 2), (8, 2)}, shapes


# -- the laws ----------------------------------------------------------------------------


@pytest.mark.parametrize("spec_name", [s.name for s in SPECS])
def test_slices_are_the_rows_of_their_range(
    store_base: str, tmp_path: Path, tessera_bin: Path, originals: dict[str, Original], spec_name: str
) -> None:
    """For every plan: the index counts the main table's rows, the plan
    keeps the laws, and every fetched slice is a MeasurementSet equal to
    its rows of the original. On the S3 server the slices of the
    ``--count 3`` plan of the sets in ``S3_FETCHED`` are fetched, and every
    plan's laws are checked from its descriptors."""
    o = originals[spec_name]
    url = place(o.path, store_base)
    idx = index(tessera_bin, url)
    assert exists(f"{url}.tessera-index.json")
    assert idx["format"] == "ms" and idx["records"] == o.nrow
    assert idx["size"] == (o.path / "table.dat").stat().st_size
    for plan_name, args in plans_for(o).items():
        plan_file = tmp_path / f"{plan_name}.json"
        slices = plan(tessera_bin, url, args, plan_file)
        check_plan(args, slices, o, idx)
        if on_s3(store_base) and (plan_name != "count3" or spec_name not in S3_FETCHED):
            continue
        got = fetch_many(tessera_bin, plan_file, list(range(len(slices))), tmp_path / plan_name, o.stem)
        for i, d in enumerate(slices):
            verify_slice(o, got[i], *d["rows"])


def test_random_plans_cut_between_timestamps(
    tmp_path: Path, tessera_bin: Path, originals: dict[str, Original]
) -> None:
    """Seeded random plans (a count, a row count or a byte size, from 1 to
    past the whole) over the big MeasurementSet keep the laws: every cut at
    a timestamp boundary, the ranges together every row once; four of
    their slices, picked at random, are the rows of their range."""
    o = originals["many-buckets"]
    url = place(o.path, str(tmp_path / "store"))
    idx = index(tessera_bin, url)
    rng = random.Random(20261201)
    fetched = 0
    for n in range(40):
        option = rng.choice(["--count", "--records", "--bytes"])
        top = {"--count": len(o.starts) + 5, "--records": o.nrow + 5, "--bytes": o.main_bytes + 1000}[option]
        value = rng.randint(1, top)
        args = [option, str(value)]
        plan_file = tmp_path / f"plan{n}.json"
        slices = plan(tessera_bin, url, args, plan_file)
        check_plan(args, slices, o, idx)
        if n % 10 == 0:
            i = rng.randrange(len(slices))
            a, b = slices[i]["rows"]
            verify_slice(o, fetch(tessera_bin, plan_file, i, tmp_path / f"got{n}", o.stem), a, b)
            fetched += 1
    assert fetched == 4


def test_the_oracle_fails_on_wrong_rows(tmp_path: Path, tessera_bin: Path, originals: dict[str, Original]) -> None:
    """The negative control: the oracle that passes a slice against its own
    rows finds differences against the rows one further on, against one
    row fewer, and in copies of the slice with one DATA cell or one
    antenna name changed."""
    o = originals["varying"]
    url = place(o.path, str(tmp_path / "store"))
    index(tessera_bin, url)
    plan_file = tmp_path / "slices.json"
    slices = plan(tessera_bin, url, ["--count", "3"], plan_file)
    assert len(slices) == 3
    a, b = slices[1]["rows"]
    sl = fetch(tessera_bin, plan_file, 1, tmp_path / "slice1", o.stem)
    assert oracle.check(str(o.path), str(sl), a, b) == []
    shifted = oracle.check(str(o.path), str(sl), a + 1, b + 1)
    assert any(e.startswith("MAIN.") for e in shifted), shifted
    shorter = oracle.check(str(o.path), str(sl), a, b - 1)
    assert any("nrows" in e for e in shorter), shorter

    changed = tmp_path / "changed.ms"
    shutil.copytree(sl, changed)
    with pt.table(str(changed), readonly=False, ack=False) as t:
        t.putcell("DATA", 0, t.getcell("DATA", 0) + 1)
    errors = oracle.check(str(o.path), str(changed), a, b)
    assert any(e.startswith("MAIN.DATA") for e in errors), errors

    renamed = tmp_path / "renamed.ms"
    shutil.copytree(sl, renamed)
    with pt.table(str(renamed / "ANTENNA"), readonly=False, ack=False) as t:
        t.putcell("NAME", 0, t.getcell("NAME", 0) + "X")
    errors = oracle.check(str(o.path), str(renamed), a, b)
    assert any(e.startswith("ANTENNA.NAME") for e in errors), errors


def test_the_plan_laws_fail_on_forged_plans(
    tmp_path: Path, tessera_bin: Path, originals: dict[str, Original]
) -> None:
    """The negative control of the plan laws: a real plan passes them, and
    copies of it with a cut moved inside a timestamp, a slice left out, or
    a descriptor's record count off by one fail them."""
    o = originals["varying"]
    url = place(o.path, str(tmp_path / "store"))
    idx = index(tessera_bin, url)
    args = ["--count", "3"]
    slices = plan(tessera_bin, url, args, tmp_path / "slices.json")
    check_plan(args, slices, o, idx)
    c = slices[1]["rows"][0]
    assert o.times[c + 1] == o.times[c], "the timestamp at the cut has one row"

    def forged(change: str) -> list[dict[str, Any]]:
        copy = [dict(d, rows=list(d["rows"])) for d in slices]
        if change == "split":
            copy[0]["rows"][1] = copy[1]["rows"][0] = c + 1
            copy[0]["record_count"] += 1
            copy[1]["first_record"] += 1
            copy[1]["record_count"] -= 1
        elif change == "gap":
            del copy[1]
            copy = [dict(d, slice=k, slices=len(copy)) for k, d in enumerate(copy)]
        else:
            copy[2]["record_count"] += 1
        return copy

    for change in ["split", "gap", "count"]:
        with pytest.raises(AssertionError):
            check_plan(args, forged(change), o, idx)


# -- a slice is a MeasurementSet -----------------------------------------------------------


def test_a_slice_is_a_measurement_set(tmp_path: Path, tessera_bin: Path, originals: dict[str, Original]) -> None:
    """Each slice opens in casacore as a MeasurementSet: its table type is
    the original's, its TIME is non-decreasing and the original's rows,
    its DATA cells have the original's per-row shapes, its subtables are
    found through its own keywords, inside the slice, and ANTENNA holds the
    original's antennas."""
    o = originals["two-windows"]
    url = place(o.path, str(tmp_path / "store"))
    index(tessera_bin, url)
    plan_file = tmp_path / "slices.json"
    slices = plan(tessera_bin, url, ["--count", "3"], plan_file)
    assert len(slices) == 3
    with pt.table(str(o.path), ack=False) as t:
        info = t.info()
        shapes = [t.getcell("DATA", r).shape for r in range(o.nrow)]
    with pt.table(str(o.path / "ANTENNA"), ack=False) as t:
        antennas = (t.nrows(), list(t.getcol("NAME")), t.getcol("POSITION"))
    got = fetch_many(tessera_bin, plan_file, [0, 1, 2], tmp_path / "slice", o.stem)
    for i, d in enumerate(slices):
        a, b = d["rows"]
        sl = got[i]
        with pt.table(str(sl), ack=False) as t:
            assert t.info()["type"] == info["type"] == "Measurement Set"
            time = t.getcol("TIME")
            assert np.array_equal(time, o.times[a:b])
            assert np.all(np.diff(time) >= 0)
            assert [t.getcell("DATA", r).shape for r in range(t.nrows())] == shapes[a:b]
            link = t.getkeyword("ANTENNA")
        assert link.startswith("Table: "), link
        where = Path(link.removeprefix("Table: ")).resolve()
        assert where == (sl / "ANTENNA").resolve(), where
        with pt.table(str(where), ack=False) as ant:
            found = (ant.nrows(), list(ant.getcol("NAME")), ant.getcol("POSITION"))
        assert found[:2] == antennas[:2] and np.array_equal(found[2], antennas[2])


def test_a_slice_indexes_again(tmp_path: Path, tessera_bin: Path, originals: dict[str, Original]) -> None:
    """A fetched slice (a folder without ``table.lock``) is a MeasurementSet
    tessera indexes and cuts again: one record per row, and its slices are
    rows of the original."""
    o = originals["many-buckets"]
    url = place(o.path, str(tmp_path / "store"))
    index(tessera_bin, url)
    plan_file = tmp_path / "slices.json"
    slices = plan(tessera_bin, url, ["--count", "3"], plan_file)
    a, b = slices[1]["rows"]
    sl = fetch(tessera_bin, plan_file, 1, tmp_path / "slice1", o.stem)
    again = index(tessera_bin, str(sl))
    assert again["format"] == "ms" and again["records"] == b - a
    plan2 = tmp_path / "again.json"
    slices2 = plan(tessera_bin, str(sl), ["--count", "2"], plan2)
    assert slices2[-1]["rows"][1] == b - a
    for i, d in enumerate(slices2):
        a2, b2 = d["rows"]
        got = fetch(tessera_bin, plan2, i, tmp_path / f"again{i}", f"{o.stem}.slice1")
        verify_slice(o, got, a + a2, a + b2)


def test_format_forced_on_a_folder_without_the_suffix(
    store_base: str, tmp_path: Path, tessera_bin: Path, originals: dict[str, Original]
) -> None:
    """A MeasurementSet folder not named ``.ms`` is not detected, and
    ``--format ms`` indexes it; it is then planned and sliced like any
    other (one folder per slice, the rows of its range)."""
    o = originals["varying"]
    url = place(o.path, store_base, "visibilities.table")
    run(tessera_bin, "index", url, ok=False)
    assert not exists(f"{url}.tessera-index.json")
    idx = index(tessera_bin, url, "--format", "ms")
    assert idx["format"] == "ms" and idx["records"] == o.nrow
    plan_file = tmp_path / "slices.json"
    slices = plan(tessera_bin, url, ["--count", "2"], plan_file)
    check_plan(["--count", "2"], slices, o, idx)

    def get(i: int) -> list[Path]:
        out = tmp_path / f"slice{i}"
        run(tessera_bin, "slice", "get", str(plan_file), "--slice", str(i), "-o", str(out))
        return list(out.iterdir())

    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(get, range(len(slices))))
    for d, written in zip(slices, got):
        assert len(written) == 1 and written[0].is_dir(), written
        verify_slice(o, written[0], *d["rows"])


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["table.dat", "table.f0"])
def test_missing_main_table_file_is_refused(
    store_base: str, tessera_bin: Path, originals: dict[str, Original], missing: str
) -> None:
    """A folder without the main table's description or its storage
    manager's file: exit status 1, an error naming the file, and no
    index."""
    o = originals["varying"]
    url = place(o.path, store_base, f"no-{missing.replace('.', '-')}.ms", drop=frozenset({missing}))
    proc = run(tessera_bin, "index", url, ok=False)
    assert proc.returncode == 1, proc.returncode
    assert names(missing, proc.stderr), proc.stderr
    assert not exists(f"{url}.tessera-index.json")


def test_missing_indirect_array_file_is_refused(
    store_base: str, tmp_path: Path, tessera_bin: Path, originals: dict[str, Original]
) -> None:
    """A folder without ``table.f0i`` (the StandardStMan's file of
    variable-shape arrays: DATA, FLAG, WEIGHT, SIGMA): casacore cannot open
    it, and tessera refuses it naming ``table.f0i``, at indexing or at the
    latest when a slice is fetched, and writes no slice."""
    o = originals["varying"]
    lacking = tmp_path / "lacking.ms"
    shutil.copytree(o.path, lacking)
    (lacking / "table.f0i").unlink()
    with pytest.raises(RuntimeError, match="table.f0i"):
        pt.table(str(lacking), ack=False)
    url = place(o.path, store_base, "no-f0i.ms", drop=frozenset({"table.f0i"}))
    proc = subprocess.run([str(tessera_bin), "index", url], capture_output=True, text=True, timeout=600)
    if proc.returncode == 0:
        plan_file = tmp_path / "slices.json"
        plan(tessera_bin, url, ["--count", "2"], plan_file)
        out = tmp_path / "slice0"
        proc = run(tessera_bin, "slice", "get", str(plan_file), "--slice", "0", "-o", str(out), ok=False)
        assert not out.exists() or not any(out.iterdir()), sorted(p.name for p in out.rglob("*"))
    else:
        assert "panicked" not in proc.stderr and "error" in proc.stderr.lower(), proc.stderr
        assert not exists(f"{url}.tessera-index.json")
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert names("table.f0i", proc.stderr), proc.stderr


@pytest.mark.parametrize("keep", ["one-byte", "magic", "half", "all-but-one"])
def test_truncated_table_dat_is_refused(
    store_base: str, tessera_bin: Path, originals: dict[str, Original], keep: str
) -> None:
    """A ``table.dat`` cut short (to one byte, after its first bytes, at
    half, one byte short): exit status 1, an error naming ``table.dat``, no
    panic, and no index."""
    o = originals["varying"]
    data = (o.path / "table.dat").read_bytes()
    cut = {"one-byte": 1, "magic": 6, "half": len(data) // 2, "all-but-one": len(data) - 1}[keep]
    url = place(o.path, store_base, f"cut-{keep}.ms", replace={"table.dat": data[:cut]})
    proc = run(tessera_bin, "index", url, ok=False)
    assert proc.returncode == 1, proc.returncode
    assert names("table.dat", proc.stderr), proc.stderr
    assert not exists(f"{url}.tessera-index.json")


@pytest.mark.parametrize("changed", ["table.f0i", "table.f0", "ANTENNA/table.f0"])
def test_changed_after_indexing_is_refused(
    store_base: str, tmp_path: Path, tessera_bin: Path, originals: dict[str, Original], changed: str
) -> None:
    """A file of the folder rewritten after indexing with one byte changed
    (the same size): fetching a slice (which worked before, on a local
    folder) fails with exit status 1, saying the index is out of date
    because that file changed since it was indexed, and writes nothing."""
    o = originals["varying"]
    url = place(o.path, store_base, "changing.ms")
    index(tessera_bin, url)
    plan_file = tmp_path / "slices.json"
    plan(tessera_bin, url, ["--count", "2"], plan_file)
    if not on_s3(store_base):
        fetch(tessera_bin, plan_file, 0, tmp_path / "before", "changing")

    data = bytearray((o.path / changed).read_bytes())
    data[len(data) // 2] ^= 0x01
    overwrite(f"{url}/{changed}", bytes(data))  # the same size

    out = tmp_path / "after"
    proc = run(tessera_bin, "slice", "get", str(plan_file), "--slice", "0", "-o", str(out), ok=False)
    assert proc.returncode == 1, proc.returncode
    assert "out of date" in proc.stderr and "changed since it was indexed" in proc.stderr, proc.stderr
    assert names(changed, proc.stderr), proc.stderr
    assert not out.exists() or not any(out.iterdir())


def tiled_data_ms(path: Path) -> None:
    """A ``default_ms`` whose DATA alone is in a TiledColumnStMan (fixed
    shape), the rest in the StandardStMan, with three timestamps."""
    desc = pt.makearrcoldesc("DATA", 0j, shape=[4, 2], valuetype="complex",
                             datamanagertype="TiledColumnStMan", datamanagergroup="TiledData")
    with pt.default_ms(str(path), pt.maketabdesc([desc])) as t:
        t.addrows(9)
        t.putcol("TIME", np.repeat(make_ms.TIME0 + np.arange(3) * 10.0, 3))
        rows = np.arange(9)[:, None, None]
        t.putcol("DATA", (rows * 100 + np.arange(4)[None, :, None] * 10 + np.arange(2)[None, None, :]).astype(np.complex64))


@pytest.fixture(scope="module")
def other_managers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Original]:
    """MeasurementSets whose main table uses other storage managers: the
    generator's CASA-like layout (IncrementalStMan for TIME and the ids,
    TiledShapeStMan for DATA, FLAG and WEIGHT_SPECTRUM), its fixed-shape
    TiledColumnStMan layout, and DATA alone in a TiledColumnStMan."""
    folder = tmp_path_factory.mktemp("ms-managers")
    out: dict[str, Original] = {}
    for layout in ["casa", "tiledcolumn"]:
        spec = Spec(layout, ntimes=5, nant=4, nchan=4, ncorr=2, seed=21)
        path = folder / f"{layout}.ms"
        summary = make_ms.build(str(path), spec.ntimes, spec.nant, spec.nchan, spec.ncorr, layout, 2, 3,
                                spec.seed, None, False)
        out[layout] = read_original(spec, path, summary)
    path = folder / "tiled-data.ms"
    tiled_data_ms(path)
    out["tiled-data"] = read_original(Spec("tiled-data", 3, 2, 4, 2, 0), path, {})
    return out


@pytest.mark.parametrize("layout", ["casa", "tiledcolumn", "tiled-data"])
def test_other_storage_managers_are_sliced_exactly(
    store_base: str, tmp_path: Path, tessera_bin: Path, other_managers: dict[str, Original], layout: str
) -> None:
    """A main table with columns in IncrementalStMan, TiledShapeStMan or
    TiledColumnStMan is indexed and sliced into MeasurementSets equal to
    their rows of the original, by the laws, with --count, --records and
    --interval plans (on the S3 server too: one plan's slices are fetched
    there)."""
    o = other_managers[layout]
    with pt.table(str(o.path), ack=False) as t:
        others = [dm for dm in t.getdminfo().values() if dm["TYPE"] != "StandardStMan"]
        times = sorted(set(t.getcol("TIME").tolist()))
    assert others, layout
    url = place(o.path, store_base)
    idx = index(tessera_bin, url)
    assert idx["format"] == "ms" and idx["records"] == o.nrow
    # An interval of two timestamps' spacing: slices of two timestamps.
    step = times[1] - times[0] if len(times) > 1 else 1.0
    plans = (["--count", "3"], ["--records", "1"], ["--interval", f"{2 * step:g}s"])
    for args in plans:
        plan_file = tmp_path / f"{args[0][2:]}.json"
        slices = plan(tessera_bin, url, args, plan_file)
        if args[0] == "--interval":
            # Whole timestamps, each slice spanning less than the interval.
            starts = [d["rows"][0] for d in slices]
            assert starts == sorted(starts) and slices[-1]["rows"][1] == o.nrow
            assert len(slices) == (len(times) + 1) // 2, (len(slices), len(times))
        else:
            check_plan(args, slices, o, idx)
        if on_s3(store_base) and args[0] != "--count":
            continue
        got = fetch_many(tessera_bin, plan_file, list(range(len(slices))), tmp_path / args[0][2:], o.stem)
        for i, d in enumerate(slices):
            verify_slice(o, got[i], *d["rows"])
            check_tiled_managers_kept(o.path, got[i], d["rows"][1] - d["rows"][0])


def tiled_layout(path: Path) -> dict[str, Any]:
    """The tiled storage managers of a table, by name: type, columns,
    default tile shape, and per hypercube its cell and tile shapes and its
    rows."""
    with pt.table(str(path), ack=False) as t:
        info = t.getdminfo()
    out = {}
    for dm in info.values():
        if not dm["TYPE"].startswith("Tiled"):
            continue
        spec = dm["SPEC"]
        cubes = [(list(c["CellShape"]), list(c["TileShape"]), int(c["CubeShape"][-1]))
                 for c in spec.get("HYPERCUBES", {}).values()]
        out[dm["NAME"]] = {
            "type": dm["TYPE"],
            "columns": sorted(dm["COLUMNS"]),
            "default_tile": list(spec.get("DEFAULTTILESHAPE", [])),
            "cubes": cubes,
        }
    return out


def check_tiled_managers_kept(original: Path, sl: Path, rows: int) -> None:
    """A slice keeps each tiled storage manager of the original: its type,
    columns, default tile shape, and each hypercube's cell and tile shapes,
    the cubes' rows adding up to the slice's rows per column."""
    want, got = tiled_layout(original), tiled_layout(sl)
    assert got.keys() == want.keys(), (got.keys(), want.keys())
    for name, w in want.items():
        g = got[name]
        assert (g["type"], g["columns"], g["default_tile"]) == (w["type"], w["columns"], w["default_tile"]), name
        assert [c[:2] for c in g["cubes"]] == [c[:2] for c in w["cubes"]], (name, g, w)
        assert sum(c[2] for c in g["cubes"]) == rows, (name, g, rows)


def test_bad_plans_are_refused(
    store_base: str, tmp_path: Path, tessera_bin: Path, originals: dict[str, Original]
) -> None:
    """Zero sizes, a grid and a level (a MeasurementSet is cut by rows) are
    errors and write no plan; a slice number past the last is an error and
    writes nothing."""
    o = originals["varying"]
    url = place(o.path, store_base)
    index(tessera_bin, url)
    bad = tmp_path / "bad.json"
    for option in ["--count", "--records", "--bytes"]:
        run(tessera_bin, "slice", url, option, "0", "-o", str(bad), ok=False)
    for option, value in [("--grid", "2x2"), ("--level", "1")]:
        proc = run(tessera_bin, "slice", url, option, value, "-o", str(bad), ok=False)
        assert "timestamps" in proc.stderr, proc.stderr
    assert not bad.exists()
    plan_file = tmp_path / "slices.json"
    slices = plan(tessera_bin, url, ["--count", "3"], plan_file)
    out = tmp_path / "nothing"
    run(tessera_bin, "slice", "get", str(plan_file), "--slice", str(len(slices)), "-o", str(out), ok=False)
    assert not out.exists()


def test_python_plans_by_interval_and_fetches_measurement_sets(
    tmp_path: Path, other_managers: dict[str, Original]
) -> None:
    """The Python package: ``tessera.index`` of a MeasurementSet folder,
    ``Index.plan(interval=...)`` given seconds, a ``timedelta`` or a string
    (the same plan each way), ``Slice.fetch()`` returning a tar stream
    of a standalone MeasurementSet that equals its rows of the original,
    and ``Slice.fetch_to(folder)`` writing the same files."""
    import datetime
    import io
    import tarfile

    import tessera

    o = other_managers["casa"]
    with pt.table(str(o.path), ack=False) as t:
        times = sorted(set(t.getcol("TIME").tolist()))
    step = times[1] - times[0]
    idx = tessera.index(str(o.path))
    assert idx.format == "ms" and idx.records == o.nrow
    by_seconds = idx.plan(interval=2 * step)
    by_delta = idx.plan(interval=datetime.timedelta(seconds=2 * step))
    by_text = tessera.plan(str(o.path), interval=f"{2 * step:g}s")
    rows = [s.detail["rows"] for s in by_seconds]
    assert rows == [s.detail["rows"] for s in by_delta] == [s.detail["rows"] for s in by_text]
    assert len(rows) == (len(times) + 1) // 2 and rows[0][0] == 0 and rows[-1][1] == o.nrow
    with pytest.raises(Exception, match="interval"):
        idx.plan(interval=0)
    with pytest.raises(Exception, match="interval"):
        idx.plan(interval=1.0, count=2)
    for s in by_seconds:
        out = tmp_path / f"s{s.number}"
        tarfile.open(fileobj=io.BytesIO(s.fetch())).extractall(out)
        # fetch_to writes the same files, without the tar stream (compared
        # before casacore opens either: it adds a lock file).
        direct = tmp_path / f"d{s.number}"
        written = s.fetch_to(direct)
        files = sorted(p for p in out.rglob("*") if p.is_file())
        assert sorted(Path(p) for p in written) == [direct / p.relative_to(out) for p in files]
        for p in files:
            assert (direct / p.relative_to(out)).read_bytes() == p.read_bytes(), p
        verify_slice(o, out / f"{o.stem}.slice{s.number}.ms", *s.detail["rows"])
    # A slice of one file (a text format) has no files to write.
    text = tmp_path / "t.csv"
    text.write_text("a\n1\n2\n")
    tessera.index(str(text))
    with pytest.raises(Exception, match="one file"):
        tessera.plan(str(text), count=1)[0].fetch_to(tmp_path / "nothing")


def test_a_standard_st_man_index_chained_over_buckets(tmp_path: Path, tessera_bin: Path) -> None:
    """A StandardStMan of some 330 buckets keeps its index in a chain of
    buckets (more than half a bucket of it): tessera reads the chain, and a
    slice of every row writes one that casacore reads; a slice of half the
    rows has its index in one bucket."""
    spec = Spec("chained", ntimes=300, nant=10, nchan=2, ncorr=1, seed=5)
    path = tmp_path / "chained.ms"
    summary = make_ms.build(str(path), spec.ntimes, spec.nant, spec.nchan, spec.ncorr, "default", 2, 3,
                            spec.seed, None, False)
    o = read_original(spec, path, summary)
    with pt.table(str(path), ack=False) as t:
        dm = next(iter(t.getdminfo().values()))["SPEC"]
    assert dm["IndexLength"] > (dm["BUCKETSIZE"] - 8) // 2, dm  # the original's index is chained
    url = str(path)
    index(tessera_bin, url)
    for n in (1, 2):
        plan_file = tmp_path / f"count{n}.json"
        slices = plan(tessera_bin, url, ["--count", str(n)], plan_file)
        got = fetch_many(tessera_bin, plan_file, list(range(len(slices))), tmp_path / f"c{n}", o.stem)
        for i, d in enumerate(slices):
            verify_slice(o, got[i], *d["rows"])
            if n == 1:
                with pt.table(str(got[i]), ack=False) as t:
                    spec_out = next(iter(t.getdminfo().values()))["SPEC"]
                assert spec_out["IndexLength"] > (spec_out["BUCKETSIZE"] - 8) // 2, spec_out


def test_the_server_plans_and_serves_measurement_sets(
    tmp_path: Path, tessera_bin: Path, other_managers: dict[str, Original]
) -> None:
    """``tessera serve``: ``POST /v1/slices/plan`` with an ``interval`` plans
    a MeasurementSet under the store, and ``GET /v1/slices/data`` serves
    each slice as a tar stream (``application/x-tar``) of a MeasurementSet
    equal to its rows; an interval with another strategy is a 400. The
    Python client's ``plan`` and ``slice_data`` take the interval too."""
    import io
    import json
    import tarfile

    from _procs import clean_env, request, start_server

    o = other_managers["casa"]
    store = tmp_path / "store"
    shutil.copytree(o.path, store / "obs" / "casa.ms")
    index(tessera_bin, str(store / "obs" / "casa.ms"))
    server = start_server(tessera_bin, ["--store", str(store)], tmp_path / "serve.log", clean_env(), tmp_path)
    try:
        with pt.table(str(o.path), ack=False) as t:
            times = sorted(set(t.getcol("TIME").tolist()))
        interval = f"{2 * (times[1] - times[0]):g}s"
        body = json.dumps({"object": "obs/casa.ms", "interval": interval}).encode()
        r = request(server, "POST", "/v1/slices/plan", body, {"content-type": "application/json"})
        assert r.status == 200, r.body
        slices = r.json()
        assert len(slices) == (len(times) + 1) // 2
        for i, d in enumerate(slices):
            got = request(server, "GET", f"/v1/slices/data?object=obs/casa.ms&interval={interval}&slice={i}")
            assert got.status == 200, got.body
            assert got.headers["content-type"] == "application/x-tar"
            out = tmp_path / f"s{i}"
            tarfile.open(fileobj=io.BytesIO(got.body)).extractall(out)
            verify_slice(o, out / f"{o.stem}.slice{i}.ms", *d["rows"])
        bad = request(server, "GET", f"/v1/slices/data?object=obs/casa.ms&interval={interval}&count=2&slice=0")
        assert bad.status == 400 and b"interval" in bad.body, bad.body
        # The Python client: the same plan from seconds, a timedelta or a
        # string, and the same slices.
        import datetime

        import tessera

        c = tessera.Client(server.url)
        seconds = 2 * (times[1] - times[0])
        for given in (seconds, datetime.timedelta(seconds=seconds), interval):
            assert c.plan("obs/casa.ms", interval=given) == slices, given
        assert c.slice_data("obs/casa.ms", 1, interval=seconds) == request(
            server, "GET", f"/v1/slices/data?object=obs/casa.ms&interval={interval}&slice=1").body
        with pytest.raises(Exception, match="interval"):
            c.plan("obs/casa.ms", interval=seconds, count=2)
        with pytest.raises(ValueError, match="positive"):
            c.plan("obs/casa.ms", interval=0)
    finally:
        server.stop()

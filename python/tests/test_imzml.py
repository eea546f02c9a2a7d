"""imzML mass-spectrometry images through the ``tessera`` command line:
index, plan, fetch every slice, and open each slice with pyimzml.

Each test runs on a local folder and on the test S3 server. The datasets
(an ``.imzML`` XML file and its ``.ibd`` binary file) are written here with
pyimzml's ``ImzMLWriter`` in continuous mode (one m/z array shared by every
spectrum), processed mode (one m/z array per spectrum) and pyimzml's "auto"
mode (processed, with m/z arrays shared by some spectra), with and without
zlib compression, with 32- and 64-bit arrays, on an irregular set of pixels
(holes, spectra not in row order, two z planes in one dataset). They are
uploaded when the store is S3, and every slice is fetched with
``tessera slice get -o DIR`` into a local folder.

A slice must be a standalone imzML + ibd pair that pyimzml's
``ImzMLParser`` opens: its spectra are the original's (coordinates, m/z and
intensity arrays exactly), renumbered from 0, its ``.ibd`` starts with the
original's UUID and holds each array of its spectra once (the shared m/z
array of a continuous dataset once), and its XML keeps the UUID and the
mode and drops the whole-file ``.ibd`` checksum. The slices of a plan hold
every original spectrum exactly once, and each plan cuts as it says
(``--count`` and ``--records`` in file order, ``--bytes`` by the arrays'
stored bytes, ``--grid`` by half-open cells of the pixel coordinates).

pyimzml's ``getspectrum`` reads ``length × element size`` bytes and does
not decompress, so zlib-compressed arrays are read here at the offsets
pyimzml parsed, for the encoded lengths the XML gives, and decompressed.

Every expected value is computed from the data and files the tests wrote.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import iterparse

import numpy as np
import pytest
from pyimzml.compression import NoCompression, ZlibCompression
from pyimzml.ImzMLParser import ImzMLParser
from pyimzml.ImzMLWriter import ImzMLWriter

from _objects import exists, get, overwrite, put, put_file
from _cli import index, plan, run  # noqa: E402

NS = "{http://psi.hupo.org/ms/mzml}"
UUID_ACCESSION = "IMS:1000080"
CHECKSUM_ACCESSIONS = ("IMS:1000090", "IMS:1000091")
OFFSET, LENGTH, ENCODED = "IMS:1000102", "IMS:1000103", "IMS:1000104"

# -- running tessera ---------------------------------------------------------------








def fetch(tessera_bin: Path, plan_file: Path, i: int, folder: Path) -> Path:
    """Fetch slice ``i`` of a plan into the folder ``folder``."""
    run(tessera_bin, "slice", "get", str(plan_file), "--slice", str(i), "-o", str(folder))
    assert folder.is_dir(), f"slice get -o {folder} wrote no folder"
    return folder


# -- writing datasets --------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """A dataset to write: pyimzml's mode, the arrays' types and compression."""

    name: str
    mode: str
    mz_dtype: type
    int_dtype: type
    mz_zlib: bool = False
    int_zlib: bool = False
    planes: int = 1
    seed: int = 1


SPECS = [
    Spec("continuous-f32-f32", "continuous", np.float32, np.float32),
    Spec("continuous-f64-f64-zlib", "continuous", np.float64, np.float64, mz_zlib=True, int_zlib=True),
    Spec("processed-f64-f32", "processed", np.float64, np.float32),
    Spec("processed-f32-f64-zlib", "processed", np.float32, np.float64, mz_zlib=True, int_zlib=True),
    Spec("processed-f64-i32-zlib-intensities", "processed", np.float64, np.int32, int_zlib=True),
    # "auto": only m/z arrays not written before are written (some spectra
    # share one), and the XML says processed; two z planes
    Spec("auto-shared-mz-3d", "auto", np.float32, np.float32, planes=2),
]
SPEC_BY_NAME = {s.name: s for s in SPECS}

Coords = tuple[int, int, int]


@dataclass
class Spectrum:
    """One spectrum: its pixel and its arrays."""

    at: Coords
    mz: np.ndarray
    intensities: np.ndarray


def pixels(rng: np.random.Generator, planes: int) -> list[Coords]:
    """An irregular pixel set: a 25×16 field (x 3..27, y 2..17) with a
    rectangular hole and about a quarter of the rest missing, in a shuffled
    (not row) order; with two planes, some pixels again at z = 2."""
    at = [
        (x, y, 1)
        for y in range(2, 18)
        for x in range(3, 28)
        if not (10 <= x <= 14 and 6 <= y <= 9)
    ]
    at = [p for p, keep in zip(at, rng.random(len(at)) < 0.75) if keep]
    if planes == 2:
        at += [(x, y, 2) for (x, y, _), keep in zip(at, rng.random(len(at)) < 0.4) if keep]
    order = rng.permutation(len(at))
    return [at[i] for i in order]


def spectra_of(spec: Spec) -> list[Spectrum]:
    """The spectra of ``spec``, as the arrays pyimzml stores (cast to the
    dataset's types): a shared m/z axis in continuous mode, one m/z array of
    its own length per spectrum in processed mode, one of four m/z arrays in
    "auto" mode."""
    rng = np.random.default_rng(spec.seed)
    at = pixels(rng, spec.planes)
    axis = np.sort(rng.uniform(100.0, 1000.0, 64))
    shared = [np.sort(rng.uniform(150.0, 950.0, int(k))) for k in (12, 30, 45, 70)]
    out = []
    for p in at:
        if spec.mode == "continuous":
            mz = axis
        elif spec.mode == "auto":
            mz = shared[int(rng.integers(0, len(shared)))]
        else:
            mz = np.sort(rng.uniform(100.0, 1000.0, int(rng.integers(5, 90))))
        if np.issubdtype(spec.int_dtype, np.integer):
            ints = rng.integers(0, 1_000_000, len(mz))
        else:
            ints = rng.gamma(2.0, 500.0, len(mz))
        out.append(Spectrum(p, np.asarray(mz, spec.mz_dtype), np.asarray(ints, spec.int_dtype)))
    return out


def compression(on: bool) -> NoCompression | ZlibCompression:
    """pyimzml's zlib compression, or none."""
    return ZlibCompression() if on else NoCompression()


def write_dataset(spec: Spec, folder: Path, stem: str | None = None) -> tuple[Path, list[Spectrum]]:
    """Write ``spec`` as ``STEM.imzML`` + ``STEM.ibd`` with pyimzml; returns
    the XML's path and the spectra written."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem or spec.name}.imzML"
    spectra = spectra_of(spec)
    with ImzMLWriter(
        str(path), mode=spec.mode, mz_dtype=spec.mz_dtype, intensity_dtype=spec.int_dtype,
        mz_compression=compression(spec.mz_zlib), intensity_compression=compression(spec.int_zlib),
    ) as w:
        for s in spectra:
            w.addSpectrum(s.mz, s.intensities, s.at if spec.planes > 1 else s.at[:2])
    return path, spectra


def ibd_of(imzml: Path) -> Path:
    """The ``.ibd`` beside an ``.imzML``."""
    return imzml.with_suffix(".ibd")


def place(imzml: Path, store_base: str, stem: str | None = None, ibd: Path | None = None) -> str:
    """Put a dataset (its XML and its ``.ibd``, or ``ibd`` in its place)
    into the test's store and return the XML's URL."""
    stem = stem or imzml.stem
    url = f"{store_base}/{stem}.imzML"
    put_file(url, imzml)
    put_file(f"{store_base}/{stem}.ibd", ibd or ibd_of(imzml))
    return url


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, list[Spectrum]]]:
    """Every spec written once, locally (placed in each test's store)."""
    folder = tmp_path_factory.mktemp("imzml-originals")
    return {s.name: write_dataset(s, folder) for s in SPECS}


# -- reading datasets ----------------------------------------------------------------


@dataclass
class Array:
    """Where one array of a spectrum lies in the ``.ibd``."""

    offset: int
    length: int
    encoded: int


@dataclass
class Dataset:
    """An imzML + ibd pair as read back: the XML's UUID, mode, checksum
    parameters and spectrumList count, each spectrum's index attribute and
    arrays' places, and the spectra (decoded)."""

    uuid: str
    mode: str
    checksums: int
    list_count: int
    indexes: list[str]
    arrays: list[tuple[Array, Array]]
    spectra: list[Spectrum]
    ibd: bytes


def _xml_facts(imzml: Path) -> tuple[str, str, int, int, list[str], list[tuple[Array, Array]]]:
    """What pyimzml does not keep: the UUID, the mode, the checksum
    parameters, the spectrumList count, the spectra's index attributes and
    their arrays' encoded lengths (in pyimzml's m/z, intensity order, by the
    arrays' referenced groups)."""
    uuid, mode, checksums, count = "", "", 0, -1
    indexes: list[str] = []
    arrays: list[tuple[Array, Array]] = []
    in_list = False
    for event, elem in iterparse(str(imzml), events=("start", "end")):
        tag = elem.tag.removeprefix(NS)
        if event == "start":
            if tag == "spectrumList":
                in_list = True
                count = int(elem.get("count", "-1"))
            continue
        if tag == "cvParam" and not in_list:
            acc = elem.get("accession")
            if acc == UUID_ACCESSION:
                uuid = "".join(c for c in elem.get("value", "") if c in "0123456789abcdefABCDEF").lower()
            elif acc in ("IMS:1000030", "IMS:1000031"):
                mode = elem.get("name", "")
            elif acc in CHECKSUM_ACCESSIONS:
                checksums += 1
        elif tag == "spectrum":
            indexes.append(elem.get("index", ""))
            found: dict[str, Array] = {}
            for bda in elem.iter(f"{NS}binaryDataArray"):
                ref = bda.find(f"{NS}referenceableParamGroupRef")
                params = {p.get("accession"): p.get("value") for p in bda.iter(f"{NS}cvParam")}
                assert ref is not None, "an array without its group"
                found[ref.get("ref", "")] = Array(
                    int(params[OFFSET] or 0), int(params[LENGTH] or 0), int(params[ENCODED] or 0)
                )
            arrays.append((found["mzArray"], found["intensityArray"]))
            elem.clear()
    return uuid, mode, checksums, count, indexes, arrays


def read_dataset(imzml: Path) -> Dataset:
    """Open a pair with pyimzml's ``ImzMLParser`` and read every spectrum
    (zlib-compressed arrays decompressed here)."""
    uuid, mode, checksums, count, indexes, arrays = _xml_facts(imzml)
    spectra = []
    with ImzMLParser(str(imzml)) as p:
        groups = p.metadata.referenceable_param_groups
        mz_zlib = "zlib compression" in groups[p.mzGroupId].param_by_name
        int_zlib = "zlib compression" in groups[p.intGroupId].param_by_name
        assert len(p.coordinates) == len(arrays)

        def decode(a: Array, compressed: bool, dtype: str) -> np.ndarray:
            p.m.seek(a.offset)
            raw = p.m.read(a.encoded)
            assert len(raw) == a.encoded, f"the .ibd ends at {a.offset + len(raw)}, before {a.offset + a.encoded}"
            data = np.frombuffer(zlib.decompress(raw) if compressed else raw, dtype=dtype)
            assert len(data) == a.length
            return data

        for i, at in enumerate(p.coordinates):
            a_mz, a_int = arrays[i]
            assert (p.mzOffsets[i], p.mzLengths[i]) == (a_mz.offset, a_mz.length)
            assert (p.intensityOffsets[i], p.intensityLengths[i]) == (a_int.offset, a_int.length)
            if mz_zlib or int_zlib:
                mz = decode(a_mz, mz_zlib, p.mzPrecision)
                ints = decode(a_int, int_zlib, p.intensityPrecision)
            else:
                mz, ints = p.getspectrum(i)
            assert len(mz) == a_mz.length and len(ints) == a_int.length
            spectra.append(Spectrum(tuple(at), mz, ints))
    return Dataset(uuid, mode, checksums, count, indexes, arrays, spectra, ibd_of(imzml).read_bytes())


def assert_same_spectrum(got: Spectrum, want: Spectrum, where: str) -> None:
    """The same pixel and exactly the same arrays (type and values)."""
    assert got.at == want.at, where
    for g, w, what in ((got.mz, want.mz, "m/z"), (got.intensities, want.intensities, "intensities")):
        assert g.dtype == w.dtype, (where, what, g.dtype, w.dtype)
        assert np.array_equal(g, w), f"{where}: {what} differ"


# -- checks ------------------------------------------------------------------------


def check_slice(folder: Path, stem: str, i: int, original: Dataset) -> list[int]:
    """Slice ``i`` in ``folder`` against the original; returns the
    original indexes of its spectra, in the slice's order."""
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted([f"{stem}.slice{i}.imzML", f"{stem}.slice{i}.ibd"]), names
    got = read_dataset(folder / f"{stem}.slice{i}.imzML")
    where = {s.at: k for k, s in enumerate(original.spectra)}
    picked = [where[s.at] for s in got.spectra]
    for k, (s, j) in enumerate(zip(got.spectra, picked)):
        assert_same_spectrum(s, original.spectra[j], f"slice {i} spectrum {k} (original {j})")
    # the same dataset: UUID in the XML and at the head of the .ibd, mode
    assert got.uuid == original.uuid and len(got.uuid) == 32
    assert got.ibd[:16] == original.ibd[:16] == bytes.fromhex(original.uuid)
    assert got.mode == original.mode
    # renumbered from 0, counted, without the whole-file checksum
    assert got.indexes == [str(k) for k in range(len(picked))]
    assert got.list_count == len(picked)
    assert original.checksums == 1 and got.checksums == 0
    # each distinct array of the original once, after the UUID
    distinct = {(a.offset, a.encoded) for j in picked for a in original.arrays[j]}
    assert len(got.ibd) == 16 + sum(enc for _, enc in distinct), (len(got.ibd), len(distinct))
    if original.mode == "continuous":
        assert len({a[0].offset for a in got.arrays}) == 1
    return picked


def cell_of(at: Coords, lo: tuple[int, int], hi: tuple[int, int], grid: tuple[int, int]) -> tuple[int, int]:
    """The (row, column) of a pixel in a grid of half-open cells over
    ``[lo, hi + 1)`` in x and y."""
    col = (at[0] - lo[0]) * grid[0] // (hi[0] - lo[0] + 1)
    row = (at[1] - lo[1]) * grid[1] // (hi[1] - lo[1] + 1)
    return row, col


def check_plan(args: list[str], parts: list[list[int]], original: Dataset) -> None:
    """The slices' original indexes against what the plan asked for."""
    n = len(original.spectra)
    flat = [j for part in parts for j in part]
    assert sorted(flat) == list(range(n)), "every spectrum in exactly one slice"
    assert all(part for part in parts), "an empty slice"
    option, value = args[0], args[1]
    if option in ("--count", "--records", "--bytes"):
        assert flat == list(range(n)), "slices out of file order"
    if option == "--count":
        assert len(parts) == min(int(value), n)
        assert max(map(len, parts)) - min(map(len, parts)) <= 1, [len(p) for p in parts]
    elif option == "--records":
        k = int(value)
        assert [len(p) for p in parts[:-1]] == [k] * (len(parts) - 1)
        assert 0 < len(parts[-1]) <= k
    elif option == "--bytes":
        limit = int(value)
        for part in parts[:-1]:
            # A shared array (continuous m/z) is stored once per slice.
            seen: set[int] = set()
            sizes = []
            for j in part:
                new = [a for a in original.arrays[j] if a.offset not in seen]
                seen.update(a.offset for a in new)
                sizes.append(sum(a.encoded for a in new))
            assert sum(sizes) >= limit > sum(sizes) - sizes[-1], (sum(sizes), sizes[-1], limit)
    elif option == "--grid":
        cols, rows = (int(v) for v in value.split("x"))
        grid = (cols, rows)
        xs = [s.at[0] for s in original.spectra]
        ys = [s.at[1] for s in original.spectra]
        lo, hi = (min(xs), min(ys)), (max(xs), max(ys))
        cells = [{cell_of(original.spectra[j].at, lo, hi, grid) for j in part} for part in parts]
        assert all(len(c) == 1 for c in cells), cells
        every = {cell_of(s.at, lo, hi, grid) for s in original.spectra}
        assert len(parts) == len(every) == len(set().union(*cells)) <= grid[0] * grid[1]
        for part in parts:
            assert part == sorted(part), "spectra of a cell out of file order"


def plans_for(ibd_size: int) -> dict[str, list[str]]:
    """The plans every dataset is cut by (the byte plan: about a quarter
    of the ``.ibd``)."""
    return {
        "count1": ["--count", "1"],
        "count3": ["--count", "3"],
        "count7": ["--count", "7"],
        "records50": ["--records", "50"],
        "bytes": ["--bytes", str(ibd_size // 4)],
        "grid3x2": ["--grid", "3x2"],
    }


PLAN_NAMES = list(plans_for(0))

# -- the laws ----------------------------------------------------------------------


@pytest.mark.parametrize("spec_name", [s.name for s in SPECS])
def test_written_datasets_read_back(originals: dict[str, tuple[Path, list[Spectrum]]], spec_name: str) -> None:
    """The reader the slices are checked with reads the written datasets
    back as written (pyimzml, and zlib where compressed), with the mode and
    the layout each was written in."""
    spec = SPEC_BY_NAME[spec_name]
    path, written = originals[spec_name]
    d = read_dataset(path)
    assert len(d.spectra) == len(written) >= 250
    for k, (got, want) in enumerate(zip(d.spectra, written)):
        assert_same_spectrum(got, want, f"spectrum {k}")
    assert d.mode == ("continuous" if spec.mode == "continuous" else "processed")
    mz_offsets = [a[0].offset for a in d.arrays]
    if spec.mode == "continuous":
        assert len(set(mz_offsets)) == 1
    elif spec.mode == "auto":
        assert 1 < len(set(mz_offsets)) < len(mz_offsets)
    else:
        assert len(set(mz_offsets)) == len(mz_offsets)
    # not in row order, with holes
    ats = [s.at for s in d.spectra]
    assert ats != sorted(ats, key=lambda a: (a[2], a[1], a[0]))
    xs, ys = {a[0] for a in ats}, {a[1] for a in ats}
    assert len({a[:2] for a in ats}) < len(xs) * len(ys)


@pytest.mark.parametrize("spec_name", [s.name for s in SPECS])
def test_index_describes_the_spectra(
    store_base: str, tessera_bin: Path, originals: dict[str, tuple[Path, list[Spectrum]]], spec_name: str
) -> None:
    """The index: format imzml, one record per spectrum, the XML's size,
    written beside the XML."""
    path, written = originals[spec_name]
    url = place(path, store_base)
    idx = index(tessera_bin, url)
    assert exists(f"{url}.tessera-index.json")
    assert idx["format"] == "imzml"
    assert idx["records"] == len(written)
    assert idx["size"] == path.stat().st_size


@pytest.mark.parametrize("plan_name", PLAN_NAMES)
@pytest.mark.parametrize("spec_name", [s.name for s in SPECS])
def test_slices_are_standalone_pairs(
    store_base: str, tmp_path: Path, tessera_bin: Path, originals: dict[str, tuple[Path, list[Spectrum]]],
    spec_name: str, plan_name: str,
) -> None:
    """Every slice of a plan, fetched into a folder, is an imzML + ibd pair
    that pyimzml opens, holding exactly the original spectra the plan puts
    in it; together the slices hold every spectrum once."""
    path, _ = originals[spec_name]
    original = read_dataset(path)
    args = plans_for(ibd_of(path).stat().st_size)[plan_name]
    url = place(path, store_base)
    idx = index(tessera_bin, url)
    plan_file = tmp_path / "slices.json"
    slices = plan(tessera_bin, url, args, plan_file)
    assert [d["slice"] for d in slices] == list(range(len(slices)))
    parts = []
    for i, d in enumerate(slices):
        assert d["format"] == "imzml"
        assert d["slices"] == len(slices)
        assert d["size"] == idx["size"] and d["etag"] == idx["etag"]
        folder = fetch(tessera_bin, plan_file, i, tmp_path / f"slice{i}")
        picked = check_slice(folder, path.stem, i, original)
        assert d["record_count"] == len(picked)
        parts.append(picked)
    check_plan(args, parts, original)


def test_a_slice_indexes_again(
    store_base: str, tmp_path: Path, tessera_bin: Path, originals: dict[str, tuple[Path, list[Spectrum]]]
) -> None:
    """A fetched slice is a dataset tessera indexes and cuts again: one
    record per spectrum, and its slices hold its spectra."""
    path, _ = originals["processed-f32-f64-zlib"]
    url = place(path, store_base)
    index(tessera_bin, url)
    plan_file = tmp_path / "slices.json"
    plan(tessera_bin, url, ["--count", "3"], plan_file)
    folder = fetch(tessera_bin, plan_file, 1, tmp_path / "slice1")
    part = folder / f"{path.stem}.slice1.imzML"
    first = read_dataset(part)
    again = index(tessera_bin, str(part))
    assert again["records"] == len(first.spectra)
    plan_file2 = tmp_path / "again.json"
    slices = plan(tessera_bin, str(part), ["--count", "2"], plan_file2)
    got = []
    for i in range(len(slices)):
        got += read_dataset(fetch(tessera_bin, plan_file2, i, tmp_path / f"again{i}")
                            / f"{path.stem}.slice1.slice{i}.imzML").spectra
    assert len(got) == len(first.spectra)
    for k, (g, w) in enumerate(zip(got, first.spectra)):
        assert_same_spectrum(g, w, f"spectrum {k}")


@pytest.mark.parametrize("spec_name", ["continuous-f64-f64-zlib", "processed-f64-f32"])
def test_slice_to_stdout_is_a_tar_of_the_pair(
    store_base: str, tmp_path: Path, tessera_bin: Path, originals: dict[str, tuple[Path, list[Spectrum]]],
    spec_name: str,
) -> None:
    """Without ``-o`` the slice is a tar stream of the two files, named
    ``NAME.sliceI.imzML`` and ``NAME.sliceI.ibd``, the same bytes as the
    files ``-o DIR`` writes."""
    path, _ = originals[spec_name]
    url = place(path, store_base)
    index(tessera_bin, url)
    plan_file = tmp_path / "slices.json"
    plan(tessera_bin, url, ["--count", "3"], plan_file)
    folder = fetch(tessera_bin, plan_file, 2, tmp_path / "slice2")
    out = subprocess.run([str(tessera_bin), "slice", "get", str(plan_file), "--slice", "2"],
                         capture_output=True, timeout=600)
    assert out.returncode == 0, out.stderr
    with tarfile.open(fileobj=io.BytesIO(out.stdout), mode="r:") as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        assert names == [f"{path.stem}.slice2.imzML", f"{path.stem}.slice2.ibd"], names
        assert all(m.isfile() for m in members)
        for m in members:
            f = tar.extractfile(m)
            assert f is not None
            assert f.read() == (folder / m.name).read_bytes(), m.name


# -- a Latin-1 XML ---------------------------------------------------------------------


def test_latin1_xml_is_sliced(store_base: str, tmp_path: Path, tessera_bin: Path) -> None:
    """pyimzml declares its XML ISO-8859-1; a dataset encoded so, with a
    non-ASCII character in a spectrum's parameters, is sliced like any
    other, and the character is kept."""
    spec = SPEC_BY_NAME["processed-f64-f32"]
    folder = tmp_path / "latin1"
    folder.mkdir()
    path = folder / "latin.imzML"
    spectra = spectra_of(spec)[:40]
    with ImzMLWriter(str(path), mode="processed", mz_dtype=spec.mz_dtype, intensity_dtype=spec.int_dtype) as w:
        for s in spectra:
            w.addSpectrum(s.mz, s.intensities, s.at[:2], userParams=[{"name": "spot size", "value": "50 µm"}])
    text = path.read_bytes().decode("utf-8")
    assert 'encoding="ISO-8859-1"' in text and "µm" in text
    path.write_bytes(text.encode("latin-1"))
    original = read_dataset(path)
    url = place(path, store_base)
    index(tessera_bin, url)
    plan_file = tmp_path / "slices.json"
    slices = plan(tessera_bin, url, ["--count", "2"], plan_file)
    parts = []
    for i in range(len(slices)):
        got = fetch(tessera_bin, plan_file, i, tmp_path / f"slice{i}")
        parts.append(check_slice(got, "latin", i, original))
        xml = (got / f"latin.slice{i}.imzML").read_bytes()
        assert xml.count("50 µm".encode("latin-1")) == len(parts[-1])
    check_plan(["--count", "2"], parts, original)


# -- bad input -----------------------------------------------------------------------


def test_ibd_of_another_dataset_is_refused(
    store_base: str, tmp_path: Path, tessera_bin: Path, originals: dict[str, tuple[Path, list[Spectrum]]]
) -> None:
    """An XML beside the ``.ibd`` of another dataset (another UUID): an
    error about the UUID, and no index."""
    path, _ = originals["processed-f64-f32"]
    other, _ = write_dataset(SPEC_BY_NAME["processed-f64-f32"], tmp_path / "other")
    assert ibd_of(other).read_bytes()[:16] != ibd_of(path).read_bytes()[:16]
    url = place(path, store_base, stem="mixed", ibd=ibd_of(other))
    proc = run(tessera_bin, "index", url, ok=False)
    assert "UUID" in proc.stderr, proc.stderr
    assert not exists(f"{url}.tessera-index.json")


@pytest.mark.parametrize("keep", ["half", "uuid-only", "short-uuid"])
def test_truncated_ibd_is_refused(
    store_base: str, tmp_path: Path, tessera_bin: Path, originals: dict[str, tuple[Path, list[Spectrum]]],
    keep: str,
) -> None:
    """An ``.ibd`` cut short, so that arrays lie past its end (or even its
    UUID is incomplete): an error naming the ``.ibd``, and no index."""
    path, _ = originals["continuous-f32-f32"]
    data = ibd_of(path).read_bytes()
    cut = {"half": len(data) // 2, "uuid-only": 16, "short-uuid": 8}[keep]
    short = tmp_path / "short.ibd"
    short.write_bytes(data[:cut])
    url = place(path, store_base, stem="cut", ibd=short)
    proc = run(tessera_bin, "index", url, ok=False)
    assert "cut.ibd" in proc.stderr, proc.stderr
    assert not exists(f"{url}.tessera-index.json")


def test_missing_ibd_is_refused(
    store_base: str, tessera_bin: Path, originals: dict[str, tuple[Path, list[Spectrum]]]
) -> None:
    """An XML without its ``.ibd``: an error naming the ``.ibd`` it looked
    for, and no index."""
    path, _ = originals["processed-f64-f32"]
    url = f"{store_base}/lonely.imzML"
    put_file(url, path)
    proc = run(tessera_bin, "index", url, ok=False)
    assert "lonely.ibd" in proc.stderr, proc.stderr
    assert not exists(f"{url}.tessera-index.json")


@pytest.mark.parametrize("change", ["ibd-byte", "ibd-truncated", "xml-byte"])
def test_changed_after_indexing_is_refused(
    store_base: str, tmp_path: Path, tessera_bin: Path, originals: dict[str, tuple[Path, list[Spectrum]]],
    change: str,
) -> None:
    """A pair changed after indexing (a byte of an intensity array or of
    the XML changed in place, or the ``.ibd`` cut short): fetching a slice
    fails, saying the object changed since it was indexed, and writes no
    file."""
    path, _ = originals["processed-f64-f32"]
    url = place(path, store_base, stem="changing")
    index(tessera_bin, url)
    plan_file = tmp_path / "slices.json"
    plan(tessera_bin, url, ["--count", "3"], plan_file)
    fetch(tessera_bin, plan_file, 0, tmp_path / "before")

    original = read_dataset(path)
    ibd_url = url.removesuffix(".imzML") + ".ibd"
    target, source = (url, path) if change == "xml-byte" else (ibd_url, ibd_of(path))
    data = bytearray(source.read_bytes())
    if change == "ibd-truncated":
        data = data[: len(data) - 100]
    else:
        # in the middle of slice 1: an intensity array, or a spectrum's XML
        at = original.arrays[len(original.arrays) // 2][1].offset + 2 if change == "ibd-byte" else len(data) // 2
        data[at] ^= 0x01
    if change == "ibd-truncated":
        put(target, bytes(data))
    else:
        overwrite(target, bytes(data))  # the same size

    out = tmp_path / "after"
    proc = run(tessera_bin, "slice", "get", str(plan_file), "--slice", "1", "-o", str(out), ok=False)
    assert "changed since it was indexed" in proc.stderr, proc.stderr
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("kind", ["text", "xml-without-spectra", "no-uuid"])
def test_not_an_imzml_is_refused(
    store_base: str, tessera_bin: Path, originals: dict[str, tuple[Path, list[Spectrum]]], kind: str
) -> None:
    """An ``.imzML`` that is not an imzML dataset (not XML, XML without a
    spectrum list, no UUID) beside a good ``.ibd``: an error naming the
    XML, and no index."""
    path, _ = originals["processed-f64-f32"]
    xml = path.read_bytes()
    body = {
        "text": b"hello, this is not XML < & >\n" * 40,
        "xml-without-spectra": b'<?xml version="1.0"?>\n<mzML><run id="r"/></mzML>\n',
        "no-uuid": xml.replace(b'accession="IMS:1000080"', b'accession="IMS:0000000"'),
    }[kind]
    url = f"{store_base}/odd-{kind}.imzML"
    put(url, body)
    put_file(f"{store_base}/odd-{kind}.ibd", ibd_of(path))
    proc = run(tessera_bin, "index", url, ok=False)
    assert f"odd-{kind}.imzML" in proc.stderr, proc.stderr
    assert not exists(f"{url}.tessera-index.json")


def test_bad_plans_are_refused(
    store_base: str, tmp_path: Path, tessera_bin: Path, originals: dict[str, tuple[Path, list[Spectrum]]]
) -> None:
    """Zero sizes, malformed grids and a level (imzML has none) are errors
    and write no plan; a slice number past the last is an error."""
    path, _ = originals["continuous-f32-f32"]
    url = place(path, store_base)
    index(tessera_bin, url)
    bad = tmp_path / "bad.json"
    for option in ["--count", "--records", "--bytes"]:
        run(tessera_bin, "slice", url, option, "0", "-o", str(bad), ok=False)
    for grid in ["3", "0x2", "2x0", "ax2"]:
        run(tessera_bin, "slice", url, "--grid", grid, "-o", str(bad), ok=False)
    proc = run(tessera_bin, "slice", url, "--level", "1", "-o", str(bad), ok=False)
    assert "level" in proc.stderr, proc.stderr
    assert not bad.exists()
    plan_file = tmp_path / "slices.json"
    slices = plan(tessera_bin, url, ["--count", "3"], plan_file)
    out = tmp_path / "nothing"
    run(tessera_bin, "slice", "get", str(plan_file), "--slice", str(len(slices)), "-o", str(out), ok=False)
    assert not out.exists()

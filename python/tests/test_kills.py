"""Nothing lost, nothing half-written: commands and servers killed with
SIGKILL at random instants, on a local folder and on the test S3 server.

- ``tessera put`` killed mid-load: every load the history records is
  present whole (each of its rows exactly once, told apart by a per-load
  marker column that is also its version key), no other rows are visible,
  every load that finished is committed, a re-run succeeds, and
  ``tessera datasets vacuum --retain 0s`` removes every file the killed
  loads left behind.
- ``tessera serve`` killed while it takes an upload, then restarted: the
  same checks, through the command line and the restarted server.
- ``tessera manifest build`` and ``tessera index`` killed while they
  overwrite an existing manifest / index: the object is always the old one
  or the new one, whole.
- A load that fails on bad input leaves no commit and nothing visible.

The kill instants are drawn uniformly between 0 and the measured duration
of an uninterrupted run (re-measured as the run goes, see
``_procs.Instants``), from a seeded generator (the seed is printed;
``TESSERA_KILL_SEED`` replays the instants). Uniform instants rarely fall
on the short span in which a command writes its output, so a few runs are
also killed as soon as their first write shows. Every expected value comes
from the data the test wrote. ``pytest -s`` prints the kill counts and
what the killed commands left behind.
"""

from __future__ import annotations

import io
import json
import random
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from _objects import get, put
from _procs import (
    Instants,
    Kills,
    Reply,
    Server,
    arrow_stream,
    clean_env,
    cli,
    dataset_path,
    delta_storage_options,
    join,
    kill_on_write,
    list_files,
    remove_tree,
    request,
    run_then_kill,
    seeded,
    start_server,
    timed,
)

# Rows per load: about 2 MB of CSV, a few hundred ms for a debug build.
N_ROWS = 25_000
# Small data files, so that a load writes several and a kill leaves some.
TARGET_SIZE = {"local": "200KB", "s3": "1MB"}
# Loads killed (while running) at uniform instants, per dataset (two per store).
PUT_KILLS = {"local": (16, 16), "s3": (10, 4)}
WRITE_KILL_TRIES = 4  # loads killed as their first file appears, per dataset
UPLOAD_KILLS = {"local": 12, "s3": 8}  # servers killed during an upload
MANIFEST_KILLS = 10  # manifest builds killed (while running) at uniform instants
INDEX_KILLS = 10  # index runs killed (while running) at uniform instants
WRITE_KILLS = 2  # manifest builds / index runs killed as soon as they write
N_OLD_PATHS, N_NEW_PATHS = 15_000, 30_000  # paths in the old and the new manifest
MARK = b"LXXXX"  # replaced by each load's 5-character key

_module_kills = Kills()


@pytest.fixture(scope="module", autouse=True)
def _report_kills() -> Iterator[None]:
    """Print the kills of the whole module at its end."""
    start = time.monotonic()
    yield
    print(
        f"\ntest_kills: {_module_kills.killed} SIGKILLs of running processes "
        f"({_module_kills.by_kind}), {_module_kills.finished} runs finished first, "
        f"{time.monotonic() - start:.1f} s"
    )


# -- the loads ------------------------------------------------------------------


@dataclass(frozen=True)
class Input:
    """The CSV every load writes, with a marker to replace per load."""

    template: bytes
    rows: int
    val_sum: int

    def body(self, key: str) -> bytes:
        """The CSV of the load ``key`` (every row's ``load`` is ``key``)."""
        assert len(key) == len(MARK), key
        return self.template.replace(MARK, key.encode())

    def write(self, path: Path, key: str) -> Path:
        """Write the CSV of the load ``key`` to ``path``."""
        path.write_bytes(self.body(key))
        return path


@pytest.fixture(scope="module")
def load_input() -> Input:
    """About 2 MB of CSV: ``load`` (the marker), ``row`` (0…N-1), ``val``
    and a text column of mixed words."""
    words = [f"{w}{i}" for i, w in enumerate("alpha beta gamma delta kappa omega sigma".split())]
    lines = ["load,row,val,txt"]
    total = 0
    for i in range(N_ROWS):
        val = i * 7919 % 1000
        total += val
        txt = "-".join(words[(i * k) % len(words)] for k in range(1, 9))
        lines.append(f"{MARK.decode()},{i},{val},{txt}-{i * 2654435761 % 10**9:09d}")
    return Input(("\n".join(lines) + "\n").encode(), N_ROWS, total)


@dataclass
class Table:
    """A dataset under test and what was tried on it."""

    binary: Path
    store: str
    name: str
    env: dict[str, str]
    data: Input
    must_commit: set[str] = field(default_factory=set)
    """Loads that finished (exit 0 / an HTTP 200): they must be committed."""
    tried: set[str] = field(default_factory=set)
    last_version: int = -1
    """The newest Delta version seen by the last check."""
    vacuums: list[dict] = field(default_factory=list)
    """The vacuum entries of the history seen by the last check."""
    refs: set[str] = field(default_factory=set)
    """The data files referenced, as of the last read with ``deltalake``."""

    @property
    def url(self) -> str:
        """The Delta table's folder."""
        return join(self.store, "datasets", "default", *self.name.split("/"))

    @property
    def writer_flags(self) -> list[str]:
        """Garage does not enforce conditional writes: one writer is promised."""
        return ["--single-writer"] if self.store.startswith("s3://") else []

    def cli(self, *args: str, ok: bool = True) -> bytes:
        """``tessera ARGS --store STORE``; its stdout."""
        return cli(self.binary, *args, "--store", self.store, env=self.env, ok=ok).stdout

    def history(self) -> list[dict] | None:
        """The history from ``tessera datasets history``, oldest first, or
        None when the dataset does not exist (no load committed yet)."""
        proc = cli(
            self.binary,
            "datasets", "history", self.name, "--store", self.store, "--json",
            env=self.env, ok=False,
        )  # fmt: skip
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace")
            assert "does not exist" in err, f"history of {self.name} failed:\n{err}"
            return None
        return sorted(json.loads(proc.stdout), key=lambda e: e["version"])

    def check(self, when: str, full: bool = True) -> list[str]:
        """Check that every committed load is whole and alone; return the
        committed keys in commit order.

        The history comes from ``tessera datasets history``. With ``full``
        the rows are read with ``tessera get``; otherwise with the
        ``deltalake`` package (cheaper: no process, and the same Delta log),
        and only when the history has a new version since the last check.
        Loads only ever add rows, so a partial load seen by a cheap check
        would still be there for the next full one."""
        hist = self.history()
        where = f"{self.url} {when}"
        if hist is None:
            assert not self.must_commit, f"{where}: finished loads lost: {self.must_commit}"
            if full:
                proc = cli(
                    self.binary, "get", self.name, "--store", self.store, env=self.env, ok=False
                )
                assert proc.returncode != 0 and b"does not exist" in proc.stderr, (
                    f"{where}: no history but get answered:\n{proc.stderr!r}"
                )
            return []
        assert [e["version"] for e in hist] == list(range(len(hist))), f"{where}: {hist}"
        unchanged = hist[-1]["version"] == self.last_version
        self.last_version = hist[-1]["version"]
        self.vacuums = [e for e in hist if e["operation"] == "vacuum"]
        loads = [e for e in hist if e["operation"] != "vacuum"]
        keys = [e["version_key"] for e in loads]
        assert len(set(keys)) == len(keys), f"{where}: a load committed twice: {keys}"
        for e in loads:
            assert e["operation"] == "put", f"{where}: {e}"
            assert e["version_key"] in self.tried, f"{where}: a load nobody made: {e}"
            assert e["rows"] == self.data.rows, f"{where}: {e}"
        missing = self.must_commit - set(keys)
        assert not missing, f"{where}: loads that finished are not committed: {missing}"
        if full:
            got = arrow_stream(
                self.cli(
                    "get", self.name, "--columns", "load,row,val,_version_key", "--format", "arrow"
                )
            )
            assert_whole(got, keys, self.data, where)
        elif not unchanged:
            # Rows change only with a new version: read them when one came.
            self.delta_check(keys, where)
        return keys

    def delta_check(self, keys: list[str], where: str = "", rows: bool = True) -> set[str]:
        """Read the table with the ``deltalake`` package (another Delta
        reader): the same version, and with ``rows`` the same loads, whole.
        Returns the data files it references (relative to the table's
        folder)."""
        deltalake = pytest.importorskip("deltalake")
        dt = deltalake.DeltaTable(self.url, storage_options=delta_storage_options(self.url))
        assert dt.version() == self.last_version, where
        if rows:
            t = dt.to_pyarrow_table(columns=["load", "row", "val", "_version_key"])
            assert_whole(t, keys, self.data, f"{self.url} read by deltalake {where}")
        prefix = self.url.rstrip("/") + "/"
        refs = set()
        for uri in dt.file_uris():
            rel = uri.removeprefix("file://")
            assert rel.startswith(prefix), (uri, prefix)
            refs.add(rel[len(prefix) :])
        self.refs = refs
        return refs

    def orphans(self, referenced: set[str]) -> list[str]:
        """Files in the table's folder, outside ``_delta_log/``, that no
        version references: data files of loads that did not commit, and
        anything else a killed load left there (a file it was writing)."""
        files = list_files(self.url)
        return [f for f in files if not f.startswith("_delta_log/") and f not in referenced]

    def log_leftovers(self) -> list[str]:
        """Objects in ``_delta_log/`` that are not commits or checkpoints."""
        ok = re.compile(r"\d{20}\.(json|checkpoint\.parquet|crc)|_last_checkpoint")
        return [f for f in list_files(join(self.url, "_delta_log")) if not ok.fullmatch(f)]


def new_data_file(before: dict, now: dict) -> bool:
    """Whether a data file (not a log entry) appeared."""
    new = now.keys() - before.keys()
    return any(k.endswith(".parquet") and not k.startswith("_delta_log") for k in new)


def assert_whole(t: pa.Table, keys: list[str], data: Input, where: str) -> None:
    """``t`` (load, row, val, _version_key) holds every load of ``keys``
    whole and exactly once, and nothing else."""
    for name in ("load", "_version_key"):
        if pa.types.is_dictionary(t.schema.field(name).type):
            t = t.set_column(t.schema.get_field_index(name), name, pc.cast(t[name], pa.string()))
    assert t.num_rows == len(keys) * data.rows, (
        f"{where}: {t.num_rows} rows for {len(keys)} loads of {data.rows}"
    )
    if not keys:
        return
    assert pc.all(pc.equal(t["load"], t["_version_key"])).as_py(), (
        f"{where}: rows whose marker is not their version key"
    )
    g = t.group_by("load").aggregate(
        [
            ("row", "count"),
            ("row", "count_distinct"),
            ("row", "min"),
            ("row", "max"),
            ("val", "sum"),
        ]
    )
    got = {r["load"]: r for r in g.to_pylist()}
    assert sorted(got) == sorted(keys), f"{where}: loads {sorted(got)} != committed {keys}"
    for k, r in got.items():
        want = {
            "row_count": data.rows,
            "row_count_distinct": data.rows,
            "row_min": 0,
            "row_max": data.rows - 1,
            "val_sum": data.val_sum,
        }
        have = {c: r[c] for c in want}
        assert have == want, f"{where}: load {k} is not whole: {have} != {want}"


# -- a. `tessera put` killed ----------------------------------------------------


def test_put_killed_at_random_instants(
    tessera_bin: Path, store_base: str, tmp_path: Path, load_input: Input
) -> None:
    """Loads killed at random instants: committed loads whole, nothing
    partial visible, a re-run succeeds, vacuum removes the orphans."""
    backend = "s3" if store_base.startswith("s3://") else "local"
    kind = f"put-{backend}"
    rng, seed = seeded(kind)
    env = clean_env()
    started = time.monotonic()
    csv_path = tmp_path / "in.csv"

    def argv(t: Table, key: str) -> list[str]:
        return [
            str(tessera_bin), "put", t.name, str(load_input.write(csv_path, key)),
            "--store", store_base, "--version", key, "--target-size", TARGET_SIZE[backend], "-q",
            *t.writer_flags,
        ]  # fmt: skip

    tables = [
        Table(tessera_bin, store_base, f"kills/put-{g}", env, load_input)
        for g in range(len(PUT_KILLS[backend]))
    ]
    # How long an uninterrupted load takes here, measured with loads into
    # the first dataset (so that its kills fall on loads appending to a
    # table; the second one starts empty: its kills fall on the load that
    # creates the table until one commits).
    durations = []
    for key in ("P0000", "P0001"):
        tables[0].tried.add(key)
        tables[0].must_commit.add(key)
        took, _ = timed(argv(tables[0], key), env)
        durations.append(round(took, 3))
    instants = Instants(rng, durations)
    print(f"{kind}: an uninterrupted load takes {durations} s")

    kills = Kills()
    orphans_before = 0
    leftovers: list[str] = []
    for g, t in enumerate(tables):
        # Loads killed at uniform instants until enough were killed running
        # (a load may finish before its instant when the machine speeds up).
        target = kills.killed + PUT_KILLS[backend][g]
        for r in range(2 * PUT_KILLS[backend][g]):
            if kills.killed >= target:
                break
            key = f"L{g}{r:03d}"
            t.tried.add(key)
            delay = instants.next()
            out = run_then_kill(argv(t, key), delay, env, tmp_path / "put.log")
            kills.add(kind, out.killed)
            if not out.killed:
                assert out.returncode == 0, f"seed {seed}: {key} failed:\n{out.stderr}"
                t.must_commit.add(key)
                instants.finished(out.seconds)
            when = f"after {key} (killed={out.killed} at {delay:.3f} s; seed {seed})"
            t.check(when, full=False)
        # Uniform instants rarely fall between the first data file and the
        # commit (a short span at the end of a load): kill loads right when
        # their first file appears, until one leaves files behind.
        for r in range(WRITE_KILL_TRIES):
            key = f"W{g}{r:03d}"
            t.tried.add(key)
            out = kill_on_write(argv(t, key), env, tmp_path / "put.log", t.url, new_data_file)
            kills.add(kind, out.killed)
            if not out.killed:
                assert out.returncode == 0, f"seed {seed}: {key} failed:\n{out.stderr}"
                t.must_commit.add(key)
            t.check(f"after {key} (killed={out.killed} as it wrote; seed {seed})", full=False)
            if out.killed:
                break
        # A load after the killed ones succeeds and is whole.
        key = f"R{g}000"
        t.tried.add(key)
        t.must_commit.add(key)
        timed(argv(t, key), env)
        keys = t.check(f"after the re-run {key}")
        refs = t.delta_check(keys, rows=False)
        orphans = t.orphans(refs)
        orphans_before += len(orphans)
        leftovers += t.log_leftovers()
        # Vacuum with no retention removes every file no version needs.
        said = t.cli("datasets", "vacuum", t.name, "--retain", "0s", *t.writer_flags)
        left = t.orphans(refs)
        assert left == [], f"seed {seed}: vacuum left files no version needs in {t.url}: {left}"
        # The loads are still whole (read again: vacuum made new versions).
        assert t.check("after vacuum", full=False) == keys
        assert t.refs == refs
        # Vacuum names each file it deleted, the orphans exactly.
        assert sorted(said.decode().split()) == sorted(orphans), f"seed {seed}"
        # The Delta history counts the files Delta's vacuum deleted: every
        # orphan but a local write's staging file (`NAME#N`), which tessera
        # removes itself because local listings never show it.
        staged = [f for f in orphans if re.fullmatch(r".+#\d+", f)]
        removed = sum(e["files_removed"] or 0 for e in t.vacuums)
        assert removed == len(orphans) - len(staged), (t.vacuums, staged)

    _module_kills.merge(kills)
    print(
        f"{kind}: {kills.killed} kills, {kills.finished} loads finished first, "
        f"{orphans_before} orphan files removed by vacuum, "
        f"_delta_log leftovers: {leftovers[:5]} ({len(leftovers)}), "
        f"{time.monotonic() - started:.1f} s"
    )
    wanted = sum(PUT_KILLS[backend])
    assert kills.killed >= wanted, (
        f"only {kills.killed} loads of {kills.killed + kills.finished} were running when "
        f"killed (wanted {wanted}): the instants miss"
    )
    # Loads killed as they wrote left files behind for vacuum to remove.
    assert orphans_before > 0, f"seed {seed}: no killed load left a data file behind"
    if store_base.startswith("s3://"):
        remove_tree(store_base)


def test_vacuum_removes_what_a_load_killed_mid_file_left(
    tessera_bin: Path, tmp_path: Path, load_input: Input
) -> None:
    """On a local store a data file is written under a temporary name
    (``part-….parquet#N``) and renamed when whole. A load killed between
    the two leaves that half-written file; it belongs to no version, so
    ``vacuum`` must remove it like any other file of a load that did not
    commit. The loads are killed as soon as such a file appears, until one
    is left behind."""
    env = clean_env()
    t = Table(tessera_bin, str(tmp_path / "store"), "kills/staging", env, load_input)
    csv_path = tmp_path / "in.csv"

    def argv(key: str) -> list[str]:
        return [
            str(tessera_bin), "put", t.name, str(load_input.write(csv_path, key)),
            "--store", t.store, "--version", key, "--target-size", "50KB", "-q",
        ]  # fmt: skip

    t.tried.add("G0000")
    t.must_commit.add("G0000")
    timed(argv("G0000"), env)

    def staging(before: dict, now: dict) -> bool:
        return any("#" in k for k in now.keys() - before.keys())

    left: list[str] = []
    tries = 0
    for tries in range(1, 21):
        key = f"S{tries:04d}"
        t.tried.add(key)
        out = kill_on_write(argv(key), env, tmp_path / "put.log", t.url, staging)
        _module_kills.add("put-local-staging", out.killed)
        if not out.killed:
            assert out.returncode == 0, out.stderr
            t.must_commit.add(key)
        keys = t.check(f"after {key} (killed={out.killed} as it wrote a file)", full=False)
        left = [f for f in t.orphans(t.delta_check(keys, rows=False)) if "#" in f]
        if left:
            break
    if not left:
        pytest.skip(f"no load was killed with a file half-written in {tries} tries")
    keys = t.check("before vacuum")
    t.cli("datasets", "vacuum", t.name, "--retain", "0s")
    assert t.check("after vacuum", full=False) == keys
    remaining = t.orphans(t.refs)
    assert remaining == [], (
        f"vacuum left files no version references ({tries} loads killed as they wrote): "
        f"{remaining}"
    )


def test_failed_put_leaves_no_commit(
    tessera_bin: Path, store_base: str, tmp_path: Path, load_input: Input
) -> None:
    """A load failing on a bad value far into its input (past the rows the
    types are inferred from, after data files were written) commits nothing
    and shows nothing; vacuum removes whatever it wrote."""
    env = clean_env()
    t = Table(tessera_bin, store_base, "kills/bad", env, load_input)
    good = load_input.write(tmp_path / "good.csv", "G0000")
    t.tried.add("G0000")
    t.must_commit.add("G0000")
    t.cli("put", t.name, str(good), "--version", "G0000", "-q", *t.writer_flags)
    # The last row's val is not a number; the first MiB says it is one.
    bad_body = load_input.body("B0000").rstrip(b"\n").rsplit(b"\n", 1)
    last = bad_body[1].split(b",")
    last[2] = b"not-a-number"
    bad = tmp_path / "bad.csv"
    bad.write_bytes(bad_body[0] + b"\n" + b",".join(last) + b"\n")
    assert len(bad_body[0]) > 1 << 20
    t.tried.add("B0000")
    proc = cli(
        tessera_bin,
        "put", t.name, str(bad), "--store", store_base, "--version", "B0000",
        "--target-size", TARGET_SIZE["local"], *t.writer_flags,
        env=env, ok=False,
    )  # fmt: skip
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode != 0, "a load with a bad value succeeded"
    assert "not-a-number" in err and f"line {N_ROWS + 1}" in err, err
    assert t.check("after the failed load") == ["G0000"]
    refs = t.delta_check(["G0000"], rows=False)
    t.cli("datasets", "vacuum", t.name, "--retain", "0s", *t.writer_flags)
    assert t.orphans(refs) == []
    assert t.check("after vacuum", full=False) == ["G0000"]
    if store_base.startswith("s3://"):
        remove_tree(store_base)


# -- b. `tessera serve` killed mid-upload ----------------------------------------


def test_server_killed_mid_upload(
    tessera_bin: Path, store_base: str, tmp_path: Path, load_input: Input
) -> None:
    """The server SIGKILLed while it takes an upload, then restarted: every
    committed load whole, nothing partial, the restarted server agrees
    with the command line, a re-run succeeds and vacuum removes orphans."""
    backend = "s3" if store_base.startswith("s3://") else "local"
    kind = f"serve-{backend}"
    wanted = UPLOAD_KILLS[backend]
    rng, seed = seeded(kind)
    spool = tmp_path / "spool"
    spool.mkdir()
    env = clean_env(TMPDIR=str(spool))
    t = Table(tessera_bin, store_base, "kills/uploads", env, load_input)
    log = tmp_path / "serve.log"
    args = ["--store", store_base, *t.writer_flags]
    headers = {"Content-Type": "application/octet-stream"}
    started = time.monotonic()

    def upload(server: Server, key: str) -> Reply:
        return request(
            server, "POST", dataset_path(t.name, version=key, format="csv"),
            load_input.body(key), headers,
        )  # fmt: skip

    server = start_server(tessera_bin, args, log, env, tmp_path)
    durations = []
    for key in ("P0000", "P0001"):
        t.tried.add(key)
        t.must_commit.add(key)
        t0 = time.monotonic()
        reply = upload(server, key)
        durations.append(round(time.monotonic() - t0, 3))
        assert reply.status == 200, reply.body
        assert reply.json()["rows"] == load_input.rows
    instants = Instants(rng, durations)
    print(f"{kind}: an uninterrupted upload takes {durations} s")

    kills = Kills()
    for r in range(2 * wanted):
        if kills.killed >= wanted:
            break
        key = f"U{r:04d}"
        t.tried.add(key)
        result: list[Reply | BaseException] = []

        def send(s: Server = server, k: str = key, out: list = result) -> None:
            try:
                out.append(upload(s, k))
            except BaseException as e:  # noqa: BLE001 - the server is being killed
                out.append(e)

        sender = threading.Thread(target=send)
        delay = instants.next()
        t0 = time.monotonic()
        sender.start()
        sender.join(timeout=delay)
        answered = not sender.is_alive()
        if answered:
            instants.finished(time.monotonic() - t0)
        killed = server.kill()
        kills.add(kind, killed and not answered)
        sender.join(timeout=60)
        assert not sender.is_alive(), "the upload did not end when the server died"
        got = result[0]
        if isinstance(got, Reply):
            assert got.status == 200, f"seed {seed}: {key}: {got.status} {got.body!r}"
            t.must_commit.add(key)
        else:
            assert not answered, got
        keys = t.check(f"after {key} (killed at {delay:.3f} s; seed {seed})", full=False)
        # The restarted server sees the same history.
        server = start_server(tessera_bin, args, log, env, tmp_path)
        hist = request(server, "GET", dataset_path(t.name, view="history"))
        if keys:
            assert hist.status == 200, hist.body
            entries = sorted(hist.json()["history"], key=lambda e: e["version"])
            assert [e["version_key"] for e in entries] == keys
        else:
            assert hist.status == 404, hist.body

    # The restarted server takes a load; the data is whole through it too.
    key = "R0000"
    t.tried.add(key)
    t.must_commit.add(key)
    assert upload(server, key).status == 200
    keys = t.check("after the re-run")
    rows = request(
        server, "GET", dataset_path(t.name, columns="load,row,val,_version_key", format="arrow")
    )
    assert rows.status == 200, rows.body
    assert_whole(arrow_stream(rows.body), keys, load_input, "read through the restarted server")
    server.stop()
    refs = t.delta_check(keys, rows=False)
    orphans = t.orphans(refs)
    t.cli("datasets", "vacuum", t.name, "--retain", "0s", *t.writer_flags)
    left = t.orphans(refs)
    assert left == [], f"seed {seed}: vacuum left files no version needs in {t.url}: {left}"
    assert t.check("after vacuum", full=False) == keys
    spooled = [p.name for p in spool.iterdir()]
    _module_kills.merge(kills)
    print(
        f"{kind}: {kills.killed} kills mid-upload, {len(keys)} loads "
        f"committed, {len(orphans)} orphan files removed by vacuum, "
        f"{len(spooled)} upload spool files left in TMPDIR by killed servers, "
        f"{time.monotonic() - started:.1f} s"
    )
    assert kills.killed >= wanted, (
        f"only {kills.killed} of {kills.killed + kills.finished} kills happened during an "
        f"upload (wanted {wanted})"
    )
    if store_base.startswith("s3://"):
        remove_tree(store_base)


# -- c. manifests and indexes overwritten by a killed command ---------------------


def _paths(rng_seed: int, n: int) -> str:
    """``n`` object keys in a gene/tissue layout, one per line."""
    r = random.Random(rng_seed)
    return "".join(
        f"models/v1/G{r.getrandbits(64):016x}/model_{r.randrange(10**6)}.tl\n" for _ in range(n)
    )


def _overwrite_rounds(
    kind: str,
    argv: list[str],
    target: str,
    old: bytes,
    new: bytes,
    wanted: int,
    durations: list[float],
    env: dict[str, str],
    log: Path,
) -> tuple[Kills, int, int]:
    """Restore ``old`` at ``target``, run ``argv`` (which writes ``new``
    there) and kill it at a uniform instant, until ``wanted`` runs were
    killed running; then ``WRITE_KILLS`` times as soon as anything beside
    the target changes. The object must always be whole, ``old`` or
    ``new``. Returns the kills and how often the old and the new object
    were found."""
    rng, seed = seeded(kind)
    instants = Instants(rng, durations)
    kills = Kills()
    n_old = n_new = 0
    folder = target.rsplit("/", 1)[0]

    def round_(r: int, aimed: bool) -> bool:
        nonlocal n_old, n_new
        put(target, old)
        if aimed:
            # As soon as anything in the output's folder changes.
            out = kill_on_write(argv, env, log, folder, lambda a, b: a != b)
            when = f"its first write ({out.seconds:.3f} s)"
        else:
            delay = instants.next()
            out = run_then_kill(argv, delay, env, log)
            when = f"{delay:.3f} s"
            if not out.killed:
                instants.finished(out.seconds)
        kills.add(kind, out.killed)
        if not out.killed:
            assert out.returncode == 0, out.stderr
        data = get(target)
        where = f"{target} after a kill at {when} (round {r}, seed {seed})"
        if data == old:
            assert out.killed, f"{where}: the command finished but the old object remains"
            n_old += 1
        elif data == new:
            n_new += 1
        else:
            pytest.fail(
                f"{where}: neither the old nor the new object: {len(data)} bytes "
                f"(old {len(old)}, new {len(new)}), starting {data[:40]!r}"
            )
        return out.killed

    uniform = 0
    for r in range(2 * wanted):
        if uniform >= wanted:
            break
        uniform += int(round_(r, aimed=False))
    for r in range(WRITE_KILLS):
        round_(2 * wanted + r, aimed=True)
    _module_kills.merge(kills)
    assert uniform >= wanted, (
        f"only {uniform} runs were running at their uniform instant (wanted {wanted}; seed {seed})"
    )
    return kills, n_old, n_new


def test_manifest_build_killed_while_overwriting(
    tessera_bin: Path, store_base: str, tmp_path: Path
) -> None:
    """A manifest rebuilt over an existing one and killed: the manifest
    is always the previous one or the new one, whole."""
    kind = "manifest-s3" if store_base.startswith("s3://") else "manifest-local"
    env = clean_env()
    template = "models/v1/{gene}/model_{tissue:int32}.tl"
    old_paths = tmp_path / "old.txt"
    old_paths.write_text(_paths(1, N_OLD_PATHS))
    new_paths = tmp_path / "new.txt"
    new_paths.write_text(_paths(2, N_NEW_PATHS))
    target = join(store_base, "manifests", "models.parquet")
    build = [str(tessera_bin), "manifest", "build", "-o", target, "-t", template, "-q"]
    cli(tessera_bin, *build[1:], str(old_paths), env=env)
    old = get(target)
    argv = [*build, str(new_paths)]
    durations = [round(timed(argv, env)[0], 3) for _ in range(2)]
    new = get(target)
    assert old != new
    old_rows = pq.read_table(io.BytesIO(old)).num_rows
    new_rows = pq.read_table(io.BytesIO(new)).num_rows
    assert (old_rows, new_rows) == (N_OLD_PATHS, N_NEW_PATHS)
    kills, n_old, n_new = _overwrite_rounds(
        kind, argv, target, old, new, MANIFEST_KILLS, durations, env, tmp_path / "build.log"
    )
    # tessera reads what is there now.
    count = cli(tessera_bin, "manifest", "query", target, "--count", env=env).stdout
    assert int(count.split()[-1]) in (old_rows, new_rows)
    others = [f for f in list_files(join(store_base, "manifests")) if f != "models.parquet"]
    print(
        f"{kind}: build takes {durations} s; {kills.killed} kills, old {n_old}, new {n_new}; "
        f"other objects left beside it: {others}"
    )
    if store_base.startswith("s3://"):
        remove_tree(store_base)


def test_index_killed_while_overwriting(
    tessera_bin: Path, store_base: str, tmp_path: Path, load_input: Input
) -> None:
    """An object changed and indexed again over its previous index, killed:
    the index is always the previous one or the new one, whole."""
    kind = "index-s3" if store_base.startswith("s3://") else "index-local"
    env = clean_env()
    obj = join(store_base, "raw", "records.csv")
    target = obj + ".tessera-index.json"
    # The old object: half the rows; the new one: the rows twice.
    body = load_input.body("I0000")
    header, rows = body.split(b"\n", 1)
    put(obj, body[: len(body) // 2].rsplit(b"\n", 1)[0] + b"\n")
    argv = [str(tessera_bin), "index", obj, "--spacing", "64", "-q"]
    cli(tessera_bin, *argv[1:], env=env)
    old = get(target)
    bigger = header + b"\n" + rows + rows
    put(obj, bigger)
    durations = [round(timed(argv, env)[0], 3) for _ in range(2)]
    new = get(target)
    old_doc, new_doc = json.loads(old), json.loads(new)
    assert old_doc["size"] < new_doc["size"] == len(bigger)
    assert new_doc["records"] == 2 * load_input.rows
    kills, n_old, n_new = _overwrite_rounds(
        kind, argv, target, old, new, INDEX_KILLS, durations, env, tmp_path / "index.log"
    )
    others = [
        f
        for f in list_files(join(store_base, "raw"))
        if f not in ("records.csv", "records.csv.tessera-index.json")
    ]
    print(
        f"{kind}: index takes {durations} s ({len(new)} bytes); {kills.killed} kills, "
        f"old {n_old}, new {n_new}; other objects left beside it: {others}"
    )
    if store_base.startswith("s3://"):
        remove_tree(store_base)

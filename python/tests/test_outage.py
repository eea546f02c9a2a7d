"""The S3 server stopped and restarted in the middle of a pack.

The module starts its own single-node Garage (not the shared test server,
which other tests use at the same time), with its data and metadata in a
temporary folder. A helper stops it (SIGTERM or SIGKILL) and starts it again
on the same ports and folders, so the bucket, the key and the objects
survive.

- ``tessera pack`` of CSV files on the server into a local folder, and of
  local CSV files into a table on the server, with the server stopped at a
  seeded random instant of the run and started again 1–3 s after it exited
  (after SIGTERM, Garage first serves its open connections, up to 10 s).
  The pack either succeeds with every input row in the output exactly once,
  or fails with a clear error (exit status 1, no panic, no backtrace, an
  ``error:`` line naming the object or the store and the cause, once) and
  leaves nothing a reader would take for the complete output. Either way, the same command run again after the
  restart succeeds (no flag needed: a pack resumes or discards an
  interrupted run by itself) and the table then holds every input row
  exactly once, with every run of its journal applied and no staging left.
  A pack that fails after its commit, while it moves its files into place,
  may leave some of them visible (as the README says of that step): they
  must be whole files of the committed run, and the run not marked applied.
- The server killed before a pack into it commits and kept down for longer
  than the pack's retry budget (5 retries, under 2 s): the pack fails within
  30 s of the kill with a clear error and nothing visible, and a re-run
  converges.
- A pack against a server that is down from the start fails quickly with a
  clear error and writes nothing.

The instants, outage lengths and signals come from a seeded generator (the
seed is printed; ``TESSERA_KILL_SEED`` replays them). The duration of an
undisturbed pack is measured first and printed. Every expected row comes
from the data the test wrote (each row has a unique ``id``).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from _procs import clean_env, seeded

BUCKET = "outage"
TABLE = "t"
ROWS_PER_FILE = 1_000
# Inputs on the server: reading them dominates the run (about 5 s for a
# debug build); local inputs parse faster, so there are more of them.
N_S3_FILES = 100
N_LOCAL_FILES = 250
# Small output files: a run stages, commits and moves several of them.
MAX_FILE_SIZE = "256KB"
SHORT_OUTAGE = (1.0, 3.0)  # seconds the server stays down, drawn uniformly
LONG_OUTAGE_EXIT = 30.0  # a pack facing a dead server must give up within this
LONG_OUTAGE_CAP = 60.0  # the server comes back after this even if the pack still runs
HANG = 120.0  # a pack still running this long after the restart hangs
SERVER_START = 30.0  # seconds Garage may take to answer after a start


# -- a private Garage -------------------------------------------------------------


def _garage_binary() -> str:
    """The ``garage`` executable (on PATH or where ``cargo install`` puts it)."""
    found = shutil.which("garage")
    if found:
        return found
    cargo = Path.home() / ".cargo" / "bin" / "garage"
    if cargo.is_file() and os.access(cargo, os.X_OK):
        return str(cargo)
    reason = "no garage binary (scripts/garage.sh installs it: garage_install)"
    if os.environ.get("TESSERA_REQUIRE_S3") == "1":
        pytest.fail(f"{reason}, but TESSERA_REQUIRE_S3=1")
    pytest.skip(reason)


def _free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Garage:
    """A single-node Garage whose process can be stopped and started again
    on the same ports and folders."""

    exe: str
    root: Path
    s3_port: int = field(default_factory=_free_port)
    rpc_port: int = field(default_factory=_free_port)
    admin_port: int = field(default_factory=_free_port)
    proc: subprocess.Popen[bytes] | None = None
    key_id: str = ""
    secret: str = ""
    starts: int = 0

    @property
    def config(self) -> Path:
        """Its configuration file."""
        return self.root / "garage.toml"

    @property
    def log(self) -> Path:
        """The server's output, every start appended."""
        return self.root / "server.log"

    @property
    def endpoint(self) -> str:
        """The S3 endpoint URL."""
        return f"http://127.0.0.1:{self.s3_port}"

    def write_config(self) -> None:
        """The configuration scripts/garage.sh writes: sqlite metadata,
        replication 1, loopback ports."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            f'metadata_dir = "{self.root / "meta"}"\n'
            f'data_dir = "{self.root / "data"}"\n'
            'db_engine = "sqlite"\n'
            "replication_factor = 1\n"
            f'rpc_bind_addr = "127.0.0.1:{self.rpc_port}"\n'
            f'rpc_public_addr = "127.0.0.1:{self.rpc_port}"\n'
            f'rpc_secret = "{secrets.token_hex(32)}"\n'
            "\n[s3_api]\n"
            's3_region = "garage"\n'
            f'api_bind_addr = "127.0.0.1:{self.s3_port}"\n'
            'root_domain = ".s3.garage.localhost"\n'
            "\n[admin]\n"
            f'api_bind_addr = "127.0.0.1:{self.admin_port}"\n'
            f'admin_token = "{secrets.token_hex(16)}"\n'
        )

    def admin(self, *args: str) -> str:
        """``garage -c CONFIG ARGS`` (it must succeed); its stdout."""
        proc = subprocess.run(
            [self.exe, "-c", str(self.config), *args], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, f"garage {' '.join(args)} failed:\n{proc.stderr}"
        return proc.stdout

    def running(self) -> bool:
        """Whether the server process runs."""
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Start the server and wait until its S3 port accepts connections."""
        assert not self.running(), "garage is already running"
        with open(self.log, "ab") as log:
            log.write(f"\n== start {self.starts}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [self.exe, "-c", str(self.config), "server"], stdout=log, stderr=log
            )
        self.starts += 1
        deadline = time.monotonic() + SERVER_START
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"garage exited at start ({self.proc.returncode}):\n{self._tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.s3_port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        pytest.fail(
            f"garage did not listen on {self.endpoint} in {SERVER_START} s:\n{self._tail()}"
        )

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> float:
        """Stop the server with ``sig`` and wait for it to exit (SIGKILL
        after 15 s); the seconds it took to exit. After SIGTERM, Garage
        goes on serving its open connections for up to 10 s."""
        start = time.monotonic()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        return time.monotonic() - start

    def set_up(self) -> None:
        """First start: the layout, the bucket and a key allowed on it (as
        scripts/garage.sh does)."""
        deadline = time.monotonic() + SERVER_START
        while True:
            st = subprocess.run(
                [self.exe, "-c", str(self.config), "status"], capture_output=True, timeout=60
            )
            if st.returncode == 0:
                break
            assert time.monotonic() < deadline, f"garage status failed:\n{st.stderr!r}"
            time.sleep(0.1)
        node = self.admin("node", "id", "-q").strip().split("@")[0]
        self.admin("layout", "assign", "-z", "dc1", "-c", "1G", node)
        self.admin("layout", "apply", "--version", "1")
        self.admin("bucket", "create", BUCKET)
        self.admin("key", "create", "outage-key")
        self.admin("bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", "outage-key")
        info = self.admin("key", "info", "outage-key", "--show-secret")
        key_id = re.search(r"Key ID:\s*(\S+)", info)
        secret = re.search(r"Secret key:\s*(\S+)", info)
        assert key_id and secret, info
        self.key_id, self.secret = key_id.group(1), secret.group(1)

    def filesystem(self, attempts: int = 3) -> pafs.S3FileSystem:
        """pyarrow's S3 filesystem on this server."""
        return pafs.S3FileSystem(
            access_key=self.key_id,
            secret_key=self.secret,
            region="garage",
            endpoint_override=f"127.0.0.1:{self.s3_port}",
            scheme="http",
            connect_timeout=2,
            request_timeout=10,
            retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=attempts),
        )

    def wait_ready(self) -> None:
        """Wait until the S3 API lists the bucket (after a start the
        port can accept connections before requests succeed)."""
        fs = self.filesystem(attempts=1)
        deadline = time.monotonic() + SERVER_START
        while True:
            try:
                fs.get_file_info(pafs.FileSelector(BUCKET, allow_not_found=True))
                return
            except OSError as e:
                if time.monotonic() > deadline:
                    pytest.fail(f"garage does not answer after a start: {e}\n{self._tail()}")
                time.sleep(0.1)

    def restart(self) -> float:
        """Start again (same ports, same folders) and wait until it answers;
        the seconds that took."""
        start = time.monotonic()
        self.start()
        self.wait_ready()
        return time.monotonic() - start

    def env(self) -> dict[str, str]:
        """The environment for ``tessera`` on this server: no ``TESSERA_*``
        settings (the default retries), no other ``AWS_*`` ones (the shared
        server's) and no backtrace setting (a panic says "panicked" anyway)."""
        env = {
            k: v
            for k, v in clean_env().items()
            if not k.startswith("AWS_") and k not in ("RUST_BACKTRACE", "RUST_LIB_BACKTRACE")
        }
        env.update(
            AWS_ENDPOINT_URL=self.endpoint,
            AWS_ACCESS_KEY_ID=self.key_id,
            AWS_SECRET_ACCESS_KEY=self.secret,
            AWS_REGION="garage",
        )
        return env

    def _tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


@pytest.fixture(scope="module")
def garage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Garage]:
    """The module's own Garage, killed at the end (its folders are
    pytest's temporary ones)."""
    g = Garage(_garage_binary(), tmp_path_factory.mktemp("garage"))
    g.write_config()
    try:
        g.start()
        g.set_up()
        g.wait_ready()
        yield g
    finally:
        g.stop(signal.SIGKILL)


@pytest.fixture
def live_garage(garage: Garage) -> Iterator[Garage]:
    """The module's Garage, running at the start and at the end of a test
    (a test that failed while it was down must not fail the next ones)."""
    if not garage.running():
        garage.restart()
    yield garage
    if not garage.running():
        garage.restart()


# -- the inputs -------------------------------------------------------------------


def csv_file(first_id: int, rows: int) -> bytes:
    """``rows`` CSV rows with ids ``first_id…``: ``id``, ``grp``, ``val``,
    ``txt`` (every value derived from the id)."""
    lines = ["id,grp,val,txt"]
    for i in range(first_id, first_id + rows):
        lines.append(f"{i},{i % 17},{i * 7919 % 100_000},w{i * 2654435761 % 10**9:09d}-{i % 97}")
    return ("\n".join(lines) + "\n").encode()


@dataclass(frozen=True)
class Inputs:
    """The input files of one pack and the rows they hold."""

    url: str
    """``INPUT_BASE`` as tessera takes it."""
    files: dict[str, bytes]
    """Name → contents."""
    expected: pa.Table
    """Every input row, sorted by ``id``."""


def make_inputs(n_files: int, first_id: int) -> tuple[dict[str, bytes], pa.Table]:
    """``n_files`` CSV files of ``ROWS_PER_FILE`` rows with ids from
    ``first_id``, and all their rows as a table (parsed by pyarrow)."""
    files = {
        f"part-{f:04d}.csv": csv_file(first_id + f * ROWS_PER_FILE, ROWS_PER_FILE)
        for f in range(n_files)
    }
    types = {"id": pa.int64(), "grp": pa.int64(), "val": pa.int64(), "txt": pa.string()}
    opts = pacsv.ConvertOptions(column_types=types)
    tables = [pacsv.read_csv(pa.py_buffer(b), convert_options=opts) for b in files.values()]
    table = pa.concat_tables(tables)
    return files, table.take(pc.sort_indices(table, [("id", "ascending")]))


@dataclass
class Place:
    """A folder on the local disk or on the server, read with pyarrow."""

    url: str
    """As tessera takes it."""
    fs: pafs.FileSystem
    root: str
    """The folder as ``fs`` names it."""

    def files(self) -> list[str]:
        """Every object under the folder, relative to it."""
        sel = pafs.FileSelector(self.root, recursive=True, allow_not_found=True)
        return sorted(
            i.path[len(self.root) + 1 :]
            for i in self.fs.get_file_info(sel)
            if i.type == pafs.FileType.File
        )

    def read(self, rel: str) -> bytes:
        """One object's bytes."""
        with self.fs.open_input_stream(f"{self.root}/{rel}", compression=None) as f:
            data: bytes = f.read()
            return data

    def table(self, rel: str) -> pa.Table:
        """One Parquet file (it must read whole)."""
        return pq.read_table(f"{self.root}/{rel}", filesystem=self.fs)


def local_place(path: Path) -> Place:
    """A local folder."""
    return Place(str(path), pafs.LocalFileSystem(), str(path))


def s3_place(g: Garage, key: str) -> Place:
    """A prefix in the private server's bucket."""
    return Place(f"s3://{BUCKET}/{key}", g.filesystem(), f"{BUCKET}/{key}")


@dataclass
class Setup:
    """Both input sets, written once per module."""

    on_s3: Inputs
    local: Inputs


@pytest.fixture(scope="module")
def inputs(garage: Garage, tmp_path_factory: pytest.TempPathFactory) -> Setup:
    """``N_S3_FILES`` CSV files on the server (``s3://outage/land/t/``) and
    ``N_LOCAL_FILES`` on local disk, with distinct ids."""
    s3_files, s3_rows = make_inputs(N_S3_FILES, 0)
    fs = garage.filesystem()
    start = time.monotonic()
    for name, data in s3_files.items():
        with fs.open_output_stream(f"{BUCKET}/land/{TABLE}/{name}", compression=None) as out:
            out.write(data)
    land = tmp_path_factory.mktemp("land")
    local_files, local_rows = make_inputs(N_LOCAL_FILES, 10_000_000)
    (land / TABLE).mkdir()
    for name, data in local_files.items():
        (land / TABLE / name).write_bytes(data)
    print(
        f"inputs: {N_S3_FILES} files ({s3_rows.num_rows} rows) uploaded in "
        f"{time.monotonic() - start:.1f} s, "
        f"{N_LOCAL_FILES} local files ({local_rows.num_rows} rows)"
    )
    return Setup(
        Inputs(f"s3://{BUCKET}/land", s3_files, s3_rows),
        Inputs(str(land), local_files, local_rows),
    )


# -- what a table folder holds ----------------------------------------------------


@dataclass
class TableState:
    """A pack's table folder: the files readers see and the journal."""

    visible: list[str]
    """Files outside ``_tessera/`` (what a reader lists)."""
    records: dict[str, dict]
    """Committed runs (``_tessera/runs/<seq>.json``) by sequence name."""
    done: set[str]
    """Sequence names whose files are in place (``<seq>.done``)."""
    staging: list[str]
    """Objects under ``_tessera/staging/``."""

    @property
    def pending(self) -> list[str]:
        """Committed runs whose files are not all in place yet."""
        return sorted(set(self.records) - self.done)


def table_state(place: Place) -> TableState:
    """Read the table folder ``place`` (``OUTPUT_BASE/TABLE``)."""
    visible, records, done, staging = [], {}, set(), []
    for rel in place.files():
        if not rel.startswith("_tessera/"):
            visible.append(rel)
        elif rel.startswith("_tessera/staging/"):
            staging.append(rel)
        elif rel.startswith("_tessera/runs/"):
            name = rel.removeprefix("_tessera/runs/")
            if name.endswith(".json"):
                records[name.removesuffix(".json")] = json.loads(place.read(rel))
            elif name.endswith(".done"):
                done.add(name.removesuffix(".done"))
    return TableState(visible, records, done, staging)


def read_rows(place: Place, files: list[str]) -> pa.Table:
    """The rows of ``files`` (every one a whole Parquet file), as the
    input's columns and types, sorted by ``id``."""
    assert files, f"no files in {place.url}"
    tables = []
    for rel in files:
        assert rel.endswith(".parquet"), f"{place.url}/{rel}: not a Parquet file of the table"
        try:
            t = place.table(rel)
        except (OSError, pa.ArrowInvalid) as e:
            pytest.fail(f"{place.url}/{rel} does not read as Parquet: {e}")
        assert t.column_names == ["id", "grp", "val", "txt"], f"{rel}: {t.schema}"
        tables.append(
            pa.table(
                {
                    "id": t["id"].cast(pa.int64()),
                    "grp": t["grp"].cast(pa.int64()),
                    "val": t["val"].cast(pa.int64()),
                    "txt": t["txt"].cast(pa.string()),
                }
            )
        )
    rows = pa.concat_tables(tables)
    return rows.take(pc.sort_indices(rows, [("id", "ascending")]))


def assert_exactly_once(place: Place, files: list[str], expected: pa.Table, when: str) -> None:
    """The rows of ``files`` are the expected rows, each exactly once."""
    rows = read_rows(place, files)
    got = rows["id"].to_numpy()
    want = expected["id"].to_numpy()
    dups = int(np.sum(got[1:] == got[:-1])) if len(got) else 0
    missing = len(np.setdiff1d(want, got))
    extra = len(np.setdiff1d(got, want))
    assert (rows.num_rows, dups, missing, extra) == (expected.num_rows, 0, 0, 0), (
        f"{place.url} {when}: {rows.num_rows} rows for {expected.num_rows} inputs: "
        f"{dups} duplicated, {missing} missing, {extra} not in the input"
    )
    assert rows.equals(expected.select(rows.column_names)), (
        f"{place.url} {when}: the ids match but some values differ from the input"
    )


def assert_converged(place: Place, inputs: Inputs, when: str) -> TableState:
    """A finished table: every run applied, no staging, every input row
    exactly once in the files readers see, every input consumed by exactly
    one run."""
    state = table_state(place)
    assert not state.pending, f"{place.url} {when}: runs not applied: {state.pending}"
    assert not state.staging, f"{place.url} {when}: staging left: {state.staging[:5]}"
    assert_exactly_once(place, state.visible, inputs.expected, when)
    consumed = [i["url"].rsplit("/", 1)[-1] for r in state.records.values() for i in r["inputs"]]
    assert sorted(consumed) == sorted(inputs.files), (
        f"{place.url} {when}: the journal's inputs are not each input once: "
        f"{len(consumed)} recorded, {len(set(consumed))} distinct, {len(inputs.files)} inputs"
    )
    return state


def assert_nothing_taken_for_complete(place: Place, inputs: Inputs) -> str:
    """After a failed pack: before its commit, readers see no file. After
    it, while its files are moved into place, readers may see some of them
    (README: "a reader listing the folder can see some of the new files and
    not yet others"): only files of the committed run, each whole (the rows
    its run recorded), no row twice, and the run not marked applied (the
    next pack completes it). A run marked applied must be complete. Says
    which case it was."""
    state = table_state(place)
    if not state.records:
        assert not state.visible, (
            f"{place.url}: the pack failed before committing, yet readers see {state.visible}"
        )
        staged = len(state.staging)
        return f"failed before its commit: nothing visible, {staged} staged objects left"
    if not state.pending:
        assert_exactly_once(place, state.visible, inputs.expected, "after a failure past its apply")
        return "failed after applying its run: output complete"
    promised = {o["path"]: o["rows"] for r in state.records.values() for o in r["outputs"]}
    stray = sorted(set(state.visible) - set(promised))
    assert not stray, f"{place.url}: files no committed run wrote: {stray}"
    for rel in state.visible:
        rows_in = read_rows(place, [rel]).num_rows
        assert rows_in == promised[rel], (
            f"{place.url}/{rel}: {rows_in} rows, its run recorded {promised[rel]}"
        )
    if state.visible:
        rows = read_rows(place, state.visible)
        ids = rows["id"].to_numpy()
        assert not np.any(ids[1:] == ids[:-1]), f"{place.url}: a row twice after a failed apply"
        assert np.all(np.isin(ids, inputs.expected["id"].to_numpy())), f"{place.url}: foreign rows"
    return (
        f"failed while applying its committed run: {len(state.visible)} of {len(promised)} "
        f"files in place, run {state.pending} marked not applied"
    )


# -- running a pack through an outage ---------------------------------------------


@dataclass
class Variant:
    """Where a pack reads and writes."""

    name: str
    inputs: Inputs
    output: Place
    """``OUTPUT_BASE``."""
    flags: list[str]

    @property
    def table(self) -> Place:
        """``OUTPUT_BASE/TABLE``."""
        return Place(f"{self.output.url}/{TABLE}", self.output.fs, f"{self.output.root}/{TABLE}")

    def argv(self, binary: Path) -> list[str]:
        """The pack command."""
        return [
            str(binary), "pack", self.inputs.url, self.output.url, TABLE,
            "--max-file-size", MAX_FILE_SIZE, *self.flags,
        ]  # fmt: skip


def make_variant(
    kind: str, g: Garage, setup: Setup, tmp_path: Path, label: str
) -> Variant:
    """``inputs-on-s3``: server → local folder; ``output-on-s3``: local
    folder → server (Garage ignores conditional writes: ``--single-writer``)."""
    if kind == "inputs-on-s3":
        return Variant(kind, setup.on_s3, local_place(tmp_path / f"out-{label}"), [])
    assert kind == "output-on-s3", kind
    key = f"out-{label}-{os.getpid()}-{time.monotonic_ns()}"
    return Variant(kind, setup.local, s3_place(g, key), ["--single-writer"])


_durations: dict[str, float] = {}


def undisturbed(kind: str, g: Garage, setup: Setup, binary: Path, tmp_path: Path) -> float:
    """The duration of an undisturbed pack of ``kind`` (measured once per
    module, into a folder of its own, whose output is checked too)."""
    if kind not in _durations:
        v = make_variant(kind, g, setup, tmp_path, "measure")
        start = time.monotonic()
        proc = subprocess.run(
            v.argv(binary), capture_output=True, text=True, env=g.env(), timeout=300
        )
        took = time.monotonic() - start
        assert proc.returncode == 0, f"undisturbed pack failed:\n{proc.stderr}"
        assert_converged(v.table, v.inputs, "after an undisturbed pack")
        print(f"{kind}: an undisturbed pack takes {took:.1f} s")
        _durations[kind] = took
    return _durations[kind]


@dataclass
class Outcome:
    """How a pack through an outage ended."""

    returncode: int
    stderr: str
    stdout: str
    seconds: float
    """From the start of the pack to its exit."""
    stopped_at: float | None = None
    """When the server was signalled (from the start of the pack), or None
    when the pack had exited before."""
    stop_took: float = 0.0
    """From the signal to the server's exit."""
    down: float = 0.0
    """From the server's exit to its restart."""
    exit_after_stop: float | None = None
    """From the signal to the pack's exit."""

    def describe(self, sig: signal.Signals, stop_at: float) -> str:
        """When and how the server went down."""
        if self.stopped_at is None:
            return f"the pack ended before the stop at {stop_at:.2f} s"
        return (
            f"{sig.name} at {self.stopped_at:.2f} s, server exited {self.stop_took:.1f} s "
            f"later and stayed down {self.down:.1f} s"
        )


def pack_through_outage(
    argv: list[str],
    g: Garage,
    log: Path,
    stop_at: float,
    sig: signal.Signals,
    down_for: float | None,
) -> Outcome:
    """Run ``argv``; ``stop_at`` seconds later stop the server with ``sig``
    and, once it has exited, start it again ``down_for`` seconds later
    (None: once the pack has exited, or after ``LONG_OUTAGE_CAP``). The
    pack must exit within ``HANG`` seconds of the restart."""
    err_path, out_path = log.with_suffix(".err"), log.with_suffix(".out")
    with open(err_path, "wb") as err, open(out_path, "wb") as out:
        start = time.monotonic()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=g.env())
        o = Outcome(0, "", "", 0.0)
        try:
            proc.wait(timeout=stop_at)
        except subprocess.TimeoutExpired:
            t_stop = time.monotonic()
            o.stopped_at = t_stop - start
            o.stop_took = g.stop(sig)
            t_down = time.monotonic()
            cap = down_for if down_for is not None else LONG_OUTAGE_CAP
            try:
                proc.wait(timeout=max(0.0, t_down + cap - time.monotonic()))
                o.exit_after_stop = time.monotonic() - t_stop
            except subprocess.TimeoutExpired:
                pass
            if down_for is not None:
                time.sleep(max(0.0, t_down + down_for - time.monotonic()))
            o.down = time.monotonic() - t_down
            g.restart()
        try:
            proc.wait(timeout=HANG)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
            pytest.fail(
                f"{' '.join(argv)} still ran {HANG} s after the server came back "
                f"({o.describe(sig, stop_at)}):\n{err_path.read_text()[-3000:]}"
            )
        o.seconds = time.monotonic() - start
        if o.stopped_at is not None and o.exit_after_stop is None:
            o.exit_after_stop = o.seconds - o.stopped_at
    if not g.running():  # the pack exited before the stop instant
        g.restart()
    o.returncode = proc.returncode
    o.stderr = err_path.read_text(errors="replace")
    o.stdout = out_path.read_text(errors="replace")
    return o


def failure_problems(o: Outcome, g: Garage, argv: list[str]) -> tuple[str, list[str]]:
    """What is wrong with how a pack failed, and its last ``error:`` line.

    A clear failure: exit status 1 (not a signal, not 101 as a Rust panic),
    no panic, backtrace or internal error on stderr, and an ``error:`` line
    that names the object or the store, says what went wrong, and says it
    once. The tests check the rest (the table, the re-run) before failing on
    these, so that one report shows everything."""
    cmd = " ".join(argv)
    problems: list[str] = []
    if o.returncode < 0:
        problems.append(f"{cmd}: ended by signal {-o.returncode}")
    elif o.returncode == 101:
        problems.append(f"{cmd}: exit 101 (a Rust panic)")
    elif o.returncode != 1:
        problems.append(f"{cmd}: exit {o.returncode} (errors exit 1)")
    for sign in ("panicked", "stack backtrace", "RUST_BACKTRACE", "internal error"):
        if sign in o.stderr:
            problems.append(f"{cmd}: {sign!r} on stderr")
    errors = [line for line in o.stderr.splitlines() if line.startswith("error: ")]
    if not errors:
        problems.append(f"{cmd}: failed without an 'error:' line:\n{o.stderr[-3000:]}")
        return "", problems
    line = errors[-1]
    if f"s3://{BUCKET}/" not in line and f"127.0.0.1:{g.s3_port}" not in line:
        problems.append(f"{cmd}: the error names neither the object nor the store:\n{line}")
    says_what = re.search(
        r"cannot reach the store|connect|refused|reset|closed|unavailable|timed out|storage error",
        line,
        re.IGNORECASE,
    )
    if not says_what:
        problems.append(f"{cmd}: the error does not say what went wrong:\n{line}")
    # Said once: a cause printed again by every error that wraps it buries
    # the message (pieces of 40+ characters between ': ' / ' - ' separators).
    parts = [p.strip() for p in re.split(r": | - ", line) if len(p.strip()) >= 40]
    repeated = sorted({p for p in parts if parts.count(p) > 1})
    if repeated:
        problems.append(
            f"{cmd}: the error repeats its cause ({max(parts.count(p) for p in repeated)} times "
            f"{repeated[0]!r}):\n{line}"
        )
    return line, problems


def rerun(v: Variant, g: Garage, binary: Path, first_ok: bool) -> tuple[float, str]:
    """Run the same pack again (the server is up): it must succeed; after a
    pack that succeeded it must have nothing to do. Its time and report."""
    start = time.monotonic()
    proc = subprocess.run(v.argv(binary), capture_output=True, text=True, env=g.env(), timeout=300)
    took = time.monotonic() - start
    assert proc.returncode == 0, f"the re-run failed ({proc.returncode}):\n{proc.stderr}"
    assert "panicked" not in proc.stderr, proc.stderr
    report = (proc.stdout + proc.stderr).strip().splitlines()
    first = report[0] if report else ""
    if first_ok:
        assert "nothing to pack" in proc.stdout + proc.stderr, (
            f"a re-run after a pack that succeeded packed again:\n{proc.stdout}{proc.stderr}"
        )
    return took, first


# -- the tests --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["inputs-on-s3", "output-on-s3"])
def test_outage_during_pack(
    kind: str, live_garage: Garage, inputs: Setup, tessera_bin: Path, tmp_path: Path
) -> None:
    """The server stopped at a random instant of a pack and back 1–3 s
    later: the pack succeeds with every row once, or fails clearly leaving
    nothing taken for complete output; a re-run converges."""
    g = live_garage
    full = undisturbed(kind, g, inputs, tessera_bin, tmp_path)
    rng, _ = seeded(f"test_outage_during_pack[{kind}]")
    stop_at = rng.uniform(0, full)
    down_for = rng.uniform(*SHORT_OUTAGE)
    sig = rng.choice([signal.SIGTERM, signal.SIGKILL])
    v = make_variant(kind, g, inputs, tmp_path, "outage")
    argv = v.argv(tessera_bin)
    o = pack_through_outage(argv, g, tmp_path / "pack", stop_at, sig, down_for)
    where = o.describe(sig, stop_at)
    problems: list[str] = []
    if o.returncode == 0:
        assert_converged(v.table, v.inputs, f"after a pack that succeeded ({where})")
        what = "succeeded, every row once"
    else:
        line, problems = failure_problems(o, g, argv)
        left = assert_nothing_taken_for_complete(v.table, v.inputs)
        what = f"failed (exit {o.returncode}): {line}\n  {left}"
    took, report = rerun(v, g, tessera_bin, o.returncode == 0)
    assert_converged(v.table, v.inputs, f"after the re-run ({where})")
    print(
        f"{kind}: {where}; pack took {o.seconds:.1f} s and {what}; "
        f"re-run {took:.1f} s: {report}"
    )
    assert not problems, f"unclear failure ({where}):\n" + "\n".join(problems)


def test_long_outage_fails_in_bounded_time(
    live_garage: Garage, inputs: Setup, tessera_bin: Path, tmp_path: Path
) -> None:
    """The server killed before a pack into it commits and kept down until
    the pack exits: it fails within ``LONG_OUTAGE_EXIT`` seconds with a clear
    error and nothing visible; a re-run converges."""
    g = live_garage
    kind = "output-on-s3"
    full = undisturbed(kind, g, inputs, tessera_bin, tmp_path)
    rng, _ = seeded("test_long_outage_fails_in_bounded_time")
    # Before the commit, which comes last: the pack needs the server again.
    # SIGKILL: after SIGTERM, Garage goes on serving open connections for
    # up to 10 s, which could carry the pack to its end.
    stop_at = rng.uniform(0.1, 0.6) * full
    sig = signal.SIGKILL
    v = make_variant(kind, g, inputs, tmp_path, "long")
    argv = v.argv(tessera_bin)
    o = pack_through_outage(argv, g, tmp_path / "pack", stop_at, sig, None)
    assert o.stopped_at is not None, f"the pack ended in {o.seconds:.1f} s, before the stop"
    assert o.returncode != 0, f"the pack succeeded although the server was down:\n{o.stdout}"
    line, problems = failure_problems(o, g, argv)
    assert o.exit_after_stop is not None and o.exit_after_stop <= LONG_OUTAGE_EXIT, (
        f"the pack ran {o.exit_after_stop} s after the server stopped (bound {LONG_OUTAGE_EXIT} s)"
    )
    state = assert_nothing_taken_for_complete(v.table, v.inputs)
    assert "before its commit" in state, state
    took, report = rerun(v, g, tessera_bin, False)
    assert_converged(v.table, v.inputs, "after the re-run")
    print(
        f"long outage ({o.describe(sig, stop_at)}) in a {full:.1f} s pack: "
        f"it failed {o.exit_after_stop:.2f} s after the signal: {line}\n"
        f"  {state}; re-run {took:.1f} s: {report}"
    )
    assert not problems, f"unclear failure ({o.describe(sig, stop_at)}):\n" + "\n".join(problems)


@pytest.mark.parametrize("kind", ["inputs-on-s3", "output-on-s3"])
def test_pack_against_a_stopped_server(
    kind: str, live_garage: Garage, inputs: Setup, tessera_bin: Path, tmp_path: Path
) -> None:
    """With the server down from the start, the pack fails quickly with a
    clear error and writes nothing (the other tests show that the same
    pack works once the server is back)."""
    g = live_garage
    v = make_variant(kind, g, inputs, tmp_path, "down")
    argv = v.argv(tessera_bin)
    g.stop(signal.SIGKILL)
    try:
        start = time.monotonic()
        proc = subprocess.run(argv, capture_output=True, text=True, env=g.env(), timeout=HANG)
        took = time.monotonic() - start
    finally:
        g.restart()
    o = Outcome(proc.returncode, proc.stderr, proc.stdout, took)
    line, problems = failure_problems(o, g, argv)
    print(f"{kind}, server down from the start: failed in {took:.2f} s: {line}")
    assert took <= LONG_OUTAGE_EXIT, f"the pack took {took:.1f} s to give up"
    assert v.table.files() == [], f"a pack that could not start wrote {v.table.files()}"
    assert not problems, "unclear failure:\n" + "\n".join(problems)

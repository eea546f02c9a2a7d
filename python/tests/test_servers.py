"""No state outside the store: several ``tessera serve`` processes on one
store behave as one.

Three servers on one local store folder (different ports). Clients upload
to the same datasets through all three at once and read every load back
through the other two: every load is present exactly once, the history is
the same through every server (and the command line), and each server sees
the others' commits within its refresh interval (``refresh_interval``: the
README's configuration, 5 s by default; the servers here are given 2 s,
and one test measures the default). Only the command-line binary and HTTP
are used; every expected value comes from the data the test uploaded.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from _procs import (
    Reply,
    Server,
    arrow_stream,
    clean_env,
    cli,
    dataset_path,
    request,
    start_server,
)

REFRESH = 2.0  # seconds: the refresh interval the three servers are given
DEFAULT_REFRESH = 5.0  # seconds: the README's default refresh interval
# A read has to be answered too: on a busy 2-core machine a debug build's
# request takes up to about a second.
SLACK = 1.5
DATASETS = ("multi/a", "multi/b")
THREADS_PER_SERVER = 2
UPLOADS_PER_THREAD = 4

CONFIG = f"""\
[limits]
refresh_interval = "{int(REFRESH * 1000)}ms"

[tables.shared]
dataset = "multi/shared"
"""


@dataclass
class Trio:
    """Three servers on one store."""

    root: Path
    store: Path
    servers: list[Server]
    env: dict[str, str]


@pytest.fixture(scope="module")
def _pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Trio]]:
    """The module's servers (started on first use), stopped at its end."""
    pool: dict[str, Trio] = {}
    yield pool
    for trio in pool.values():
        for s in trio.servers:
            s.stop()


@pytest.fixture
def trio(
    tessera_bin: Path, tmp_path_factory: pytest.TempPathFactory, _pool: dict[str, Trio]
) -> Trio:
    """Three ``tessera serve`` on one local store folder, each on its port."""
    if "trio" not in _pool:
        root = tmp_path_factory.mktemp("servers")
        store = root / "store"
        store.mkdir()
        config = root / "serve.toml"
        config.write_text(CONFIG)
        env = clean_env()
        _pool["trio"] = Trio(root, store, [], env)
        for i in range(3):
            _pool["trio"].servers.append(
                start_server(
                    tessera_bin,
                    ["--config", str(config), "--store", str(store)],
                    root / f"serve-{i}.log",
                    env,
                    root,
                )
            )
    trio = _pool["trio"]
    assert len({s.url for s in trio.servers}) == 3
    for s in trio.servers:
        assert s.alive(), s.log.read_text()
    return trio


# -- the loads ------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """One upload: its key, rows and the sum of its ``val`` column."""

    key: str
    rows: int
    val_sum: int
    body: bytes


def make_load(key: str, rows: int) -> Load:
    """A CSV of ``rows`` rows, each marked with ``key``."""
    vals = [(i * 31 + len(key) * 7) % 997 for i in range(rows)]
    lines = ["load,row,val"] + [f"{key},{i},{v}" for i, v in enumerate(vals)]
    return Load(key, rows, sum(vals), ("\n".join(lines) + "\n").encode())


def upload(server: Server, name: str, load: Load) -> dict:
    """POST a load; it must be accepted whole."""
    reply = request(
        server,
        "POST",
        dataset_path(name, version=load.key, format="csv"),
        load.body,
        {"Content-Type": "application/octet-stream"},
    )
    assert reply.status == 200, f"{server.url}: {reply.status} {reply.body!r}"
    report = reply.json()
    assert report["rows"] == load.rows and report["version_key"] == load.key, report
    return report


def read_rows(server: Server, name: str, **params: str) -> Reply:
    """A dataset's rows (load, row, val) through ``server``, as Arrow."""
    return request(
        server, "GET", dataset_path(name, columns="load,row,val", format="arrow", **params)
    )


def per_load(reply: Reply) -> dict[str, tuple[int, int, int]]:
    """Rows of an Arrow answer grouped by load: (rows, distinct rows, val sum)."""
    assert reply.status == 200, reply.body
    t = arrow_stream(reply.body)
    if t.num_rows == 0:
        return {}
    if pa.types.is_dictionary(t.schema.field("load").type):
        t = t.set_column(t.schema.get_field_index("load"), "load", pc.cast(t["load"], pa.string()))
    g = t.group_by("load").aggregate([("row", "count"), ("row", "count_distinct"), ("val", "sum")])
    return {
        r["load"]: (r["row_count"], r["row_count_distinct"], r["val_sum"]) for r in g.to_pylist()
    }


def whole(load: Load) -> tuple[int, int, int]:
    """What ``per_load`` gives for ``load`` present exactly once."""
    return (load.rows, load.rows, load.val_sum)


def history(server: Server, name: str) -> list[tuple]:
    """(version, operation, version key, rows) of every version, oldest first."""
    reply = request(server, "GET", dataset_path(name, view="history", limit="100000"))
    assert reply.status == 200, reply.body
    entries = sorted(reply.json()["history"], key=lambda e: e["version"])
    return [(e["version"], e["operation"], e["version_key"], e["rows"]) for e in entries]


# -- many clients through three servers ------------------------------------------


@dataclass
class Log:
    """What the client threads did."""

    loads: dict[str, list[Load]] = field(default_factory=lambda: {d: [] for d in DATASETS})
    latencies: list[float] = field(default_factory=list)
    attempts: list[int] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def client(trio: Trio, me: int, thread: int, seed: int, log: Log) -> None:
    """Upload through server ``me``; read each load back through the others
    until it shows (at most the refresh interval)."""
    rng = random.Random(f"{seed}:{me}:{thread}")
    try:
        for k in range(UPLOADS_PER_THREAD):
            name = DATASETS[(thread + k) % len(DATASETS)]
            load = make_load(f"s{me}t{thread}k{k}", rng.randrange(50, 400))
            report = upload(trio.servers[me], name, load)
            done = time.monotonic()
            with log.lock:
                log.loads[name].append(load)
                log.attempts.append(report["attempts"])
            for other, server in enumerate(trio.servers):
                if other == me:
                    continue
                while True:
                    got = per_load(read_rows(server, name, version=load.key))
                    waited = time.monotonic() - done
                    if got:
                        break
                    assert waited <= REFRESH + SLACK, (
                        f"server {other} did not see {load.key} (committed through server "
                        f"{me}) after {waited:.2f} s"
                    )
                    time.sleep(0.05)
                assert got == {load.key: whole(load)}, (server.url, load.key, got)
                with log.lock:
                    log.latencies.append(waited)
    except BaseException as e:  # noqa: BLE001 - re-raised by the test
        with log.lock:
            log.errors.append(e)


def test_uploads_through_three_servers_at_once(tessera_bin: Path, trio: Trio) -> None:
    """Every load present exactly once, the same history through every
    server and through the command line, each load seen by the other
    servers within the refresh interval."""
    seed = random.SystemRandom().randrange(1 << 32)
    print(f"seed {seed}")
    log = Log()
    threads = [
        threading.Thread(target=client, args=(trio, s, t, seed, log))
        for s in range(len(trio.servers))
        for t in range(THREADS_PER_SERVER)
    ]
    started = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=300)
        assert not th.is_alive(), "a client thread hung"
    if log.errors:
        raise log.errors[0]
    n_uploads = len(trio.servers) * THREADS_PER_SERVER * UPLOADS_PER_THREAD
    assert sum(len(v) for v in log.loads.values()) == n_uploads

    for name in DATASETS:
        loads = log.loads[name]
        want = {ld.key: whole(ld) for ld in loads}
        hists = [history(s, name) for s in trio.servers]
        assert hists[0] == hists[1] == hists[2], f"{name}: the servers disagree"
        h = hists[0]
        assert [v for v, *_ in h] == list(range(len(h))), h
        assert [op for _, op, _, _ in h] == ["put"] * len(h), h
        keys = [k for _, _, k, _ in h]
        assert sorted(keys) == sorted(want), f"{name}: history {keys} != uploads {sorted(want)}"
        assert {k: n for _, _, k, n in h} == {k: w[0] for k, w in want.items()}
        # The command line reads the same store the same way.
        out = cli(
            tessera_bin,
            "datasets", "history", name, "--store", str(trio.store), "--json",
            env=trio.env,
        )  # fmt: skip
        from_cli = sorted(json.loads(out.stdout), key=lambda e: e["version"])
        assert [(e["version"], e["operation"], e["version_key"], e["rows"]) for e in from_cli] == h
        # Every load exactly once, whole, through every server.
        for s in trio.servers:
            assert per_load(read_rows(s, name)) == want, f"{name} through {s.url}"
    retried = sum(1 for a in log.attempts if a > 1)
    print(
        f"{n_uploads} uploads through 3 servers in {time.monotonic() - started:.1f} s; "
        f"{retried} needed more than one commit attempt; seen by the other servers after "
        f"{min(log.latencies):.3f}…{max(log.latencies):.3f} s (refresh interval {REFRESH} s)"
    )
    assert max(log.latencies) <= REFRESH + SLACK


def _poll_total(server: Server, table: str, want: int, since: float, bound: float) -> float:
    """Poll a configured table's ``total_rows`` through ``server`` until it
    is ``want``; return how long after ``since`` that was."""
    while True:
        reply = request(server, "GET", f"/v1/tables/{table}/rows?limit=1")
        assert reply.status == 200, reply.body
        total = reply.json()["total_rows"]
        waited = time.monotonic() - since
        if total == want:
            return waited
        assert total < want, f"{server.url}: {total} rows, more than the {want} loaded"
        assert waited <= bound, (
            f"{server.url} still shows {total} rows of {table}, not {want}, "
            f"{waited:.2f} s after the commit (refresh interval {bound - SLACK} s)"
        )
        time.sleep(0.05)


def _measure(
    servers: list[Server], table: str, want: int, since: float, bound: float
) -> list[float]:
    """``_poll_total`` on every server at once; their delays."""
    out: list[float | BaseException] = [0.0] * len(servers)

    def one(i: int) -> None:
        try:
            out[i] = _poll_total(servers[i], table, want, since, bound)
        except BaseException as e:  # noqa: BLE001 - re-raised below
            out[i] = e

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(servers))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    for o in out:
        if isinstance(o, BaseException):
            raise o
    return [float(o) for o in out]  # type: ignore[arg-type]


def test_each_server_sees_the_others_commits_within_the_refresh_interval(trio: Trio) -> None:
    """A configured table over a dataset is cached by each server for the
    refresh interval: a commit made through one server shows in every
    server's table by then, counted from the commit."""
    servers = trio.servers
    first = make_load("seed0", 120)
    upload(servers[0], "multi/shared", first)
    total = first.rows
    delays: list[float] = []
    for writer in range(len(servers)):
        # Every server has the table cached now.
        _measure(servers, "shared", total, time.monotonic(), REFRESH + SLACK)
        load = make_load(f"w{writer}", 37 + 11 * writer)
        upload(servers[writer], "multi/shared", load)
        committed = time.monotonic()
        total += load.rows
        got = _measure(servers, "shared", total, committed, REFRESH + SLACK)
        delays += got
        print(f"commit through server {writer}: seen after {['%.3f' % d for d in got]} s")
    # The rows themselves, not only the count, through every server.
    for s in servers:
        reply = request(s, "GET", "/v1/tables/shared/rows?limit=10000&columns=load")
        assert reply.status == 200, reply.body
        loads = [r["load"] for r in reply.json()["data"]]
        assert len(loads) == total
        assert sorted(set(loads)) == sorted(["seed0", "w0", "w1", "w2"])
    print(f"refresh interval {REFRESH} s: commits seen after at most {max(delays):.3f} s")
    assert max(delays) <= REFRESH + SLACK


def test_default_refresh_interval(tessera_bin: Path, tmp_path: Path) -> None:
    """Without a setting the refresh interval is the README's 5 s: a commit
    by another process (the command line) shows in a running server's
    configured table by then."""
    store = tmp_path / "store"
    config = tmp_path / "serve.toml"
    config.write_text('[tables.t]\ndataset = "solo/t"\n')
    env = clean_env()
    first = tmp_path / "a.csv"
    first.write_bytes(make_load("first", 10).body)
    cli(tessera_bin, "put", "solo/t", str(first), "--store", str(store), "-q", env=env)
    args = ["--config", str(config), "--store", str(store)]
    server = start_server(tessera_bin, args, tmp_path / "s.log", env, tmp_path)
    try:
        _measure([server], "t", 10, time.monotonic(), SLACK)  # cached from now
        second = tmp_path / "b.csv"
        second.write_bytes(make_load("second", 25).body)
        cli(tessera_bin, "put", "solo/t", str(second), "--store", str(store), "-q", env=env)
        committed = time.monotonic()
        (delay,) = _measure([server], "t", 35, committed, DEFAULT_REFRESH + SLACK)
        print(f"default refresh interval: a commit seen after {delay:.3f} s")
    finally:
        server.stop()
    assert delay <= DEFAULT_REFRESH + SLACK


def test_bad_input(tessera_bin: Path, trio: Trio, tmp_path: Path) -> None:
    """A refused upload commits nothing on any server; a refresh interval
    that is not a duration stops the server with a message."""
    name = "multi/refused"
    good = make_load("good", 20)
    upload(trio.servers[0], name, good)
    bad = b"load,row,val\n" + b"".join(b"bad,%d,%d\n" % (i, i) for i in range(100)) + b"bad,100,x\n"
    for s in trio.servers:
        reply = request(
            s, "POST", dataset_path(name, version="bad", format="csv"), bad,
            {"Content-Type": "application/octet-stream"},
        )  # fmt: skip
        assert reply.status == 400, reply.body
        assert "'x'" in reply.json()["message"], reply.body
    for s in trio.servers:
        assert [k for _, _, k, _ in history(s, name)] == ["good"]
        assert per_load(read_rows(s, name)) == {"good": whole(good)}
    for value in ("soon", "-1s"):
        config = tmp_path / f"bad-{value}.toml"
        config.write_text(f'[limits]\nrefresh_interval = "{value}"\n')
        proc = cli(
            tessera_bin, "serve", "--config", str(config), "--store", str(trio.store),
            "--bind", "127.0.0.1:0", env=trio.env, ok=False, timeout=30,
        )  # fmt: skip
        err = proc.stderr.decode(errors="replace")
        assert proc.returncode != 0 and "not a duration" in err, err
    env = dict(trio.env, TESSERA_REFRESH_INTERVAL="bogus")
    proc = cli(
        tessera_bin, "serve", "--store", str(trio.store), "--bind", "127.0.0.1:0",
        env=env, ok=False, timeout=30,
    )  # fmt: skip
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode != 0 and "TESSERA_REFRESH_INTERVAL" in err, err

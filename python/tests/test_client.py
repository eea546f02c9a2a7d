"""``tessera.client.Client`` and the pandas-db-sdk adapter against a real ``tessera serve``.

Two servers are started once per test session on free ports, over one
temporary local store the tests fill themselves: one without auth and one
with an auth file of API tokens. Every expected value is computed from the
data the tests wrote.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import json
import os
import re
import select
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tessera.client import Client, Page
from tessera.errors import (
    AccessDeniedError,
    InvalidInputError,
    NotFoundError,
    StoreError,
    TesseraError,
)

_names = itertools.count()


def fresh(prefix: str) -> str:
    """A dataset name no other test of this session uses."""
    return f"{prefix}-{next(_names)}-{uuid.uuid4().hex[:6]}"


# -- the test data --------------------------------------------------------------

N_SALES = 57
REGIONS = ["north", "south", "east"]
GENES = {"GENE001": [3, 7, 12], "GENE002": [7], "GENE003": [1, 3]}
N_RECORDS = 100
AUTH_MAX_PAGE = 20


def sales_table() -> pa.Table:
    """The rows of the ``sales`` table (a Parquet file)."""
    ids = list(range(N_SALES))
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "region": [REGIONS[i % 3] for i in ids],
            "amount": [float(i * 37 % 101) + 0.5 for i in ids],
            "day": [dt.date(2024, 3, 1) + dt.timedelta(days=i % 10) for i in ids],
        }
    )


EVENTS = [{"event_id": i, "kind": ["view", "click"][i % 2], "score": i * 3} for i in range(20)]

CONFIG = """\
[tables.sales]
location = "files/sales.parquet"
description = "sales made by the tests"

[tables.events]
dataset = "shared/events"

[tables.models]
manifest = "manifests/models.parquet"

[manifests.models]
location = "manifests/models.parquet"
"""


def _run(binary: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    out = subprocess.run(
        [str(binary), *args], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, f"tessera {' '.join(args)} failed:\n{out.stderr}"
    return out


def _env() -> dict[str, str]:
    """The environment without TESSERA_* settings, so that only the test's config applies."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}


@dataclass
class World:
    """The store and the files the servers serve."""

    root: Path
    store: Path
    config: Path
    records_csv: Path
    tokens: dict[str, str] = field(default_factory=dict)


def _make_world(binary: Path, root: Path) -> World:
    store = root / "store"
    (store / "files").mkdir(parents=True)
    pq.write_table(sales_table(), store / "files" / "sales.parquet")
    # The reference endpoint's layout.
    qp = store / "state=ohio" / "dname=sales"
    qp.mkdir(parents=True)
    pq.write_table(sales_table(), qp / "sales.parquet")
    # A dataset for the dataset-backed table, loaded by the CLI.
    landing = root / "landing"
    landing.mkdir()
    with open(landing / "events.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(EVENTS[0]))
        w.writeheader()
        w.writerows(EVENTS)
    _run(
        binary, "put", "shared/events", str(landing / "events.csv"), "--store", str(store), cwd=root
    )
    # Objects in a gene/tissue layout, and their manifest.
    for gene, tissues in GENES.items():
        for t in tissues:
            p = store / "models" / "v1" / gene / f"model_{t}.tl"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(f"{gene} {t}\n")
    (store / "manifests").mkdir()
    _run(
        binary,
        "manifest",
        "build",
        str(store / "models"),
        "-o",
        str(store / "manifests" / "models.parquet"),
        "--template",
        "**/v1/{gene_id}/model_{tissue_id:int32}.tl",
        cwd=root,
    )
    # A CSV object to slice, indexed beside it; a copy in the team-a namespace.
    records = store / "raw" / "records.csv"
    for path in (records, store / "team-a" / "records.csv"):
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["n", "text"])
            for i in range(N_RECORDS):
                w.writerow([i, "x" * (i % 17)])
        _run(binary, "index", str(path), cwd=root)
    config = root / "serve.toml"
    config.write_text(CONFIG)
    # API tokens: the entry goes to stdout, the token to stderr.
    entries = []
    tokens = {}
    for role in ("admin", "read"):
        out = _run(
            binary, "serve", "--new-token", "--namespace", "team-a", "--role", role, cwd=root
        )
        entries.append(out.stdout)
        m = re.search(r"(tsr_\S+)", out.stderr)
        assert m, out.stderr
        tokens[role] = m.group(1)
    (root / "auth.toml").write_text("\n".join(entries))
    return World(root, store, config, records, tokens)


@dataclass
class Server:
    """A running ``tessera serve``."""

    url: str
    proc: subprocess.Popen
    log: Path

    def stop(self) -> None:
        """SIGTERM, then a kill if it does not stop."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        if self.proc.stdout:
            self.proc.stdout.close()


def _start(binary: Path, world: World, name: str, auth: bool) -> Server:
    log = world.root / f"{name}.log"
    args = [
        str(binary),
        "serve",
        "--config",
        str(world.config),
        "--store",
        str(world.store),
        "--bind",
        "127.0.0.1:0",
    ]
    env = _env()
    if auth:
        args += ["--auth", str(world.root / "auth.toml")]
        # A lower page limit than the default, for the client to discover.
        env["TESSERA_MAX_PAGE_SIZE"] = str(AUTH_MAX_PAGE)
    with open(log, "wb") as err:
        proc = subprocess.Popen(args, cwd=world.root, env=env, stdout=subprocess.PIPE, stderr=err)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        ready, _, _ = select.select([proc.stdout], [], [], max(left, 0))
        if not ready:
            proc.kill()
            pytest.fail(f"tessera serve did not start in 60 s: {log.read_text()}")
        chunk = os.read(proc.stdout.fileno(), 1)
        if not chunk:
            proc.wait(timeout=15)
            pytest.fail(f"tessera serve exited: {log.read_text()}")
        line += chunk
    text = line.decode().strip()
    assert text.startswith("listening on http://"), text
    return Server(text.removeprefix("listening on "), proc, log)


@pytest.fixture(scope="session")
def _pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The session's world and servers (made on first use), stopped at the end."""
    pool: dict[str, Any] = {"root": tmp_path_factory.mktemp("serve")}
    yield pool
    for key in ("open", "auth"):
        if key in pool:
            pool[key].stop()


@pytest.fixture
def world(tessera_bin: Path, _pool: dict[str, Any]) -> World:
    """The test store, made once per session."""
    if "world" not in _pool:
        _pool["world"] = _make_world(tessera_bin, _pool["root"])
    return _pool["world"]


@pytest.fixture
def server(tessera_bin: Path, world: World, _pool: dict[str, Any]) -> Server:
    """The server without auth (one per session)."""
    if "open" not in _pool:
        _pool["open"] = _start(tessera_bin, world, "open", auth=False)
    assert _pool["open"].proc.poll() is None, _pool["open"].log.read_text()
    return _pool["open"]


@pytest.fixture
def auth_server(tessera_bin: Path, world: World, _pool: dict[str, Any]) -> Server:
    """The server with API tokens (one per session)."""
    if "auth" not in _pool:
        _pool["auth"] = _start(tessera_bin, world, "auth", auth=True)
    assert _pool["auth"].proc.poll() is None, _pool["auth"].log.read_text()
    return _pool["auth"]


@pytest.fixture
def client(server: Server) -> Client:
    """A client of the server without auth."""
    return Client(server.url)


def by(t: pa.Table, key: str) -> pa.Table:
    """``t`` sorted by ``key`` (dataset reads have no set order)."""
    return t.sort_by(key)


# -- service and tables ---------------------------------------------------------


def test_health_and_metrics(client: Client) -> None:
    h = client.health()
    assert h["status"] == "ok"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", h["version"])
    client.tables()
    assert "tessera_http_requests" in client.metrics()


def test_tables_lists_the_config(client: Client) -> None:
    tables = {t["name"]: t for t in client.tables()}
    assert set(tables) == {"sales", "events", "models"}
    assert tables["sales"]["kind"] == "file"
    assert tables["sales"]["source"] == "files/sales.parquet"
    assert tables["sales"]["description"] == "sales made by the tests"
    assert tables["events"]["kind"] == "dataset"
    assert tables["models"]["kind"] == "manifest"


def test_schema_and_columns_match_the_file(client: Client) -> None:
    expected = sales_table().schema
    got = client.schema("sales")
    assert got.names == expected.names
    assert [f.type for f in got] == [f.type for f in expected]
    cols = client.columns("sales")
    assert [c["name"] for c in cols] == expected.names
    assert [c["type"] for c in cols] == ["Int64", "Utf8", "Float64", "Date32"]


def test_missing_table_is_not_found(client: Client) -> None:
    with pytest.raises(NotFoundError, match="no-such-table"):
        client.schema("no-such-table")
    with pytest.raises(NotFoundError):
        client.columns("no-such-table")
    with pytest.raises(NotFoundError):
        client.rows("no-such-table")


def test_rows_reads_every_page(client: Client) -> None:
    expected = sales_table()
    # 57 rows in pages of 8: 8 requests following the cursors.
    pages = list(client.pages("sales", page_size=8))
    assert [p.num_rows for p in pages] == [8] * 7 + [1]
    assert client.rows("sales", page_size=8).to_pydict() == expected.to_pydict()
    assert client.rows("sales").to_pydict() == expected.to_pydict()
    assert (
        client.rows("sales", limit=10, page_size=4).to_pydict() == expected.slice(0, 10).to_pydict()
    )


def test_rows_with_columns_filters_and_sort(client: Client) -> None:
    data = sales_table().to_pylist()
    got = client.rows(
        "sales",
        columns=["id", "amount"],
        filters=[("amount", "gte", 50), "region:eq:south"],
        sort=["-amount", "id"],
    )
    want = sorted(
        (r for r in data if r["amount"] >= 50 and r["region"] == "south"),
        key=lambda r: (-r["amount"], r["id"]),
    )
    assert want, "the filter must match some rows for this test to mean anything"
    assert got.column_names == ["id", "amount"]
    assert got.to_pylist() == [{"id": r["id"], "amount": r["amount"]} for r in want]
    # A dict means eq, a list value means in; dates are sent as ISO dates.
    got = client.rows("sales", filters={"region": ["north", "east"], "day": dt.date(2024, 3, 2)})
    want_ids = [
        r["id"]
        for r in data
        if r["region"] in ("north", "east") and r["day"] == dt.date(2024, 3, 2)
    ]
    assert want_ids
    assert got.column("id").to_pylist() == want_ids


def test_page_gives_total_and_cursor(client: Client) -> None:
    first = client.page("sales", limit=5, filters=("id", "lt", 12), sort="id")
    assert isinstance(first, Page)
    assert first.total_rows == 12
    assert first.table.column("id").to_pylist() == [0, 1, 2, 3, 4]
    assert first.next_cursor
    second = client.page(
        "sales", limit=5, filters=("id", "lt", 12), sort="id", cursor=first.next_cursor
    )
    assert second.table.column("id").to_pylist() == [5, 6, 7, 8, 9]
    third = client.page("sales", limit=5, filters=("id", "lt", 12), sort="id", page=2)
    assert third.table.column("id").to_pylist() == [10, 11]
    assert third.next_cursor is None


def test_rows_refuses_bad_input(client: Client) -> None:
    with pytest.raises(InvalidInputError, match="nope"):
        client.rows("sales", filters=[("nope", "eq", 1)])
    with pytest.raises(InvalidInputError):
        client.rows("sales", filters=["id:about:3"])
    with pytest.raises(InvalidInputError, match="abc"):
        client.rows("sales", filters=[("id", "eq", "abc")])
    with pytest.raises(InvalidInputError):
        client.rows("sales", columns=["id", "nope"])
    with pytest.raises(InvalidInputError):
        client.rows("sales", limit=0)
    with pytest.raises(InvalidInputError):
        client.page("sales", limit=5, cursor="not-a-cursor")
    with pytest.raises(TypeError):
        client.rows("sales", filters=[42])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        client.rows("sales", limit="10")  # type: ignore[arg-type]


def test_rows_of_a_dataset_table(client: Client) -> None:
    got = client.rows(
        "events", columns=["event_id", "kind"], filters={"kind": "click"}, sort="-event_id"
    )
    want = sorted((e for e in EVENTS if e["kind"] == "click"), key=lambda e: -e["event_id"])
    assert got.to_pylist() == [{"event_id": e["event_id"], "kind": e["kind"]} for e in want]


def test_query_parquet(client: Client) -> None:
    out = client.query_parquet("ohio", "sales", page=1, page_size=5)
    assert out["total_rows"] == N_SALES
    assert out["page"] == 1 and out["page_size"] == 5
    assert [r["id"] for r in out["data"]] == [5, 6, 7, 8, 9]
    with pytest.raises(NotFoundError):
        client.query_parquet("ohio", "nothing")
    with pytest.raises(InvalidInputError):
        client.query_parquet("Ohio!", "sales")


# -- SQL ------------------------------------------------------------------------


def test_sql_answers_from_the_tables(client: Client) -> None:
    got = client.sql(
        "SELECT region, sum(amount) AS total, count(*) AS n FROM sales "
        "GROUP BY region ORDER BY region"
    )
    sales = sales_table().to_pylist()
    want = {
        r: (
            sum(x["amount"] for x in sales if x["region"] == r),
            sum(1 for x in sales if x["region"] == r),
        )
        for r in REGIONS
    }
    assert got.column("region").to_pylist() == sorted(REGIONS)
    for row in got.to_pylist():
        assert row["total"] == pytest.approx(want[row["region"]][0])
        assert row["n"] == want[row["region"]][1]
    joined = client.sql("SELECT count(*) AS n FROM events WHERE kind = 'view'")
    assert joined.column("n").to_pylist() == [sum(1 for e in EVENTS if e["kind"] == "view")]


def test_sql_limit_and_empty_results(client: Client) -> None:
    assert client.sql("SELECT id FROM sales ORDER BY id", limit=7).column("id").to_pylist() == list(
        range(7)
    )
    empty = client.sql("SELECT id, region FROM sales WHERE id < 0")
    assert empty.num_rows == 0
    assert empty.column_names == ["id", "region"]


def test_sql_refuses_bad_queries(client: Client) -> None:
    with pytest.raises(InvalidInputError, match="selec"):
        client.sql("selec 1")
    with pytest.raises(InvalidInputError):
        client.sql("SELECT * FROM no_such_table")
    with pytest.raises(InvalidInputError, match="only queries"):
        client.sql("CREATE TABLE t AS SELECT 1")
    with pytest.raises(TypeError):
        client.sql(42)  # type: ignore[arg-type]


# -- datasets -------------------------------------------------------------------


def orders(start: int, n: int) -> pa.Table:
    """Orders ``start`` … ``start + n - 1``."""
    ids = list(range(start, start + n))
    return pa.table(
        {
            "order_id": pa.array(ids, pa.int64()),
            "customer_id": pa.array([i * 7919 % 250_000 for i in ids], pa.int64()),
            "order_date": [dt.date(2024, 1, 1) + dt.timedelta(days=i % 45) for i in ids],
            "amount": [round(i * 1.25, 2) for i in ids],
        }
    )


def test_put_and_get_a_dataset(client: Client) -> None:
    name = fresh("shop/orders")
    first, second = orders(0, 30), orders(30, 12)
    r1 = client.put(
        name, first, date_key=("order_date", "month"), id_key=("customer_id", 50_000), version="v1"
    )
    assert r1["name"] == name and r1["version_key"] == "v1"
    assert r1["rows"] == first.num_rows and r1["created"] is True
    assert r1["partition_columns"] == ["order_date_month", "customer_id_range"]
    r2 = client.put(name, second, version="v2")
    assert r2["rows"] == second.num_rows and r2["created"] is False
    assert r2["table_version"] == r1["table_version"] + 1

    everything = pa.concat_tables([first, second])
    assert by(client.get(name), "order_id").to_pydict() == everything.to_pydict()
    assert by(client.get(name, version="v1"), "order_id").to_pydict() == first.to_pydict()
    assert by(client.get(name, last=True), "order_id").to_pydict() == second.to_pydict()
    assert client.get(name, version="never-loaded").num_rows == 0
    # The table as of its first commit: only the first load.
    assert (
        by(client.get(name, as_of=r1["table_version"]), "order_id").to_pydict() == first.to_pydict()
    )
    got = client.get(name, where="amount >= 20 AND order_id < 35", columns=["order_id", "amount"])
    want = [r for r in everything.to_pylist() if r["amount"] >= 20 and r["order_id"] < 35]
    assert by(got, "order_id").to_pylist() == [
        {"order_id": r["order_id"], "amount": r["amount"]} for r in want
    ]
    # Partition and version columns only when asked for.
    keyed = client.get(name, columns="order_id,_version_key,customer_id_range")
    ranges = {r["order_id"]: r["customer_id_range"] for r in keyed.to_pylist()}
    for r in everything.to_pylist():
        lo = r["customer_id"] // 50_000 * 50_000
        assert ranges[r["order_id"]] == f"from_{lo}_to_{lo + 50_000}"
    assert set(keyed.column("_version_key").to_pylist()) == {"v1", "v2"}

    history = client.history(name)
    assert [h["version_key"] for h in history[:2]] == ["v2", "v1"]
    assert [h["rows"] for h in history[:2]] == [second.num_rows, first.num_rows]
    assert len(client.history(name, limit=1)) == 1
    info = client.info(name)
    assert info["name"] == name and info["rows"] == everything.num_rows
    listed = {d["name"]: d for d in client.datasets(prefix="shop/")}
    assert listed[name]["rows"] == everything.num_rows
    assert name in client.names()
    assert name not in client.names(prefix="elsewhere/")


def test_put_keep_last_replaces_earlier_loads(client: Client) -> None:
    name = fresh("reports/daily")
    client.put(name, orders(0, 5))
    r = client.put(name, orders(100, 3), keep_last=True)
    assert r["keep_last"] is True
    assert sorted(client.get(name).column("order_id").to_pylist()) == [100, 101, 102]
    # Time travel still sees the first load.
    assert sorted(client.get(name, as_of=0).column("order_id").to_pylist()) == list(range(5))
    # The default version key is the time of the load.
    when = dt.datetime.fromisoformat(r["version_key"].replace("Z", "+00:00"))
    assert abs(dt.datetime.now(dt.timezone.utc) - when) < dt.timedelta(minutes=10)


class _CStream:
    """An object that only offers ``__arrow_c_stream__``."""

    def __init__(self, table: pa.Table) -> None:
        self._table = table

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        return self._table.__arrow_c_stream__(requested_schema)


def test_put_takes_every_kind_of_input(client: Client, tmp_path: Path) -> None:
    name = fresh("inputs/all")
    parts = [orders(i * 10, 10) for i in range(6)]
    client.put(name, parts[0])
    client.put(name, parts[1].to_batches()[0])
    client.put(
        name,
        pa.RecordBatchReader.from_batches(parts[2].schema, parts[2].to_batches(max_chunksize=3)),
    )
    client.put(name, _CStream(parts[3]))
    path = tmp_path / "part4.parquet"
    pq.write_table(parts[4], path)
    client.put(name, path)
    lines = "".join(
        json.dumps({**r, "order_date": r["order_date"].isoformat()}) + "\n"
        for r in parts[5].to_pylist()
    )
    client.put(name, lines.encode(), input_format="jsonl")
    got = by(client.get(name), "order_id")
    assert got.column("order_id").to_pylist() == list(range(60))
    assert got.column("amount").to_pylist() == pa.concat_tables(parts).column("amount").to_pylist()
    assert len(client.history(name)) == 6


def test_put_a_csv_file_and_dictionary_columns(client: Client, tmp_path: Path) -> None:
    name = fresh("inputs/csv")
    path = tmp_path / "rows.csv"
    path.write_text("a,b\n1,x\n2,y\n3,x\n")
    assert client.put(name, str(path))["rows"] == 3
    got = by(client.get(name), "a")
    assert got.to_pydict() == {"a": [1, 2, 3], "b": ["x", "y", "x"]}
    coded = pa.table({"a": [4, 5], "b": pa.array(["y", "z"]).dictionary_encode()})
    client.put(name, coded)
    assert by(client.get(name), "a").column("b").to_pylist() == ["x", "y", "x", "y", "z"]


def test_put_refuses_bad_input(client: Client, tmp_path: Path) -> None:
    name = fresh("bad/put")
    with pytest.raises(InvalidInputError, match="nope"):
        client.put(name, orders(0, 3), date_key="nope")
    with pytest.raises(NotFoundError):
        client.get(name)  # nothing was committed
    with pytest.raises(InvalidInputError):
        client.put("bad/../name", orders(0, 3))
    with pytest.raises(InvalidInputError):
        client.put(name, b"a,b\n1,2\n")  # no format
    with pytest.raises(InvalidInputError):
        client.put(name, tmp_path / "no-extension")
    with pytest.raises(NotFoundError):
        client.put(name, tmp_path / "missing.csv")
    with pytest.raises(TypeError):
        client.put(name, 42)
    with pytest.raises(TypeError):
        client.put(name, orders(0, 3), date_key=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.put(name, orders(0, 3), id_key=("customer_id", "wide"))  # type: ignore[arg-type]
    # A later load must keep each column's type.
    client.put(name, orders(0, 3))
    changed = orders(3, 2).set_column(0, "order_id", pa.array(["a", "b"]))
    with pytest.raises(InvalidInputError, match="order_id"):
        client.put(name, changed)
    assert client.get(name).num_rows == 3


def test_get_refuses_bad_input(client: Client) -> None:
    with pytest.raises(NotFoundError, match="no-such-dataset"):
        client.get("no-such-dataset")
    with pytest.raises(NotFoundError):
        client.history("no-such-dataset")
    with pytest.raises(NotFoundError):
        client.info("no-such-dataset")
    name = fresh("bad/get")
    client.put(name, orders(0, 3), version="k")
    with pytest.raises(InvalidInputError, match="not both"):
        client.get(name, version="k", last=True)
    with pytest.raises(InvalidInputError, match="nope"):
        client.get(name, where="nope > 1")
    with pytest.raises(InvalidInputError):
        client.get(name, columns=["nope"])
    with pytest.raises(TypeError):
        client.get(name, as_of=1.5)  # type: ignore[arg-type]


def test_remove_deletes_the_dataset(client: Client) -> None:
    name = fresh("tmp/gone")
    client.put(name, orders(0, 4))
    report = client.remove(name)
    assert report["name"] == name and report["objects"] > 0
    with pytest.raises(NotFoundError):
        client.get(name)
    assert name not in client.names()
    with pytest.raises(NotFoundError):
        client.remove(name)


def test_put_a_pandas_frame(client: Client) -> None:
    pd = pytest.importorskip("pandas")
    name = fresh("frames/pd")
    df = pd.DataFrame(
        {"k": [3, 1, 2], "v": [0.5, 1.5, 2.5], "c": pd.Categorical(["a", "b", "a"])},
        index=pd.Index([10, 11, 12], name="row"),
    )
    assert client.put(name, df)["rows"] == 3
    got = by(client.get(name), "k").to_pydict()
    # The named index became a column; the categorical its values.
    assert got == {"row": [11, 12, 10], "k": [1, 2, 3], "v": [1.5, 2.5, 0.5], "c": ["b", "a", "a"]}


# -- manifests and slices -------------------------------------------------------


def test_manifests(client: Client) -> None:
    assert [m["name"] for m in client.manifests()] == ["models"]
    recs = client.lookup("models", gene_id="GENE001")
    assert sorted(r["tissue_id"] for r in recs) == GENES["GENE001"]
    for r in recs:
        assert r["file_path"].endswith(f"/v1/GENE001/model_{r['tissue_id']}.tl")
    # Typed comparison: "007" is the integer 7.
    assert sorted(r["gene_id"] for r in client.lookup("models", tissue_id="007")) == sorted(
        g for g, ts in GENES.items() if 7 in ts
    )
    assert client.count("models") == sum(len(t) for t in GENES.values())
    assert client.count("models", gene_id="GENE003", tissue_id=3) == 1
    assert client.lookup("models", gene_id="GENE999") == []
    assert client.unique("models", "gene_id") == sorted(GENES)
    assert client.unique("models", "tissue_id") == sorted({t for ts in GENES.values() for t in ts})
    with pytest.raises(InvalidInputError, match="abc"):
        client.lookup("models", tissue_id="abc")
    with pytest.raises(InvalidInputError):
        client.unique("models", "nope")
    with pytest.raises(NotFoundError):
        client.lookup("no-such-manifest")


def test_slices(client: Client, world: World) -> None:
    key = "raw/records.csv"
    plan = client.plan(key, records=30)
    assert [s["record_count"] for s in plan] == [30, 30, 30, 10]
    assert [s["first_record"] for s in plan] == [0, 30, 60, 90]
    lines = world.records_csv.read_bytes().splitlines(keepends=True)
    header, body = lines[0], lines[1:]
    got = []
    for i in range(len(plan)):
        data = client.slice_data(key, i, records=30)
        assert data.startswith(header)
        got.extend(data.splitlines(keepends=True)[1:])
    assert got == body
    assert len(client.plan(key, count=2)) >= 1
    with pytest.raises(NotFoundError):
        client.slice_data(key, len(plan), records=30)
    with pytest.raises(NotFoundError):
        client.plan("files/sales.parquet", count=2)  # not indexed
    with pytest.raises(InvalidInputError, match="exactly one"):
        client.plan(key, count=2, records=5)
    with pytest.raises(InvalidInputError):
        client.plan("../etc/passwd", count=2)


# -- transport and errors -------------------------------------------------------


def test_plan_arguments_are_sent_as_the_server_reads_them() -> None:
    """A grid as ``COLSxROWS``, an interval as whole seconds or else
    milliseconds (the server's duration syntax); bad values are refused
    before any request."""
    import datetime

    from tessera.client import _grid, _interval

    assert _grid((4, 3)) == "4x3" and _grid("2x2") == "2x2"
    assert _interval(30) == "30s" and _interval(1.5) == "1500ms" and _interval("10min") == "10min"
    assert _interval(datetime.timedelta(minutes=10)) == "600s"
    with pytest.raises(TypeError):
        _grid(3)
    with pytest.raises(TypeError):
        _grid((1.5, 2))
    with pytest.raises(ValueError, match="positive"):
        _interval(0)
    with pytest.raises(TypeError):
        _interval(True)


def test_errors_carry_status_and_code(client: Client) -> None:
    with pytest.raises(NotFoundError) as e:
        client.get("no-such-dataset")
    assert e.value.status == 404  # type: ignore[attr-defined]
    assert e.value.code == "not_found"  # type: ignore[attr-defined]
    assert isinstance(e.value, TesseraError) and isinstance(e.value, FileNotFoundError)
    with pytest.raises(InvalidInputError) as e2:
        client.sql("selec")
    assert e2.value.status == 400  # type: ignore[attr-defined]
    assert isinstance(e2.value, ValueError)


def test_unreachable_server_and_bad_urls() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(StoreError, match="cannot reach"):
        Client(f"http://127.0.0.1:{port}", timeout=5).health()
    with pytest.raises(InvalidInputError):
        Client("ftp://example.com")
    with pytest.raises(InvalidInputError):
        Client("127.0.0.1:8080")
    with pytest.raises(TypeError):
        Client(8080)  # type: ignore[arg-type]
    assert "secret" not in repr(Client("http://127.0.0.1:1", token="secret"))


# -- auth -----------------------------------------------------------------------


def test_auth_needs_a_valid_token(auth_server: Server, world: World) -> None:
    anonymous = Client(auth_server.url)
    assert anonymous.health()["status"] == "ok"  # liveness needs no token
    with pytest.raises(AccessDeniedError) as e:
        anonymous.tables()
    assert e.value.status == 401  # type: ignore[attr-defined]
    assert isinstance(e.value, PermissionError)
    with pytest.raises(AccessDeniedError):
        Client(auth_server.url, token="tsr_not-a-real-token").datasets()
    with pytest.raises(AccessDeniedError):
        Client(auth_server.url, token=world.tokens["admin"] + "x").get("anything")
    assert {t["name"] for t in Client(auth_server.url, token=world.tokens["read"]).tables()} >= {
        "sales"
    }


def test_auth_roles_and_namespaces(auth_server: Server, server: Server, world: World) -> None:
    admin = Client(auth_server.url, token=world.tokens["admin"])
    reader = Client(auth_server.url, token=world.tokens["read"])
    name = fresh("team/data")
    data = orders(0, 8)
    assert admin.put(name, data, version="a")["rows"] == 8
    assert by(reader.get(name), "order_id").to_pydict() == data.to_pydict()
    assert name in reader.names()
    with pytest.raises(AccessDeniedError, match="Write"):
        reader.put(name, orders(8, 2))
    with pytest.raises(AccessDeniedError):
        reader.remove(name)
    # The dataset lives in team-a's namespace, not in the open server's.
    with pytest.raises(NotFoundError):
        Client(server.url).get(name)
    assert (world.store / "datasets" / "team-a").is_dir()
    assert admin.remove(name)["name"] == name
    with pytest.raises(NotFoundError):
        reader.get(name)


def test_rows_adapt_to_the_servers_page_limit(auth_server: Server, world: World) -> None:
    c = Client(auth_server.url, token=world.tokens["read"])
    # The default page size is above this server's limit: the client asks again.
    assert c.rows("sales").to_pydict() == sales_table().to_pydict()
    assert [t.num_rows for t in c.pages("sales")] == [AUTH_MAX_PAGE] * 2 + [N_SALES - 40]
    assert c.rows("sales", limit=45).to_pydict() == sales_table().slice(0, 45).to_pydict()
    with pytest.raises(InvalidInputError, match="out of range"):
        c.rows("sales", page_size=0)
    with pytest.raises(InvalidInputError, match="out of range"):
        c.rows("sales", page_size=AUTH_MAX_PAGE + 1)
    with pytest.raises(InvalidInputError, match="out of range"):
        c.page("sales", limit=AUTH_MAX_PAGE + 1)


def test_auth_confines_slices_to_the_namespace(auth_server: Server, world: World) -> None:
    c = Client(auth_server.url, token=world.tokens["read"])
    with pytest.raises(AccessDeniedError, match="namespace"):
        c.plan("raw/records.csv", count=1)
    plan = c.plan("team-a/records.csv", records=50)
    assert [s["record_count"] for s in plan] == [50, 50]


# -- the pandas-db-sdk adapter --------------------------------------------------


@pytest.fixture
def pd() -> Any:
    """pandas (the adapter's own dependency)."""
    return pytest.importorskip("pandas")


@pytest.fixture
def frames(server: Server, pd: Any) -> Any:
    """A DataFrameClient of the server without auth."""
    from tessera.compat.pandas_db import DataFrameClient

    return DataFrameClient(api_url=server.url, auth_token=None)


def _same(pd: Any, got: Any, want: Any, key: str) -> None:
    """``got`` equals ``want`` up to row order."""
    got = got.sort_values(key).reset_index(drop=True)
    want = want.sort_values(key).reset_index(drop=True)
    assert list(got.columns) == list(want.columns)
    for col in want.columns:
        assert got[col].tolist() == want[col].tolist(), col


def test_frames_quick_start(frames: Any, pd: Any) -> None:
    # The Quick Start of the pandas-db-sdk README.
    df = pd.DataFrame({"date": ["2024-01-01", "2024-01-02"], "id": [1, 2], "value": [100, 200]})
    name = fresh("my-project/dataset1")
    report = frames.load_dataframe(df=df, dataframe_name=name, columns_keys={"date": "Date"})
    assert report["rows"] == len(df)
    assert report["partition_columns"] == ["date_day"]
    df_retrieved = frames.get_dataframe(name)
    assert isinstance(df_retrieved, pd.DataFrame)
    _same(pd, df_retrieved, df, "id")


def test_frames_time_series_by_date(frames: Any, pd: Any) -> None:
    df = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(
                ["2024-01-01 10:00", "2024-01-01 23:30", "2024-01-03 00:15"]
            ),
            "metric": [1.0, 2.5, 4.0],
        }
    )
    name = fresh("timeseries/daily_metrics")
    report = frames.load_dataframe(df, name, columns_keys={"timestamp": "Date"})
    assert report["partition_columns"] == ["timestamp_day"]
    got = frames.get_dataframe(name).sort_values("metric").reset_index(drop=True)
    # Timestamps come back as UTC.
    want = df["timestamp"].dt.tz_localize("UTC")
    assert [t.to_pydatetime() for t in got["timestamp"]] == [t.to_pydatetime() for t in want]
    assert got["metric"].tolist() == df["metric"].tolist()
    days = frames.client.get(name, columns=["timestamp_day"]).column("timestamp_day").to_pylist()
    assert sorted(days) == sorted(t.date() for t in df["timestamp"])


def test_frames_user_data_by_id_ranges(frames: Any, pd: Any) -> None:
    df = pd.DataFrame({"user_id": [5, 150_001, 99_999, 250_000], "name": ["a", "b", "c", "d"]})
    name = fresh("users/profiles")
    report = frames.load_dataframe(df, name, columns_keys={"user_id": "ID"})
    assert report["partition_columns"] == ["user_id_range"]
    _same(pd, frames.get_dataframe(name), df, "user_id")
    ranges = frames.client.get(name, columns=["user_id", "user_id_range"]).to_pylist()
    for r in ranges:
        lo = r["user_id"] // 100_000 * 100_000
        assert r["user_id_range"] == f"from_{lo}_to_{lo + 100_000}"
    narrow = fresh("users/narrow")
    frames.load_dataframe(df, narrow, columns_keys={"user_id": "id"}, id_width=1000)
    for r in frames.client.get(narrow, columns=["user_id", "user_id_range"]).to_pylist():
        lo = r["user_id"] // 1000 * 1000
        assert r["user_id_range"] == f"from_{lo}_to_{lo + 1000}"


def test_frames_keep_last(frames: Any, pd: Any) -> None:
    name = fresh("reports/daily")
    first = pd.DataFrame({"n": [1, 2, 3]})
    second = pd.DataFrame({"n": [7, 8]})
    frames.load_dataframe(first, name, external_key="NOW", keep_last=True)
    r = frames.load_dataframe(second, name, external_key="NOW", keep_last=True)
    assert r["keep_last"] is True
    when = dt.datetime.fromisoformat(r["version_key"].replace("Z", "+00:00"))
    assert abs(dt.datetime.now(dt.timezone.utc) - when) < dt.timedelta(minutes=10)
    assert sorted(frames.get_dataframe(name)["n"]) == [7, 8]


def test_frames_external_keys(frames: Any, pd: Any) -> None:
    name = fresh("versions/custom")
    k1 = pd.DataFrame({"id": [1, 2], "v": ["a", "b"]})
    k2 = pd.DataFrame({"id": [3], "v": ["c"]})
    assert frames.load_dataframe(k1, name, external_key="2024-Q1")["version_key"] == "2024-Q1"
    frames.load_dataframe(k2, name, external_key="2024-Q2")
    _same(pd, frames.get_dataframe(name, external_key="2024-Q1"), k1, "id")
    _same(pd, frames.get_dataframe(name, use_last=True), k2, "id")
    _same(pd, frames.get_dataframe(name), pd.concat([k1, k2]), "id")
    empty = frames.get_dataframe(name, external_key="2023-Q4")
    assert len(empty) == 0 and list(empty.columns) == ["id", "v"]
    with pytest.raises(InvalidInputError):
        frames.get_dataframe(name, external_key="2024-Q1", use_last=True)


def test_frames_two_partition_keys(frames: Any, pd: Any) -> None:
    df = pd.DataFrame(
        {
            "transaction_date": pd.to_datetime(["2024-02-01", "2024-02-02", "2024-02-02"]).date,
            "customer_id": [10, 200_500, 10],
            "amount": [9.5, 3.0, 1.25],
        }
    )
    name = fresh("transactions")
    report = frames.load_dataframe(
        df, name, columns_keys={"transaction_date": "Date", "customer_id": "ID"}
    )
    # A day key on a date column partitions by the column itself.
    assert report["partition_columns"] == ["transaction_date", "customer_id_range"]
    _same(pd, frames.get_dataframe(name), df, "amount")
    # The layout is fixed by the first load.
    with pytest.raises(InvalidInputError):
        frames.load_dataframe(df, name, columns_keys={"customer_id": "ID"})
    assert frames.load_dataframe(df, name)["rows"] == len(df)


def test_frames_refuse_bad_input(frames: Any, pd: Any, server: Server) -> None:
    from tessera.compat.pandas_db import DataFrameClient

    df = pd.DataFrame({"a": [1], "b": [2]})
    with pytest.raises(InvalidInputError, match="Month"):
        frames.load_dataframe(df, fresh("bad/kind"), columns_keys={"a": "Month"})
    with pytest.raises(InvalidInputError, match="two"):
        frames.load_dataframe(df, fresh("bad/two"), columns_keys={"a": "Date", "b": "date"})
    with pytest.raises(InvalidInputError):
        frames.load_dataframe(df, fresh("bad/width"), id_width=10)
    with pytest.raises(InvalidInputError, match="nope"):
        frames.load_dataframe(df, fresh("bad/col"), columns_keys={"nope": "Date"})
    with pytest.raises(TypeError):
        frames.load_dataframe([1, 2], fresh("bad/type"))
    with pytest.raises(TypeError):
        frames.load_dataframe(df, fresh("bad/keys"), columns_keys=["a"])
    with pytest.raises(NotFoundError):
        frames.get_dataframe(fresh("never/loaded"))
    # Bad kinds are refused before any request: no server needed.
    offline = DataFrameClient("http://127.0.0.1:1", "token")
    with pytest.raises(InvalidInputError):
        offline.load_dataframe(df, "x", columns_keys={"a": "Weekly"})


def test_frames_with_a_token(auth_server: Server, world: World, pd: Any) -> None:
    from tessera.compat.pandas_db import DataFrameClient

    client = DataFrameClient(api_url=auth_server.url, auth_token=world.tokens["admin"])
    df = pd.DataFrame({"id": [1, 2, 3], "x": [0.1, 0.2, 0.3]})
    name = fresh("secure/frame")
    client.load_dataframe(df, name, columns_keys={"id": "ID"})
    _same(pd, client.get_dataframe(name), df, "id")
    reader = DataFrameClient(auth_server.url, world.tokens["read"])
    _same(pd, reader.get_dataframe(name), df, "id")
    with pytest.raises(AccessDeniedError):
        reader.load_dataframe(df, name)
    with pytest.raises(AccessDeniedError):
        DataFrameClient(auth_server.url, "tsr_wrong").get_dataframe(name)
    with pytest.raises(AccessDeniedError):
        DataFrameClient(auth_server.url, None).get_dataframe(name)

"""The tessera package on a local folder and on the test S3 server: the
same expectations as the library's own tests (values, types, errors)."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import os
import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

import tessera
from tessera import errors

from _objects import put_at

pd = pytest.importorskip("pandas")


# ------------------------------------------------------------ manifests


def test_manifest_build_and_lookups(store_base):
    keys = []
    for g in range(5):
        for t in range(4):
            keys.append(f"data/GENE{g}/tissue_{t}.parquet")
    listing = put_at(store_base, "paths.txt", ("\n".join(keys) + "\nnot/a/match.txt\n").encode())
    out = f"{store_base}/manifest.parquet"
    summary = tessera.build_manifest(listing, out, "data/{gene_id}/tissue_{tissue_id:int32}.parquet")
    assert summary.read == 21 and summary.matched == 20 and summary.skipped == 1
    assert summary["matched"] == 20

    m = tessera.Manifest.open(out)
    assert len(m) == 20
    assert m.fields == ["gene_id", "tissue_id"]
    assert m.location_column == "file_path"
    assert m.exists(gene_id="GENE3", tissue_id=2) is True
    assert m.exists(gene_id="GENE3", tissue_id="2") is True
    assert m.exists(gene_id="GENE9", tissue_id=2) is False
    assert m.location(gene_id="GENE1", tissue_id=3) == "data/GENE1/tissue_3.parquet"
    assert m.location(gene_id="nope") is None
    assert m.count(gene_id="GENE2") == 4
    assert sorted(m.locations(tissue_id=0)) == [f"data/GENE{g}/tissue_0.parquet" for g in range(5)]
    recs = m.records(gene_id="GENE4")
    assert isinstance(recs, pa.Table)
    assert recs.num_rows == 4
    assert recs.column("tissue_id").to_pylist() == [0, 1, 2, 3]
    assert m.records().num_rows == 20
    assert m.unique("tissue_id") == [0, 1, 2, 3]
    assert m.unique("gene_id") == [f"GENE{g}" for g in range(5)]
    # Errors: unknown field, bad value type, wrong Python type.
    with pytest.raises(tessera.InvalidInputError) as e:
        m.exists(colour="red")
    assert "colour" in str(e.value)
    with pytest.raises(tessera.InvalidInputError):
        m.exists(tissue_id="two")
    with pytest.raises(TypeError):
        m.exists(tissue_id=[1])
    with pytest.raises(tessera.NotFoundError) as e:
        tessera.Manifest.open(f"{store_base}/missing.parquet")
    assert isinstance(e.value, FileNotFoundError)
    assert "missing.parquet" in str(e.value)


def test_manifest_dates_and_fetch(tmp_path):
    data = tmp_path / "data"
    for day in ("2024-03-01", "2024-03-02"):
        (data / day).mkdir(parents=True)
        (data / day / "a.csv").write_text(f"x\n{day}\n")
    out = tmp_path / "m.parquet"
    s = tessera.build_manifest(str(data), str(out), "**/{day:date}/{name}.csv")
    assert s.matched == 2
    m = tessera.Manifest.open(out)
    assert m.unique("day") == [dt.date(2024, 3, 1), dt.date(2024, 3, 2)]
    assert m.exists(day=dt.date(2024, 3, 2), name="a")
    p = m.fetch(day=dt.date(2024, 3, 2), name="a", cache_dir=tmp_path / "cache")
    assert isinstance(p, Path)
    assert p.read_text() == "x\n2024-03-02\n"
    with pytest.raises(tessera.NotFoundError):
        m.fetch(day="2024-03-09", name="a", cache_dir=tmp_path / "cache")


def test_ls(store_base):
    put_at(store_base, "a/1.txt", b"1")
    put_at(store_base, "a/b/2.txt", b"22")
    urls = tessera.ls(f"{store_base}/a")
    assert [u.rsplit("/a/", 1)[1] for u in urls] == ["1.txt", "b/2.txt"]
    detail = tessera.ls(f"{store_base}/a", detail=True)
    assert [d.size for d in detail] == [1, 2]
    assert all(isinstance(d.last_modified, dt.datetime) for d in detail)
    assert tessera.ls(f"{store_base}/nothing-here") == []
    local = tessera.fetch(urls[1], cache_dir=Path(os.environ.get("TMPDIR", "/tmp")) / f"tc-{os.getpid()}")
    assert isinstance(local, Path) and local.read_bytes() == b"22"
    with pytest.raises(tessera.NotFoundError):
        tessera.fetch(f"{store_base}/a/missing.txt", cache_dir=local.parent)


# -------------------------------------------------------------- packing


def test_pack_and_compact(store_base):
    rows = 0
    for i in range(6):
        body = "id,name\n" + "".join(f"{i * 100 + j},n{j}\n" for j in range(100))
        put_at(store_base, f"land/t/part-{i}.csv", body.encode())
        rows += 100
    # Garage does not enforce create-if-absent: one writer is promised.
    one = {"single_writer": True}
    plan = tessera.pack(f"{store_base}/land", f"{store_base}/db", "t", dry_run=True, **one)
    assert plan.dry_run and len(plan.inputs) == 6
    r = tessera.pack(f"{store_base}/land", f"{store_base}/db", "t", max_file_size="1MB", **one)
    assert r.rows == rows
    assert r.outputs and all(o.path.endswith(".snappy.parquet") for o in r.outputs)
    # Exactly once: a re-run packs nothing.
    again = tessera.pack(f"{store_base}/land", f"{store_base}/db", "t", **one)
    assert again.rows == 0 and again.already_packed
    # Read back with tessera's SQL: every row once.
    got = tessera.sql("SELECT count(*) AS n, count(DISTINCT id) AS d FROM t", {"t": f"{store_base}/db/t/"})
    assert got.to_pylist() == [{"n": rows, "d": rows}]
    c = tessera.compact(f"{store_base}/db", "t", max_file_size="1MB", **one)
    assert c.dry_run is False
    # Bad input: an unknown format, a size that is not one.
    with pytest.raises(tessera.InvalidInputError):
        tessera.pack(f"{store_base}/land", f"{store_base}/db", "t", output_format="xlsx")
    with pytest.raises(tessera.InvalidInputError):
        tessera.pack(f"{store_base}/land", f"{store_base}/db", "t", max_file_size="big")
    with pytest.raises(TypeError):
        tessera.pack(f"{store_base}/land", f"{store_base}/db", "t", max_file_size=[1])
    with pytest.raises(TypeError):
        tessera.pack(f"{store_base}/land", f"{store_base}/db", "t", colour="red")


def test_pack_schema_and_partition(tmp_path):
    land = tmp_path / "land" / "t"
    land.mkdir(parents=True)
    (land / "a.csv").write_text("id,v\n1,x\n2,y\n")
    schema = pa.schema([("id", pa.int64()), ("v", pa.string())])
    r = tessera.pack(tmp_path / "land", tmp_path / "db", "t", schema=schema, partition={"day": "2024-03-01"})
    assert r.rows == 2
    files = list((tmp_path / "db" / "t" / "day=2024-03-01").glob("*.parquet"))
    assert len(files) == 1
    assert pq.read_table(files[0]).schema.field("id").type == pa.int64()
    # The same inputs into another partition are a new target, packed again.
    r2 = tessera.pack(tmp_path / "land", tmp_path / "db", "t", partition={"day": "2024-03-02"})
    assert r2.rows == 2
    # A row that does not fit the schema: a SchemaError-or-input error naming the object.
    (land / "b.csv").write_text("id,v\nnot-a-number,z\n")
    with pytest.raises(tessera.InvalidInputError) as e:
        tessera.pack(tmp_path / "land", tmp_path / "db", "t", schema=schema, partition={"day": "2024-03-03"})
    assert "b.csv" in str(e.value)


# -------------------------------------------------------------- datasets


def frame(n: int, start: int = 0):
    return pd.DataFrame(
        {
            "id": list(range(start, start + n)),
            "day": [dt.date(2024, 3, 1 + (i % 3)) for i in range(start, start + n)],
            "value": [float(i) * 1.5 for i in range(start, start + n)],
            "name": [f"n{i}" for i in range(start, start + n)],
        }
    )


def test_datasets_story(store_base):
    ds = tessera.Datasets(f"{store_base}/wh", single_writer=True)
    r = ds.put("sales/daily", frame(300), date_key="day", id_key=("id", 100), version="v1")
    assert r.rows == 300 and r.created is True and r.version_key == "v1"
    assert r.partition_columns and isinstance(r.table_version, int)
    r2 = ds.put("sales/daily", pa.Table.from_pandas(frame(30, 300), preserve_index=False), version="v2")
    assert r2.rows == 30 and r2.created is False

    t = ds.get("sales/daily")
    assert isinstance(t, pa.Table) and t.num_rows == 330
    df = t.to_pandas()
    assert sorted(df["id"]) == list(range(330))
    assert ds.get("sales/daily", version="v2").num_rows == 30
    assert ds.get("sales/daily", last=True).num_rows == 30
    assert ds.get("sales/daily", as_of=r.table_version).num_rows == 300
    assert ds.get("sales/daily", as_of=r2.table_version).num_rows == 330
    assert ds.get("sales/daily", as_of=dt.datetime.now(dt.timezone.utc)).num_rows == 330
    assert ds.get("sales/daily", as_of=dt.datetime.now()).num_rows == 330
    with pytest.raises(tessera.TesseraError):
        ds.get("sales/daily", as_of=r2.table_version + 5)
    with pytest.raises(tessera.InvalidInputError):
        ds.get("sales/daily", as_of="not a time")
    one_day = ds.get("sales/daily", where="day = DATE '2024-03-02'", columns=["id", "day"])
    assert one_day.column_names == ["id", "day"]
    assert sorted(one_day.column("id").to_pylist()) == [i for i in range(330) if i % 3 == 1]
    reader = ds.scan("sales/daily", where="id < 50")
    assert isinstance(reader, pa.RecordBatchReader)
    assert reader.read_all().num_rows == 50

    hist = ds.history("sales/daily")
    assert [h.version_key for h in hist if h.version_key][:2] == ["v2", "v1"]
    assert ds.names() == ["sales/daily"]
    assert [d.name for d in ds.list("sales")] == ["sales/daily"]
    assert ds.info("sales/daily").rows == 330
    assert ds.exists("sales/daily") and not ds.exists("nope")

    # keep_last: only this version remains.
    ds.put("sales/daily", frame(5, 1000), version="v3", keep_last=True)
    assert ds.get("sales/daily").num_rows == 5
    assert ds.compact("sales/daily").name == "sales/daily"
    v = ds.vacuum("sales/daily", retain=0, dry_run=True)
    assert v.dry_run is True
    rm = ds.remove("sales/daily")
    assert rm.objects > 0
    with pytest.raises(tessera.NotFoundError):
        ds.get("sales/daily")


def test_datasets_inputs_of_every_kind(tmp_path):
    ds = tessera.Datasets(tmp_path / "wh")
    tbl = pa.table({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    ds.put("k", tbl)
    ds.put("k", tbl.to_batches()[0])
    ds.put("k", pa.RecordBatchReader.from_batches(tbl.schema, tbl.to_batches()))

    class Stream:  # only the PyCapsule protocol
        def __arrow_c_stream__(self, requested_schema=None):
            return tbl.__arrow_c_stream__(requested_schema)

    ds.put("k", Stream())
    csv = tmp_path / "in.csv"
    csv.write_text("a,b\n4,w\n")
    ds.put("k", str(csv))
    ds.put("k", [csv])
    got = ds.get("k")
    assert got.num_rows == 3 * 4 + 2
    assert sorted(got.column("a").to_pylist()) == sorted([1, 2, 3] * 4 + [4, 4])


def test_datasets_bad_input(tmp_path):
    ds = tessera.Datasets(tmp_path / "wh")
    with pytest.raises(TypeError):
        ds.put("x", 42)
    with pytest.raises(TypeError):
        ds.put("x", None)
    with pytest.raises(tessera.InvalidInputError):
        ds.put("../escape", pa.table({"a": [1]}))
    with pytest.raises(tessera.NotFoundError):
        ds.get("never-loaded")
    with pytest.raises(tessera.NotFoundError):
        ds.put("x", str(tmp_path / "missing.csv"))
    ds.put("x", pa.table({"a": [1, 2]}))
    # A schema conflict: the column changes type. Nothing is written.
    with pytest.raises(tessera.SchemaError) as e:
        ds.put("x", pa.table({"a": ["one"]}))
    assert "a" in str(e.value)
    assert ds.get("x").num_rows == 2
    with pytest.raises(tessera.InvalidInputError):
        ds.get("x", where="no_such_column = 1")
    with pytest.raises(tessera.InvalidInputError):
        ds.put("y", pa.table({"d": [1]}), date_key=("d", "week"))
    # An error pickles with its class, message and variant.
    try:
        ds.get("never-loaded")
    except tessera.NotFoundError as exc:
        back = pickle.loads(pickle.dumps(exc))
        assert type(back) is tessera.NotFoundError
        assert str(back) == str(exc) and back.variant == exc.variant != ""


# ------------------------------------------------------------------ SQL


def test_sql_over_every_source(tmp_path):
    pq.write_table(pa.table({"k": [1, 2, 3], "v": ["a", "b", "c"]}), tmp_path / "f.parquet")
    (tmp_path / "folder" / "p=1").mkdir(parents=True)
    pq.write_table(pa.table({"k": [10]}), tmp_path / "folder" / "p=1" / "x.parquet")
    (tmp_path / "t.csv").write_text("k,w\n1,one\n3,three\n")
    ds = tessera.Datasets(tmp_path / "wh")
    ds.put("d", pa.table({"k": [1, 1, 2]}))
    m_paths = tmp_path / "paths.txt"
    m_paths.write_text("g/A/1.txt\ng/B/2.txt\n")
    tessera.build_manifest(m_paths, tmp_path / "m.parquet", "g/{gene}/{n:int32}.txt")
    m = tessera.Manifest.open(tmp_path / "m.parquet")
    mem = pd.DataFrame({"k": [2, 3], "z": [True, False]})
    got = tessera.sql(
        """SELECT f.k, f.v, c.w, (SELECT count(*) FROM d WHERE d.k = f.k) AS n,
                  (SELECT count(*) FROM folder) AS nf, (SELECT count(*) FROM m) AS nm,
                  mem.z
           FROM f LEFT JOIN c ON c.k = f.k LEFT JOIN mem ON mem.k = f.k ORDER BY f.k""",
        {
            "f": tmp_path / "f.parquet",
            "folder": str(tmp_path / "folder") + "/",
            "c": str(tmp_path / "t.csv"),
            "d": ds.table("d"),
            "m": m,
            "mem": mem,
        },
    )
    assert got.to_pylist() == [
        {"k": 1, "v": "a", "w": "one", "n": 2, "nf": 1, "nm": 2, "z": None},
        {"k": 2, "v": "b", "w": None, "n": 1, "nf": 1, "nm": 2, "z": True},
        {"k": 3, "v": "c", "w": "three", "n": 0, "nf": 1, "nm": 2, "z": False},
    ]
    assert tessera.sql("SELECT 1 AS one").to_pylist() == [{"one": 1}]
    assert tessera.sql("SELECT k FROM f", {"f": tmp_path / "f.parquet"}, limit=2).num_rows == 2
    with pytest.raises(tessera.InvalidInputError):
        tessera.sql("DROP TABLE f", {"f": tmp_path / "f.parquet"})
    with pytest.raises(tessera.InvalidInputError):
        tessera.sql("SELECT nope FROM f", {"f": tmp_path / "f.parquet"})
    with pytest.raises(tessera.TesseraError):
        tessera.sql("SELECT * FROM f", {"f": tmp_path / "absent.parquet"})


# -------------------------------------------------------------- slicing


def fastq(n: int, seed: int = 7) -> bytes:
    """``n`` reads of 60-140 random bases (random, so that gzip makes many
    deflate blocks: each is a place where a slice may start)."""
    import random

    rnd = random.Random(seed)
    out = io.BytesIO()
    for i in range(n):
        k = rnd.randint(60, 140)
        seq = "".join(rnd.choices("ACGT", k=k))
        qual = "".join(rnd.choices("!#%+5?@FIJ", k=k))
        out.write(f"@read{i} extra\n{seq}\n+\n{qual}\n".encode())
    return out.getvalue()


def test_slices_of_gzip_fastq(store_base):
    raw = fastq(5000)
    url = put_at(store_base, "reads.fq.gz", gzip.compress(raw))
    idx = tessera.index(url, spacing="32KB")
    assert idx.format == "fastq" and idx.compression == "gzip" and idx.records == 5000
    slices = tessera.plan(url, count=8)
    assert len(slices) >= 2 and all(isinstance(s, tessera.Slice) for s in slices)
    assert b"".join(s.fetch() for s in slices) == raw
    records = [r for s in slices for r in s.records()]
    assert len(records) == 5000 and records[0].startswith(b"@read0 ") and b"".join(records) == raw
    assert sum(s.record_count for s in slices) == 5000
    s = slices[1]
    assert "reads.fq.gz" in repr(s) and f"{s.number}/{s.slices}" in repr(s)
    back = pickle.loads(pickle.dumps(s))
    assert back == s and back.fetch() == s.fetch()
    assert tessera.Slice.from_json(s.to_json()) == s
    by_records = idx.plan(records=1000)
    assert [x.record_count for x in by_records] == [1000] * 5
    assert len(tessera.plan(url, bytes="64KB")) >= 1
    with pytest.raises(tessera.InvalidInputError):
        tessera.plan(url, count=2, records=5)
    with pytest.raises(tessera.InvalidInputError):
        tessera.plan(url)
    with pytest.raises(tessera.InvalidInputError):
        s.to_arrow()


def test_slices_pickle_no_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "very-secret-value-123")
    p = tmp_path / "t.csv"
    p.write_text("a,b\n" + "".join(f"{i},x{i}\n" for i in range(1000)))
    tessera.index(p, store=tessera.StoreOptions(region="eu-west-1"))
    slices = tessera.plan(p, count=4, region="eu-west-1")
    blob = pickle.dumps(slices)
    assert b"very-secret-value-123" not in blob
    assert len(pickle.dumps(slices[0])) < 4096
    tables = [s.to_arrow() for s in pickle.loads(blob)]
    joined = pa.concat_tables(tables)
    assert joined.column("a").to_pylist() == list(range(1000))
    schema = pa.schema([("a", pa.string()), ("b", pa.string())])
    assert slices[0].to_arrow(schema=schema).schema == schema
    # Store settings as keywords, as for every other call.
    assert slices[0].fetch(region="eu-west-1") == slices[0].fetch()
    with pytest.raises(TypeError):
        slices[0].fetch(colour="red")
    with pytest.raises(TypeError):
        slices[0].records(store=tessera.StoreOptions(), region="x")


def test_stale_and_missing_index(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text("".join(f'{{"i": {i}}}\n' for i in range(100)))
    with pytest.raises(tessera.NotFoundError):
        tessera.plan(p, count=2)
    tessera.index(p)
    s = tessera.plan(p, count=2)
    assert pa.concat_tables([x.to_arrow() for x in s]).column("i").to_pylist() == list(range(100))
    time.sleep(0.01)
    p.write_text("".join(f'{{"i": {i}}}\n' for i in range(101)))
    with pytest.raises(tessera.StaleIndexError):
        tessera.plan(p, count=2)
    with pytest.raises(tessera.TesseraError):
        s[0].fetch()
    with pytest.raises(tessera.InvalidInputError):
        tessera.index(p, "klingon")


def test_malformed_data_is_an_input_error(tmp_path):
    p = tmp_path / "bad.fq"
    p.write_bytes(b"@r1\nACGT\nnot-plus\nIIII\n")
    with pytest.raises(tessera.InvalidInputError) as e:
        tessera.index(p)
    assert "bad.fq" in str(e.value)
    t = tmp_path / "trunc.fq.gz"
    t.write_bytes(gzip.compress(fastq(100))[:-20])
    with pytest.raises(tessera.TesseraError):
        tessera.index(t)


# --------------------------------------------- runtime: GIL, fork, Ctrl-C


def test_gil_is_released_while_reading(tmp_path):
    ds = tessera.Datasets(tmp_path / "wh")
    n = 400_000
    ds.put("big", pa.table({"id": pa.array(range(n)), "s": pa.array([f"v{i}" for i in range(n)])}))

    def read():
        for _ in range(3):
            assert ds.get("big").num_rows == n

    def one_thread() -> float:
        t0 = time.perf_counter()
        read()
        return time.perf_counter() - t0

    def two_threads() -> float:
        threads = [threading.Thread(target=read) for _ in range(2)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.perf_counter() - t0

    # The best of three of each: a shared machine's noise only adds time.
    one = min(one_thread() for _ in range(3))
    two = min(two_threads() for _ in range(3))
    print(f"one thread {one:.3f}s, two threads {two:.3f}s, ratio {two / one:.2f}")
    # Serialised by the GIL, two threads take at least twice as long.
    assert two < 1.8 * one, (one, two)


def test_fork_and_spawn_children_use_tessera(tmp_path):
    import multiprocessing as mp

    p = tmp_path / "t.csv"
    p.write_text("a\n" + "".join(f"{i}\n" for i in range(100)))
    tessera.index(p)
    slices = tessera.plan(p, count=4)
    expect = [s.fetch() for s in slices]  # the parent's runtime exists now
    for method in ("fork", "spawn"):
        ctx = mp.get_context(method)
        with ctx.Pool(2) as pool:
            # A hang in a child fails the test instead of stalling the suite.
            got = pool.map_async(_fetch, slices).get(timeout=120)
        assert got == expect, method


def _fetch(s):
    return s.fetch()


def test_keyboard_interrupt_returns_control(tmp_path):
    # A call waiting on a slow store (a TCP port that accepts and never
    # answers) is interrupted by SIGINT.
    import signal
    import socket

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    port = srv.getsockname()[1]
    code = f"""
import signal, threading, os, time, tessera
threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
t0 = time.time()
try:
    tessera.ls("s3://bucket/prefix", endpoint="http://127.0.0.1:{port}", region="x", max_retries=0,
               config={{"aws_access_key_id": "k", "aws_secret_access_key": "s", "aws_allow_http": "true"}})
except KeyboardInterrupt:
    print("interrupted after", round(time.time() - t0, 1))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    srv.close()
    assert "interrupted after" in out.stdout, (out.stdout, out.stderr)
    assert float(out.stdout.split()[-1]) < 10

"""Concurrent dataset writers on an S3 server that enforces conditional writes.

tessera commits a dataset load by writing the next Delta log entry with
create-if-absent (``If-None-Match: *``); a writer that loses the race reads
the log again and commits as the next version. Garage ignores the header, so
these tests need a second S3 server that honours it: moto's server mode,
started by ``scripts/moto.sh``, which exports

- ``TESSERA_TEST_S3_CONDITIONAL``: the bucket URL (``s3://tessera-conditional``);
- ``TESSERA_TEST_MOTO_ENDPOINT``, ``TESSERA_TEST_MOTO_KEY``,
  ``TESSERA_TEST_MOTO_SECRET``, ``TESSERA_TEST_MOTO_REGION``: how to reach it.

Its credentials are not the ``AWS_*`` variables (those are Garage's in the
test command): each ``tessera`` process gets them in its own environment.
Without the server the tests are skipped, unless
``TESSERA_REQUIRE_S3_CONDITIONAL=1``.

moto checks ``If-None-Match`` and then writes, without a lock, in a threaded
server: the check is not atomic. With small objects held in memory (commit
files are) the window is a few Python statements long and was never seen
to open in thousands of tries; with objects spilled to disk
(``MOTO_S3_DEFAULT_KEY_BUFFER_SIZE=1`` in moto's environment) it opens
often, and the concurrent-writers test below then fails with lost loads.
``python test_conditional.py race ENDPOINT`` shows the race directly.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import unique

WRITERS = 8
LOADS_PER_WRITER = 20
ROWS_PER_LOAD = 2


@dataclass(frozen=True)
class Moto:
    """The moto server of ``scripts/moto.sh``."""

    bucket_url: str
    endpoint: str
    key: str
    secret: str
    region: str

    def env(self) -> dict[str, str]:
        """An environment for a ``tessera`` process that talks to moto:
        the caller's, without any other ``AWS_*`` setting."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.pop("TESSERA_STORE", None)
        env.update(
            AWS_ACCESS_KEY_ID=self.key,
            AWS_SECRET_ACCESS_KEY=self.secret,
            AWS_ENDPOINT_URL=self.endpoint,
            AWS_REGION=self.region,
            # No shared config or credentials file of the machine may win.
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        )
        return env

    def boto3(self) -> Any:
        """A boto3 S3 client for moto (boto3 comes with ``moto[server]``)."""
        boto3 = pytest.importorskip("boto3")
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.key,
            aws_secret_access_key=self.secret,
            region_name=self.region,
            config=Config(retries={"max_attempts": 0, "mode": "standard"}, max_pool_connections=64),
        )


@pytest.fixture
def moto() -> Moto:
    """The moto server, or a skip (a failure with ``TESSERA_REQUIRE_S3_CONDITIONAL=1``)."""
    url = os.environ.get("TESSERA_TEST_S3_CONDITIONAL")
    if not url:
        if os.environ.get("TESSERA_REQUIRE_S3_CONDITIONAL") == "1":
            pytest.fail("TESSERA_TEST_S3_CONDITIONAL is not set but TESSERA_REQUIRE_S3_CONDITIONAL=1")
        pytest.skip("no S3 server with conditional writes (TESSERA_TEST_S3_CONDITIONAL; scripts/moto.sh)")
    missing = [
        v
        for v in ("TESSERA_TEST_MOTO_ENDPOINT", "TESSERA_TEST_MOTO_KEY", "TESSERA_TEST_MOTO_SECRET")
        if not os.environ.get(v)
    ]
    assert not missing, f"TESSERA_TEST_S3_CONDITIONAL is set but {missing} are not"
    return Moto(
        bucket_url=url.rstrip("/"),
        endpoint=os.environ["TESSERA_TEST_MOTO_ENDPOINT"],
        key=os.environ["TESSERA_TEST_MOTO_KEY"],
        secret=os.environ["TESSERA_TEST_MOTO_SECRET"],
        region=os.environ.get("TESSERA_TEST_MOTO_REGION", "us-east-1"),
    )


def tessera(
    tessera_bin: Path, env: dict[str, str], *args: str, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``tessera ARGS`` in ``env``; with ``ok`` it must succeed, otherwise
    fail with an error message and without a panic."""
    proc = subprocess.run(
        [str(tessera_bin), *args], capture_output=True, text=True, timeout=120, env=env
    )
    if ok:
        assert proc.returncode == 0, f"tessera {' '.join(args)} failed:\n{proc.stderr}"
    else:
        assert proc.returncode != 0, f"tessera {' '.join(args)} succeeded:\n{proc.stdout}"
        assert "error" in proc.stderr.lower() and "panicked" not in proc.stderr, proc.stderr
    return proc


def load_csv(path: Path, writer: int, seq: int) -> Path:
    """A tiny CSV: ``ROWS_PER_LOAD`` rows naming its writer and load."""
    rows = "".join(f"{writer},{seq},{part},{writer * 1000 + seq * 10 + part}\n" for part in range(ROWS_PER_LOAD))
    path.write_text("writer,seq,part,value\n" + rows)
    return path


def history(tessera_bin: Path, env: dict[str, str], store: str, name: str) -> list[dict[str, Any]]:
    """``tessera datasets history --json``, as a list of versions."""
    out = tessera(tessera_bin, env, "datasets", "history", name, "--store", store, "--json").stdout
    data = json.loads(out)
    entries = data["versions"] if isinstance(data, dict) and "versions" in data else data
    assert isinstance(entries, list), out[:500]
    return entries


# -- the server itself ------------------------------------------------------------


def test_moto_enforces_conditional_puts(moto: Moto) -> None:
    """The premise: moto answers 412 to a second create-if-absent PUT and to a
    PUT whose If-Match names another ETag, and keeps the first object."""
    from botocore.exceptions import ClientError

    s3 = moto.boto3()
    bucket = moto.bucket_url.removeprefix("s3://").split("/")[0]
    key = f"{unique('premise')}/obj"
    s3.put_object(Bucket=bucket, Key=key, Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key=key, Body=b"second", IfNoneMatch="*")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key=key, Body=b"third", IfMatch='"0123456789abcdef0123456789abcdef"')
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"first"
    etag = s3.head_object(Bucket=bucket, Key=key)["ETag"]
    s3.put_object(Bucket=bucket, Key=key, Body=b"fourth", IfMatch=etag)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"fourth"


# -- what tessera detects ---------------------------------------------------------


def test_put_needs_no_single_writer_on_moto(moto: Moto, tessera_bin: Path, tmp_path: Path) -> None:
    """tessera's probe finds create-if-absent enforced on moto: a load without
    ``--single-writer`` commits. On Garage (when the test command runs it) the
    same load is refused, naming the missing conditional writes."""
    store = f"{moto.bucket_url}/{unique('probe')}"
    src = load_csv(tmp_path / "one.csv", 1, 1)
    tessera(tessera_bin, moto.env(), "put", "probe/one", str(src), "--store", store, "--version", "v1")
    entries = history(tessera_bin, moto.env(), store, "probe/one")
    assert len(entries) == 1, entries

    garage = os.environ.get("TESSERA_TEST_S3")
    if garage:
        proc = tessera(
            tessera_bin, dict(os.environ), "put", "probe/one", str(src),
            "--store", f"{garage.rstrip('/')}/{unique('probe')}", ok=False,
        )
        assert "conditional writes" in proc.stderr, proc.stderr


def test_put_refuses_a_bad_file_without_committing(moto: Moto, tessera_bin: Path, tmp_path: Path) -> None:
    """Bad input on the same store: a CSV whose column changes type is refused
    and leaves the history as it was."""
    store = f"{moto.bucket_url}/{unique('bad')}"
    tessera(tessera_bin, moto.env(), "put", "bad/t", str(load_csv(tmp_path / "ok.csv", 1, 1)), "--store", store)
    bad = tmp_path / "bad.csv"
    bad.write_text("writer,seq,part,value\n1,2,0,not-a-number\n")
    proc = tessera(tessera_bin, moto.env(), "put", "bad/t", str(bad), "--store", store, ok=False)
    assert "value" in proc.stderr, proc.stderr
    assert len(history(tessera_bin, moto.env(), store, "bad/t")) == 1


# -- many writers at once ---------------------------------------------------------


@dataclass
class Put:
    """One ``tessera put`` of the concurrent test."""

    writer: int
    seq: int
    started: float
    ended: float
    returncode: int
    stderr: str


def run_writers(
    tessera_bin: Path, env: dict[str, str], store: str, name: str, folder: Path
) -> list[Put]:
    """``WRITERS`` writers at once, each running ``LOADS_PER_WRITER`` loads one
    after the other (so ``WRITERS`` tessera processes run at any moment)."""
    start = threading.Barrier(WRITERS)

    def writer(w: int) -> list[Put]:
        done: list[Put] = []
        start.wait()
        for s in range(LOADS_PER_WRITER):
            src = load_csv(folder / f"w{w}-s{s}.csv", w, s)
            t0 = time.monotonic()
            proc = subprocess.run(
                [str(tessera_bin), "put", name, str(src), "--store", store, "--version", f"w{w}-s{s}"],
                capture_output=True, text=True, timeout=120, env=env,
            )
            done.append(Put(w, s, t0, time.monotonic(), proc.returncode, proc.stderr))
        return done

    with ThreadPoolExecutor(WRITERS) as pool:
        return [p for ps in pool.map(writer, range(WRITERS)) for p in ps]


def most_at_once(puts: list[Put]) -> int:
    """The largest number of loads that were running at the same instant."""
    events = sorted([(p.started, 1) for p in puts] + [(p.ended, -1) for p in puts])
    running = peak = 0
    for _, d in events:
        running += d
        peak = max(peak, running)
    return peak


def conflicts_seen_by(moto_log: Path | None, prefix: str) -> int | None:
    """How many commit writes of ``prefix`` moto refused with 412 (its log), if known."""
    if moto_log is None or not moto_log.exists():
        return None
    key = f"{prefix}/".replace("s3://", "/", 1)
    return sum(
        1
        for line in moto_log.read_text(errors="replace").splitlines()
        if "PUT " in line and key in line and "/_delta_log/" in line and '" 412 ' in line
    )


def test_concurrent_writers_lose_nothing(moto: Moto, tessera_bin: Path, tmp_path: Path) -> None:
    """8 writers x 20 loads into one dataset, without ``--single-writer``:
    every load succeeds, the dataset holds each load's rows exactly once, and
    the history has one put per load, with consecutive versions."""
    store = f"{moto.bucket_url}/{unique('writers')}"
    name = "many/writers"
    env = moto.env()
    began = time.monotonic()
    puts = run_writers(tessera_bin, env, store, name, tmp_path)
    wall = time.monotonic() - began

    failed = [p for p in puts if p.returncode != 0]
    assert not failed, f"{len(failed)} loads failed; first: w{failed[0].writer}-s{failed[0].seq}:\n{failed[0].stderr}"
    assert len(puts) == WRITERS * LOADS_PER_WRITER
    # The writers really overlapped (a test that ran them one at a time would prove nothing).
    assert most_at_once(puts) >= WRITERS // 2, most_at_once(puts)

    out = tessera(
        tessera_bin, env, "get", name, "--store", store,
        "--columns", "writer,seq,part,value,_version_key", "--format", "csv",
    ).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    seen = Counter((int(r["writer"]), int(r["seq"]), int(r["part"])) for r in rows)
    expected = {(w, s, p) for w in range(WRITERS) for s in range(LOADS_PER_WRITER) for p in range(ROWS_PER_LOAD)}
    lost = expected - set(seen)
    twice = {k: n for k, n in seen.items() if n != 1}
    assert not lost, f"{len(lost)} rows lost, e.g. {sorted(lost)[:5]}"
    assert not twice, f"rows more than once: {dict(list(twice.items())[:5])}"
    assert set(seen) == expected
    for r in rows:
        w, s, p = int(r["writer"]), int(r["seq"]), int(r["part"])
        assert r["_version_key"] == f"w{w}-s{s}", r
        assert int(r["value"]) == w * 1000 + s * 10 + p, r

    entries = history(tessera_bin, env, store, name)
    ops = Counter(str(e.get("operation")) for e in entries)
    assert ops == Counter({"put": WRITERS * LOADS_PER_WRITER}), ops
    versions = sorted(int(e["version"]) for e in entries)
    assert versions == list(range(WRITERS * LOADS_PER_WRITER)), versions
    keys = Counter(str(e.get("version_key")) for e in entries)
    assert keys == Counter(f"w{w}-s{s}" for w in range(WRITERS) for s in range(LOADS_PER_WRITER)), keys
    assert all(int(e["rows"]) == ROWS_PER_LOAD for e in entries), entries[:3]

    moto_dir = os.environ.get("MOTO_DIR")
    conflicts = conflicts_seen_by(Path(moto_dir) / "server.log" if moto_dir else None, store)
    print(f"{len(puts)} loads by {WRITERS} writers in {wall:.1f} s, up to {most_at_once(puts)} at once, "
          f"{conflicts if conflicts is not None else 'unknown'} commit conflicts (412) resolved")


# -- the race in moto itself (not run by pytest) ------------------------------------


def race(endpoint: str, rounds: int = 30, writers: int = 8, size: int = 6_000_000) -> int:
    """Send ``writers`` create-if-absent PUTs of one new key at once, ``rounds``
    times; print the rounds where other than exactly one won; return their
    number. ``size`` bytes per object: above moto's key buffer (5 MiB by
    default) objects go to a temporary file and the race shows."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    def client() -> Any:
        return boto3.client(
            "s3", endpoint_url=endpoint, aws_access_key_id="race", aws_secret_access_key="race",
            region_name="us-east-1", config=Config(retries={"max_attempts": 0, "mode": "standard"}),
        )

    bucket = f"race-{int(time.time())}"
    client().create_bucket(Bucket=bucket)
    clients = [client() for _ in range(writers)]
    bad = 0
    for r in range(rounds):
        key = f"k{r}"
        barrier = threading.Barrier(writers)
        results: list[str] = [""] * writers

        def put(i: int) -> None:
            barrier.wait()
            try:
                clients[i].put_object(Bucket=bucket, Key=key, Body=bytes([65 + i]) * size, IfNoneMatch="*")
                results[i] = "won"
            except ClientError as e:
                results[i] = str(e.response["ResponseMetadata"]["HTTPStatusCode"])

        threads = [threading.Thread(target=put, args=(i,)) for i in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if results.count("won") != 1:
            bad += 1
            print(f"round {r}: {Counter(results)}")
    print(f"{bad} of {rounds} rounds had other than exactly one winner ({writers} writers, {size} bytes)")
    return bad


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "race":
        extra: list[Callable[[str], Any]] = [int, int, int]
        args = [f(a) for f, a in zip(extra, sys.argv[3:])]
        sys.exit(1 if race(sys.argv[2], *args) else 0)
    print("usage: python test_conditional.py race ENDPOINT [ROUNDS [WRITERS [SIZE]]]")

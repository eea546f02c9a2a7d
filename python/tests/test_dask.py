"""Slices evaluated on Dask workers in other processes: a 64-slice plan of
a FASTQ.gz and of a CSV, each record exactly once, in order."""

from __future__ import annotations

import gzip
import os
import pickle

import pytest

import tessera

dask_bag = pytest.importorskip("dask.bag")
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    ) as c, distributed.Client(c) as client:
        yield client


def _fetch(s):
    return os.getpid(), s.fetch()


def _records(s):
    return list(s.records())


def _check(client, url: str, whole: bytes, header: bytes = b""):
    slices = tessera.plan(url, count=64)
    assert len(slices) == 64
    got = dask_bag.from_sequence(slices, npartitions=64).map(_fetch).compute()
    pids = {pid for pid, _ in got}
    assert os.getpid() not in pids and len(pids) >= 1
    body = b"".join(data[len(header):] for _, data in got)
    assert header + body == whole
    records = dask_bag.from_sequence(slices, npartitions=8).map(_records).flatten().compute()
    assert b"".join(records) == whole[len(header):]
    return slices


def test_dask_fastq_gz(cluster, store_base, monkeypatch):
    from test_core import fastq

    raw = fastq(60_000)
    url = _put(store_base, "reads.fastq.gz", gzip.compress(raw, 6))
    tessera.index(url, spacing="64KB")
    slices = _check(cluster, url, raw)
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY") or "local-secret-for-the-test"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    assert secret.encode() not in pickle.dumps(slices)


def test_dask_csv(cluster, tmp_path):
    header = b"id,text\n"
    body = b"".join(f'{i},"line {i}\nwith a newline"\n'.encode() for i in range(30_000))
    p = tmp_path / "t.csv"
    p.write_bytes(header + body)
    tessera.index(p, spacing="4KB")
    _check(cluster, str(p), header + body, header)


def _put(base: str, key: str, data: bytes) -> str:
    from _objects import put_at

    return put_at(base, key, data)

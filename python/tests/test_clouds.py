"""The ``tessera`` command line on Azure Blob Storage (``az://``) and Google
Cloud Storage (``gs://``), against local emulators.

``scripts/azurite.sh`` starts Azurite and exports ``TESSERA_TEST_AZ`` (e.g.
``az://tessera-test``) with ``AZURE_STORAGE_USE_EMULATOR``,
``AZURITE_BLOB_STORAGE_URL``, ``AZURE_STORAGE_ACCOUNT_NAME`` and
``AZURE_STORAGE_ACCOUNT_KEY``; ``scripts/fakegcs.sh`` starts fake-gcs-server
and exports ``TESSERA_TEST_GCS`` (e.g. ``gs://tessera-test``) with
``GOOGLE_SERVICE_ACCOUNT`` (a service-account file whose ``gcs_base_url``
points at the server) and ``GOOGLE_ALLOW_HTTP``. tessera reads these as any
user's configuration. Without a variable the cloud's tests skip; with
``TESSERA_REQUIRE_CLOUDS=1`` they fail instead.

Every test works under a fresh prefix. The objects tessera reads are written,
and the objects tessera writes are read back, with the emulator's own REST
API (Shared Key signed Blob requests for Azurite, the JSON API for
fake-gcs-server; Python's standard library only), so that each side is
checked by something other than tessera.

fake-gcs-server has no XML API upload, which is how ``object_store`` writes
to GCS (``object_store``'s own CI runs a patched server), and it ignores
``If-Match`` on reads. The tests probe for both: where the emulator cannot
take tessera's writes, a test checks that the writing command fails with an
error naming the location (and no panic), makes the same output on local
disk, uploads it with the JSON API, and runs every read against the cloud
copy; fetching a slice of a changed object is checked to fail only where
the store refuses a read whose ``If-Match`` names another ETag.
"""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import hmac
import io
import json
import os
import random
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Protocol

import pyarrow.parquet as pq
import pytest

from _cli import run
from conftest import unique

# ------------------------------------------------------------ REST clients


def _http(req: urllib.request.Request) -> tuple[int, bytes]:
    """Send ``req``; the status and body, also for an error status."""
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _ok(status: int, body: bytes, what: str) -> bytes:
    """``body`` when ``status`` is a success, else fail the test naming ``what``."""
    assert 200 <= status < 300, f"{what}: HTTP {status}: {body[:500]!r}"
    return body


class Objects(Protocol):
    """Writes and reads whole objects of one bucket (container)."""

    def put(self, bucket: str, key: str, data: bytes) -> None:
        """Write an object."""

    def get(self, bucket: str, key: str) -> bytes:
        """Read an object."""

    def tessera_can_write(self, bucket: str, key: str) -> tuple[bool, str]:
        """Whether the server takes writes the way ``object_store`` sends them, and why not."""

    def honours_if_match(self, bucket: str, key: str) -> bool:
        """Whether a read of an existing object with another ETag in
        ``If-Match`` is refused (412), as the clouds do."""


class AzuriteBlobs:
    """Azurite's Blob API with Shared Key signed requests (path-style URLs:
    ``ENDPOINT/ACCOUNT/CONTAINER/KEY``)."""

    VERSION = "2021-08-06"

    def __init__(self, endpoint: str, account: str, key: str) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.account = account
        self.key = base64.b64decode(key)

    def _request(
        self, method: str, container: str, key: str, body: bytes | None = None, if_match: str = ""
    ) -> tuple[int, bytes]:
        """One signed request for a blob."""
        path = urllib.parse.quote(f"/{self.account}/{container}/{key}")
        headers = {"x-ms-date": formatdate(usegmt=True), "x-ms-version": self.VERSION}
        content_type = ""
        if body is not None:
            headers["x-ms-blob-type"] = "BlockBlob"
            content_type = "application/octet-stream"
        length = str(len(body)) if body else ""
        # VERB, Content-Encoding, -Language, -Length, -MD5, -Type, Date,
        # If-Modified-Since, If-Match, If-None-Match, If-Unmodified-Since, Range.
        fields = [method, "", "", length, "", content_type, "", "", if_match, "", "", ""]
        canonical = "".join(f"{k}:{headers[k]}\n" for k in sorted(headers))
        to_sign = "\n".join(fields) + "\n" + canonical + f"/{self.account}{path}"
        mac = hmac.new(self.key, to_sign.encode(), hashlib.sha256).digest()
        headers["Authorization"] = f"SharedKey {self.account}:{base64.b64encode(mac).decode()}"
        if content_type:
            headers["Content-Type"] = content_type
        if if_match:
            headers["If-Match"] = if_match
        req = urllib.request.Request(f"{self.endpoint}{path}", data=body, method=method, headers=headers)
        return _http(req)

    def put(self, bucket: str, key: str, data: bytes) -> None:
        """Put Blob (a block blob, replaced when it exists)."""
        _ok(*self._request("PUT", bucket, key, data), f"put az://{bucket}/{key}")

    def get(self, bucket: str, key: str) -> bytes:
        """Get Blob."""
        return _ok(*self._request("GET", bucket, key), f"get az://{bucket}/{key}")

    def tessera_can_write(self, bucket: str, key: str) -> tuple[bool, str]:
        """Azurite takes Put Blob, which is how ``object_store`` writes."""
        return True, ""

    def honours_if_match(self, bucket: str, key: str) -> bool:
        """Get Blob with ``If-Match`` naming another ETag."""
        status, _ = self._request("GET", bucket, key, if_match='"0x0"')
        return status == 412


class FakeGcsObjects:
    """fake-gcs-server's JSON API (uploads and downloads by object name)."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/")

    def put(self, bucket: str, key: str, data: bytes) -> None:
        """A media upload."""
        name = urllib.parse.quote(key, safe="")
        url = f"{self.base}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={name}"
        req = urllib.request.Request(
            url, data=data, method="POST", headers={"Content-Type": "application/octet-stream"}
        )
        _ok(*_http(req), f"put gs://{bucket}/{key}")

    def get(self, bucket: str, key: str) -> bytes:
        """A media download."""
        name = urllib.parse.quote(key, safe="")
        req = urllib.request.Request(f"{self.base}/download/storage/v1/b/{bucket}/o/{name}?alt=media")
        return _ok(*_http(req), f"get gs://{bucket}/{key}")

    def tessera_can_write(self, bucket: str, key: str) -> tuple[bool, str]:
        """Whether an XML API upload (``PUT /BUCKET/KEY``, as ``object_store``
        sends it) is taken; the probe object is deleted again."""
        req = urllib.request.Request(
            f"{self.base}/{bucket}/{urllib.parse.quote(key)}",
            data=b"probe",
            method="PUT",
            headers={"Content-Type": "application/octet-stream"},
        )
        status, body = _http(req)
        if 200 <= status < 300:
            name = urllib.parse.quote(key, safe="")
            _http(urllib.request.Request(f"{self.base}/storage/v1/b/{bucket}/o/{name}", method="DELETE"))
            return True, ""
        return False, f"the emulator refuses XML API uploads (HTTP {status}: {body[:200]!r})"

    def honours_if_match(self, bucket: str, key: str) -> bool:
        """An XML API read (``GET /BUCKET/KEY``, as ``object_store`` sends it)
        with ``If-Match`` naming another ETag."""
        req = urllib.request.Request(
            f"{self.base}/{bucket}/{urllib.parse.quote(key)}", headers={"If-Match": '"no-such-etag"'}
        )
        status, _ = _http(req)
        return status == 412


# ------------------------------------------------------------ the clouds


@dataclass
class Cloud:
    """A fresh prefix on one emulator, and a client for it."""

    scheme: str
    bucket: str
    prefix: str
    objects: Objects
    writable: bool
    why_not: str

    @property
    def root(self) -> str:
        """``SCHEME://BUCKET``."""
        return f"{self.scheme}://{self.bucket}"

    @property
    def base(self) -> str:
        """The test's own prefix, ``SCHEME://BUCKET/PREFIX``."""
        return f"{self.root}/{self.prefix}"

    def key_of(self, url: str) -> str:
        """The key of a URL in this bucket."""
        assert url.startswith(self.root + "/"), url
        return url[len(self.root) + 1 :]

    def put(self, rel: str, data: bytes) -> str:
        """Write ``data`` at ``BASE/rel`` with the emulator's API; its URL."""
        self.objects.put(self.bucket, f"{self.prefix}/{rel}", data)
        return f"{self.base}/{rel}"

    def get(self, url: str) -> bytes:
        """Read an object with the emulator's API."""
        return self.objects.get(self.bucket, self.key_of(url))

    def upload_tree(self, folder: Path, rel: str) -> str:
        """Copy every file under ``folder`` to ``BASE/rel/…``; the prefix URL."""
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                self.put(f"{rel}/{p.relative_to(folder).as_posix()}", p.read_bytes())
        return f"{self.base}/{rel}"


_VARIABLES = {"az": "TESSERA_TEST_AZ", "gs": "TESSERA_TEST_GCS"}


def _missing(message: str) -> None:
    """Skip, or fail with ``TESSERA_REQUIRE_CLOUDS=1``."""
    if os.environ.get("TESSERA_REQUIRE_CLOUDS") == "1":
        pytest.fail(f"{message} but TESSERA_REQUIRE_CLOUDS=1")
    pytest.skip(message)


def _client(scheme: str) -> Objects:
    """The REST client of the emulator the environment names."""
    if scheme == "az":
        if os.environ.get("AZURE_STORAGE_USE_EMULATOR", "").lower() not in ("1", "true"):
            _missing("the az:// tests need Azurite (AZURE_STORAGE_USE_EMULATOR=true)")
        return AzuriteBlobs(
            os.environ.get("AZURITE_BLOB_STORAGE_URL", "http://127.0.0.1:10000"),
            os.environ.get("AZURE_STORAGE_ACCOUNT_NAME", "devstoreaccount1"),
            os.environ["AZURE_STORAGE_ACCOUNT_KEY"],
        )
    account_file = os.environ.get("GOOGLE_SERVICE_ACCOUNT", "")
    account = json.loads(Path(account_file).read_text()) if account_file else {}
    if not account.get("gcs_base_url") or not account.get("disable_oauth"):
        _missing("the gs:// tests need fake-gcs-server (GOOGLE_SERVICE_ACCOUNT with gcs_base_url)")
    return FakeGcsObjects(account["gcs_base_url"])


@pytest.fixture(params=["az", "gs"])
def cloud(request: pytest.FixtureRequest) -> Cloud:
    """A fresh prefix on Azurite (``az``) or fake-gcs-server (``gs``)."""
    scheme: str = request.param
    root = os.environ.get(_VARIABLES[scheme], "")
    if not root:
        _missing(f"no {scheme}:// test server ({_VARIABLES[scheme]})")
    assert root.startswith(f"{scheme}://"), root
    bucket = root[len(scheme) + 3 :].strip("/")
    assert bucket and "/" not in bucket, f"{_VARIABLES[scheme]} must name a bucket only: {root}"
    objects = _client(scheme)
    prefix = unique("py")
    writable, why_not = objects.tessera_can_write(bucket, f"{prefix}/_probe")
    return Cloud(scheme, bucket, prefix, objects, writable, why_not)


def refused(tessera_bin: Path, cloud: Cloud, *args: str) -> None:
    """A command that writes to a cloud that takes no writes: it must fail
    with an error naming the bucket, and no panic."""
    proc = run(tessera_bin, *args, ok=False)
    assert cloud.root in proc.stderr, f"{cloud.why_not}\n{proc.stderr}"


def lines(text: str) -> list[str]:
    """The non-empty lines of a command's output."""
    return [line for line in text.splitlines() if line]


# ------------------------------------------------------------ ls


def test_ls(cloud: Cloud, tessera_bin: Path, tmp_path: Path) -> None:
    written = {
        "ls/a/1.txt": b"1",
        "ls/a/b/2.txt": b"22",
        "ls/a/b/with space.txt": b"three",
        "ls/z.bin": bytes(range(256)) * 5,
    }
    for rel, data in written.items():
        cloud.put(rel, data)
    expected = sorted(f"{cloud.base}/{rel}" for rel in written)

    assert lines(run(tessera_bin, "ls", f"{cloud.base}/ls").stdout) == expected
    # A trailing slash names the same prefix; -o writes the same lines to a file.
    out = tmp_path / "paths.txt"
    run(tessera_bin, "ls", f"{cloud.base}/ls/", "-o", str(out))
    assert lines(out.read_text()) == expected

    long = [line.split("\t") for line in lines(run(tessera_bin, "ls", f"{cloud.base}/ls", "--long").stdout)]
    assert [row[0] for row in long] == expected
    assert {row[0]: int(row[1]) for row in long} == {f"{cloud.base}/{k}": len(v) for k, v in written.items()}
    assert all(len(row) == 3 and row[2][:2] == "20" for row in long), long

    # A sub-prefix, one object, a prefix with nothing under it.
    assert lines(run(tessera_bin, "ls", f"{cloud.base}/ls/a/b").stdout) == [
        f"{cloud.base}/ls/a/b/2.txt",
        f"{cloud.base}/ls/a/b/with space.txt",
    ]
    assert lines(run(tessera_bin, "ls", f"{cloud.base}/ls/z.bin").stdout) == [f"{cloud.base}/ls/z.bin"]
    assert run(tessera_bin, "ls", f"{cloud.base}/nothing-here").stdout == ""

    # Bad input: a bucket that does not exist, a URL without a bucket.
    proc = run(tessera_bin, "ls", f"{cloud.scheme}://no-such-bucket-{cloud.prefix.lower()}/x", ok=False)
    assert "no-such-bucket" in proc.stderr
    run(tessera_bin, "ls", f"{cloud.scheme}:///x", ok=False)


# ------------------------------------------------------------ manifests


def test_manifest_build_and_lookup(
    cloud: Cloud, tessera_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    contents: dict[str, bytes] = {}
    for g in range(4):
        for t in (1, 5, 12):
            rel = f"mf/models/v1/ad/GENE{g}/model_tissue_{t}.tl"
            contents[cloud.put(rel, f"model {g} {t}\n".encode())] = f"model {g} {t}\n".encode()
    noise = cloud.put("mf/models/v1/readme.txt", b"not a model\n")
    template = "**/v1/ad/{gene_id}/model_tissue_{tissue_id:int32}.tl"
    source = f"{cloud.base}/mf/models"
    manifest = f"{cloud.base}/mf/manifest.parquet"

    if cloud.writable:
        proc = run(tessera_bin, "manifest", "build", source, "-o", manifest, "-t", template, "--json")
    else:
        refused(tessera_bin, cloud, "manifest", "build", source, "-o", manifest, "-t", template)
        assert run(tessera_bin, "ls", manifest).stdout == ""
        local = tmp_path / "manifest.parquet"
        proc = run(tessera_bin, "manifest", "build", source, "-o", str(local), "-t", template, "--json")
        cloud.put("mf/manifest.parquet", local.read_bytes())
    summary = json.loads(proc.stdout)
    assert summary["read"] == len(contents) + 1
    assert summary["matched"] == len(contents)
    assert summary["skipped"] == 1 and summary["skipped_examples"][0][1] == noise

    # The manifest, read with pyarrow from the emulator's API.
    table = pq.read_table(io.BytesIO(cloud.get(manifest)))
    rows = sorted(zip(*(table.column(c).to_pylist() for c in ("gene_id", "tissue_id", "file_path"))))
    assert rows == sorted(
        (url.split("/")[-2], int(url.rsplit("_", 1)[1].split(".")[0]), url) for url in contents
    )

    # Lookups on the manifest in the cloud.
    def query(*args: str) -> str:
        return run(tessera_bin, "manifest", "query", manifest, *args).stdout.strip()

    want = f"{cloud.base}/mf/models/v1/ad/GENE2/model_tissue_5.tl"
    assert query("-w", "gene_id=GENE2", "-w", "tissue_id=5", "--exists") == "true"
    assert query("-w", "gene_id=GENE2", "-w", "tissue_id=005", "--paths") == want
    assert query("-w", "gene_id=GENE9", "--exists") == "false"
    assert query("-w", "tissue_id=12", "--count") == str(sum(u.endswith("_12.tl") for u in contents))
    assert json.loads(query("--unique", "gene_id", "--format", "json")) == [f"GENE{g}" for g in range(4)]
    records = json.loads(query("-w", "gene_id=GENE3", "--format", "json"))
    assert sorted(r["file_path"] for r in records) == sorted(u for u in contents if "/GENE3/" in u)

    # Fetch through the cache: the objects' bytes.
    monkeypatch.setenv("TESSERA_CACHE", str(tmp_path / "cache"))
    down = tmp_path / "down"
    query("-w", "gene_id=GENE1", "--download", str(down))
    got = {p.name: p.read_bytes() for p in down.rglob("*") if p.is_file()}
    assert sorted(got.values()) == sorted(v for u, v in contents.items() if "/GENE1/" in u)

    # Bad input: a value of the wrong type, an unknown field, no manifest.
    run(tessera_bin, "manifest", "query", manifest, "-w", "tissue_id=abc", ok=False)
    run(tessera_bin, "manifest", "query", manifest, "-w", "colour=red", ok=False)
    run(tessera_bin, "manifest", "query", f"{cloud.base}/mf/none.parquet", "--count", ok=False)


# ------------------------------------------------------------ packing


def _sales(i: int) -> list[tuple[int, str, float]]:
    """The rows of input file ``i``."""
    rng = random.Random(i)
    return [(i * 1000 + j, f"shop{rng.randint(0, 9)}", round(rng.uniform(0, 100), 2)) for j in range(200)]


def _csv(rows: list[tuple[int, str, float]]) -> bytes:
    """Rows as CSV with the header ``id,shop,amount``."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "shop", "amount"])
    w.writerows(rows)
    return buf.getvalue().encode()


def test_pack(cloud: Cloud, tessera_bin: Path, tmp_path: Path) -> None:
    expected: list[tuple[int, str, float]] = []
    for i in range(3):
        rows = _sales(i)
        cloud.put(f"pk/land/sales/part-{i}.csv", _csv(rows))
        expected += rows
    land = f"{cloud.base}/pk/land"

    if cloud.writable:
        out = f"{cloud.base}/pk/db"
    else:
        refused(tessera_bin, cloud, "pack", land, f"{cloud.base}/pk/db", "sales")
        published = lines(run(tessera_bin, "ls", f"{cloud.base}/pk/db").stdout)
        assert not [u for u in published if u.endswith(".parquet")], published
        out = str(tmp_path / "db")
    proc = run(tessera_bin, "pack", land, out, "sales", "--max-file-size", "1MB", "--json")
    report = json.loads(proc.stdout)
    assert report["rows"] == len(expected)
    assert sorted(report["inputs"]) == [f"{land}/sales/part-{i}.csv" for i in range(3)]
    assert [o["path"] for o in report["outputs"]] == ["sales_0.snappy.parquet"]

    # Read the output back (from the emulator's API when it is in the cloud).
    if cloud.writable:
        files = [u for u in lines(run(tessera_bin, "ls", f"{out}/sales").stdout) if "/_tessera/" not in u]
        assert files == [f"{out}/sales/sales_0.snappy.parquet"]
        data = cloud.get(files[0])
    else:
        data = (Path(out) / "sales" / "sales_0.snappy.parquet").read_bytes()
    table = pq.read_table(io.BytesIO(data))
    got = sorted(zip(*(table.column(c).to_pylist() for c in ("id", "shop", "amount"))))
    assert got == sorted(expected)

    # Exactly once: a re-run packs nothing and succeeds.
    again = run(tessera_bin, "pack", land, out, "sales")
    assert "nothing to pack" in again.stdout + again.stderr
    # Bad input: an input folder with nothing in it, an unknown output format.
    run(tessera_bin, "pack", land, out, "no_such_table", ok=False)
    run(tessera_bin, "pack", land, out, "sales", "--output-ext", "xlsx", ok=False)


# ------------------------------------------------------------ datasets


def _loads() -> dict[str, list[tuple[int, str]]]:
    """Two loads of a small dataset, by version key."""
    return {
        "v1": [(i, f"name{i}") for i in range(50)],
        "v2": [(i, f"name{i}") for i in range(50, 80)],
    }


def _rows(csv_text: str) -> list[tuple[int, str]]:
    """``id,name`` rows of CSV text, sorted."""
    reader = csv.DictReader(io.StringIO(csv_text))
    assert reader.fieldnames == ["id", "name"], reader.fieldnames
    return sorted((int(r["id"]), r["name"]) for r in reader)


def test_datasets_put_get_history(cloud: Cloud, tessera_bin: Path, tmp_path: Path) -> None:
    loads = _loads()
    inputs = {}
    for key, rows in loads.items():
        p = tmp_path / f"{key}.csv"
        p.write_bytes(b"id,name\n" + "".join(f"{i},{n}\n" for i, n in rows).encode())
        inputs[key] = p
    store = f"{cloud.base}/wh"

    if cloud.writable:
        for key, p in inputs.items():
            proc = run(tessera_bin, "put", "shop/names", str(p), "--store", store, "--version", key, "--json")
            report = json.loads(proc.stdout)
            assert report["rows"] == len(loads[key]) and report["version_key"] == key
            assert report["created"] is (key == "v1")
    else:
        refused(tessera_bin, cloud, "put", "shop/names", str(inputs["v1"]), "--store", store)
        local = tmp_path / "wh"
        for key, p in inputs.items():
            run(tessera_bin, "put", "shop/names", str(p), "--store", str(local), "--version", key)
        cloud.upload_tree(local, "wh")

    def get(*args: str) -> list[tuple[int, str]]:
        return _rows(run(tessera_bin, "get", "shop/names", "--store", store, *args).stdout)

    assert get() == sorted(loads["v1"] + loads["v2"])
    assert get("--version", "v1") == loads["v1"]
    assert get("--last") == loads["v2"]
    assert get("--as-of", "0") == loads["v1"]
    assert get("--where", "id >= 75") == [r for r in loads["v2"] if r[0] >= 75]

    proc = run(tessera_bin, "datasets", "history", "shop/names", "--store", store, "--json")
    history = json.loads(proc.stdout)
    assert [(h["version_key"], h["rows"]) for h in history] == [(k, len(loads[k])) for k in ("v2", "v1")]
    listed = run(tessera_bin, "datasets", "list", "--store", store).stdout
    assert "shop/names" in listed

    # The Delta log in the cloud, as another reader sees it; a read written to the cloud.
    log = cloud.get(f"{store}/datasets/default/shop/names/_delta_log/{0:020d}.json")
    actions = [json.loads(line) for line in log.splitlines() if line.strip()]
    assert any("add" in a for a in actions) and any("metaData" in a for a in actions)
    out = f"{cloud.base}/out/v1.csv"
    if cloud.writable:
        run(tessera_bin, "get", "shop/names", "--store", store, "--version", "v1", "-o", out)
        assert _rows(cloud.get(out).decode()) == loads["v1"]
    else:
        refused(tessera_bin, cloud, "get", "shop/names", "--store", store, "--version", "v1", "-o", out)

    # Bad input: a dataset that does not exist, a version key never loaded.
    proc = run(tessera_bin, "get", "shop/none", "--store", store, ok=False)
    assert "shop/none" in proc.stderr
    empty = run(tessera_bin, "get", "shop/names", "--store", store, "--version", "v9").stdout
    assert _rows(empty) == []


# ------------------------------------------------------------ slices


def _fastq(n: int, seed: int) -> bytes:
    """``n`` FASTQ records of varying length."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        seq = "".join(rng.choice("ACGT") for _ in range(rng.randint(40, 160)))
        out.append(f"@read{i} sample\n{seq}\n+\n{'I' * len(seq)}\n")
    return "".join(out).encode()


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_index_plan_and_fetch_slices(
    cloud: Cloud, tessera_bin: Path, tmp_path: Path, compressed: bool
) -> None:
    raw = _fastq(3000, seed=7)
    name = "sl/reads.fq.gz" if compressed else "sl/reads.fq"
    url = cloud.put(name, gzip.compress(raw, mtime=0) if compressed else raw)

    extra: list[str] = []
    if cloud.writable:
        run(tessera_bin, "index", url, "--spacing", "32KiB")
        index = json.loads(cloud.get(f"{url}.tessera-index.json"))
    else:
        refused(tessera_bin, cloud, "index", url, "--spacing", "32KiB")
        store = tmp_path / "indexes"
        extra = ["--index-store", str(store)]
        run(tessera_bin, "index", url, "--spacing", "32KiB", *extra)
        found = list(store.rglob("*.tessera-index.json"))
        assert len(found) == 1, found
        index = json.loads(found[0].read_text())
    assert index["records"] == 3000, {k: v for k, v in index.items() if k != "checkpoints"}

    plan_file = tmp_path / "plan.json"
    run(tessera_bin, "slice", url, "--count", "4", *extra, "-o", str(plan_file))
    slices = json.loads(plan_file.read_text())
    assert len(slices) >= 2
    assert all(s["url"] == url for s in slices)
    assert sum(s["record_count"] for s in slices) == 3000

    parts = []
    for i in range(len(slices)):
        part = tmp_path / f"part{i}.fq"
        run(tessera_bin, "slice", "get", str(plan_file), "--slice", str(i), "-o", str(part))
        parts.append(part.read_bytes())
        assert parts[-1].count(b"\n") == 4 * slices[i]["record_count"]
    assert b"".join(parts) == raw

    # Bad input: a slice that does not exist; an object changed since it was indexed.
    run(tessera_bin, "slice", "get", str(plan_file), "--slice", str(len(slices)), ok=False)
    changed = _fastq(3000, seed=8)
    cloud.put(name, gzip.compress(changed, mtime=0) if compressed else changed)
    # Planning compares the index with the object's size and ETag.
    again = tmp_path / "again.json"
    proc = run(tessera_bin, "slice", url, "--count", "4", *extra, "-o", str(again), ok=False)
    assert url in proc.stderr
    # Fetching a planned slice asks the store for the indexed ETag (If-Match).
    if cloud.objects.honours_if_match(cloud.bucket, cloud.key_of(url)):
        proc = run(tessera_bin, "slice", "get", str(plan_file), "--slice", "0", ok=False)
        assert url in proc.stderr

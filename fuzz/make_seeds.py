"""Write the seed corpus of every fuzz target under fuzz/corpus/TARGET/.

Seeds are small valid inputs (and a few near misses) from which the fuzzer
mutates; the test suite replays them all. Binary seeds (LAS/LAZ, TIFF,
imzML, MeasurementSet tables) come from the field's own writers (laspy,
rasterio, pyimzml, python-casacore) and the
index and slice descriptors from the tessera binary, so run it with the test
virtual environment and a built binary:

    target/test-venv/bin/python fuzz/make_seeds.py target/debug/tessera

Existing files are kept (crash regressions live beside the seeds); seeds are
named ``seed-*`` and rewritten.
"""

from __future__ import annotations

import gzip as gz
import io
import json
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent / "corpus"


def put(target: str, name: str, data: bytes | str) -> None:
    """Write one seed."""
    d = ROOT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / f"seed-{name}").write_bytes(data.encode() if isinstance(data, str) else data)


def bgzf(data: bytes, block: int = 40) -> bytes:
    """BGZF blocks of ``block`` bytes, then the end-of-file block."""

    def one(chunk: bytes) -> bytes:
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        cdata = c.compress(chunk) + c.flush()
        head = bytes([0x1F, 0x8B, 8, 4, 0, 0, 0, 0, 0, 0xFF, 6, 0, ord("B"), ord("C"), 2, 0])
        return head + struct.pack("<H", 18 + len(cdata) + 8 - 1) + cdata + struct.pack(
            "<II", zlib.crc32(chunk), len(chunk)
        )

    return b"".join(one(data[i : i + block]) for i in range(0, len(data), block)) + one(b"")

CSV = 'id,name,note\n1,alpha,"a, b"\n2,"multi\nline",x\n3,"q""uote",\n4,,last\n'
TSV = "a\tb\tc\n1\tx\t2\n3\ty\t4\n"
JSONL = '{"id":1,"name":"a","x":0.5}\n{"id":2,"name":null,"x":1e300}\n{"id":3,"name":"été"}\n'
FASTA = ">s1 first\nACGTACGT\nACG\n>s2\nNNNN\n>s3 empty\n>s4\nAC\r\nGT\r\n"
FASTQ = "@r1 d\nACGT\n+\n@@@@\n@r2\nAC\n+r2\n+!\n@r3\n\n+\n\n"
VCF = (
    "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    "1\t10\t.\tA\tT\t.\tPASS\t.\n1\t20\trs1\tG\tC\t50\tPASS\tDP=3\n2\t5\t.\tC\tG\t.\t.\t.\n"
)
TEXT = "line one\nline two\n\nlast without newline"


def text_seeds() -> None:
    put("csv_scan", "quoted", b"\x03\x09" + CSV.encode())
    put("csv_scan", "long", b"\x10\x20" + (CSV * 6).encode())
    put("read_text", "csv", b"\x00" + CSV.encode())
    put("read_text", "csv-types", b"\x00a,b,c,d\n1,2.5,true,2020-01-01\n-3,,false,2021-12-31\n")
    put("read_text", "tsv", b"\x01" + TSV.encode())
    put("read_text", "jsonl", b"\x02" + JSONL.encode())
    formats = ["csv", "tsv", "text", "jsonl", "fasta", "fastq", "vcf"]
    bodies = [CSV, TSV, TEXT, JSONL, FASTA, FASTQ, VCF]
    for f, (name, body) in enumerate(zip(formats, bodies)):
        for comp, cname in enumerate(["plain", "gzip", "bgzf"]):
            put("slice_records", f"{name}-{cname}", bytes([f, comp, 2, f * 3 + comp]) + body.encode())
    lines = "".join(f"record {i} " + "x" * (i % 17) + "\n" for i in range(120)).encode()
    put("gzip", "gzip", b"\x03\x01" + gz.compress(lines))
    put("gzip", "members", b"\x01\x04" + gz.compress(lines[:700]) + gz.compress(lines[700:]))
    put("gzip", "bgzf", b"\x02\x07" + bgzf(lines))
    put("gzip", "fastq-bgzf", b"\x00\x02" + bgzf(FASTQ.encode() * 5, 30))


def key_seeds() -> None:
    put("template", "typed", "**/v1/ad/{gene_id}/model_tissue_{tissue_id:int32}.tl\n"
        "data/v1/ad/GENE1/model_tissue_45.tl\ns3://bucket/data/v1/ad/G/model_tissue_-1.tl\n")
    put("template", "date", "logs/{day:date}/{host}-{n:int64}.json.gz\n"
        "logs/2024-02-29/web-1-17.json.gz\nlogs/2023-02-29/a-b-1.json.gz\n")
    put("template", "stars", "*/{a}_{b}/*.csv\nx/1_2/y.csv\nx/_/y.csv\nx/1_2_3/y.csv\n")
    put("template", "unicode", "état/{région}/{n:int32}\nétat/île/7\nétat/île/99999999999\n")


def server_seeds() -> None:
    q = [
        "filter=id:gt:1&sort=-name&columns=id,name&limit=2",
        "filter=name:like:a%25&filter=ok:eq:true&page=3",
        'filter=day:in:["2020-01-01","1970-01-01"]&sort=day,-id',
        "filter=at:gte:2020-01-01T00:00:00Z&filter=x:lt:NaN&cursor=MTA6YWJj",
        "filter=id:in:1,2,3&columns=x&format=csv",
        "version=3&as_of=2024-01-01T00:00:00Z&where=id%3E1&columns=a,b",
        "date_key=day&id_key=user:100&version=v1&keep_last=true",
    ]
    for i, s in enumerate(q):
        put("query_string", str(i), s)
    sql = [
        "SELECT id, name FROM t WHERE id > 1 ORDER BY name LIMIT 3",
        "WITH a AS (SELECT count(*) AS n FROM t) SELECT * FROM a",
        "EXPLAIN SELECT * FROM t",
        "VALUES (1, 'a'), (2, 'b')",
        "SELECT day, sum(x) FROM t GROUP BY day HAVING sum(x) > 0",
        "CREATE TABLE u AS SELECT * FROM t",
        "INSERT INTO t VALUES (1, 'a', NULL, 0.0, true, NULL)",
        "COPY t TO '/tmp/x.csv'",
        "SET datafusion.execution.batch_size = 1",
        "DROP TABLE t",
        "CREATE EXTERNAL TABLE e STORED AS CSV LOCATION '/etc/passwd'",
        "SELECT * FROM t; DELETE FROM t",
    ]
    for i, s in enumerate(sql):
        put("sql", str(i), s)
    put("config", "full", """bind = "127.0.0.1:8080"
store = "s3://bucket/data"
auth = "auth.toml"
insecure = false
single_writer = false

[limits]
request_timeout = "30s"
max_page_size = 10000
max_concurrent_queries = 128
max_body = "1GB"
sql_row_limit = 100000
refresh_interval = "5s"
shutdown_timeout = "30s"
cache_memory = "512MB"

[query_parquet]
template = "state={statename}/dname={dname}/{dname}.parquet"

[tables.sales]
location = "state=california/dname=sales/sales.parquet"
[tables.events]
location = "warehouse/events/"
format = "csv"
namespace = "team-a"
[tables.orders]
dataset = "shop/orders"
version = 12
[tables.models]
manifest = "manifests/models.parquet"
""")
    put("config", "bad", 'bind = "0.0.0.0:99999"\n[limits]\nmax_body = "-1GB"\nrequest_timeout = "0s"\n')
    sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    put("auth", "tokens", f'[[tokens]]\nname = "etl"\nsha256 = "{sha}"\nnamespace = "team-a"\n'
        'role = "write"\n\0Bearer test')
    put("auth", "jwt", '[jwt]\njwks = "jwks.json"\nissuer = "https://issuer.example/pool"\n'
        'audience = ["a", "b"]\nrole_claim = "groups"\ndefault_role = "admin"\n\0Bearer a.b.c')
    put("jwt", "token", b"\x00Bearer tsr_fuzz-known-token")
    put("jwt", "other", b"\x00bearer  tsr_other ")
    claims = {
        "sub": "team-a", "iss": "https://issuer.example/pool", "aud": "tessera-api",
        "exp": 4102444800, "roles": ["read", "tessera:write"],
    }
    for mode in range(1, 8):
        put("jwt", f"claims-{mode}", bytes([mode]) + json.dumps(claims).encode())
    put("jwt", "expired", b"\x01" + json.dumps({**claims, "exp": 1}).encode())
    put("jwt", "audiences", b"\x02" + json.dumps({**claims, "aud": ["x", "tessera-api"]}).encode())


def binary_seeds(tessera: str) -> None:
    import laspy
    import numpy as np

    for fmt, version, compressed in [(0, "1.2", False), (3, "1.4", False), (6, "1.4", True)]:
        header = laspy.LasHeader(point_format=fmt, version=version)
        header.scales = [0.01, 0.01, 0.01]
        las = laspy.LasData(header)
        n = 20
        las.x = np.linspace(0, 10, n)
        las.y = np.linspace(5, -5, n)
        las.z = np.arange(n) * 0.5
        buf = io.BytesIO()
        las.write(buf, do_compress=compressed)
        put("las", f"pf{fmt}{'-laz' if compressed else ''}", bytes([fmt + 1]) + buf.getvalue())

    import rasterio
    from rasterio.transform import from_origin

    with tempfile.TemporaryDirectory() as tmp:
        for name, opts in [
            ("deflate", {"compress": "deflate", "dtype": "uint16", "count": 1}),
            ("lzw-rgb", {"compress": "lzw", "dtype": "uint8", "count": 3}),
            ("none-float", {"dtype": "float32", "count": 1}),
        ]:
            path = Path(tmp) / f"{name}.tif"
            with rasterio.open(
                path, "w", driver="GTiff", width=64, height=48, tiled=True, blockxsize=16,
                blockysize=16, crs="EPSG:4326", transform=from_origin(0, 48, 1, 1), **opts,
            ) as dst:
                data = np.arange(64 * 48 * opts["count"]).reshape(opts["count"], 48, 64)
                dst.write(data.astype(opts["dtype"]))
                if name == "deflate":
                    dst.build_overviews([2], rasterio.enums.Resampling.nearest)
            put("cog", name, bytes([len(name)]) + path.read_bytes())

        from pyimzml.ImzMLWriter import ImzMLWriter

        for mode, comp in [("continuous", None), ("processed", None), ("processed", "zlib")]:
            base = Path(tmp) / f"im-{mode}-{comp}"
            kw = {"mode": mode}
            if comp:
                from pyimzml.compression import ZlibCompression

                kw["intensity_compression"] = ZlibCompression()
            with ImzMLWriter(str(base), **kw) as w:
                mz = np.linspace(100, 200, 8)
                for i, (x, y) in enumerate([(1, 1), (2, 1), (1, 2), (2, 2), (3, 1)]):
                    w.addSpectrum(mz if mode == "continuous" else mz + i, np.arange(8.0) * i, (x, y))
            xml = base.with_suffix(".imzML").read_bytes()
            ibd = base.with_suffix(".ibd").read_bytes()
            put("imzml", f"{mode}-{comp}", bytes([1]) + xml + b"\0" + ibd)

        # Index and slice descriptors, as tessera writes them.
        samples = {
            "reads.fastq.gz": gz.compress((FASTQ * 20).encode()),
            "calls.vcf": VCF.encode(),
            "genome.fasta": (FASTA * 10).encode(),
            "table.csv": (CSV + "5,e,f\n" * 30).encode(),
        }
        for name, data in samples.items():
            path = Path(tmp) / name
            path.write_bytes(data)
            subprocess.run([tessera, "index", str(path), "-q"], check=True)
            idx = Path(str(path) + ".tsidx")
            if not idx.exists():
                idx = next(Path(tmp).glob(name + "*.json"), None) or next(
                    p for p in Path(tmp).iterdir() if p.name.startswith(name) and p != path
                )
            put("descriptors", f"index-{name}", idx.read_bytes())
            out = subprocess.run(
                [tessera, "slice", str(path), "--count", "3"], check=True, capture_output=True
            ).stdout
            put("descriptors", f"slices-{name}", out)
            first = json.loads(out)[0]
            put("descriptors", f"slice-{name}", json.dumps(first))


def ms_seeds() -> None:
    """MeasurementSet main tables (python-casacore, through the test
    fixtures' generator), packed as (name length, name, data length, data)
    records after a plan byte; subtables are left out (slices copy them)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "crates/slice/tests/fixtures/ms"))
    import make_ms  # noqa: E402

    with tempfile.TemporaryDirectory() as tmp:
        for layout, plan in [("default", 0), ("casa", 1), ("tiledcolumn", 3)]:
            path = Path(tmp) / f"{layout}.ms"
            make_ms.main(["build", str(path), "--layout", layout, "--ntimes", "4", "--nant", "3",
                          "--nchan", "4", "--ncorr", "2", "--seed", "1"])
            packed = bytearray([plan])
            for f in sorted(path.iterdir()):
                if f.is_file():
                    body = f.read_bytes()
                    packed += bytes([len(f.name)]) + f.name.encode() + struct.pack("<I", len(body)) + body
            put("ms", layout, bytes(packed))


def main() -> None:
    ms_seeds()
    text_seeds()
    key_seeds()
    server_seeds()
    binary_seeds(sys.argv[1] if len(sys.argv) > 1 else "target/debug/tessera")
    for d in sorted(ROOT.iterdir()):
        print(f"{d.name}: {len(list(d.iterdir()))} files")


if __name__ == "__main__":
    main()

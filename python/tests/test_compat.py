"""tessera.compat: the reference tools' own usage examples, with only the
import changed, on data the tests make (a local folder and the test S3
server), checked against that data."""

from __future__ import annotations

import csv
import datetime
import gzip
import io
import json
import math
import pickle
import random
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.json as pajson
import pyarrow.parquet as pq
import pytest

from tessera.compat import (
    CSV,
    FASTA,
    VCF,
    CloudObject,
    FASTQGZip,
    GZipText,
    ManifestLookup,
    S3DataPacker,
    UTF8Text,
    generate_manifest,
    metadata_to_schema,
    partition_chunk_lines,
    partition_chunk_size,
    partition_chunks_strategy,
    partition_num_chunks,
    partition_reads_batches,
    partition_sequences_per_chunk,
    whole_words_strategy,
)
from tessera.errors import StaleIndexError, TesseraError

from _objects import get, names_in, put

# -- object helpers (local paths and s3:// URLs) ----------------------------------


def read_parquet(url: str) -> pa.Table:
    return pq.read_table(io.BytesIO(get(url)))


def read_jsonl(url: str) -> pa.Table:
    return pajson.read_json(io.BytesIO(get(url)))


def writer(base: str) -> dict:
    """Packing keywords for a store: the test S3 server (Garage) does not
    enforce conditional writes, so packs there promise a single writer."""
    return {"single_writer": True} if base.startswith("s3://") else {}


def bucket_and_prefix(base: str, sub: str) -> tuple[str, str]:
    """The reference's (bucket, prefix) for a folder of the test store."""
    if base.startswith("s3://"):
        bucket, _, key = base[len("s3://") :].partition("/")
        return bucket, f"{key}/{sub}"
    return base, sub


# -- Data Access Optimizer ----------------------------------------------------------

COMBOS = [("GENE123", 45), ("GENE123", 7), ("GENE9", 45), ("BRCA1", 0), ("TP53", 12), ("TP53", 45)]


def make_model_files(base: str) -> None:
    for gene, tissue in COMBOS:
        put(f"{base}/data/prefix/v1/ad/{gene}/model_tissue_{tissue}.tl", f"{gene}:{tissue}".encode())
    # Objects that do not fit the layout are skipped.
    put(f"{base}/data/prefix/README.md", b"not a model")
    put(f"{base}/data/prefix/v1/ad/GENE1/model_tissue_x.tl", b"tissue is not a number")


def test_data_access_optimizer_readme(store_base: str, tmp_path: Path) -> None:
    make_model_files(store_base)
    bucket, prefix = bucket_and_prefix(store_base, "data/prefix/")
    output = f"{store_base}/out/manifest.parquet"

    # --- the README's example, import changed ---
    generate_manifest(
        source_bucket=bucket,
        source_prefix=prefix,
        output_file=output,
        aws_profile=None,
    )
    table = read_parquet(output)
    assert table.num_rows == len(COMBOS)
    assert {"gene_id", "tissue_id", "file_path"} <= set(table.column_names)
    assert table.schema.field("tissue_id").type == pa.int32()
    got = {(g, t) for g, t in zip(table["gene_id"].to_pylist(), table["tissue_id"].to_pylist())}
    assert got == set(COMBOS)

    lookup = ManifestLookup(output, tmp_dir=str(tmp_path / "cache"))
    exists = lookup.exists("GENE123", "tissue_45")
    assert exists is True
    assert lookup.exists("GENE123", 45) and lookup.exists("GENE123", "45")
    assert lookup.exists("GENE123", "model_tissue_7")
    assert not lookup.exists("GENE123", "tissue_46")
    assert not lookup.exists("NOPE", "tissue_45")

    s3_path = lookup.get_s3_file_path("GENE123", "tissue_45")
    assert s3_path is not None and s3_path.endswith("data/prefix/v1/ad/GENE123/model_tissue_45.tl")
    if store_base.startswith("s3://"):
        assert s3_path.startswith(store_base)
    assert lookup.get_s3_file_path("GENE123", "tissue_46") is None

    local_path = lookup.get_file_path("GENE123", "tissue_45")
    assert isinstance(local_path, str)
    assert Path(local_path).read_bytes() == b"GENE123:45"
    if store_base.startswith("s3://"):
        assert Path(local_path).resolve().is_relative_to((tmp_path / "cache").resolve())
        # A second call is served by the cache: same file, same bytes.
        assert lookup.get_file_path("GENE123", 45) == local_path
    assert lookup.get_file_path("GENE123", "tissue_46") is None

    gene_records = lookup.get_records_for_gene("GENE123")
    assert {(r.gene_id, r.tissue_id) for r in gene_records} == {
        c for c in COMBOS if c[0] == "GENE123"
    }
    for r in gene_records:
        assert r.file_path.endswith(f"/v1/ad/{r.gene_id}/model_tissue_{r.tissue_id}.tl")
        assert "Record(gene_id=GENE123" in repr(r)

    tissue_records = lookup.get_records_for_tissue("tissue_45")
    assert sorted((r.gene_id, r.tissue_id) for r in tissue_records) == sorted(
        c for c in COMBOS if c[1] == 45
    )
    # Tissue 0 is a value like any other.
    assert [(r.gene_id, r.tissue_id) for r in lookup.get_records_for_tissue(0)] == [("BRCA1", 0)]
    assert lookup.exists("BRCA1", 0) and not lookup.exists("GENE123", 0)
    assert {(r.gene_id, r.tissue_id) for r in lookup.query(gene_id="TP53")} == {
        ("TP53", 12),
        ("TP53", 45),
    }

    unique_genes = lookup.get_unique("gene_id")
    unique_tissues = lookup.get_unique("tissue_id")
    assert sorted(unique_genes) == sorted({g for g, _ in COMBOS})
    assert len(unique_genes) == len(set(unique_genes))
    assert sorted(unique_tissues) == sorted({t for _, t in COMBOS})
    lookup.close()
    with pytest.raises(ValueError):
        lookup.exists("GENE123", "tissue_45")

    with ManifestLookup(output) as lookup:
        result = lookup.exists("GENE123", "tissue_45")
    assert result
    with pytest.raises(ValueError):
        lookup.get_unique("gene_id")


def test_generate_manifest_twice_and_keys_at_the_prefix_root(store_base: str, tmp_path: Path) -> None:
    # Objects right under the listed folder, at v1/…: on a bucket whose keys
    # start with v1/, the reference's pattern skips them.
    put(f"{store_base}/v1/ad/G1/model_tissue_1.tl", b"1")
    put(f"{store_base}/v1/ad/G2/model_tissue_2.tl", b"2")
    bucket, prefix = bucket_and_prefix(store_base, "")
    out = tmp_path / "m.parquet"
    generate_manifest(bucket, prefix, out)
    generate_manifest(bucket, prefix, out)  # a second build of the same prefix works
    with ManifestLookup(out) as lookup:
        assert lookup.exists("G1", 1) and lookup.exists("G2", "tissue_2")
        assert Path(lookup.get_file_path("G2", 2)).read_bytes() == b"2"


def test_generate_manifest_other_template_and_strict(tmp_path: Path) -> None:
    base = str(tmp_path / "bucket")
    put(f"{base}/runs/2024-01-02/S1/G7.tl", b"a")
    put(f"{base}/runs/2024-01-03/S2/G7.tl", b"b")
    put(f"{base}/runs/notes.txt", b"c")
    out = tmp_path / "m.parquet"
    template = "**/runs/{day:date}/{tissue_id}/{gene_id}.tl"
    with pytest.raises(TesseraError):
        generate_manifest(base, "", out, template=template, strict=True)
    assert not out.exists(), "nothing is written when the build fails"
    generate_manifest(base, "", out, template=template)
    with ManifestLookup(out) as lookup:
        assert {(r.tissue_id, r.day) for r in lookup.get_records_for_gene("G7")} == {
            ("S1", datetime.date(2024, 1, 2)),
            ("S2", datetime.date(2024, 1, 3)),
        }


def write_reference_manifest(path: str, rows: list[tuple[str, int, str]]) -> None:
    """A manifest as the reference tool writes it (pandas + pyarrow schema)."""
    schema = pa.schema(
        [
            pa.field("gene_id", pa.dictionary(pa.int32(), pa.string())),
            pa.field("tissue_id", pa.int32()),
            pa.field("file_path", pa.string()),
        ]
    )
    table = pa.table(
        {
            "gene_id": [r[0] for r in rows],
            "tissue_id": [r[1] for r in rows],
            "file_path": [r[2] for r in rows],
        }
    ).cast(schema)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="snappy")
    put(path, buf.getvalue())


def test_reference_manifest_with_local_paths(tmp_path: Path) -> None:
    files = {}
    for gene, tissue in COMBOS:
        p = tmp_path / "objs" / gene / f"model_tissue_{tissue}.tl"
        put(str(p), f"{gene}/{tissue}".encode())
        files[(gene, tissue)] = str(p)
    manifest = str(tmp_path / "ref.parquet")
    write_reference_manifest(manifest, [(g, t, f) for (g, t), f in files.items()])
    with ManifestLookup(manifest) as lookup:
        assert lookup.exists("TP53", "tissue_12")
        assert lookup.get_s3_file_path("TP53", 12) == files[("TP53", 12)]
        assert Path(lookup.get_file_path("TP53", 12)).read_bytes() == b"TP53/12"
        assert {r.tissue_id for r in lookup.get_records_for_gene("TP53")} == {12, 45}


def test_reference_manifest_with_bare_keys_on_s3(s3_base: str, tmp_path: Path) -> None:
    """The reference stores keys without the bucket; they are keys of the
    manifest's bucket, as the reference downloads them."""
    bucket, _, key_base = s3_base[len("s3://") :].partition("/")
    rows = []
    for gene, tissue in COMBOS:
        key = f"{key_base}/v1/ad/{gene}/model_tissue_{tissue}.tl"
        put(f"s3://{bucket}/{key}", f"bare {gene} {tissue}".encode())
        rows.append((gene, tissue, key))
    manifest = f"{s3_base}/manifest.parquet"
    write_reference_manifest(manifest, rows)
    with ManifestLookup(manifest, str(tmp_path / "dl")) as lookup:
        key = lookup.get_s3_file_path("GENE9", "tissue_45")
        assert key == f"{key_base}/v1/ad/GENE9/model_tissue_45.tl"
        local = lookup.get_file_path("GENE9", "tissue_45")
        assert Path(local).read_bytes() == b"bare GENE9 45"
        assert lookup.get_file_path("GENE9", 46) is None


def test_manifest_lookup_bad_input(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ManifestLookup(str(tmp_path / "missing.parquet"))
    with pytest.raises(TypeError):
        ManifestLookup(123)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bogus"):
        ManifestLookup(str(tmp_path / "missing.parquet"), aws_credentials={"bogus": "x"})

    no_tissue = tmp_path / "no_tissue.parquet"
    pq.write_table(pa.table({"gene_id": ["G"], "file_path": ["/x"]}), no_tissue)
    with pytest.raises(ValueError, match="tissue_id"):
        ManifestLookup(str(no_tissue))

    manifest = str(tmp_path / "ok.parquet")
    write_reference_manifest(manifest, [("G", 1, "/x/1"), ("G", 2, "/x/2")])
    with ManifestLookup(manifest) as lookup:
        with pytest.raises(ValueError):
            lookup.exists(None, None)
        with pytest.raises(ValueError):
            lookup.exists("G", "tissue_abc")  # not an int32, with or without the prefix
        with pytest.raises(ValueError):
            lookup.get_unique("file_path")
        with pytest.raises(TypeError):
            lookup.get_unique(3)  # type: ignore[arg-type]
        assert lookup.exists("G", "tissue_2") and not lookup.exists("G", 3)


def test_generate_manifest_bad_input(tmp_path: Path) -> None:
    base = str(tmp_path / "bucket")
    put(f"{base}/data/README.md", b"nothing matches")
    out = tmp_path / "m.parquet"
    with pytest.raises(TesseraError):
        generate_manifest(base, "data/", out)
    assert not out.exists()
    with pytest.raises(TesseraError):
        generate_manifest(base, "no/such/prefix/", out)
    with pytest.raises(TypeError):
        generate_manifest(base, 5, out)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        generate_manifest("", "data/", out)


# -- s3_data_packer -----------------------------------------------------------------


def make_rows(n: int, start: int, seed: int) -> list[tuple[int, str, float]]:
    rng = random.Random(seed)
    return [
        (start + i, "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(24)), round(rng.uniform(-1e6, 1e6), 3))
        for i in range(n)
    ]


def csv_bytes(rows: list[tuple[int, str, float]]) -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["id", "name", "amount"])
    w.writerows(rows)
    return out.getvalue().encode()


def table_rows(table: pa.Table) -> list[tuple]:
    cols = [table[c].to_pylist() for c in ("id", "name", "amount")]
    return list(zip(*cols))


def packed_files(folder: str, stem: str, ext: str) -> list[str]:
    """The table's files in a folder, checked to be numbered 0, 1, 2, …"""
    pattern = re.compile(rf"^{re.escape(stem)}_(\d+)\.{re.escape(ext)}$")
    numbered = sorted(
        (int(m.group(1)), n) for n in names_in(folder) if (m := pattern.match(n))
    )
    assert [n for n, _ in numbered] == list(range(len(numbered))), numbered
    return [name for _, name in numbered]


def test_s3_data_packer_readme(store_base: str) -> None:
    first = make_rows(12000, 0, seed=1)
    second = make_rows(6000, 12000, seed=2)
    put(f"{store_base}/land/table/table_data_final_NEW_1969.csv", csv_bytes(first))
    put(f"{store_base}/land/table/table_data_new.csv", csv_bytes(second))

    # --- the README's example, import changed (a small limit for small data) ---
    packer = S3DataPacker(
        f"{store_base}/land",
        f"{store_base}/db",
        "table",
        file_limit_gigabytes=0.0002,  # 200 kB
        **writer(store_base),
    )
    report = packer.pack_data()
    assert report is not None

    files = packed_files(f"{store_base}/db/table", "table", "snappy.parquet")
    assert len(files) > 1
    tables = [read_parquet(f"{store_base}/db/table/{f}") for f in files]
    for t in tables:
        assert t.schema.field("id").type == pa.int64()
        assert t.schema.field("amount").type == pa.float64()
    rows = [r for t in tables for r in table_rows(t)]
    assert sorted(rows) == sorted(first + second), "every input row exactly once"
    assert rows == first + second or rows == second + first, "files are filled in order"

    # Running it again adds nothing twice (the reference appends every input again).
    packer.pack_data()
    files_again = packed_files(f"{store_base}/db/table", "table", "snappy.parquet")
    rows_again = [
        r for f in files_again for r in table_rows(read_parquet(f"{store_base}/db/table/{f}"))
    ]
    assert sorted(rows_again) == sorted(first + second)


def test_s3_data_packer_partition_appends_to_existing(store_base: str) -> None:
    existing = make_rows(10, 100000, seed=3)
    new = make_rows(500, 0, seed=4)
    put(f"{store_base}/land/table/table_data_new.csv", csv_bytes(new))
    part = f"{store_base}/db/table/some_value=1649-01-30"
    buf = io.BytesIO()
    pq.write_table(
        pa.table(
            {
                "id": pa.array([r[0] for r in existing], pa.int64()),
                "name": pa.array([r[1] for r in existing], pa.string()),
                "amount": pa.array([r[2] for r in existing], pa.float64()),
            }
        ),
        buf,
    )
    put(f"{part}/table_0.snappy.parquet", buf.getvalue())

    # --- the README's partition example, import changed ---
    packer = S3DataPacker(
        f"{store_base}/land",
        f"{store_base}/db",
        "table",
        output_partition={"some_value": "1649-01-30"},
        **writer(store_base),
    )
    packer.pack_data()

    files = packed_files(part, "table", "snappy.parquet")
    assert files == ["table_0.snappy.parquet"], "a small table fills the existing file"
    rows = table_rows(read_parquet(f"{part}/table_0.snappy.parquet"))
    assert rows[: len(existing)] == existing, "old rows first"
    assert sorted(rows[len(existing) :]) == sorted(new)
    assert names_in(f"{store_base}/db/table") == [], "only the partition folder is written"


def test_s3_data_packer_formats_suffix_and_metadata(tmp_path: Path) -> None:
    base = str(tmp_path)
    rows = make_rows(300, 0, seed=5)
    put(f"{base}/land/table/a.csv", csv_bytes(rows))
    # Only csv inputs are read when input_file_ext selects them.
    put(f"{base}/land/table/other.jsonl", b'{"id": -1, "name": "ignored", "amount": 0.5}\n')

    S3DataPacker(
        f"{base}/land", f"{base}/db", "table", output_file_ext="jsonl", input_file_ext="csv"
    ).pack_data()
    files = packed_files(f"{base}/db/table", "table", "jsonl")
    got = [r for f in files for r in table_rows(read_jsonl(f"{base}/db/table/{f}"))]
    assert sorted(got) == sorted(rows)

    metadata = {
        "columns": [
            {"name": "id", "type": "int32"},
            {"name": "name", "type_category": "string"},
            {"name": "amount", "type": "float32"},
        ]
    }
    S3DataPacker(
        f"{base}/land",
        f"{base}/db2",
        "table",
        metadata=metadata,
        output_suffix="v2",
        input_file_ext=".csv",
    ).pack_data()
    files = packed_files(f"{base}/db2/table", "table_v2", "snappy.parquet")
    assert files == ["table_v2_0.snappy.parquet"]
    t = read_parquet(f"{base}/db2/table/{files[0]}")
    assert t.schema.field("id").type == pa.int32()
    assert t.schema.field("amount").type == pa.float32()
    assert sorted(t["id"].to_pylist()) == [r[0] for r in rows]


def test_s3_data_packer_nothing_to_pack(tmp_path: Path) -> None:
    (tmp_path / "land" / "table").mkdir(parents=True)
    packer = S3DataPacker(str(tmp_path / "land"), str(tmp_path / "db"), "table")
    assert packer.pack_data() is None
    assert names_in(str(tmp_path / "db" / "table")) == []


def test_s3_data_packer_bad_input(tmp_path: Path) -> None:
    base = str(tmp_path)
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            S3DataPacker(base, base, "table", file_limit_gigabytes=bad)
    with pytest.raises(TypeError):
        S3DataPacker(base, base, "table", file_limit_gigabytes="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        S3DataPacker(base, base, "table", output_partition="some_value=1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="list<int64>"):
        S3DataPacker(base, base, "table", metadata={"columns": [{"name": "x", "type": "list<int64>"}]})
    with pytest.raises(ValueError):
        S3DataPacker(base, base, "table", metadata={"columns": []})
    with pytest.raises(ValueError):
        S3DataPacker(base, base, "")

    # Existing output of another format: an error, and nothing is written.
    put(f"{base}/land/table/a.csv", csv_bytes(make_rows(5, 0, seed=6)))
    put(f"{base}/db/table/table_0.csv", csv_bytes(make_rows(5, 50, seed=7)))
    with pytest.raises(TesseraError):
        S3DataPacker(f"{base}/land", f"{base}/db", "table").pack_data()
    assert names_in(f"{base}/db/table") == ["table_0.csv"]


def test_metadata_to_schema(tmp_path: Path) -> None:
    meta = {
        "columns": [
            {"name": "price", "type": "decimal128(10,2)"},
            {"name": "at", "type": "timestamp(ms)"},
            {"name": "day", "type": "date32"},
            {"name": "flag", "type_category": "boolean"},
            {"name": "part", "type": "string"},
        ],
        "partitions": ["part"],
    }
    path = tmp_path / "meta.json"
    path.write_text(json.dumps(meta))
    for given in (meta, str(path)):
        schema = metadata_to_schema(given)
        assert schema.names == ["price", "at", "day", "flag"]
        assert schema.field("price").type == pa.decimal128(10, 2)
        assert schema.field("at").type == pa.timestamp("ms")
        assert schema.field("flag").type == pa.bool_()
    assert metadata_to_schema(None) is None
    with pytest.raises(ValueError):
        metadata_to_schema({"columns": [{"name": "x", "type_category": "mystery"}]})
    with pytest.raises(TypeError):
        metadata_to_schema(42)


# -- Dataplug -----------------------------------------------------------------------


def make_reads(n: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    reads = []
    for i in range(n):
        length = rng.randint(30, 150)
        seq = "".join(rng.choice("ACGT") for _ in range(length))
        qual = "".join(chr(rng.randint(33, 73)) for _ in range(length))
        reads.append([f"@SRR6052133.{i} {i}/1", seq, "+", qual])
    return reads


def fastq_gz(reads: list[list[str]]) -> bytes:
    return gzip.compress("".join(line + "\n" for read in reads for line in read).encode())


def as_reads(lines: list[str]) -> list[list[str]]:
    assert len(lines) % 4 == 0, "whole reads only"
    return [lines[i : i + 4] for i in range(0, len(lines), 4)]


def process_fastq_data(data_slice) -> list[str]:
    """The README's worker function: evaluate the slice on the worker."""
    fastq_reads = data_slice.get()
    return [r[0] for r in as_reads(fastq_reads)]


def test_dataplug_readme(store_base: str) -> None:
    reads = make_reads(3001, seed=8)
    url = f"{store_base}/genomics/SRR6052133_1.fastq.gz"
    put(url, fastq_gz(reads))

    # --- the README's example, import changed ---
    co = CloudObject.from_s3(FASTQGZip, url)
    assert not co.is_preprocessed()
    co.preprocess(parallel_config={"backend": "dask"})
    assert co.is_preprocessed()
    data_slices = co.partition(partition_reads_batches, num_batches=7)

    per_batch = math.ceil(len(reads) / 7)
    assert len(data_slices) == math.ceil(len(reads) / per_batch)
    got: list[list[str]] = []
    for s in data_slices:
        fastq_reads = s.get()
        assert isinstance(fastq_reads, list) and all(isinstance(x, str) for x in fastq_reads)
        got.extend(as_reads(fastq_reads))
    assert got == reads, "every read exactly once, in order"
    assert [len(as_reads(s.get())) for s in data_slices[:-1]] == [per_batch] * (len(data_slices) - 1)

    # Line numbers as the reference's slices carry them: 1-based, end exclusive.
    assert data_slices[0].line_0 == 1
    assert data_slices[-1].line_1 == 4 * len(reads) + 1
    for a, b in zip(data_slices, data_slices[1:]):
        assert a.line_1 == b.line_0
    assert co.get_attribute("total_lines") == 4 * len(reads)
    assert co["total_records"] == len(reads)

    # Slices travel to workers pickled.
    for s in data_slices:
        assert pickle.loads(pickle.dumps(s)).get() == s.get()

    if store_base.startswith("s3://"):
        assert co.exists()
        assert co.size == len(get(url))
        assert co.path.bucket and co.path.key.endswith("SRR6052133_1.fastq.gz")


def test_dataplug_readme_with_dask(tmp_path: Path) -> None:
    db = pytest.importorskip("dask.bag")
    reads = make_reads(800, seed=9)
    url = str(tmp_path / "SRR6052133_1.fastq.gz")
    put(url, fastq_gz(reads))
    co = CloudObject.from_s3(FASTQGZip, url)
    co.preprocess(parallel_config={"backend": "dask"})
    data_slices = co.partition(partition_reads_batches, num_batches=4)
    dask_bag = db.from_sequence(data_slices, npartitions=len(data_slices))
    names = dask_bag.map(process_fastq_data).compute(scheduler="processes")
    assert [n for batch in names for n in batch] == [r[0] for r in reads]


def test_dataplug_fastq_chunking_strategies(tmp_path: Path) -> None:
    reads = make_reads(3001, seed=10)
    url = str(tmp_path / "reads.fq.gz")
    put(url, fastq_gz(reads))
    co = CloudObject.from_s3(FASTQGZip, url)
    co.preprocess()

    expand = co.partition(partition_sequences_per_chunk, seq_per_chunk=500)
    assert [s.record_count for s in expand] == [500] * 6 + [1]
    merge = co.partition(partition_sequences_per_chunk, 500, strategy="merge")
    assert [s.record_count for s in merge] == [500] * 5 + [501]
    for slices in (expand, merge):
        assert [r for s in slices for r in as_reads(s.get())] == reads
    merged = pickle.loads(pickle.dumps(merge[-1]))
    assert as_reads(merged.get()) == reads[2500:]

    by_lines = co.partition(partition_chunk_lines, lines_per_chunk=400)
    assert all(s.record_count == 100 for s in by_lines[:-1])
    assert [r for s in by_lines for r in as_reads(list(s.iter_lines()))] == reads

    out = tmp_path / "slice0.fq"
    by_lines[0].to_file(out)
    assert as_reads(out.read_text().splitlines()) == reads[:100]


def test_dataplug_gzip_text_and_plain_text(tmp_path: Path) -> None:
    rng = random.Random(11)
    lines = [f"line {i} " + "x" * rng.randint(0, 80) for i in range(10000)]
    text = "\n".join(lines)  # no final newline: the last line is kept all the same
    gz_url = str(tmp_path / "log.txt.gz")
    put(gz_url, gzip.compress(text.encode()))
    co = CloudObject.from_s3(GZipText, gz_url)
    co.preprocess()
    slices = co.partition(partition_chunk_lines, 3000)
    assert [len(s.get()) for s in slices] == [3000, 3000, 3000, 1000]
    assert [x for s in slices for x in s.get()] == lines
    assert co.get_attribute("total_lines") == len(lines)

    txt_url = str(tmp_path / "words.txt")
    put(txt_url, (text + "\n").encode())
    co = CloudObject.from_s3(UTF8Text, txt_url)
    co.preprocess()
    slices = co.partition(whole_words_strategy, num_chunks=4)
    assert all(isinstance(s.get(), str) for s in slices)
    assert "".join(s.get() for s in slices) == text + "\n"
    assert len(pickle.dumps(slices[0])) < 16 * 1024, "a plain-text slice pickles small"


def make_csv(n: int) -> tuple[list[str], list[list[str]], bytes]:
    header = ["id", "name", "note"]
    rng = random.Random(12)
    rows = []
    for i in range(n):
        note = "plain" if i % 7 else 'has "quotes", a comma,\nand a newline'
        rows.append([str(i), "".join(rng.choice("abcdef") for _ in range(20)), note])
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return header, rows, out.getvalue().encode()


def test_dataplug_csv(store_base: str) -> None:
    header, rows, data = make_csv(6000)
    url = f"{store_base}/tables/data.csv"
    put(url, data)
    co = CloudObject.from_s3(CSV, url)
    co.preprocess()
    assert co.get_attribute("columns") == header
    for slices in (
        co.partition(partition_num_chunks, num_chunks=4),
        co.partition(partition_chunk_size, chunk_size=64 * 1024),
    ):
        assert len(slices) > 1
        got = []
        for s in slices:
            text = s.get()
            assert isinstance(text, str)
            parsed = list(csv.reader(io.StringIO(text)))
            assert parsed[0] == header, "every slice starts with the original header"
            got.extend(parsed[1:])
        assert got == rows, "every row exactly once, quoted newlines kept whole"
        assert sum(s.to_arrow().num_rows for s in slices) == len(rows)


def test_dataplug_csv_as_pandas_and_tsv(tmp_path: Path) -> None:
    pytest.importorskip("pandas")
    header, rows, data = make_csv(500)
    url = str(tmp_path / "data.csv")
    put(url, data)
    co = CloudObject.from_s3(CSV, url)
    co.preprocess()
    frames = [s.get_as_pandas() for s in co.partition(partition_num_chunks, 3)]
    assert sum(len(f) for f in frames) == len(rows)
    assert list(frames[0].columns) == header

    tsv = "\n".join("\t".join(r) for r in [["a", "b"], ["1", "x"], ["2", "y"]]) + "\n"
    tsv_url = str(tmp_path / "data.tab")
    put(tsv_url, tsv.encode())
    co = CloudObject.from_s3(CSV, tsv_url)
    co.preprocess(extra_args={"separator": "\t"})
    assert co.get_attribute("columns") == ["a", "b"]
    assert "".join(s.get() for s in co.partition(partition_num_chunks, 2)).endswith("2\ty\n")


def test_dataplug_vcf(tmp_path: Path) -> None:
    header = [
        "##fileformat=VCFv4.2",
        '##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
    ]
    rng = random.Random(13)
    body = [
        f"chr1\t{1000 + i}\trs{i}\t{rng.choice('ACGT')}\t{rng.choice('ACGT')}\t50\tPASS\tDP={rng.randint(1, 99)}"
        for i in range(8000)
    ]
    url = str(tmp_path / "calls.vcf")
    put(url, ("\n".join(header + body) + "\n").encode())
    co = CloudObject.from_s3(VCF, url)
    co.preprocess()
    assert co.get_attribute("columns") == header[-1][1:].split("\t")
    slices = co.partition(partition_num_chunks, num_chunks=4)
    assert len(slices) > 1
    got = []
    for s in slices:
        text = s.get()
        assert text.startswith("##fileformat=VCF")
        got.extend(line for line in text.splitlines() if not line.startswith("#"))
    assert got == body


def test_dataplug_fasta(tmp_path: Path) -> None:
    rng = random.Random(14)
    seqs = {f"seq{i}": "".join(rng.choice("ACGT") for _ in range(rng.randint(2000, 9000))) for i in range(30)}
    text = "".join(
        f">{name} sample sequence\n" + "".join(seq[j : j + 60] + "\n" for j in range(0, len(seq), 60))
        for name, seq in seqs.items()
    )
    url = str(tmp_path / "genome.fasta")
    put(url, text.encode())
    co = CloudObject.from_s3(FASTA, url)
    co.preprocess()
    assert co.get_attribute("num_sequences") == len(seqs)
    slices = co.partition(partition_chunks_strategy, num_chunks=6)
    assert len(slices) > 1
    got: dict[str, str] = {}
    order: list[str] = []
    for s in slices:
        data = s.get()
        assert isinstance(data, bytes) and data.startswith(b">")
        name = None
        for line in data.decode().splitlines():
            if line.startswith(">"):
                name = line[1:].split()[0]
                if name not in got:
                    got[name] = ""
                    order.append(name)
            else:
                assert name is not None
                got[name] += line
    assert order == list(seqs)
    assert got == seqs, "every base exactly once"


def test_dataplug_slices_carry_no_credentials(tmp_path: Path) -> None:
    reads = make_reads(50, seed=15)
    url = str(tmp_path / "r.fastq.gz")
    put(url, fastq_gz(reads))
    secret = "sekrit-never-pickled-0123"
    for s3_config in (
        {"credentials": {"AccessKeyId": "AKIDTESTONLY", "SecretAccessKey": secret}},
        {"aws_access_key_id": "AKIDTESTONLY", "aws_secret_access_key": secret},
    ):
        co = CloudObject.from_s3(FASTQGZip, url, s3_config=s3_config)
        co.preprocess()
        slices = co.partition(partition_reads_batches, num_batches=2)
        assert [r for s in slices for r in as_reads(s.get())] == reads
        assert secret.encode() not in pickle.dumps(slices)
        assert secret.encode() not in pickle.dumps(co)
        again = [pickle.loads(pickle.dumps(s)) for s in slices]
        assert [r for s in again for r in as_reads(s.get())] == reads
    with pytest.raises(ValueError, match="AccessKeyId"):
        CloudObject.from_s3(FASTQGZip, url, s3_config={"credentials": {"SecretAccessKey": secret}})


def test_dataplug_stale_and_missing(tmp_path: Path) -> None:
    url = str(tmp_path / "r.fastq.gz")
    put(url, fastq_gz(make_reads(40, seed=16)))
    co = CloudObject.from_s3(FASTQGZip, url)
    with pytest.raises(TesseraError):
        co.partition(partition_reads_batches, num_batches=2)  # not preprocessed
    co.preprocess()
    put(url, fastq_gz(make_reads(41, seed=17)))  # the object changes
    assert not co.is_preprocessed()
    with pytest.raises(StaleIndexError):
        co.partition(partition_reads_batches, num_batches=2)
    co.preprocess()
    assert sum(s.record_count for s in co.partition(partition_reads_batches, 2)) == 41

    missing = CloudObject.from_s3(FASTQGZip, str(tmp_path / "nope.fastq.gz"))
    assert not missing.exists()
    with pytest.raises(FileNotFoundError):
        missing.preprocess()
    with pytest.raises(FileNotFoundError):
        missing.size


def test_dataplug_bad_input(tmp_path: Path) -> None:
    header, rows, data = make_csv(20)
    url = str(tmp_path / "d.csv")
    put(url, data)
    with pytest.raises(TypeError):
        CloudObject.from_s3("CSV", url)  # type: ignore[arg-type]
    co = CloudObject.from_s3(CSV, url)
    with pytest.raises(ValueError):
        co.preprocess(extra_args={"separator": ";"})
    with pytest.raises(ValueError):
        co.preprocess(extra_args={"quotechar": "'"})
    co.preprocess()
    with pytest.raises(ValueError):
        co.partition(partition_reads_batches, num_batches=2)  # not FASTQ
    with pytest.raises(ValueError):
        co.partition(partition_num_chunks, num_chunks=0)
    with pytest.raises(TypeError):
        co.partition(partition_num_chunks, num_chunks="3")
    with pytest.raises(AttributeError):
        co.get_attribute("dtypes")
    with pytest.raises(TypeError):
        co.partition("partition_num_chunks")

    fq = str(tmp_path / "r.fq.gz")
    put(fq, fastq_gz(make_reads(10, seed=18)))
    fco = CloudObject.from_s3(FASTQGZip, fq)
    fco.preprocess()
    with pytest.raises(ValueError):
        fco.partition(partition_sequences_per_chunk, 3, strategy="sideways")
    with pytest.raises(ValueError):
        CloudObject.from_s3(FASTQGZip, fq, s3_config={"role_arn": "arn:aws:iam::1:role/x"})
    with pytest.raises(ValueError):
        CloudObject.from_s3(FASTQGZip, fq, metadata_bucket="meta")  # a bucket for a local file
    # More batches than reads: fewer slices, none empty (the reference makes empty ones).
    many = fco.partition(partition_reads_batches, num_batches=50)
    assert len(many) == 10 and all(s.record_count == 1 for s in many)

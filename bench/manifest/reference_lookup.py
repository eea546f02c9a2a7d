"""The reference tool's lookups, re-created: DuckDB CREATE TABLE AS SELECT,
an index on (gene_id, tissue_id), parameterised SELECT per lookup.
Prints JSON: load seconds and median microseconds per lookup."""
import json
import statistics
import sys
import time

import duckdb

manifest, queries_file = sys.argv[1], sys.argv[2]
queries = []
with open(queries_file) as f:
    for line in f:
        g, t = line.rstrip("\n").split("\t")
        queries.append((g, int(t)))
queries = queries[:20_000]
t0 = time.perf_counter()
con = duckdb.connect()
con.execute(f"CREATE TABLE manifest AS SELECT * FROM read_parquet('{manifest}')")
con.execute("CREATE INDEX idx ON manifest (gene_id, tissue_id)")
load = time.perf_counter() - t0
rounds = []
for _ in range(3):
    t = time.perf_counter()
    hits = 0
    for g, ti in queries:
        r = con.execute(
            "SELECT file_path FROM manifest WHERE gene_id = ? AND tissue_id = ?", [g, ti]
        ).fetchone()
        hits += r is not None
    rounds.append((time.perf_counter() - t) / len(queries) * 1e9)
print(json.dumps({"load_s": load, "lookup_ns": statistics.median(rounds), "hits": hits, "lookups": len(queries)}))

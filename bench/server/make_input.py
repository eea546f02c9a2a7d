"""A 1,000,000-row Parquet file at state=california/dname=sales/sales.parquet,
written by pyarrow with its defaults (what most users' files look like)."""
import sys

import pyarrow as pa
import pyarrow.parquet as pq

root = sys.argv[1]
n = 1_000_000
ids = pa.array(range(1, n + 1), pa.int64())
table = pa.table(
    {
        "id": ids,
        "name": pa.array([f"Product {i % 997}" for i in range(n)]),
        "region": pa.array(["north", "south", "east", "west"] * (n // 4)),
        "sales": pa.array([(i * 7919) % 100_000 / 100 for i in range(n)], pa.float64()),
        "units": pa.array([(i * 31) % 500 for i in range(n)], pa.int32()),
    }
)
import os

path = f"{root}/state=california/dname=sales"
os.makedirs(path, exist_ok=True)
pq.write_table(table, f"{path}/sales.parquet")
md = pq.ParquetFile(f"{path}/sales.parquet").metadata
print(f"   {n} rows, {md.num_row_groups} row group(s), {os.path.getsize(f'{path}/sales.parquet')} bytes")

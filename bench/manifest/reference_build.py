"""The reference tool's build, re-created: regex per line into pandas,
dictionary-encoded gene_id, pa.Table.from_pandas, snappy write_table."""
import re
import sys

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

paths_file, out = sys.argv[1], sys.argv[2]
pattern = re.compile(r".*/v1/ad/([^/]+)/model_tissue_(\d+)\.tl$")
genes, tissues, paths = [], [], []
with open(paths_file) as f:
    for line in f:
        line = line.strip()
        m = pattern.match(line)
        if m:
            genes.append(m.group(1))
            tissues.append(int(m.group(2)))
            paths.append(line)
df = pd.DataFrame({"gene_id": genes, "tissue_id": tissues, "file_path": paths})
df["gene_id"] = df["gene_id"].astype("category")
df["tissue_id"] = df["tissue_id"].astype("int32")
table = pa.Table.from_pandas(df, preserve_index=False)
pq.write_table(table, out, compression="snappy")
print(len(df))

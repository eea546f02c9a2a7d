"""Generate N object keys in the reference layout (sorted as an S3 listing
returns them) plus ~1 % that do not match, and a queries file.

usage: gen.py N KEYS_OUT QUERIES_OUT
"""
import random
import sys

n = int(sys.argv[1])
keys_out, queries_out = sys.argv[2], sys.argv[3]
tissues = 500
genes = max(1, n // tissues)
tissue_order = sorted(range(1, tissues + 1), key=str)  # listing order
prefix = "s3://reference-bucket/models/v1/ad/"
with open(keys_out, "w", buffering=1 << 22) as f:
    for g in range(genes):
        gene = f"ENSG{g:011d}"
        lines = [f"{prefix}{gene}/model_tissue_{t}.tl\n" for t in tissue_order]
        # ~1 % noise that must be skipped
        lines.append(f"{prefix}{gene}/_SUCCESS\n")
        lines.append(f"{prefix}{gene}/model_tissue_x.tl.tmp\n")
        lines.append(f"{prefix}{gene}/notes/readme.md\n")
        lines.append(f"{prefix}{gene}/model_tissue_{tissue_order[0]}.tl.bak\n")
        lines.append(f"{prefix}{gene}/logs/run.log\n")
        f.write("".join(lines))
rng = random.Random(42)
with open(queries_out, "w") as f:
    for i in range(100_000):
        g = rng.randrange(genes)
        t = rng.randrange(1, tissues + 1)
        if i % 10 == 0:
            t += tissues  # a miss
        f.write(f"ENSG{g:011d}\t{t}\n")

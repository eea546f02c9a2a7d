#!/usr/bin/env bash
# Benchmark: the Python package against its Python peers, in one run, on the
# same generated data as bench/datasets, bench/manifest and bench/slice:
#   * the 10-million-row dataset read into pandas
#     (`tessera.Datasets(store).get(name).to_pandas()`) against the reference
#     tool's 100K-row csv.gz chunks (`read_csv` + `concat`) and Python
#     deltalake (`DeltaTable(path).to_pandas()`); into pyarrow (tessera `get`
#     against `to_pyarrow_table()`); one day (`where=` on the date key);
#   * 1,000,000 `Manifest.exists(gene_id=..., tissue_id=...)` calls against
#     the reference tool's DuckDB lookup (fewer lookups: it is slow; per call);
#   * a 64-slice FASTQ.gz plan evaluated on a 2-worker Dask LocalCluster
#     (processes) against fetching the slices one after another in one
#     process and against reading the whole file with gzip (and on a plain
#     multiprocessing pool, to tell Dask's cost per task from tessera's).
# Every case runs in its own process (its peak RSS is its own). Prints
# medians of RUNS runs, peak RSS and ratios.
#
#   bash bench/python/run.sh
#   ROWS=1000000 KEYS=100000 LOOKUPS=100000 FASTQ_MB=100 RUNS=1 bash bench/python/run.sh  # a quick look
#   PARTS="manifest slices" bash bench/python/run.sh                                       # some parts only
#
# The package is built by `pip install ./python` (maturin, release profile).
# BENCH_WHEEL=PATH installs that wheel instead (no build), as BENCH_BIN_DIR
# does for the binary; the binary itself gives one extra reference row.
set -euo pipefail
. "$(dirname "$0")/../common.sh"

. "$(dirname "$0")/../../scripts/debian.sh"
need_commands pigz:pigz

# The peers, pinned (pyarrow, deltalake and duckdb as in scripts/requirements-test.txt).
bench_setup python "pyarrow==26.0.1 pandas==3.1.1 numpy==2.4.6 deltalake==1.6.6 duckdb==2.0.0 dask==2026.8.0 distributed==2026.8.0"

if [ -n "${BENCH_WHEEL:-}" ]; then
  echo "== installing the tessera package from $BENCH_WHEEL (BENCH_WHEEL)"
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps --force-reinstall "$BENCH_WHEEL"
else
  echo "== building the tessera package (pip install ./python: maturin, release profile)"
  MATURIN_PEP517_ARGS="${MATURIN_PEP517_ARGS:---locked}" \
    "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps --force-reinstall ./python
fi
"$VENV/bin/python" -c 'import tessera' || { echo "the tessera package does not import" >&2; exit 1; }
"$VENV/bin/pip" check --disable-pip-version-check || echo "== warning: pip check found conflicts (above)"

exec "$VENV/bin/python" bench/python/bench.py \
  --out "$OUT" --tessera "$BIN/tessera" --parts "${PARTS:-datasets manifest slices}" \
  --runs "${RUNS:-3}" --rows "${ROWS:-10000000}" \
  --keys "${KEYS:-1000000}" --lookups "${LOOKUPS:-1000000}" --peer-lookups "${PEER_LOOKUPS:-10000}" \
  --fastq-mb "${FASTQ_MB:-1000}" --slices "${SLICES:-64}" --workers "${WORKERS:-2}"

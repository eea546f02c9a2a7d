#!/usr/bin/env bash
# Benchmark: tessera pack against DuckDB's COPY ... TO (FORMAT parquet,
# FILE_SIZE_BYTES ...) on the same generated CSV (about 1 GB, 8 mixed-type
# columns, quoted strings with commas, 4 files), in one run. Prints wall
# time, peak RSS, output file sizes and their deviation from the limit, and
# the ratios (medians of RUNS runs).
#
#   bash bench/pack/run.sh
#   GB=0.2 RUNS=1 bash bench/pack/run.sh     # a quick look
set -euo pipefail
. "$(dirname "$0")/../common.sh"
bench_setup pack "duckdb"

exec "$VENV/bin/python" bench/pack/bench.py \
  --tessera "$BIN/tessera" --out "$OUT" \
  --gb "${GB:-1}" --runs "${RUNS:-3}" --limit "${LIMIT:-256000000}"

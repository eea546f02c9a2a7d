#!/usr/bin/env bash
# Benchmark: versioned datasets. A generated table (10 million rows: a date
# over one year, ids, numbers, strings) is stored and read back, in one run,
# by tessera (put / get), by the reference tool's storage approach (pandas
# writing 100K-row csv.gz chunks per date folder, read back by
# concatenating) and by the Python deltalake writer/reader. Then one day of
# the year is read. Prints wall time, peak RSS, bytes touched and ratios
# (medians of RUNS runs).
#
#   bash bench/datasets/run.sh
#   ROWS=1000000 RUNS=1 bash bench/datasets/run.sh    # a quick look
set -euo pipefail
. "$(dirname "$0")/../common.sh"
bench_setup datasets "-r bench/datasets/requirements.txt"

exec "$VENV/bin/python" bench/datasets/bench.py \
  --tessera "$BIN/tessera" --out "$OUT" \
  --rows "${ROWS:-10000000}" --runs "${RUNS:-3}"

#!/usr/bin/env bash
# Benchmark: memory of loads into many partitions. A generated CSV (10 M
# rows of events over ten years and a million users) is loaded with
# `tessera put --date-key event_date` (3,650 day partitions) and with
# `--id-key user_id:100` (10,000 ID ranges), and packed with
# `tessera pack --partition-by` on the same day column. Prints wall time,
# peak RSS and files written per run (medians of RUNS runs), against the
# 1 GiB default budget.
#
#   bash bench/memory/run.sh
#   ROWS=3000000 RUNS=1 bash bench/memory/run.sh          # a quick look
#   BENCH_BEFORE_DIR=/tmp/bin-before bash bench/memory/run.sh
#       # also runs the tessera binary in that folder on the same input and
#       # prints both figures and their ratio (a before/after comparison)
set -euo pipefail
. "$(dirname "$0")/../common.sh"
bench_setup memory ""

exec python3 bench/memory/bench.py \
  --tessera "$BIN/tessera" ${BENCH_BEFORE_DIR:+--before "$BENCH_BEFORE_DIR/tessera"} \
  --out "$OUT" --rows "${ROWS:-10000000}" --runs "${RUNS:-3}"

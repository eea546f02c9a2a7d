#!/usr/bin/env bash
# Benchmark: tessera manifest build / load / lookup against the reference
# tool's approach (pandas + pyarrow to build, DuckDB to look up), on the same
# generated keys, in one run. Prints medians and ratios.
#
#   bash bench/manifest/run.sh            # 1M and 10M keys
#   SIZES="1000000" bash bench/manifest/run.sh
set -euo pipefail
. "$(dirname "$0")/../common.sh"
bench_setup manifest "pandas pyarrow duckdb" -p tessera-manifest --example manifest_lookup

exec "$VENV/bin/python" bench/manifest/bench.py \
  --tessera "$BIN/tessera" \
  --lookup "$BIN/examples/manifest_lookup" \
  --out "$OUT" --sizes "${SIZES:-1000000 10000000}"

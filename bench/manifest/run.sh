#!/usr/bin/env bash
# Benchmark: tessera manifest build / load / lookup against the reference
# tool's approach (pandas + pyarrow to build, DuckDB to look up), on the same
# generated keys, in one run. Prints medians and ratios.
#
#   bash bench/manifest/run.sh            # 1M and 10M keys
#   SIZES="1000000" bash bench/manifest/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
OUT=${BENCH_OUT:-$ROOT/bench/out/manifest}
mkdir -p "$OUT"

echo "== building tessera (release)"
cargo build --release --locked -p tessera-cli -p tessera-manifest --bin tessera --example manifest_lookup
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

VENV=${BENCH_VENV:-$ROOT/bench/.venv}
if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating a Python environment for the peers in $VENV"
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q pandas pyarrow duckdb

exec "$VENV/bin/python" bench/manifest/bench.py \
  --tessera "$TARGET/release/tessera" \
  --lookup "$TARGET/release/examples/manifest_lookup" \
  --out "$OUT" --sizes "${SIZES:-1000000 10000000}"

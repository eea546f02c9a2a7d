#!/usr/bin/env bash
# Fuzzing campaign: every target in fuzz/ under libFuzzer for SECONDS each
# (default 600), JOBS at a time (default 2), then a table of executions,
# coverage, corpus size and crashes per target. Exits 1 if any target
# crashed; each crash is saved under target/fuzz-artifacts/TARGET/ with the
# command that replays it.
#
#   bash bench/fuzz/run.sh                      # every target, 10 minutes each
#   SECONDS_PER_TARGET=60 bash bench/fuzz/run.sh template gzip
#
# What it needs, installed when missing: a nightly toolchain (rustup) and
# cargo-fuzz 0.13.2 (crates.io). The targets are built in release mode with
# debug assertions (overflow checks on) and no sanitizer: tessera denies
# unsafe code but for a few audited SIMD loads, and zlib is the pure-Rust
# zlib-rs, so AddressSanitizer would buy little for doubling the build time.
#
# The fuzzer's new inputs go to target/fuzz-corpus/TARGET/ (not committed);
# the seeds in fuzz/corpus/TARGET/ are read, never written. A crash, once
# fixed, is copied into fuzz/corpus/TARGET/ so that the test suite replays it.
set -euo pipefail
cd "$(dirname "$0")/../.."

PER="${SECONDS_PER_TARGET:-600}"
JOBS="${JOBS:-2}"
RSS_MB="${RSS_MB:-2048}"
TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"

if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version 2>/dev/null | grep -q '0.13'; then
  cargo install cargo-fuzz --version 0.13.2 --locked
fi

FLAGS=(--features libfuzzer -s none -a -O)
echo "== building the fuzz targets (cargo +nightly fuzz build ${FLAGS[*]})"
cargo +nightly fuzz build "${FLAGS[@]}"
BINDIR="target/$TRIPLE/release"

if [ "$#" -gt 0 ]; then
  TARGETS=("$@")
else
  mapfile -t TARGETS < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^tessera-fuzz$')
fi

LOGS=target/fuzz-logs
mkdir -p "$LOGS"
run_one() {
  local t="$1"
  mkdir -p "target/fuzz-corpus/$t" "target/fuzz-artifacts/$t"
  "$BINDIR/$t" -max_total_time="$PER" -print_final_stats=1 -rss_limit_mb="$RSS_MB" \
    -timeout=20 -artifact_prefix="target/fuzz-artifacts/$t/" \
    "target/fuzz-corpus/$t" "fuzz/corpus/$t" > "$LOGS/$t.log" 2>&1 || true
}

echo "== ${#TARGETS[@]} targets, ${PER} s each, $JOBS at a time"
running=0
for t in "${TARGETS[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

crashed=0
printf '\n%-15s %8s %12s %9s %7s %8s %7s %8s\n' target seconds executions exec/s cov features corpus crashes
for t in "${TARGETS[@]}"; do
  log="$LOGS/$t.log"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  secs=$(sed -n 's/.*Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -a -E '#[0-9]+.*cov: ' "$log" | tail -1 || true)
  cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
  ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
  corpus=$(echo "$last" | sed -n 's/.*corp: \([0-9]*\).*/\1/p')
  n=$(find "target/fuzz-artifacts/$t" -type f | wc -l)
  [ -z "$secs" ] && secs="stopped"
  printf '%-15s %8s %12s %9s %7s %8s %7s %8s\n' "$t" "$secs" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corpus:-?}" "$n"
  if [ "$n" -gt 0 ]; then
    crashed=1
    for f in "target/fuzz-artifacts/$t"/*; do
      echo "   crash: $f   replay: $BINDIR/$t $f"
    done
  fi
done
exit "$crashed"

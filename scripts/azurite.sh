#!/usr/bin/env bash
# Start a throw-away Azurite (the Azure Blob Storage emulator) on loopback.
#
#   source scripts/azurite.sh && azurite_start   # exports AZURE_*, AZURITE_BLOB_STORAGE_URL, TESSERA_TEST_AZ
#   azurite_stop
#
# Installs the npm package azurite 3.35.0 into target/azurite when it is
# missing (3.35.0 is the last release that runs on Node.js 20; later ones ask
# for 21 or 22). Only the blob service runs, on a free port, with its data in
# memory: nothing is written to disk and nothing is left after azurite_stop.
# The container tessera-test is created in the emulator's well-known account
# devstoreaccount1; tessera (object_store) reaches it with
# AZURE_STORAGE_USE_EMULATOR=true and AZURITE_BLOB_STORAGE_URL.

AZURITE_VERSION="3.35.0"
AZURITE_CONTAINER="tessera-test"
# The emulator's documented, public account and key (not a secret).
AZURITE_ACCOUNT="devstoreaccount1"
AZURITE_KEY="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

. "$(dirname "${BASH_SOURCE[0]}")/debian.sh"

_azurite_home() {
  echo "${AZURITE_HOME:-${CARGO_TARGET_DIR:-target}/azurite}"
}

azurite_install() {
  need_commands node:nodejs npm:npm
  local home
  home="$(_azurite_home)"
  if [ -f "$home/node_modules/azurite/package.json" ] && node -e '
      const v = require(process.argv[1]).version;
      process.exit(v === process.argv[2] ? 0 : 1)' \
      "$(cd "$home" && pwd)/node_modules/azurite/package.json" "$AZURITE_VERSION"; then
    return 0
  fi
  echo "== installing azurite ${AZURITE_VERSION} (npm, into $home)"
  mkdir -p "$home"
  npm install --prefix "$home" --no-save --no-audit --no-fund --loglevel=error \
    "azurite@${AZURITE_VERSION}" >/dev/null
}

_azurite_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Create a container with a Shared Key signed request (Python's standard
# library only). Prints the HTTP status; 201 (created) or 409 (exists) is fine.
_azurite_create_container() {
  python3 - "$1" "$AZURITE_ACCOUNT" "$AZURITE_KEY" "$2" <<'PY'
import base64, hashlib, hmac, sys, urllib.error, urllib.request
from email.utils import formatdate

endpoint, account, key, container = sys.argv[1:5]
headers = {"x-ms-date": formatdate(usegmt=True), "x-ms-version": "2021-08-06"}
canonical = "".join(f"{k}:{headers[k]}\n" for k in sorted(headers))
resource = f"/{account}/{account}/{container}\nrestype:container"
# VERB, then 11 standard headers (all empty here), then x-ms-* and the resource.
to_sign = "PUT\n" + "\n" * 11 + canonical + resource
mac = hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest()
headers["Authorization"] = f"SharedKey {account}:{base64.b64encode(mac).decode()}"
req = urllib.request.Request(
    f"{endpoint}/{account}/{container}?restype=container", method="PUT", headers=headers
)
try:
    with urllib.request.urlopen(req, timeout=5) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
except OSError:
    print(0)
PY
}

azurite_start() {
  azurite_install || return 1
  local home main port status i
  home="$(cd "$(_azurite_home)" && pwd)"
  main="$home/node_modules/azurite/dist/src/blob/main.js"
  AZURITE_DIR="$(mktemp -d "${TMPDIR:-/tmp}/tessera-azurite.XXXXXX")"
  export AZURITE_DIR
  port=$(_azurite_free_port)
  # In memory: no --location (Azurite refuses both); run from the temporary
  # folder so that nothing can land in the work tree.
  (cd "$AZURITE_DIR" && exec node "$main" --blobHost 127.0.0.1 --blobPort "$port" \
    --inMemoryPersistence --disableTelemetry --skipApiVersionCheck --loose \
    > "$AZURITE_DIR/server.log" 2>&1) &
  AZURITE_PID=$!
  export AZURITE_PID
  status=0
  for i in $(seq 1 100); do
    if ! kill -0 "$AZURITE_PID" 2>/dev/null; then
      echo "azurite exited early:"; cat "$AZURITE_DIR/server.log"; azurite_stop; return 1
    fi
    status=$(_azurite_create_container "http://127.0.0.1:$port" "$AZURITE_CONTAINER")
    if [ "$status" = 201 ] || [ "$status" = 409 ]; then break; fi
    sleep 0.1
  done
  if [ "$status" != 201 ] && [ "$status" != 409 ]; then
    echo "azurite: could not create the container (HTTP $status):"; cat "$AZURITE_DIR/server.log"
    azurite_stop; return 1
  fi
  export AZURE_STORAGE_USE_EMULATOR=true
  export AZURITE_BLOB_STORAGE_URL="http://127.0.0.1:$port"
  export AZURE_STORAGE_ACCOUNT_NAME="$AZURITE_ACCOUNT"
  export AZURE_STORAGE_ACCOUNT_KEY="$AZURITE_KEY"
  export TESSERA_TEST_AZ="az://$AZURITE_CONTAINER"
  echo "== azurite running at $AZURITE_BLOB_STORAGE_URL (container $AZURITE_CONTAINER, in memory)"
}

azurite_stop() {
  if [ -n "${AZURITE_PID:-}" ]; then
    kill "$AZURITE_PID" 2>/dev/null || true
    wait "$AZURITE_PID" 2>/dev/null || true
    unset AZURITE_PID
  fi
  if [ -n "${AZURITE_DIR:-}" ] && [ -d "$AZURITE_DIR" ]; then
    rm -rf "$AZURITE_DIR"
  fi
  unset AZURITE_DIR
}

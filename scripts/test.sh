#!/usr/bin/env bash
# The test command: formatting, lints, and the whole test suite, with the
# storage tests run against memory://, a local folder and a real S3 server
# (a throw-away Garage node started here and stopped on exit).
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/garage.sh
trap garage_stop EXIT INT TERM

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

# Build the tests before starting the server so its lifetime is short.
echo "== building tests"
cargo test --workspace --locked --no-run

# Other engines (Python deltalake, DuckDB, Polars) for the interoperability
# tests, in a throw-away virtual environment kept beside the build.
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
VENV="$TARGET_DIR/test-venv"
echo "== python test environment ($VENV)"
if ! "$VENV/bin/python" -c 'import deltalake, duckdb, polars' 2>/dev/null \
    || ! cmp -s scripts/requirements-test.txt "$VENV/requirements-test.txt"; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
    cp scripts/requirements-test.txt "$VENV/requirements-test.txt"
fi
export TESSERA_TEST_PYTHON="$(cd "$VENV" && pwd)/bin/python"
export TESSERA_REQUIRE_PYTHON=1

# Peers of the slicing tests: files made by gzip, pigz and bgzip, and
# samtools reading the .fai tessera writes (Debian packages).
. scripts/debian.sh
need_commands gzip:gzip pigz:pigz bgzip:tabix samtools:samtools
export TESSERA_REQUIRE_TOOLS=1

garage_start
# In this script the S3 tests must run: a missing server is a failure, not a skip.
export TESSERA_REQUIRE_S3=1
export TESSERA_MAX_RETRIES=2

echo "== cargo test"
# Unoptimised async code keeps large futures on the stack: a property test
# that runs a whole Parquet read inside one test thread overflowed the
# default 2 MiB once. Test threads get 16 MiB.
export RUST_MIN_STACK="${RUST_MIN_STACK:-16777216}"
cargo test --workspace --locked -- "$@"

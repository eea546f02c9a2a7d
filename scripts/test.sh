#!/usr/bin/env bash
# The test command: formatting, lints, and the whole test suite, with the
# storage tests run against memory://, a local folder and real servers, all
# throw-away, started here and stopped on exit: Garage (S3), moto's S3
# server (which enforces conditional writes, for concurrent writers),
# Azurite (Azure Blob Storage) and fake-gcs-server (Google Cloud Storage).
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/garage.sh
. scripts/moto.sh
. scripts/azurite.sh
. scripts/fakegcs.sh
trap 'garage_stop; moto_stop; azurite_stop; fakegcs_stop' EXIT INT TERM

# Seconds since the start, printed after each step (the test command's cost
# by part).
STARTED=$SECONDS
step_done() { echo "   ($1: $((SECONDS - STARTED)) s since the start)"; }

echo "== cargo fmt --check"
cargo fmt --all -- --check

# Lints and the test build are one compilation: clippy's driver compiles the
# workspace's own crates for the tests (as `cargo clippy` does in check mode,
# with the same lints and `-D warnings`), so the dependency tree is compiled
# once instead of once for clippy and once for the tests. Every later cargo
# command of this script keeps the same wrapper, so nothing is rebuilt.
if CLIPPY_DRIVER=$(rustup which clippy-driver 2>/dev/null) && [ -x "$CLIPPY_DRIVER" ]; then
    export RUSTC_WORKSPACE_WRAPPER="$CLIPPY_DRIVER"
    export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
    echo "== building tests, with clippy's lints (-D warnings)"
    cargo test --workspace --all-targets --locked --no-run
else
    echo "== cargo clippy"
    cargo clippy --workspace --all-targets --locked -- -D warnings
    echo "== building tests"
    cargo test --workspace --all-targets --locked --no-run
fi
step_done "lints and test build"

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
step_done "python environment"
export TESSERA_TEST_PYTHON="$(cd "$VENV" && pwd)/bin/python"
export TESSERA_REQUIRE_PYTHON=1

# Peers of the slicing tests: files made by gzip, pigz and bgzip, and
# samtools reading the .fai tessera writes (Debian packages).
. scripts/debian.sh
need_commands gzip:gzip pigz:pigz bgzip:tabix samtools:samtools
export TESSERA_REQUIRE_TOOLS=1

garage_start
# After the Python environment: moto and fake-gcs-server run from it.
moto_start
azurite_start
fakegcs_start
step_done "garage, moto, azurite and fake-gcs-server"
# In this script the storage tests must run: a missing server is a
# failure, not a skip.
export TESSERA_REQUIRE_S3=1 TESSERA_REQUIRE_S3_CONDITIONAL=1 TESSERA_REQUIRE_CLOUDS=1
export TESSERA_MAX_RETRIES=2

echo "== cargo test"
# Unoptimised async code keeps large futures on the stack: a property test
# that runs a whole Parquet read inside one test thread overflowed the
# default 2 MiB once. Test threads get 16 MiB.
export RUST_MIN_STACK="${RUST_MIN_STACK:-16777216}"
# --no-fail-fast: one run reports every failing test binary, not the first.
cargo test --workspace --locked --no-fail-fast -- "$@"
step_done "tests"

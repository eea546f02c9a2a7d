# Sourced by bench/*/run.sh: the repository root, an output folder, a
# release build, and the Python environment the peers run in.
#
#   bench_setup NAME "PIP PACKAGES or -r FILE" [EXTRA CARGO BUILD ARGS...]
# builds the binary exactly as the README's install does (the release
# profile, `-p tessera-cli`), then any extra targets, and sets ROOT, OUT
# (bench/out/NAME or $BENCH_OUT), TARGET, BIN (the folder holding `tessera`
# and `examples/`) and VENV ($BENCH_VENV).
#
# BENCH_BIN_DIR=DIR skips the build and runs the binaries in DIR instead
# (laid out like target/release): how a change is compared with the build
# before it on the same machine in one sitting.
bench_setup() {
  local name=$1 pip_args=$2
  shift 2
  ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  cd "$ROOT"
  OUT=${BENCH_OUT:-$ROOT/bench/out/$name}
  mkdir -p "$OUT"

  TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
  if [ -n "${BENCH_BIN_DIR:-}" ]; then
    BIN=$(cd "$BENCH_BIN_DIR" && pwd)
    echo "== using the binaries in $BIN (BENCH_BIN_DIR)"
  else
    echo "== building tessera (release, as the README installs it)"
    cargo build --release --locked -p tessera-cli
    if [ $# -gt 0 ]; then
      cargo build --release --locked "$@"
    fi
    BIN=$TARGET/release
  fi

  VENV=${BENCH_VENV:-$ROOT/bench/.venv}
  [ -n "$pip_args" ] || { VENV=""; return 0; }
  if [ ! -x "$VENV/bin/python" ]; then
    echo "== creating a Python environment for the peers in $VENV"
    python3 -m venv "$VENV"
  fi
  # shellcheck disable=SC2086
  "$VENV/bin/pip" install -q --disable-pip-version-check $pip_args
}

# Shared by the bench/*.sh entry points: builds the Python SDK in release
# mode (into target/release, its own feature set) and runs a benchmark
# script against it:  run_with_sdk bench/x_bench.py ARGS...
# Source it after `cd` to the repository root.
APIARY_VENV=${APIARY_VENV:-$HOME/.cache/apiary/venv}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/apiary/target}
export PYO3_PYTHON="$APIARY_VENV/bin/python"

run_with_sdk() {
  cargo build --release -p apiary-python
  local pkg
  pkg=$(mktemp -d)
  cp -r python/apiary "$pkg/apiary"
  rm -f "$pkg"/apiary/_apiary*.so
  cp "$CARGO_TARGET_DIR/release/lib_apiary.so" "$pkg/apiary/_apiary.abi3.so"
  local status=0
  PYTHONPATH="$pkg" "$APIARY_VENV/bin/python" -s "$@" || status=$?
  rm -rf "$pkg"
  return $status
}

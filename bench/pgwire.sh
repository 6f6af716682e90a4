#!/usr/bin/env bash
# Builds `apiary` and the Python SDK in release mode and runs the Postgres
# gateway benchmark:
#   bash bench/pgwire.sh [--rows N] [--copy-rows N] [--repeat K]
set -euo pipefail
cd "$(dirname "$0")/.."
APIARY_VENV=${APIARY_VENV:-$HOME/.cache/apiary/venv}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/apiary/target}
export PYO3_PYTHON="$APIARY_VENV/bin/python"

cargo build --release -p apiary-gateway --bin apiary
cargo build --release -p apiary-python
pkg=$(mktemp -d)
trap 'rm -rf "$pkg"' EXIT
cp -r python/apiary "$pkg/apiary"
rm -f "$pkg"/apiary/_apiary*.so
cp "$CARGO_TARGET_DIR/release/lib_apiary.so" "$pkg/apiary/_apiary.abi3.so"
APIARY_BIN="$CARGO_TARGET_DIR/release/apiary" PYTHONPATH="$pkg" "$APIARY_VENV/bin/python" -s bench/pgwire_bench.py "$@"

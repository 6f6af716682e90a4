#!/usr/bin/env bash
# Builds the Python SDK in release mode and runs the swarm benchmark:
#   bash bench/swarm.sh [--rows N] [--cells C] [--repeat K] [--root URI]
set -euo pipefail
cd "$(dirname "$0")/.."
APIARY_VENV=${APIARY_VENV:-$HOME/.cache/apiary/venv}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/apiary/target}
export PYO3_PYTHON="$APIARY_VENV/bin/python"

cargo build --release -p apiary-python
pkg=$(mktemp -d)
trap 'rm -rf "$pkg"' EXIT
cp -r python/apiary "$pkg/apiary"
rm -f "$pkg"/apiary/_apiary*.so
cp "$CARGO_TARGET_DIR/release/lib_apiary.so" "$pkg/apiary/_apiary.abi3.so"
PYTHONPATH="$pkg" "$APIARY_VENV/bin/python" -s bench/swarm_bench.py "$@"

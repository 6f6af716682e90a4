#!/usr/bin/env bash
# Builds `apiary` and the Python SDK in release mode and runs the Postgres
# gateway benchmark:
#   bash bench/pgwire.sh [--rows N] [--copy-rows N] [--repeat K]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
cargo build --release -p apiary-gateway --bin apiary
APIARY_BIN="$CARGO_TARGET_DIR/release/apiary" run_with_sdk bench/pgwire_bench.py "$@"

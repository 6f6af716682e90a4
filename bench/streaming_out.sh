#!/usr/bin/env bash
# Builds `apiary` and the Python SDK in release mode and measures reading a
# large frame out through the gateway (COPY TO STDOUT, a named cursor):
#   bash bench/streaming_out.sh [--rows N]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
cargo build --release -p apiary-gateway --bin apiary
APIARY_BIN="$CARGO_TARGET_DIR/release/apiary" run_with_sdk bench/streaming_out_bench.py "$@"

#!/usr/bin/env bash
# Builds the Python SDK in release mode and runs the tutorial benchmark
# against DuckDB.
#   bash bench/run.sh [--rows N] [--repeat K]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
run_with_sdk bench/tutorial_bench.py "$@"

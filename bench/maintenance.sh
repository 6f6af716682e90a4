#!/usr/bin/env bash
# Builds the Python SDK in release mode and runs the small-writes and
# compaction benchmark:
#   bash bench/maintenance.sh [--inserts N] [--repeat K]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
run_with_sdk bench/maintenance_bench.py "$@"

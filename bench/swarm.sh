#!/usr/bin/env bash
# Builds the Python SDK in release mode and runs the swarm benchmark:
#   bash bench/swarm.sh [--rows N] [--cells C] [--repeat K] [--root URI]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
run_with_sdk bench/swarm_bench.py "$@"

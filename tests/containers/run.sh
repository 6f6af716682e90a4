#!/usr/bin/env bash
# The container suite: builds the images (setup.sh) around the binary that
# tests/run.sh built, then runs the tutorial's compose file under podman
# (test_containers.py). Expects podman and podman-compose, which setup.sh
# installs when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
APIARY_VENV=${APIARY_VENV:-$HOME/.cache/apiary/venv}
bash tests/containers/setup.sh
PATH="$APIARY_VENV/bin:$PATH" VIRTUAL_ENV="$APIARY_VENV" PYTHONPATH="$PWD/python" \
  python -m pytest tests/containers -q -p no:cacheprovider

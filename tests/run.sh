#!/usr/bin/env bash
# Runs every test suite: Rust and Python, each against a local directory and
# against a real S3 server (SeaweedFS) that this script starts and stops;
# then the container suite (tests/containers), which builds apiary:latest
# around this build's binary and runs the tutorial's compose file.
# Expects the tools .ci/run installs: cargo, and a venv ($APIARY_VENV) with
# tests/requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

APIARY_VENV=${APIARY_VENV:-$HOME/.cache/apiary/venv}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/apiary/target}
export PYO3_PYTHON="$APIARY_VENV/bin/python"
export VIRTUAL_ENV="$APIARY_VENV"
export PATH="$APIARY_VENV/bin:$PATH"

work=$(mktemp -d)
cleanup() { python tests/s3server.py stop "$work/s3" || true; rm -rf "$work"; }
trap cleanup EXIT

echo "== starting the S3 test server"
while IFS= read -r line; do export "$line"; done < <(python tests/s3server.py start "$work/s3")
echo "S3 test server at $AWS_ENDPOINT_URL"

# One build of the whole workspace serves both the Rust tests and the Python
# package: building the extension separately (maturin) would resolve other
# features and rebuild DataFusion.
echo "== building"
cargo build --workspace --all-targets

echo "== Rust tests"
cargo test --workspace --all-targets

echo "== installing the Python package (editable, from this build)"
cp "$CARGO_TARGET_DIR/debug/lib_apiary.so" python/apiary/_apiary.abi3.so
site=$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$PWD/python" > "$site/apiary-dev.pth"

echo "== Python tests"
python -m pytest tests/python -q -p no:cacheprovider

# Last, because it publishes the tutorial's ports (9000, 5432-5435) on the host.
echo "== container suite: the tutorial's docker-compose.yml under podman"
bash tests/containers/run.sh

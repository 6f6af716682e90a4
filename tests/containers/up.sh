#!/usr/bin/env bash
# Starts the tutorial's swarm (S3 stand-in + three Apiary nodes) under podman
# and returns once S3 answers on localhost:9000 and every node is healthy.
# Needs tests/containers/setup.sh first; tests/containers/down.sh stops it.
#
# Two steps, because podman 4.3 cannot start a container whose dependency has
# dependencies of its own (node -> minio-init -> minio: "generating dependency
# graph ... not found in input list"); and podman-compose ignores
# `condition: service_healthy` before podman 4.6 (podman 4.3 runs no health
# checks by itself without systemd anyway):
#   1. S3 and its init job, whose success means the bucket exists;
#   2. the nodes with --no-deps (no --requires on the init job).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
project="${APIARY_COMPOSE_PROJECT:-apiary}"
venv="${APIARY_VENV:-$HOME/.cache/apiary/venv}"

"$here/compose.sh" up -d minio minio-init
status=$(podman wait "${project}_minio-init_1")
[ "$status" = 0 ] || { podman logs "${project}_minio-init_1" >&2; echo "minio-init exited $status" >&2; exit 1; }

# From the host, as the tutorial's client connects: signed, through the port.
"$venv/bin/python" - <<'PY'
import time
from pyarrow import fs
s3 = fs.S3FileSystem(access_key="apiary", secret_key="apiary123", region="us-east-1",
                     endpoint_override="http://localhost:9000", scheme="http")
deadline = time.time() + 60
while True:
    try:
        if s3.get_file_info("apiary-data").type == fs.FileType.Directory:
            break
    except OSError:
        pass
    if time.time() > deadline:
        raise SystemExit("S3 on localhost:9000 has no bucket apiary-data after 60 s")
    time.sleep(0.5)
PY

nodes=$("$here/compose.sh" config --services | grep -v '^minio')
"$here/compose.sh" up -d --no-deps $nodes

# Run every container's health check by hand (podman needs systemd timers to
# run them itself) until all of them pass: the nodes answer `apiary health`.
deadline=$((SECONDS + 90))
for name in $(podman ps --filter "label=io.podman.compose.project=$project" --format '{{.Names}}'); do
  until podman healthcheck run "$name" >/dev/null 2>&1; do
    if [ $SECONDS -gt $deadline ]; then
      podman logs --tail 20 "$name" >&2
      echo "$name is not healthy after 90 s" >&2
      exit 1
    fi
    sleep 1
  done
done
podman ps --filter "label=io.podman.compose.project=$project"

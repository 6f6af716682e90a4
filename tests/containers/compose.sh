#!/usr/bin/env bash
# podman-compose on the tutorial's docker-compose.yml with the S3 stand-in
# (compose.s3-standin.yml), from any directory:
#
#   tests/containers/compose.sh ps
#   tests/containers/compose.sh logs apiary-node-1
#   tests/containers/compose.sh up -d --no-deps --scale apiary-node-1=2 apiary-node-1
#
# (The tutorial's `up -d --scale apiary-node-1=2` leaves the new node Created:
# podman 4.3 cannot start it through its chained dependencies; see up.sh.)
#
# The project name is fixed (APIARY_COMPOSE_PROJECT, default "apiary") rather
# than the checkout's directory name, so containers are apiary_<service>_<n>
# and the network apiary_default wherever CI clones the repository.
#
# APIARY_COMPOSE_EXTRA: more override files, e.g. deploy/compose.postgres.yml.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
files=(-f "$repo/docker-compose.yml" -f "$repo/tests/containers/compose.s3-standin.yml")
for extra in ${APIARY_COMPOSE_EXTRA:-}; do files+=(-f "$extra"); done
exec "${APIARY_VENV:-$HOME/.cache/apiary/venv}/bin/podman-compose" \
  -p "${APIARY_COMPOSE_PROJECT:-apiary}" "${files[@]}" "$@"

#!/usr/bin/env bash
# Stops the swarm that up.sh started and removes its containers, network and
# volume (the bucket's data): `down -v`. Images stay (setup.sh makes them).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
project="${APIARY_COMPOSE_PROJECT:-apiary}"

# The nodes first, while S3 and the network's DNS are there for their last
# heartbeat (podman-compose stops everything at once; it doesn't know about
# --scale's extra containers and stops those last, when a node's S3 requests
# may hang until podman kills it after 10 s).
nodes=$(podman ps --filter "label=io.podman.compose.project=$project" --format '{{.Names}}' | grep -v "^${project}_minio" || true)
[ -z "$nodes" ] || podman stop $nodes >/dev/null
# --remove-orphans: also the containers that --scale added, which the
# compose file doesn't list; left running, they keep the pod and network.
"$here/compose.sh" down -v --remove-orphans
left=$(podman ps -aq --filter "label=io.podman.compose.project=$project")
[ -z "$left" ] || { podman ps -a --filter "label=io.podman.compose.project=$project" >&2; exit 1; }

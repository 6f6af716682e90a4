#!/usr/bin/env bash
# Prepares this machine to run the tutorial's docker-compose.yml under podman:
# Debian bookworm as root, with no Docker engine, no systemd, and no image
# registry reachable (only Debian's and PyPI's package registries). So every
# image is made here:
#   docker.io/library/debian:bookworm-slim  debootstrap minbase, imported (the
#                                           Dockerfile's FROM resolves to it)
#   localhost/apiary-s3:latest              the S3 stand-in for MinIO (s3-standin/)
#   localhost/apiary:latest                 the Dockerfile's `prebuilt` target
#                                           around an already-built binary
# Idempotent, and a few seconds when everything is there already.
#
#   bash tests/containers/setup.sh         # then tests/containers/up.sh, down.sh
#   bash tests/containers/setup.sh tools   # podman, podman-compose, the base image
#
# APIARY_BIN: the binary to put in apiary:latest (default: the debug build in
# $CARGO_TARGET_DIR, as .ci/run builds it; it is stripped on the way).
set -euo pipefail
cd "$(dirname "$0")/../.."

cache="$HOME/.cache/apiary"
venv="${APIARY_VENV:-$cache/venv}"
bin="${APIARY_BIN:-${CARGO_TARGET_DIR:-$cache/target}/debug/apiary}"
work="$cache/containers"  # build contexts and the base image's tarball
mkdir -p "$work"

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }

echo "== podman"
# netavark + aardvark-dns give compose's containers each other's names
# (minio:9000) and netavark needs iptables; they are only Recommends and
# Suggests of podman, and the rest of those (buildah, criu, slirp4netns, ...)
# isn't needed as root. binutils: strip.
missing=()
for pkg in podman runc netavark aardvark-dns iptables debootstrap binutils; do
  installed "$pkg" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# podman asks for 1048576 open files and processes per container unless told
# otherwise, but root here cannot raise its hard limits, and runc cannot set
# a process limit above kernel.pid_max (32768 here, under the hard limit).
nofile=$(ulimit -Hn) nproc=$(ulimit -Hu) pid_max=$(cat /proc/sys/kernel/pid_max)
[ "$nofile" = unlimited ] && nofile=1048576
{ [ "$nproc" = unlimited ] || [ "$nproc" -gt "$pid_max" ]; } && nproc=$pid_max
# Only the settings this machine needs, in a drop-in that leaves
# /etc/containers/containers.conf (if any) alone.
mkdir -p /etc/containers/containers.conf.d
cat > /etc/containers/containers.conf.d/50-apiary-ci.conf <<EOF
# Written by tests/containers/setup.sh.
[containers]
# Within the limits that root may set here (see setup.sh).
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
# aardvark-dns drops queries while containers start or stop; retry after 1 s
# instead of glibc's 5.
dns_options = ["timeout:1"]
# No journald here: \`podman logs\` reads files.
log_driver = "k8s-file"

[engine]
# crun fails on this machine's hybrid cgroup v1/v2 layout; runc works.
runtime = "runc"
# No systemd: cgroups directly, events to a file.
cgroup_manager = "cgroupfs"
events_logger = "file"

# Docker's image format: OCI's has no HEALTHCHECK, and podman build drops it.
image_default_format = "docker"

[network]
# Not CNI (whose config the podman package also ships): netavark has the DNS.
network_backend = "netavark"
EOF
podman --version

echo "== podman-compose (and the test suite's Python packages)"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/containers/requirements.txt
"$venv/bin/podman-compose" --version | head -1

echo "== image debian:bookworm-slim"
base=docker.io/library/debian:bookworm-slim
if ! podman image exists "$base"; then
  tarball="$work/debian-bookworm-minbase.tar"
  if [ ! -f "$tarball" ]; then
    rootfs=$(mktemp -d)
    # The Debian mirror this machine's apt uses (its active sources only).
    mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
      | grep -v '^[[:space:]]*#' | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -1 | tr -d ' ' || true)
    [ -n "$mirror" ] || { echo "no Debian mirror in /etc/apt/sources.list*" >&2; exit 1; }
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log"
    # Slim like the official image: no package lists, caches or .debs, docs,
    # man pages or translations, and apt and dpkg keep them out of the layers
    # of later installs too (the Dockerfile's apt-get only removes the lists).
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
      "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*
    printf 'path-exclude /usr/share/%s/*\n' doc man info locale > "$rootfs/etc/dpkg/dpkg.cfg.d/slim"
    cat > "$rootfs/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
    tar -C "$rootfs" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
  fi
  podman import --change 'CMD ["bash"]' --change 'LABEL built-by=tests/containers/setup.sh' \
    "$tarball" "$base" >/dev/null
fi

[ "${1:-}" = tools ] && exit 0

echo "== image apiary-s3 (S3 stand-in: SeaweedFS)"
ctx="$work/s3-context"
mkdir -p "$ctx"
# Hard links/-p keep mtimes, so an unchanged context reuses the cached layers.
ln -f "$venv/bin/weed" "$ctx/weed" 2>/dev/null || cp -p "$venv/bin/weed" "$ctx/weed"
cp -p tests/containers/s3-standin/Containerfile tests/containers/s3-standin/s3-standin "$ctx/"
podman build --pull=never --format docker -t localhost/apiary-s3:latest "$ctx"

echo "== image apiary:latest (prebuilt $bin)"
[ -x "$bin" ] || { echo "no binary at $bin: build it first (cargo build -p apiary-gateway --bin apiary)" >&2; exit 1; }
ctx="$work/apiary-context"
mkdir -p "$ctx"
if [ ! -f "$ctx/apiary" ] || [ "$bin" -nt "$ctx/apiary" ]; then
  strip -o "$ctx/apiary.tmp" "$bin"  # the debug build's symbols are ~80% of it
  mv "$ctx/apiary.tmp" "$ctx/apiary"
fi
podman build --pull=never --format docker --target prebuilt -t localhost/apiary:latest -f Dockerfile "$ctx"
# The apiary:latest that a new binary replaced.
podman image prune -f >/dev/null

podman images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E 'debian:bookworm-slim|apiary'

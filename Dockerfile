# apiary:latest — one Apiary node per container, `apiary serve` by default.
#
#   docker build -t apiary:latest .
#   docker run -e APIARY_STORAGE=s3://bucket/prefix -e AWS_ACCESS_KEY_ID=… \
#              -e AWS_SECRET_ACCESS_KEY=… -e AWS_ENDPOINT_URL=http://minio:9000 apiary:latest
#
# Configuration is the environment only (see docs/deployment.md). Cores and
# memory come from the container's cgroup limits.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY catalog catalog
COPY engine engine
COPY gateway gateway
COPY python python
# Stripped: symbols are a fifth of the binary and nothing in the image reads them.
RUN cargo build --release --locked -p apiary-gateway --bin apiary \
 && strip -o /usr/local/bin/apiary target/release/apiary

# The runtime both targets below share: a non-root user, the environment,
# the health check and the default command.
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/apiary --create-home apiary
WORKDIR /var/lib/apiary
ENV APIARY_LISTEN=0.0.0.0:5432 \
    APIARY_STORAGE=/var/lib/apiary/data \
    APIARY_LOG=info
EXPOSE 5432
HEALTHCHECK --interval=10s --timeout=6s --start-period=10s --retries=3 CMD ["apiary", "health"]
STOPSIGNAL SIGTERM
CMD ["apiary", "serve"]

# A binary built outside the image (CI's own build, see
# tests/containers/setup.sh), so that no second cargo build runs in the image:
#   docker build --target prebuilt -t apiary:latest -f Dockerfile DIR
# where DIR holds a Linux `apiary` binary for bookworm's glibc. BuildKit and
# podman skip the stages that a target doesn't use: here the Rust build, and
# this stage in the default build (Docker's legacy builder would run both).
FROM runtime AS prebuilt
COPY apiary /usr/local/bin/apiary
USER apiary

# The default target: the release build of the first stage.
FROM runtime
COPY --from=build /usr/local/bin/apiary /usr/local/bin/apiary
USER apiary

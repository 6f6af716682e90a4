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
RUN cargo build --release --locked -p apiary-gateway --bin apiary \
 && cp target/release/apiary /usr/local/bin/apiary

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/apiary --create-home apiary
COPY --from=build /usr/local/bin/apiary /usr/local/bin/apiary
USER apiary
WORKDIR /var/lib/apiary
ENV APIARY_LISTEN=0.0.0.0:5432 \
    APIARY_STORAGE=/var/lib/apiary/data \
    APIARY_LOG=info
EXPOSE 5432
HEALTHCHECK --interval=10s --timeout=6s --start-period=10s --retries=3 CMD ["apiary", "health"]
STOPSIGNAL SIGTERM
CMD ["apiary", "serve"]

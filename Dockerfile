# syntax=docker/dockerfile:1
# The vigil image: `docker build -t vigil .` (or podman/buildah) builds vigil from source in a Rust builder
# stage and copies the binary into a small Debian runtime (CA certificates, OpenSSL 3, a non-root user).
#
#   docker build -t vigil:dev .
#   docker run --rm vigil:dev --version
#   docker run --rm -v "$PWD/pipelines:/etc/vigil:ro" vigil:dev validate --config /etc/vigil/demo.toml
#
# Conventions inside the image:
#   /etc/vigil                     the pipeline config (pipeline.toml) and rule packs; mount it read-only
#   /usr/share/vigil/rules/soc2    the SOC 2 rule pack shipped with this version (--rules /usr/share/vigil/rules/soc2)
#   /evidence                      a local evidence archive (mount a volume), when [evidence] url is not s3://
#   /var/lib/vigil                 alerts / dead-letter files and other writable state, when written to files
#   /tmp                           temporary files (oversized records, the stdin spool); give it a volume on a
#                                  read-only root filesystem
# The user is vigil, uid/gid 65532 (a non-root user; Kubernetes' runAsNonRoot accepts it by number).
#
# Stages (the default target is the last, `release`):
#   runtime   debian:bookworm-slim + CA certificates + libssl3 + the vigil user and folders, no binary
#   local     runtime + a `vigil` binary taken from the build context: what deploy/container/image.sh builds
#             offline from a binary built on the host (no Rust image needed; it stops at this stage)
#   builder   rust:1-bookworm, `cargo build --release --locked -p vigil-cli`
#   release   runtime + the builder's binary

ARG DEBIAN_IMAGE=debian:bookworm-slim
ARG RUST_IMAGE=rust:1-bookworm

FROM ${DEBIAN_IMAGE} AS runtime
LABEL org.opencontainers.image.title="vigil" \
      org.opencontainers.image.description="Access logs in; SQL detections and SOC 2 evidence out: reads Kafka topics or files, runs SQL detection rules, archives every record as verifiable Parquet evidence" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/vigil-dev/vigil" \
      org.opencontainers.image.documentation="https://github.com/vigil-dev/vigil#deploying" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"
# ca-certificates for TLS to brokers and S3; libssl3 for librdkafka's TLS. The check lets an offline base
# that already has them (deploy/container/image.sh builds one with mmdebstrap) build without a network.
RUN set -eux; \
    if ! dpkg -s ca-certificates libssl3 >/dev/null 2>&1; then \
        apt-get update; \
        apt-get install -y --no-install-recommends ca-certificates libssl3; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    groupadd --system --gid 65532 vigil; \
    useradd --uid 65532 --gid 65532 --home-dir /var/lib/vigil --no-create-home \
        --shell /usr/sbin/nologin vigil; \
    mkdir -p /etc/vigil /evidence /var/lib/vigil /usr/share/vigil/rules; \
    chown 65532:65532 /evidence /var/lib/vigil
COPY pipelines/rules/soc2/*.sql /usr/share/vigil/rules/soc2/
# 9464: Prometheus /metrics (and /healthz, /readyz) when run with --metrics-addr 0.0.0.0:9464
EXPOSE 9464
WORKDIR /var/lib/vigil
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/vigil"]
CMD ["run", "--config", "/etc/vigil/pipeline.toml"]

FROM runtime AS local
COPY --chmod=0755 vigil /usr/local/bin/vigil
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.version="${VERSION}" org.opencontainers.image.revision="${REVISION}"

FROM ${RUST_IMAGE} AS builder
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends cmake libssl-dev pkg-config zlib1g-dev; \
    rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p vigil-cli \
    && install -D -m 0755 target/release/vigil /out/vigil \
    && strip /out/vigil

FROM runtime AS release
COPY --from=builder /out/vigil /usr/local/bin/vigil
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.version="${VERSION}" org.opencontainers.image.revision="${REVISION}"

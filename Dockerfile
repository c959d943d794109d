# syntax=docker/dockerfile:1
# sparsed CPU image: Debian 12 for both stages, since the build uses Debian
# 12's packages (gRPC 1.51, protobuf 3.21, abseil 20220623, ...).
#
# Built without CUDA (-DSPARSED_WITH_CUDA=OFF), so it never touches a GPU:
# `device: auto` serves on the CPU. The GPU image is Dockerfile.gpu (same
# Debian 12 base plus NVIDIA's CUDA repository); docs/DEPLOY.md covers both.
#
#   docker build -t sparsed .
#   docker run -p 50051:50051 -p 9464:9464 sparsed

ARG DEBIAN_IMAGE=debian:12

# ---------------------------------------------------------------- builder --
FROM ${DEBIAN_IMAGE} AS builder
# scripts/setup installs the build, test and tooling packages (idempotent).
COPY scripts/setup /src/scripts/setup
RUN /src/scripts/setup && rm -rf /var/lib/apt/lists/*
COPY . /src
WORKDIR /src
# Extra arguments reach cmake on the first configure.
RUN SPARSED_BUILD_TYPE=Release scripts/build -DSPARSED_WITH_CUDA=OFF \
    && strip build/server/sparsed build/client/sparsectl

# ---------------------------------------------------------------- runtime --
FROM ${DEBIAN_IMAGE} AS runtime
# Only the shared libraries `ldd sparsed` / `ldd sparsectl` resolve to
# (checked by tests/deploy/test_runtime_libs.py, ctest runtime_libs).
RUN apt-get update -q \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        libgrpc++1.51 libgrpc29 libprotobuf32 libabsl20220623 libre2-9 libc-ares2 \
        libspdlog1.10 libfmt9 libcpp-httplib0.11 libbrotli1 libssl3 zlib1g libpng16-16 \
        ca-certificates \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 sparsed \
    && useradd --system --uid 10001 --gid sparsed --home-dir /var/lib/sparsed \
        --shell /usr/sbin/nologin sparsed \
    && install -d -o sparsed -g sparsed -m 0750 /var/lib/sparsed \
    && install -d -m 0755 /etc/sparsed

COPY --from=builder /src/build/server/sparsed /src/build/client/sparsectl /usr/local/bin/
COPY config/sparsed.json /etc/sparsed/sparsed.json

USER sparsed:sparsed
WORKDIR /var/lib/sparsed
VOLUME ["/var/lib/sparsed"]
# 50051: gRPC (SPARSED_LISTEN); 9464: Prometheus /metrics (SPARSED_METRICS_LISTEN).
EXPOSE 50051 9464

ENV SPARSED_ADDR=127.0.0.1:50051
# A container is reached through its published ports, so it listens on every
# interface. Without authentication SPARSED_INSECURE acknowledges that anyone
# who can reach the ports can use every tensor: publish them only on trusted
# networks, or mount a token file and TLS material and set SPARSED_AUTH_TOKENS,
# SPARSED_TLS_CERT, SPARSED_TLS_KEY (then `insecure` is not needed;
# docs/OPERATIONS.md, "Tenants and tokens", "TLS").
ENV SPARSED_LISTEN=0.0.0.0:50051 SPARSED_METRICS_LISTEN=0.0.0.0:9464 SPARSED_INSECURE=true
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["sparsectl", "--timeout", "3", "status"]

# Settings can be overridden with SPARSED_* variables or extra flags
# (`docker run sparsed --log-json true`); see docs/CONFIG.md.
ENTRYPOINT ["sparsed", "--config", "/etc/sparsed/sparsed.json", "--data-dir", "/var/lib/sparsed"]

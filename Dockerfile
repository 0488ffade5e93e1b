# syntax=docker/dockerfile:1
#
# Sluice container image: two static binaries on distroless: /sluice (every
# command, including `dev`, which links the embedded Temporal server) and
# /sluice-worker (the worker alone, ~43 MB instead of ~230 MB: what worker
# pods run, for a smaller resident set).
#
#   docker build -t sluice --build-arg VERSION=$(git describe --tags --always --dirty) .
#   docker run --rm sluice version
#
# The same image runs every command: `worker`, `collect`, `migrate`, ...
# Configuration comes from flags or SLUICE_* variables, telemetry from
# OTEL_* variables (see deploy/README.md).

# ---- build -------------------------------------------------------------------
# Runs on the build host's platform and cross-compiles (the binary is pure Go),
# so multi-platform builds do not need emulation.
FROM --platform=$BUILDPLATFORM golang:1.26.8-bookworm AS build

# The module and build caches live in BuildKit cache mounts at these paths
# (the golang image's own default module cache is /go/pkg/mod, so name them
# explicitly). Linking the Temporal server is slow; the build cache makes
# rebuilds after small changes fast.
ENV GOMODCACHE=/root/go/pkg/mod \
    GOCACHE=/root/.cache/go-build \
    GOTOOLCHAIN=local \
    GOFLAGS=-buildvcs=false \
    CGO_ENABLED=0

WORKDIR /src

# Dependencies first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/root/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go mod download

COPY . .

ARG VERSION=dev
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/root/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/sluice ./cmd/sluice && \
    GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/sluice-worker ./cmd/sluice-worker

# ---- runtime -----------------------------------------------------------------
# static-debian12 has CA certificates and tzdata and nothing else: no shell,
# so container health checks have to be HTTP probes (the collector's /healthz
# and /readyz), not commands.
FROM gcr.io/distroless/static-debian12:nonroot

COPY --from=build /out/sluice /sluice
COPY --from=build /out/sluice-worker /sluice-worker

# The collector's default listen address (sluice collect --addr :8080).
EXPOSE 8080

# 65532 is distroless' "nonroot" user; numeric so that Kubernetes'
# runAsNonRoot can verify it.
USER 65532:65532

ENTRYPOINT ["/sluice"]

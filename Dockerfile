# syntax=docker/dockerfile:1
# The RouteGuide server as a container image: a static binary on distroless,
# no shell, non-root, a read-only root filesystem is fine.
#
#   docker build -t routeguide .        (or: podman build -t routeguide .)
#   docker run --rm -p 50051:50051 -p 8081:8081 -v routeguide:/data routeguide
#
# CI builds the same image without a daemon: deploy/image.sh.

# The toolchain go.mod's toolchain line names: a patched release.
FROM golang:1.26.10 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Static (the SQLite driver is pure Go), no grpc-go tracing, no build paths.
RUN CGO_ENABLED=0 go build -tags grpcnotrace -trimpath \
      -o /out/routeguide ./cmd/routeguide

# distroless static: CA certificates, /etc/passwd with nonroot (65532), and
# nothing else.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/routeguide /usr/local/bin/routeguide
USER 65532:65532
# The SQLite file lives in a volume, so the root filesystem can be read-only.
# With PostgreSQL, set ROUTEGUIDE_STORE to its URL instead.
VOLUME /data
ENV ROUTEGUIDE_STORE=/data/routeguide.db
EXPOSE 50051 8080 8081 9090
ENTRYPOINT ["routeguide"]
# --addr and --http-addr off loopback are plaintext only with --insecure:
# replace it with --tls-cert and --tls-key (mounted from a secret) unless a
# mesh or a private network carries the traffic. The HTTP listener (8080)
# answers only the Host names it knows: add --allowed-host for the name
# clients use. The health listener (8081) serves only grpc.health.v1 and may
# be plaintext anywhere; metrics are on 9090. The same command as
# deploy/image.sh's.
CMD ["serve", "--addr", ":50051", "--insecure", "--health-addr", ":8081", "--metrics-addr", ":9090", "--http-addr", ":8080", "--log-format", "json"]

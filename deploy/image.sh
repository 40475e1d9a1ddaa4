#!/usr/bin/env bash
# Builds the RouteGuide image without a Docker daemon, FROM scratch with
# buildah: the static binary, the host's CA certificates and a passwd entry
# for the non-root user; the Dockerfile at the repository root is the same
# image for machines with Docker or podman. Then runs it with podman on a
# read-only root and checks that it serves and answers health.
#
#   bash deploy/image.sh [BINARY]
#
# BINARY is a routeguide built with CGO_ENABLED=0 -tags grpcnotrace
# -trimpath; without it the script builds one. IMAGE names the image
# (default localhost/routeguide:ci). Needs root, buildah, podman and runc.
set -euo pipefail
cd "$(dirname "$0")/.."

image=${IMAGE:-localhost/routeguide:ci}
work=$(mktemp -d)
ctr=""
run=""
cleanup() {
  [[ -n "$run" ]] && podman rm -f "$run" >/dev/null 2>&1 || true
  [[ -n "$ctr" ]] && buildah rm "$ctr" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

bin=${1:-}
if [[ -z "$bin" ]]; then
  echo "building the static binary"
  bin=$work/routeguide
  CGO_ENABLED=0 go build -tags grpcnotrace -trimpath -o "$bin" ./cmd/routeguide
fi
if ! file "$bin" | grep -q 'statically linked'; then
  echo "$bin is not statically linked: build it with CGO_ENABLED=0"; exit 1
fi

echo "building $image with buildah, FROM scratch"
printf 'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$work/passwd"
printf 'nonroot:x:65532:\n' >"$work/group"
mkdir "$work/data"
ctr=$(buildah from scratch)
buildah copy --quiet "$ctr" "$bin" /usr/local/bin/routeguide
buildah copy --quiet "$ctr" /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
buildah copy --quiet "$ctr" "$work/passwd" /etc/passwd
buildah copy --quiet "$ctr" "$work/group" /etc/group
buildah copy --quiet --chown=65532:65532 "$ctr" "$work/data" /data
buildah config \
  --entrypoint '["routeguide"]' \
  --cmd 'serve --addr :50051 --insecure --health-addr :8081 --metrics-addr :9090 --http-addr :8080 --log-format json' \
  --user 65532:65532 \
  --env PATH=/usr/local/bin \
  --env ROUTEGUIDE_STORE=/data/routeguide.db \
  --volume /data \
  --port 50051 --port 8080 --port 8081 --port 9090 \
  --label org.opencontainers.image.source=https://github.com/routeguide/routeguide \
  "$ctr"
buildah commit --quiet --rm "$ctr" "$image" >/dev/null
ctr=""
buildah images "$image"

# podman's defaults fail in this sandbox: crun cannot set the rlimits podman
# asks for (RLIMIT_NOFILE above the hard limit, RLIMIT_NPROC at all unless
# lowered) nor run on its hybrid cgroups, so: runc, and rlimits within what
# the host allows.
echo "running $image with podman: read-only root, the SQLite file on a volume"
nofile=$(ulimit -Hn)
data=$(mktemp -d -p "$work")
chown 65532:65532 "$data"
run=routeguide-image-check-$$
podman --runtime runc run -d --name "$run" --network host --read-only \
  --ulimit "nofile=$nofile:$nofile" --ulimit nproc=4096:4096 \
  -v "$data:/data" "$image" \
  serve --addr 127.0.0.1:0 --health-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 >/dev/null
health="" addr=""
for _ in $(seq 100); do
  logs=$(podman logs "$run" 2>&1)
  addr=$(sed -n 's/.*msg="serving RouteGuide" addr=\([^ ]*\).*/\1/p' <<<"$logs")
  health=$(sed -n 's/.*msg="serving RouteGuide".* health_addr=\([^ ]*\).*/\1/p' <<<"$logs")
  [[ -n "$addr" && -n "$health" ]] && break
  sleep 0.2
done
if [[ -z "$addr" || -z "$health" ]]; then
  podman logs "$run"; echo "the container did not start serving"; exit 1
fi
grpcurl() { go tool -modfile=tools/go.mod grpcurl "$@"; }
# The health listener has no reflection, so grpcurl gets the health
# service's definition from a file, as a probe would have it compiled in.
cat >"$work/health.proto" <<'PROTO'
syntax = "proto3";
package grpc.health.v1;
message HealthCheckRequest { string service = 1; }
message HealthCheckResponse {
  enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; }
  ServingStatus status = 1;
}
service Health { rpc Check(HealthCheckRequest) returns (HealthCheckResponse); }
PROTO
for svc in RouteGuide liveness; do
  out=$(grpcurl -plaintext -import-path "$work" -proto health.proto -d "{\"service\":\"$svc\"}" "$health" grpc.health.v1.Health/Check)
  echo "health $svc on $health: $out"
  grep -q '"SERVING"' <<<"$out" || { podman logs "$run"; echo "health of $svc is not SERVING"; exit 1; }
done
grpcurl -plaintext -d '{"name":"Alice"}' "$addr" RouteGuide/GetPerson
[[ -f "$data/routeguide.db" ]] || { echo "no SQLite file in the /data volume"; exit 1; }
podman stop -t 20 "$run" >/dev/null
podman logs "$run" 2>&1 | tail -2
echo "image $image built and checked"

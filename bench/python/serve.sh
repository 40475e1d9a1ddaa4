#!/usr/bin/env bash
# Serves the seed's behaviour from Python grpcio, for bench/compare.sh: it
# runs test/interop/server.py (the interop tests' reference server, two
# people, the seed's answers) with Debian's python3-grpcio, after compiling
# the seed's proto files (protos/testdata/seed) into Python stubs.
#
#   bench/python/serve.sh PORT [STUBS_DIR]
#
# With STUBS_DIR, the stubs are compiled there unless already present, and
# the script becomes the server (exec), so its process id is the server's.
# Without it, they go to a temporary directory removed when the server
# stops. Needs /usr/bin/python3 with python3-grpcio and python3-grpc-tools.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
python=/usr/bin/python3
port=${1:?usage: bench/python/serve.sh PORT [STUBS_DIR]}
stubs=${2:-}

compile() {
  "$python" -m grpc_tools.protoc -I "$root/protos/testdata/seed" \
    --python_out="$1" --grpc_python_out="$1" person.proto route_guide.proto
}

if [[ -n "$stubs" ]]; then
  mkdir -p "$stubs"
  [[ -f "$stubs/route_guide_pb2_grpc.py" ]] || compile "$stubs"
  exec "$python" "$root/test/interop/server.py" --stubs "$stubs" --port "$port"
fi

stubs=$(mktemp -d)
trap 'rm -rf "$stubs"' EXIT
compile "$stubs"
"$python" "$root/test/interop/server.py" --stubs "$stubs" --port "$port" &
server=$!
trap 'kill -TERM "$server" 2>/dev/null || true' INT TERM
wait "$server" || wait "$server"

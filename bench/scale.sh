#!/usr/bin/env bash
# Measures RouteGuide at scale on the embedded store: imports N people
# (1,000,000 by default) through `routeguide import`, then compares GetPerson
# throughput with N people stored against two, the cost of a ListPeople page
# deep in the list against the first, and what the read cache costs a server
# started on the N people: the time to load them and the memory it holds.
# Prints figures; asserts nothing.
#
#   bench/scale.sh            # N=1000000
#   N=100000 bench/scale.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

go build -tags grpcnotrace -o "$work/routeguide" ./cmd/routeguide
go build -o "$work/genpeople" ./bench/genpeople
go build -o "$work/scale" ./bench/scale

# serve STORE: starts a server on a free port and sets addr to its address
# and pid to its process.
serve() {
  "$work/routeguide" serve --addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --store "$1" >/dev/null 2>"$1.log" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 100); do
    addr=$(sed -n 's/.*msg="serving RouteGuide" addr=\([^ ]*\).*/\1/p' "$1.log")
    [[ -n "$addr" ]] && return
    sleep 0.1
  done
  cat "$1.log" >&2; exit 1
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(go version | cut -d' ' -f3)"
"$work/genpeople" -n "$N" >"$work/people.jsonl"
serve "$work/big.db"; big=$addr; big_pid=$pid
start=$(date +%s.%N)
"$work/routeguide" import --addr "$big" "$work/people.jsonl"
end=$(date +%s.%N)
awk -v n="$N" -v s="$start" -v e="$end" 'BEGIN { printf "import: %d people in %.1f s = %.0f people/s\n", n, e-s, n/(e-s) }'

serve "$work/small.db"; small=$addr; small_pid=$pid
line=$("$work/scale" -addr "$small" -mode get)
echo "with 2 people stored: $line"
two=$(awk '{print $2}' <<<"$line")
line=$("$work/scale" -addr "$big" -mode get -people "$N")
echo "with $N people stored: $line"
many=$(awk '{print $2}' <<<"$line")
awk -v a="$many" -v b="$two" 'BEGIN { printf "GetPerson throughput, %s people vs 2: %.2f\n", "'"$N"'", a/b }'
"$work/scale" -addr "$big" -mode list

# memory PID: the process's resident and anonymous memory, in MiB.
memory() {
  awk '/^VmRSS:/ {r = $2} /^RssAnon:/ {a = $2} END { printf "RSS %.0f MiB, anonymous %.0f MiB", r / 1024, a / 1024 }' "/proc/$1/status"
}
# loaded LOG: waits for the read cache's "loaded" line in LOG and prints it.
loaded() {
  for _ in $(seq 1200); do
    grep -q 'msg="read cache loaded"' "$1" && { grep 'msg="read cache loaded"' "$1" | tail -1 | sed 's/.*msg="read cache loaded" //'; return; }
    sleep 0.1
  done
  echo "the read cache did not load within 120 s" >&2; exit 1
}
echo "read cache, a server started on 2 people: $(loaded "$work/small.db.log"); $(memory "$small_pid")"
kill "$big_pid"; wait "$big_pid" 2>/dev/null || true
serve "$work/big.db"
echo "read cache, a server started on $N people: $(loaded "$work/big.db.log"); $(memory "$pid")"

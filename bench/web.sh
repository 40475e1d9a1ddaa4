#!/usr/bin/env bash
# Measures GetPerson over every protocol of RouteGuide's two listeners, side
# by side: native gRPC (--addr), and Connect JSON, Connect binary, gRPC-Web
# and REST on the HTTP listener (--http-addr); REST on a stock grpc-gateway
# of the same route (bench/gateway: grpc-gateway v2 in front of a bare
# grpc-go server of the seed's service); and native gRPC on RouteGuide as it
# was at BEFORE, to show what the HTTP listener costs the gRPC one. All
# driven by `routeguide bench --protocol`. Prints figures and ratios;
# asserts nothing.
#
#   bench/web.sh                               # 3 rounds of 5 s runs
#   ROUNDS=1 DURATION=1s bench/web.sh          # a quick look
#   PROFILE=cpu.pprof bench/web.sh             # also profile RouteGuide's REST runs
#
# Every run gets a fresh server (an embedded store in a new file, as a user
# runs `routeguide serve`), ready once it answers one call over the run's
# protocol, WARMUP of calls not counted, then DURATION of measurement:
# GetPerson for Alice and Bob in turn, 32 callers. gRPC runs on 2
# connections, as compare.sh's get workload; the HTTP protocols on one
# HTTP/1.1 keep-alive connection per caller. Each round runs every row in
# an order that rotates from round to round; the table shows medians over
# rounds. Servers and the load generator share the machine's cores.
#
# Environment: ROUNDS (3), DURATION (5s), WARMUP (1s), CONCURRENCY (32),
# PORT (50081; the HTTP listener takes PORT+1), BEFORE (the commit whose
# routeguide is "before", e.g. 000f04b, the last without the HTTP listener;
# by default, or with "none", that row is skipped), PROFILE (a file: RouteGuide's CPU profile over its REST
# runs, through --pprof, for `go tool pprof`), SAVE (a file to keep the raw
# runs in, one line each). Needs Go and git.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
WARMUP=${WARMUP:-1s}
CONCURRENCY=${CONCURRENCY:-32}
PORT=${PORT:-50081}
PROFILE=${PROFILE:-}
SAVE=${SAVE:-}
addr=127.0.0.1:$PORT
http_addr=127.0.0.1:$((PORT + 1))
metrics_addr=127.0.0.1:$((PORT + 2))
for v in ROUNDS CONCURRENCY PORT; do
  if ! [[ "${!v}" =~ ^[1-9][0-9]*$ ]]; then
    echo "web: $v=${!v}: want a whole number" >&2
    exit 2
  fi
done
BEFORE=${BEFORE:-none}

work=$(mktemp -d)
server_pid=
alive() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n "$state" && "$state" != Z ]]
}
stop_server() {
  [[ -n "$server_pid" ]] || return 0
  kill -TERM "$server_pid" 2>/dev/null || true
  for _ in $(seq 100); do
    alive "$server_pid" || break
    sleep 0.1
  done
  kill -KILL "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}
cleanup() {
  stop_server || true
  rm -rf "$work" || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The commit the binaries are built from, read before building.
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -z "$(git status --porcelain 2>/dev/null)" ]] || commit+=" with local changes"
echo "building routeguide and bench/gateway" >&2
go build -tags grpcnotrace -o "$work/routeguide" ./cmd/routeguide
go build -o "$work/gateway" ./bench/gateway
before_label=
if [[ "$BEFORE" != none ]]; then
  before_label=$(git rev-parse --short "$BEFORE")
  echo "building routeguide at $before_label" >&2
  mkdir "$work/before-src"
  git archive "$BEFORE" | tar -x -C "$work/before-src"
  (cd "$work/before-src" && go build -tags grpcnotrace -o "$work/routeguide-before" ./cmd/routeguide)
  rm -rf "$work/before-src"
fi

echo "GetPerson over RouteGuide's protocols, and REST through a stock grpc-gateway"
echo "date:      $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "commit:    $commit${before_label:+, before = $before_label}"
echo "cpu:       $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
echo "cores:     $(nproc), load average $(cut -d' ' -f1-3 /proc/loadavg) at start; servers and load generator share them"
echo "go:        $(go version | cut -d' ' -f3)"
echo "rounds:    $ROUNDS, each run $DURATION after $WARMUP of warmup; the table shows medians over rounds"
echo "load:      GetPerson for Alice and Bob, $CONCURRENCY callers; gRPC on 2 connections, HTTP/1.1 keep-alive, one connection per caller"
echo

# A row is SERVER:PROTOCOL.
rows=(routeguide:grpc routeguide:connect-json routeguide:connect-proto routeguide:grpc-web routeguide:rest gateway:rest)
[[ "$BEFORE" == none ]] || rows+=(before:grpc)

# target PROTOCOL: bench's flags naming the server for PROTOCOL.
target() {
  if [[ "$1" == grpc ]]; then
    echo "--addr $addr"
  else
    echo "--protocol $1 --http-addr $http_addr"
  fi
}

# start_server SERVER PROTOCOL DIR: starts a fresh SERVER, its files in
# DIR, and waits until it answers a call over PROTOCOL.
start_server() {
  local cmd
  case "$1" in
    routeguide)
      cmd=("$work/routeguide" serve --addr "$addr" --http-addr "$http_addr" --store "$3/rg.db")
      [[ -z "$PROFILE" || "$2" != rest ]] || cmd+=(--metrics-addr "$metrics_addr" --pprof)
      ;;
    before) cmd=("$work/routeguide-before" serve --addr "$addr" --store "$3/rg.db") ;;
    gateway) cmd=("$work/gateway" --addr "$http_addr") ;;
  esac
  # shellcheck disable=SC2046
  if "$work/routeguide" bench $(target "$2") -n 1 --warmup 0 --timeout 1s >/dev/null 2>&1; then
    echo "web: something already answers on port $PORT or $((PORT + 1)); set PORT to a free one" >&2
    return 1
  fi
  "${cmd[@]}" >"$3/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 400); do
    if ! alive "$server_pid"; then
      echo "web: $1 exited before answering:" >&2
      cat "$3/server.log" >&2
      return 1
    fi
    # shellcheck disable=SC2046
    if "$work/routeguide" bench $(target "$2") -n 1 --warmup 0 --timeout 1s >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.05
  done
  echo "web: $1 did not answer over $2 within 20s:" >&2
  cat "$3/server.log" >&2
  return 1
}

runs=$work/runs.txt # one line a run: ROW RATE P50_US P99_US CLIENT_CPU
: >"$runs"
profiles=()
n=0
for round in $(seq "$ROUNDS"); do
  shift_by=$(((round - 1) % ${#rows[@]}))
  order=("${rows[@]:shift_by}" "${rows[@]:0:shift_by}")
  for row in "${order[@]}"; do
    server=${row%%:*}
    protocol=${row#*:}
    n=$((n + 1))
    run=$work/run-$n
    mkdir "$run"
    start_server "$server" "$protocol" "$run"
    profiling=
    if [[ -n "$PROFILE" && "$row" == routeguide:rest ]]; then
      # The profile spans the warmup and the measurement.
      secs=$(awk -v d="$DURATION" -v w="$WARMUP" 'function s(x) { if (x ~ /ms$/) return x / 1000; return x + 0 } BEGIN { printf "%d", s(d) + s(w) + 0.999 }')
      curl -sf -o "$run/cpu.pprof" "http://$metrics_addr/debug/pprof/profile?seconds=$secs" &
      profiling=$!
    fi
    status=0
    # shellcheck disable=SC2046
    result=$("$work/routeguide" bench $(target "$protocol") -c "$CONCURRENCY" --names Alice,Bob \
      --warmup "$WARMUP" --duration "$DURATION" -o json 2>"$run/bench.err") || status=$?
    if [[ -n "$profiling" ]]; then
      if wait "$profiling"; then
        cp "$run/cpu.pprof" "$work/cpu-$n.pprof"
        profiles+=("$work/cpu-$n.pprof")
      fi
    fi
    if ((status == 0)); then
      field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" <<<"$result"; }
      errors=$(sed -n 's/.*"errors":{\([^}]*\)}.*/\1/p' <<<"$result")
      echo "$row $(field rate_per_s) $(field p50) $(field p99) $(field client_cpu)" >>"$runs"
      [[ -z "$SAVE" ]] || echo "$round $result" >>"$SAVE"
      awk -v r="$round/$ROUNDS" -v row="$row" -v rate="$(field rate_per_s)" -v p50="$(field p50)" -v p99="$(field p99)" -v errs="$errors" \
        'BEGIN { printf "round %s  %-26s %8.0f/s  p50 %6.2fms  p99 %6.2fms%s\n", r, row, rate, p50 / 1000, p99 / 1000, errs == "" ? "" : "  errors: " errs }' >&2
    else
      printf 'round %d/%d  %-26s failed: %s\n' "$round" "$ROUNDS" "$row" "$(head -1 "$run/bench.err")" >&2
    fi
    stop_server
    rm -rf "$run"
  done
done

if ((${#profiles[@]})); then
  go tool pprof -proto "${profiles[@]}" >"$PROFILE" 2>/dev/null && echo "profile:   RouteGuide's REST runs, in $PROFILE (go tool pprof -top $PROFILE)" >&2
fi

# The table: medians over rounds, and ratios to native gRPC on RouteGuide,
# to REST on the gateway, and to native gRPC before.
echo "| server | protocol | calls/s | p50 | p99 | client CPU | vs RouteGuide gRPC | vs gateway REST |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for row in "${rows[@]}"; do
  for col in 2 3 4 5; do
    awk -v row="$row" -v col="$col" '$1 == row { print $col }' "$runs" | sort -g | awk '
      { v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
  done | paste -sd' ' | sed "s|^|$row |"
done >"$work/medians.txt"
awk '
  { row[NR] = $1; rate[NR] = $2; p50[NR] = $3; p99[NR] = $4; cpu[NR] = $5; idx[$1] = NR }
  function ratio(a, b) { return (a == "-" || b == "-" || b == 0) ? "-" : sprintf("%.2f", a / b) }
  function ms(us) { return us == "-" ? "-" : sprintf("%.2fms", us / 1000) }
  END {
    g = rate[idx["routeguide:grpc"]]; w = rate[idx["gateway:rest"]]
    for (i = 1; i <= NR; i++) {
      split(row[i], sp, ":")
      name = sp[1] == "before" ? "routeguide before" : sp[1]
      printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", name, sp[2], rate[i] == "-" ? "-" : sprintf("%.0f", rate[i]), ms(p50[i]), ms(p99[i]), cpu[i], ratio(rate[i], g), ratio(rate[i], w)
    }
    if (idx["routeguide:rest"] && w != "-") printf "\nRouteGuide REST / gateway REST: %s of the calls per second\n", ratio(rate[idx["routeguide:rest"]], w)
    if (idx["before:grpc"]) printf "RouteGuide gRPC now / before: %s of the calls per second\n", ratio(g, rate[idx["before:grpc"]])
  }' "$work/medians.txt"

#!/usr/bin/env bash
# Measures RouteGuide side by side with a bare grpc-go server of the seed's
# contract (bench/baseline: stock options, the seed's two people in a map)
# and with a Python grpcio server of the seed's behaviour
# (test/interop/server.py, through bench/python/serve.sh), all driven by
# `routeguide bench`. Prints figures and ratios; asserts nothing.
#
#   bench/compare.sh                        # 5 rounds of 10 s runs
#   ROUNDS=1 DURATION=5s bench/compare.sh   # a quick look
#   PIN=1 bench/compare.sh                  # server and client on a core each
#
# Servers: `routeguide serve` as a user runs it (embedded store in a new
# file, default logging), the same with --metrics-addr, the baseline, and
# Python. Workloads: get (GetPerson, 32 callers on 2 connections), people
# (one GetPeople stream with 128 names in flight), add (AddPerson; RouteGuide
# only, since the seed's contract has no AddPerson). Every run gets a fresh
# server, ready once `routeguide get Alice` answers, 1 s of warmup and then
# DURATION of measurement. Each round runs every server in an order that
# rotates from round to round, and the table shows the medians over rounds.
#
# Memory, two figures a run: peak RSS (VmHWM, read just before the server is
# stopped) counts the pages of the executable the kernel mapped, 64 KiB
# around each fault, so it grows with the binary's size; peak anonymous
# memory (the largest RssAnon, sampled every 100 ms from readiness to the
# end of the run) is the heap and stacks the server itself used.
#
# CPU steal: on a virtual machine the hypervisor may take CPU time from the
# guest, which slows whichever server runs then. Each run reads /proc/stat's
# aggregate cpu line before and after the bench (warmup included); when the
# steal is above STEAL_MAX percent of the machine's CPU time in that span,
# the run is discarded and run again, on a fresh server, up to RETRIES more
# times. If every try is above it, the last is kept and marked in the table.
# Discarded tries stay in the raw runs, marked "discarded".
#
# By default nothing is pinned: servers and the load generator share the
# machine's cores as they would on a host, so a server that can use more
# than one core (grpc-go) may, and one that cannot (Python's GIL) does not.
# PIN=1 runs the server on CPU 1 and the load generator on CPU 0 (taskset),
# comparing the servers on one core each.
#
# Environment: ROUNDS (5), DURATION (10s), PIN (0; 1 pins), WINDOW (128,
# the names in flight on the GetPeople stream), PORT
# (50071, the port every server listens on in turn), STEAL_MAX (2, percent),
# RETRIES (3), SAVE (a file to keep the raw runs in, one JSON object a
# line). Needs Go; the Python server needs /usr/bin/python3 with
# python3-grpcio and python3-grpc-tools, and shows n/a without them.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10s}
PIN=${PIN:-0}
WINDOW=${WINDOW:-128}
PORT=${PORT:-50071}
STEAL_MAX=${STEAL_MAX:-2}
RETRIES=${RETRIES:-3}
SAVE=${SAVE:-}
addr=127.0.0.1:$PORT
if ! [[ "$STEAL_MAX" =~ ^[0-9]+([.][0-9]+)?$ ]]; then
  echo "compare: STEAL_MAX=$STEAL_MAX: want a percentage, such as 2 or 0.5" >&2
  exit 2
fi
if ! [[ "$WINDOW" =~ ^[1-9][0-9]*$ ]]; then
  echo "compare: WINDOW=$WINDOW: want a number of names, such as 128" >&2
  exit 2
fi
if ! [[ "$RETRIES" =~ ^[0-9]+$ ]]; then
  echo "compare: RETRIES=$RETRIES: want a whole number of tries" >&2
  exit 2
fi

work=$(mktemp -d)
server_pid=
sampler_pid=
# alive PID: whether the process runs (a zombie does not).
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
# sample_anon PID DIR: reads PID's RssAnon every 100 ms until DIR/stop
# exists or PID is gone, then writes the largest, in KiB, to DIR/anon. It
# forks nothing (read -t on a FIFO nobody writes is its sleep), so it takes
# next to no CPU from the run it watches.
sample_anon() {
  set +e
  local peak=0 key value _ tick
  exec {tick}<>"$work/tick"
  while [[ ! -e "$2/stop" ]]; do
    # A process that is gone, or a zombie (no RssAnon line), ends the loop.
    while read -r key value _; do
      [[ "$key" == RssAnon: ]] && break
    done 2>/dev/null <"/proc/$1/status" || break
    if ((value > peak)); then
      peak=$value
    fi
    read -r -t 0.1 -u "$tick" _
  done
  echo "$peak" >"$2/anon"
}
# stop_sampler DIR: stops sample_anon and waits for its figure.
stop_sampler() {
  [[ -n "$sampler_pid" ]] || return 0
  touch "$1/stop"
  wait "$sampler_pid" 2>/dev/null || true
  sampler_pid=
}
cleanup() {
  if [[ -n "$sampler_pid" ]]; then
    kill -TERM "$sampler_pid" 2>/dev/null || true
    wait "$sampler_pid" 2>/dev/null || true
  fi
  stop_server || true
  rm -rf "$work" || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "building routeguide, bench/baseline and bench/compare" >&2
# routeguide as the README installs it; the baseline as stock as it comes.
go build -tags grpcnotrace -o "$work/routeguide" ./cmd/routeguide
go build -o "$work/baseline" ./bench/baseline
go build -o "$work/compare" ./bench/compare
mkfifo "$work/tick"

python=(python)
python_version=$(/usr/bin/python3 -c 'import grpc, grpc_tools; print("grpcio", grpc.__version__)' 2>/dev/null) || {
  python=()
  python_version="unavailable: apt-get install python3-grpcio python3-grpc-tools"
}
if ((${#python[@]})); then
  # Compile the stubs once, outside any measured run.
  /usr/bin/python3 -m grpc_tools.protoc -I protos/testdata/seed --python_out="$work" \
    --grpc_python_out="$work" person.proto route_guide.proto
fi

server_pin=()
client_pin=()
client_cores=$(nproc)
if [[ "$PIN" != 0 ]]; then
  if command -v taskset >/dev/null && (($(nproc) >= 2)); then
    server_pin=(taskset -c 1)
    client_pin=(taskset -c 0)
    pinning="server on CPU 1, load generator on CPU 0 (PIN=1)"
    client_cores=1
  else
    pinning="none: needs taskset and 2 CPUs"
  fi
else
  pinning="none: servers and load generator share every core (PIN=1 pins them)"
fi

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -z "$(git status --porcelain 2>/dev/null)" ]] || commit+=" with local changes"
echo "RouteGuide against a bare grpc-go server and Python grpcio"
echo "date:      $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "commit:    $commit"
echo "cpu:       $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
echo "cores:     $(nproc), load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo "go:        $(go version | cut -d' ' -f3)"
echo "python:    $python_version"
echo "pinning:   $pinning"
echo "binaries:  routeguide $(awk -v b="$(stat -c %s "$work/routeguide")" 'BEGIN { printf "%.1f MB", b / 1e6 }'), baseline $(awk -v b="$(stat -c %s "$work/baseline")" 'BEGIN { printf "%.1f MB", b / 1e6 }')"
echo "memory:    peak RSS (VmHWM) includes the executable's mapped pages; peak anon (RssAnon, sampled every 100 ms) is heap and stacks"
echo "steal:     a run with CPU steal above ${STEAL_MAX}% of the machine's CPU time is discarded and run again, at most $RETRIES times"
echo "rounds:    $ROUNDS, each run ${DURATION} after 1s of warmup; the table shows medians over rounds"
echo "workloads: get = GetPerson, 32 callers on 2 connections; people = one GetPeople stream, $WINDOW names in flight; add = AddPerson, 32 callers on 2 connections"
echo

# start_server NAME DIR: starts a fresh server NAME, its files in DIR, and
# waits until it answers.
start_server() {
  local cmd
  case "$1" in
    routeguide) cmd=("$work/routeguide" serve --addr "$addr" --http-addr 127.0.0.1:0 --store "$2/rg.db") ;;
    routeguide-metrics) cmd=("$work/routeguide" serve --addr "$addr" --http-addr 127.0.0.1:0 --store "$2/rg.db" --metrics-addr 127.0.0.1:0) ;;
    baseline) cmd=("$work/baseline" --addr "$addr") ;;
    python) cmd=(bench/python/serve.sh "$PORT" "$work") ;;
  esac
  if "$work/routeguide" get --addr "$addr" --timeout 1s Alice >/dev/null 2>&1; then
    echo "compare: something already answers on $addr; set PORT to a free port" >&2
    return 1
  fi
  "${server_pin[@]}" "${cmd[@]}" >"$2/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 400); do
    if ! alive "$server_pid"; then
      echo "compare: $1 exited before answering:" >&2
      cat "$2/server.log" >&2
      return 1
    fi
    if "$work/routeguide" get --addr "$addr" --timeout 1s Alice >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.05
  done
  echo "compare: $1 did not answer within 20s:" >&2
  cat "$2/server.log" >&2
  return 1
}

# json_string S: S as a JSON string.
json_string() {
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\t'/ }
  printf '"%s"' "$s"
}

runs=$work/runs.jsonl
: >"$runs"
n=0
for round in $(seq "$ROUNDS"); do
  for workload in get people add; do
    servers=(routeguide routeguide-metrics baseline "${python[@]}")
    [[ "$workload" == add ]] && servers=(routeguide routeguide-metrics)
    # Rotate the order from round to round, so that no server always goes first.
    shift_by=$(((round - 1) % ${#servers[@]}))
    servers=("${servers[@]:shift_by}" "${servers[@]:0:shift_by}")
    case "$workload" in
      get) load=(--workload get -c 32 --conns 2) ;;
      people) load=(--workload people --conns 1 --window "$WINDOW") ;;
      add) load=(--workload add -c 32 --conns 2) ;;
    esac
    for server in "${servers[@]}"; do
      n=$((n + 1))
      for try in $(seq $((RETRIES + 1))); do
        run=$work/run-$n-$try
        mkdir "$run"
        start_server "$server" "$run"
        sample_anon "$server_pid" "$run" &
        sampler_pid=$!
        read -r _ ticks_before </proc/stat # the aggregate cpu line comes first
        status=0
        result=$("${client_pin[@]}" "$work/routeguide" bench --addr "$addr" "${load[@]}" --duration "$DURATION" -o json 2>"$run/bench.err") || status=$?
        read -r _ ticks_after </proc/stat
        rss=$(awk '/^VmHWM:/ {print $2}' "/proc/$server_pid/status" 2>/dev/null || true)
        rss=${rss:-0}
        stop_sampler "$run"
        anon=$(cat "$run/anon" 2>/dev/null || true)
        anon=${anon:-0}
        # The columns: user nice system idle iowait irq softirq steal (guest
        # time is already in user and nice). Steal is a share of them all.
        read -r steal over ticks < <(awk -v a="$ticks_before" -v b="$ticks_after" -v max="$STEAL_MAX" 'BEGIN {
          split(a, x); split(b, y); total = 0
          for (i = 1; i <= 8; i++) { d[i] = y[i] - x[i]; total += d[i] }
          pct = total > 0 ? int(10000 * d[8] / total + 0.5) / 100 : 0
          printf "%.2f %d {\"total\":%d,\"user\":%d,\"nice\":%d,\"system\":%d,\"idle\":%d,\"iowait\":%d,\"irq\":%d,\"softirq\":%d,\"steal\":%d}\n",
            pct, (pct > max), total, d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8] }')
        discard=
        ((status != 0 || over == 0 || try > RETRIES)) || discard=1
        prefix=$(printf '{"round":%d,"server":"%s","workload":"%s","try":%d' "$round" "$server" "$workload" "$try")
        [[ -z "$discard" ]] || prefix+=',"discarded":true'
        prefix+=",\"steal_pct\":$steal,\"cpu_ticks\":$ticks"
        if ((status == 0)); then
          echo "$prefix,\"rss_kib\":$rss,\"anon_kib\":$anon,\"result\":$result}" >>"$runs"
          field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" <<<"$result"; }
          note=
          if [[ -n "$discard" ]]; then
            note="  discarded: steal above ${STEAL_MAX}%, running it again (try $((try + 1)) of $((RETRIES + 1)))"
          elif ((over)); then
            note="  kept: every try had steal above ${STEAL_MAX}%"
          fi
          awk -v r="$round/$ROUNDS" -v w="$workload" -v s="$server" -v rate="$(field rate_per_s)" \
            -v p99="$(field p99)" -v rss="$rss" -v anon="$anon" -v cpu="$(field client_cpu)" -v steal="$steal" -v note="$note" \
            'BEGIN { printf "round %s  %-6s  %-18s  %7.0f/s  p99 %7.2fms  RSS %5.1f MiB  anon %5.1f MiB  client CPU %.2f  steal %4.1f%%%s\n", r, w, s, rate, p99 / 1000, rss / 1024, anon / 1024, cpu, steal, note }' >&2
        else
          err=$(head -1 "$run/bench.err")
          echo "$prefix,\"error\":$(json_string "$err")}" >>"$runs"
          printf 'round %d/%d  %-6s  %-18s  failed: %s\n' "$round" "$ROUNDS" "$workload" "$server" "$err" >&2
        fi
        stop_server
        rm -rf "$run"
        [[ -n "$discard" ]] || break
      done
    done
  done
done

[[ -z "$SAVE" ]] || cp "$runs" "$SAVE"
"$work/compare" -client-cores "$client_cores" -steal-max "$STEAL_MAX" "$runs"

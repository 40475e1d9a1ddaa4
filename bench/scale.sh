#!/usr/bin/env bash
# Measures RouteGuide as the directory grows, and prints one table of
# figures against the targets RouteGuide holds itself to. With N people
# (1,000,000 by default) it measures, on SQLite and on PostgreSQL:
#
#   import       `routeguide import` of N people from bench/genpeople
#   export       `routeguide export` of them
#   heap         the read cache's live heap a person beyond the person's
#                encoded size (a server on N people against one on two,
#                each after a forced collection)
#   resident     a server's resident memory with N people, after reads;
#                and that of each server the import and the writes went
#                through, after them
#   cold start   from a server process's start to its read cache loaded
#   GetPerson    calls/s with N people stored against two
#   ListPeople   a page of 50 filtered by city
#   AddPerson    acknowledged additions/s from 64 concurrent callers
#
# Asserts nothing; every step is bounded in time.
#
#   bench/scale.sh             # N=1000000
#   bench/scale.sh 100000
#   bench/scale.sh 10000000    # about 1.4 GB of JSON; over 20 minutes (set
#                              # SCALE_STEP_TIMEOUT above 900 for the import)
#
# PostgreSQL: SCALE_POSTGRES names a database the script drops and creates
# again (default postgres://postgres@127.0.0.1:5432/routeguide_scale);
# SCALE_POSTGRES=off skips PostgreSQL.
#
# SCALE_BOUNDED=32MiB also compares, on SQLite, a server holding the whole
# directory with one whose read cache is bounded (--cache-max-bytes), over
# a hot set of SCALE_HOT names (100000) and over all N, and prints the
# figures and their ratios before the table.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-${N:-1000000}}
PG=${SCALE_POSTGRES:-postgres://postgres@127.0.0.1:5432/routeguide_scale?sslmode=disable}
STEP=${SCALE_STEP_TIMEOUT:-900} # seconds any one step may take
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.26.10}
go build -tags grpcnotrace -o "$work/routeguide" ./cmd/routeguide
go build -o "$work/genpeople" ./bench/genpeople
go build -o "$work/scale" ./bench/scale
rg=$work/routeguide
scale() { timeout "$STEP" "$work/scale" "$@"; }
# val KEY TEXT: the value of the "KEY value" line in TEXT.
val() { awk -v k="$1" '$1 == k { print $2 }' <<<"$2"; }

# serve STORE: starts a server on a free port and sets addr to its address
# and pid to its process.
serve() {
  "$rg" serve --addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --store "$1" >/dev/null 2>"$work/serve.$2.log" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 600); do
    addr=$(sed -n 's/.*msg="serving RouteGuide" addr=\([^ ]*\).*/\1/p' "$work/serve.$2.log")
    [[ -n "$addr" ]] && return
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$work/serve.$2.log" >&2; exit 1
}
stop() { kill "$1"; wait "$1" 2>/dev/null || true; }
# timed CMD...: runs CMD and prints the seconds it took.
timed() {
  local s e
  s=$(date +%s.%N)
  timeout "$STEP" "$@" >/dev/null
  e=$(date +%s.%N)
  awk -v s="$s" -v e="$e" 'BEGIN { printf "%.3f", e - s }'
}
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
# rss_mib PID: the process's resident memory, MiB.
rss_mib() { awk '$1 == "VmRSS:" { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(go version | cut -d' ' -f3), load $(cut -d' ' -f1-3 /proc/loadavg); N=$N" >&2
"$work/genpeople" -n "$N" >"$work/people.jsonl"
enc=$(val encoded_bytes_per_person "$(scale -mode encoded -file "$work/people.jsonl")")

# SQLite: import, export, reads, writes.
echo "SQLite: importing $N people" >&2
serve "$work/big.db" big; big=$addr; big_pid=$pid
t=$(timed "$rg" import --addr "$big" "$work/people.jsonl"); sqlite_import=$(rate "$N" "$t")
t=$(timed "$rg" export --addr "$big" "$work/export.jsonl"); sqlite_export=$(rate "$N" "$t")
[[ $(wc -l <"$work/export.jsonl") -ge $N ]] || { echo "export wrote fewer than $N people" >&2; exit 1; }
rm -f "$work/export.jsonl"
echo "SQLite: reads" >&2
serve "$work/small.db" small; small=$addr; small_pid=$pid
get_two=$(val getperson_per_s "$(scale -addr "$small" -mode get)")
get_n=$(val getperson_per_s "$(scale -addr "$big" -mode get -people "$N")")
lines=$(scale -addr "$big" -mode list)
list_city=$(val list_city_ms "$lines")
echo "SQLite: writes" >&2
# The first writes after an import wait for SQLite to checkpoint its
# write-ahead log into the file; a short run first keeps that out.
scale -addr "$big" -mode write -workers 64 -prefix w0 -duration 3s >/dev/null
sqlite_write=$(val addperson_per_s "$(scale -addr "$big" -mode write -workers 64 -prefix w1)")
sqlite_busy_rss=$(rss_mib "$big_pid")
stop "$big_pid"; stop "$small_pid"

echo "SQLite: a server started on 2 and on $N people" >&2
two=$(scale -mode serve -bin "$rg" -store "$work/small.db" -duration 2s)
lines=$(scale -mode serve -bin "$rg" -store "$work/big.db" -people "$N" -duration 3s)
cold=$(val cold_start_s "$lines")
cold_cpu=$(val cold_start_cpu_s "$lines")
rss=$(val rss_bytes "$lines")
if [[ -n "${SCALE_BOUNDED:-}" ]]; then
  echo "SQLite: the whole directory against --cache-max-bytes $SCALE_BOUNDED" >&2
  scale -mode bounded -bin "$rg" -store "$work/big.db" -people "$N" -cache-max-bytes "$SCALE_BOUNDED" -hot "${SCALE_HOT:-100000}" -duration 5s
fi
heap_pp=$(awk -v a="$(val live_heap_bytes "$lines")" -v b="$(val live_heap_bytes "$two")" -v n="$N" -v e="$enc" \
  'BEGIN { printf "%.0f", (a - b) / n - e }')

pg_import=- pg_export=- pg_write=- pg_busy_rss=-
if [[ "$PG" != off ]]; then
  db=$(sed -E 's|^.*/([^/?]+)(\?.*)?$|\1|' <<<"$PG")
  admin=$(sed -E "s|/$db(\\?\|\$)|/postgres\\1|" <<<"$PG")
  psql -q "$admin" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
  echo "PostgreSQL: importing $N people" >&2
  serve "$PG" pg; pga=$addr; pg_pid=$pid
  t=$(timed "$rg" import --addr "$pga" "$work/people.jsonl"); pg_import=$(rate "$N" "$t")
  t=$(timed "$rg" export --addr "$pga" "$work/export.jsonl"); pg_export=$(rate "$N" "$t")
  rm -f "$work/export.jsonl"
  echo "PostgreSQL: writes" >&2
  scale -addr "$pga" -mode write -workers 64 -prefix w0 -duration 3s >/dev/null
  pg_write=$(val addperson_per_s "$(scale -addr "$pga" -mode write -workers 64 -prefix w2)")
  pg_busy_rss=$(rss_mib "$pg_pid")
  stop "$pg_pid"
  psql -q "$admin" -c "DROP DATABASE IF EXISTS $db" >/dev/null
fi

# row NAME VALUE UNIT TARGET HIGHER: one line of the table; HIGHER is 1
# when more is better. The ratio is value/target when more is better and
# target/value otherwise, so 1.00 or more meets the target.
row() {
  awk -v n="$1" -v v="$2" -v u="$3" -v t="$4" -v h="$5" 'BEGIN {
    if (v == "-" || t == "-") { printf "| %-38s | %12s | %-9s | %10s | %6s |\n", n, v, u, t, "-"; exit }
    r = h ? v / t : t / v
    printf "| %-38s | %12s | %-9s | %10s | %5.2f%s |\n", n, v, u, t, r, r >= 1 ? " " : "!"
  }'
}
echo
echo "N = $N people; encoded size $enc bytes a person"
printf "| %-38s | %12s | %-9s | %10s | %6s |\n" figure value unit target ratio
echo "|----------------------------------------|--------------|-----------|------------|--------|"
row "import, SQLite" "$sqlite_import" people/s 100000 1
row "import, PostgreSQL" "$pg_import" people/s 100000 1
row "export, SQLite" "$sqlite_export" people/s 200000 1
row "export, PostgreSQL" "$pg_export" people/s 200000 1
row "read cache heap beyond encoded" "$heap_pp" B/person 120 0
row "resident memory, server" "$(awk -v r="$rss" 'BEGIN { printf "%.0f", r / 1048576 }')" MiB 300 0
row "  SQLite server after import, writes" "$sqlite_busy_rss" MiB 300 0
row "  PostgreSQL server, the same" "$pg_busy_rss" MiB 300 0
row "cold start to first cached read" "$cold" s 1.5 0
row "  CPU time the server used by then" "$cold_cpu" s - 0
row "GetPerson, N people" "$get_n" calls/s - 1
row "GetPerson, 2 people" "$get_two" calls/s - 1
row "GetPerson, N vs 2 people" "$(awk -v a="$get_n" -v b="$get_two" 'BEGIN { printf "%.2f", a / b }')" ratio 0.95 1
row "ListPeople page of 50 by city" "$list_city" ms 2 0
row "AddPerson, 64 callers, SQLite" "$sqlite_write" writes/s 20000 1
row "AddPerson, 64 callers, PostgreSQL" "$pg_write" writes/s 8000 1

// Command engine measures what the databases under RouteGuide allow for its
// own schema, with no gRPC and no RouteGuide logic in the way, so that
// RouteGuide's import and AddPerson figures (bench/scale.sh) can be read
// against a ceiling. It talks to each database directly: SQLite through
// modernc.org/sqlite with the pragmas internal/sqlite opens its writer
// with, PostgreSQL through pgx. The schema is RouteGuide's own: each
// database is made by the store's Open, which applies its migrations, and
// the store is closed before the benchmark writes. A test holds the rows
// the benchmark writes to those the stores write for the same import and
// the same AddPerson.
//
// It measures, for each engine:
//
//	load   N people (genpeople's, in its order) bulk-loaded by the engine's
//	       fastest path into a new directory, the rows RouteGuide's import
//	       stores: the person (with the city index), each distinct hobby,
//	       and the change. SQLite: a transaction every -sqlite-chunk people,
//	       prepared INSERTs of -rows rows each; PostgreSQL: a transaction
//	       every -pg-chunk people, COPY (pgx CopyFrom) straight into each
//	       table. Each transaction's people go in in name order and its
//	       hobbies in key order, its changes in the input's order. Then the
//	       same into the people table alone ("people": the other tables
//	       stay empty), and into the people table without its city index
//	       ("bare").
//	write  on the directory of the full load, for -duration each,
//	       transactions that each add G people with the rows a RouteGuide
//	       AddPerson with a request id writes (the person, its hobbies, its
//	       change and the request's record under a random id), each table's
//	       rows in one statement, committed durably: SQLite in WAL mode
//	       with synchronous=FULL, one writer (SQLite has one); PostgreSQL
//	       with synchronous_commit=on, from C connections at once, each
//	       sending its transaction in one round trip. "_lock": each
//	       transaction first takes the advisory lock RouteGuide's
//	       PostgreSQL writers share, which its gap-free revisions need;
//	       without it revisions come from a counter and writers do not
//	       wait for one another.
//
// Left out, as RouteGuide's and not the engine's: gRPC, decoding, the read
// cache, the check for a request id recorded before, trimming the change
// log and sweeping expired request ids.
//
// Each figure is a "key value" line on stdout:
//
//	people, loadavg_1m_start, loadavg_1m_end  the run's size; the machine's load
//	<e>_load_<kind>_people_per_s              people loaded a second, wall clock
//	<e>_load_<kind>_cpu_us_per_person         this process's CPU a person
//	                                          (all of SQLite's: it runs in it)
//	pg_..._server_cpu_us_per_person           the PostgreSQL backends' CPU a person
//	                                          (not its WAL writer or checkpointer)
//	sqlite_write_g<G>_people_per_s            people added a second
//	pg_write_c<C>_g<G>[_lock]_people_per_s    the same from C connections
//	..._write_..._txn_per_s                   commits a second
//
// where <e> is sqlite or pg and <kind> full, people or bare; with -repeat,
// the runs alternate and each figure is the best of them (the highest
// rate, the least CPU). Then ratios: <e>_load_people_vs_full and
// _bare_vs_full, the people table's rate over the full load's (what the
// hobbies, the change log and the city index cost); sqlite_write_g<G>_vs_g1
// (what sharing a commit among G people buys); pg_..._lock_vs_free (what
// the shared lock costs); pg_vs_sqlite_load_full; and, given RouteGuide's
// own figures (-rg-*), rg_<figure>_vs_engine, RouteGuide's rate over the
// engine's: its import against the full load, its AddPerson from 64
// callers (which one server commits in groups of up to 64, one group at a
// time) against one writer's transactions of 64.
//
// How to read them: a load or write rate is what RouteGuide's import or
// AddPerson could reach on this machine with this schema and these
// durability settings if RouteGuide cost nothing; an rg_..._vs_engine of
// 0.8 means it gets 80% of that. Compare figures taken on the same
// machine at the same time (say with -rg-* from a bench/scale.sh run just
// before): the machine's other work moves wall-clock rates a lot, the CPU
// a person much less. A write is bound by its commit's sync: g1 is about
// the device's syncs a second, and a group of G shares one among G people
// until the rows' own cost (the _cpu_us_per_person) takes over.
//
//	go run ./bench/engine -people 100000
//	go run ./bench/engine -postgres off -repeat 3
//	go run ./bench/engine -rg-sqlite-import 35275 -rg-sqlite-add 5031
//
// Every step is bounded: the loads by -people, the writes by -duration and
// -max-txns each, the whole run by -timeout. The SQLite files go in a
// temporary directory (-dir), removed at the end; the PostgreSQL database
// (-postgres, which must be the benchmark's own) is dropped and created
// again at each load, and dropped at the end.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is what a run measures, from the flags.
type config struct {
	people      int
	dir         string
	postgres    string
	sqliteChunk int
	rows        int
	pgChunk     int
	duration    time.Duration
	maxTxns     int
	groups      []int
	conns       []int
	timeout     time.Duration
	cpuprofile  string
	repeat      int
	loads       []string
	rg          map[string]float64 // RouteGuide's figures, by name
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "engine:", err)
		os.Exit(1)
	}
}

// run parses args and measures, printing figures to stdout and progress
// to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parse(args, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	if cfg.cpuprofile != "" {
		f, err := os.Create(cfg.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	out := &figures{w: stdout}
	out.print("people", float64(cfg.people))
	out.print("loadavg_1m_start", loadavg())
	if err := benchSQLite(ctx, cfg, out, stderr); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	if cfg.postgres != "off" {
		if err := benchPostgres(ctx, cfg, out, stderr); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
	}
	out.ratios(cfg)
	out.print("loadavg_1m_end", loadavg())
	return nil
}

func parse(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("engine", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	fs.IntVar(&cfg.people, "people", 1_000_000, "people to load")
	fs.StringVar(&cfg.dir, "dir", "", "where the SQLite files go (a new temporary directory, removed at the end, when empty)")
	fs.StringVar(&cfg.postgres, "postgres", "postgres://postgres@127.0.0.1:5432/routeguide_engine?sslmode=disable", `the PostgreSQL database to create, use and drop; "off" skips PostgreSQL`)
	fs.IntVar(&cfg.sqliteChunk, "sqlite-chunk", 50_000, "SQLite load: people a transaction")
	fs.IntVar(&cfg.rows, "rows", 1000, "SQLite load: rows an INSERT statement")
	fs.IntVar(&cfg.pgChunk, "pg-chunk", 100_000, "PostgreSQL load: people a transaction")
	fs.DurationVar(&cfg.duration, "duration", 3*time.Second, "how long each write run lasts")
	fs.IntVar(&cfg.maxTxns, "max-txns", 200_000, "the most transactions a write run commits")
	groups := fs.String("groups", "1,32,64", "people a write transaction adds")
	conns := fs.String("conns", "1,2,64", "PostgreSQL: concurrent writer connections")
	loads := fs.String("loads", "full,people,bare", "the loads to measure: full (RouteGuide's rows), people (the people table alone), bare (without its city index)")
	fs.DurationVar(&cfg.timeout, "timeout", 40*time.Minute, "the whole run's limit")
	fs.IntVar(&cfg.repeat, "repeat", 1, "how many times each load and write run is measured, alternating: each figure is the best of them (the highest rate, the least CPU)")
	fs.StringVar(&cfg.cpuprofile, "cpuprofile", "", "write this process's CPU profile of the whole run to this file")
	rg := map[string]*float64{}
	for _, k := range rgFigures {
		rg[k] = fs.Float64("rg-"+strings.ReplaceAll(k, "_", "-"), 0, "RouteGuide's "+strings.ReplaceAll(k, "_", " ")+", people/s (from bench/scale.sh), to print its ratio to the engine's")
	}
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	var err error
	if cfg.groups, err = ints(*groups); err != nil {
		return config{}, fmt.Errorf("-groups: %w", err)
	}
	if cfg.conns, err = ints(*conns); err != nil {
		return config{}, fmt.Errorf("-conns: %w", err)
	}
	cfg.loads = strings.Split(*loads, ",")
	for _, l := range cfg.loads {
		if l != "full" && l != "people" && l != "bare" {
			return config{}, fmt.Errorf("-loads: unknown load %q", l)
		}
	}
	switch {
	case cfg.people < 1:
		return config{}, errors.New("-people must be at least 1")
	case cfg.sqliteChunk < 1 || cfg.pgChunk < 1:
		return config{}, errors.New("-sqlite-chunk and -pg-chunk must be at least 1")
	case cfg.rows < 1 || cfg.rows > 2700: // 2,700 changes rows are 32,400 parameters: SQLite allows 32,766
		return config{}, errors.New("-rows must be from 1 to 2700")
	case cfg.maxTxns < 1 || cfg.duration <= 0 || cfg.repeat < 1:
		return config{}, errors.New("-max-txns, -duration and -repeat must be positive")
	}
	cfg.rg = map[string]float64{}
	for k, v := range rg {
		if *v > 0 {
			cfg.rg[k] = *v
		}
	}
	return cfg, nil
}

// rgFigures are RouteGuide's figures run can set its ratios against, each
// named after the engine figure it is compared with (see figures.ratios).
var rgFigures = []string{"sqlite_import", "sqlite_add", "pg_import", "pg_add"}

// ints parses a comma-separated list of positive integers.
func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// best keeps, for each figure's key, the best of its runs: the highest
// rate and the least CPU a person. Keys print in the order first kept.
type best struct {
	keys []string
	m    map[string]*measure
}

type measure struct {
	g              int     // people a transaction
	rate           float64 // people a second
	cpu, serverCPU float64 // microseconds a person; serverCPU < 0 when not measured
}

// keep records a run of key that added n people, g a transaction, in wall,
// using cpu here and serverCPU in the database's server (< 0: none).
func (b *best) keep(key string, g, n int, wall, cpu, serverCPU time.Duration) {
	if b.m == nil {
		b.m = map[string]*measure{}
	}
	r := measure{g: g, rate: rate(n, wall), cpu: perPerson(cpu, n), serverCPU: -1}
	if serverCPU >= 0 {
		r.serverCPU = perPerson(serverCPU, n)
	}
	m, ok := b.m[key]
	if !ok {
		b.keys = append(b.keys, key)
		b.m[key] = &r
		return
	}
	m.rate = max(m.rate, r.rate)
	m.cpu = min(m.cpu, r.cpu)
	m.serverCPU = min(m.serverCPU, r.serverCPU)
}

// print prints each key's figures: people and (for writes) transactions a
// second, and CPU a person.
func (b *best) print(out *figures) {
	for _, k := range b.keys {
		m := b.m[k]
		out.print(k+"_people_per_s", m.rate)
		if strings.Contains(k, "_write_") {
			out.print(k+"_txn_per_s", m.rate/float64(m.g))
		}
		out.print(k+"_cpu_us_per_person", m.cpu)
		if m.serverCPU >= 0 {
			out.print(k+"_server_cpu_us_per_person", m.serverCPU)
		}
	}
}

// figures prints "key value" lines and keeps them for the ratios.
type figures struct {
	w    io.Writer
	seen map[string]float64
}

func (f *figures) print(key string, v float64) {
	if f.seen == nil {
		f.seen = map[string]float64{}
	}
	f.seen[key] = v
	switch {
	case v == float64(int64(v)) || v >= 100:
		fmt.Fprintf(f.w, "%s %.0f\n", key, v)
	default:
		fmt.Fprintf(f.w, "%s %.3g\n", key, v)
	}
}

// ratio prints key as a over b, when both were measured.
func (f *figures) ratio(key, a, b string) {
	x, ok1 := f.seen[a]
	y, ok2 := f.seen[b]
	if ok1 && ok2 && y > 0 {
		fmt.Fprintf(f.w, "%s %.2f\n", key, x/y)
	}
}

// ratios prints the ratios between the figures measured, and RouteGuide's
// against the engine's: its import against the full load, its AddPerson
// (64 concurrent callers, whose writes one server commits in groups of up
// to 64, one group at a time) against one writer's transactions of 64.
func (f *figures) ratios(cfg config) {
	for _, e := range []string{"sqlite", "pg"} {
		f.ratio(e+"_load_people_vs_full", e+"_load_people_people_per_s", e+"_load_full_people_per_s")
		f.ratio(e+"_load_bare_vs_full", e+"_load_bare_people_per_s", e+"_load_full_people_per_s")
	}
	for _, g := range cfg.groups {
		if g == 1 {
			continue
		}
		f.ratio(fmt.Sprintf("sqlite_write_g%d_vs_g1", g), fmt.Sprintf("sqlite_write_g%d_people_per_s", g), "sqlite_write_g1_people_per_s")
	}
	for _, c := range cfg.conns {
		for _, g := range cfg.groups {
			k := fmt.Sprintf("pg_write_c%d_g%d", c, g)
			f.ratio(k+"_lock_vs_free", k+"_lock_people_per_s", k+"_people_per_s")
		}
	}
	f.ratio("pg_vs_sqlite_load_full", "pg_load_full_people_per_s", "sqlite_load_full_people_per_s")
	engine := map[string]string{
		"sqlite_import": "sqlite_load_full_people_per_s",
		"sqlite_add":    "sqlite_write_g64_people_per_s",
		"pg_import":     "pg_load_full_people_per_s",
		"pg_add":        "pg_write_c1_g64_people_per_s",
	}
	for _, k := range rgFigures {
		if v, ok := cfg.rg[k]; ok {
			f.seen["rg_"+k] = v
			f.ratio("rg_"+k+"_vs_engine", "rg_"+k, engine[k])
		}
	}
}

// loadavg returns the machine's load average over the last minute, or -1
// when /proc does not say.
func loadavg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	v, err := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// cpuSelf returns the CPU time this process has used.
func cpuSelf() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuOf returns the CPU time process pid has used, from /proc (in clock
// ticks of 1/100 s, Linux's USER_HZ), or 0 when /proc does not say.
func cpuOf(pid uint32) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command may hold spaces
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64) // utime, field 14
	k, _ := strconv.ParseInt(f[12], 10, 64) // stime, field 15
	return time.Duration(u+k) * 10 * time.Millisecond
}

// perPerson returns d over n people in microseconds.
func perPerson(d time.Duration, n int) float64 {
	if n == 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(n)
}

// rate returns n over d, a second.
func rate(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

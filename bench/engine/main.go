// Command engine measures what the databases under RouteGuide allow for its
// own schema, with no gRPC and no RouteGuide logic in the way, so that
// RouteGuide's import and AddPerson figures (bench/scale.sh) can be read
// against a ceiling. It talks to each database directly: SQLite through
// modernc.org/sqlite with the pragmas internal/sqlite opens its writer
// with, PostgreSQL through pgx. The schema is RouteGuide's own: each
// database is created by the store's Open, which applies its migrations,
// and then closed.
//
// It measures, for each engine:
//
//	load   N people (genpeople's, in its order) bulk-loaded by the engine's
//	       fastest path into a new directory, the rows RouteGuide's import
//	       stores: the person (with the city index), each distinct hobby,
//	       and the change. SQLite: a transaction every -sqlite-chunk people,
//	       prepared INSERTs of -rows rows each; PostgreSQL: a transaction
//	       every -pg-chunk people, COPY (pgx CopyFrom) into each table. Each
//	       transaction's people go in in name order and its hobbies in key
//	       order, its changes in the input's order. Then the same into the
//	       people table alone ("people": the other tables stay empty), and
//	       into the people table without its city index ("bare").
//	write  on the loaded directory, for -duration each, transactions that
//	       each add G people with the rows a RouteGuide AddPerson with a
//	       request id writes (the person, its hobbies, its change and the
//	       request's record under a random id), committed durably: SQLite
//	       in WAL mode with synchronous=FULL, one writer; PostgreSQL with
//	       synchronous_commit=on, from C connections at once, each
//	       committing its own transactions. With lock, each transaction
//	       first takes the advisory lock RouteGuide's writers share, as
//	       its ordered revisions need; without, revisions come from a
//	       counter and writers do not wait for one another.
//
// Each figure is a "key value" line on stdout. Keys:
//
//	<engine>_load_<kind>_people_per_s        people loaded a second, wall clock
//	<engine>_load_<kind>_cpu_us_per_person   this process's CPU (SQLite runs in it)
//	pg_load_<kind>_server_cpu_us_per_person  the PostgreSQL backend's CPU
//	sqlite_write_g<G>_people_per_s           people added a second
//	pg_write_c<C>_g<G>[_lock]_people_per_s   the same from C connections
//	..._txn_per_s, ..._cpu_us_per_person     commits a second; CPU as above
//
// and ratios: <engine>_load_people_vs_full and _bare_vs_full (how much
// faster the people table alone loads than RouteGuide's schema: the cost of
// the hobbies, the change log and the city index), the writes' g<G>_vs_g1
// (what a group's shared commit buys), and, given RouteGuide's own figures
// (-rg-*), rg_<figure>_vs_engine: RouteGuide's rate over the engine's.
//
// How to read them: the load and write rates are the ceiling RouteGuide's
// import and AddPerson can approach on this machine and this schema; an
// rg_..._vs_engine of 0.8 means RouteGuide gets 80% of it. The machine's
// other work moves the wall-clock rates (the load average is printed at
// the start and the end); the CPU per person moves much less, and is the
// figure to compare between runs. A write rate is bounded by the
// commit's fsync (one a transaction): g1 is about the device's syncs a
// second, and a larger G divides that cost among more people.
//
//	go run ./bench/engine -people 100000
//	go run ./bench/engine -postgres off
//
// Every step is bounded: the loads by -people and -timeout, the writes by
// -duration and -max-txns each. The SQLite files go in a temporary
// directory, removed at the end; the PostgreSQL database (-postgres) is
// dropped and created again at each load, and dropped at the end.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
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
	fs.IntVar(&cfg.sqliteChunk, "sqlite-chunk", 20_000, "SQLite load: people a transaction")
	fs.IntVar(&cfg.rows, "rows", 256, "SQLite load: rows an INSERT statement")
	fs.IntVar(&cfg.pgChunk, "pg-chunk", 100_000, "PostgreSQL load: people a transaction")
	fs.DurationVar(&cfg.duration, "duration", 3*time.Second, "how long each write run lasts")
	fs.IntVar(&cfg.maxTxns, "max-txns", 200_000, "the most transactions a write run commits")
	groups := fs.String("groups", "1,32,64", "people a write transaction adds")
	conns := fs.String("conns", "1,2,64", "PostgreSQL: concurrent writer connections")
	loads := fs.String("loads", "full,people,bare", "the loads to measure: full (RouteGuide's rows), people (the people table alone), bare (without its city index)")
	fs.DurationVar(&cfg.timeout, "timeout", 40*time.Minute, "the whole run's limit")
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
	case cfg.rows < 1 || cfg.rows > 2900: // 2,900 changes rows are 34,800 parameters: SQLite allows 32,766
		return config{}, errors.New("-rows must be from 1 to 2900")
	case cfg.maxTxns < 1 || cfg.duration <= 0:
		return config{}, errors.New("-max-txns and -duration must be positive")
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
	for _, g := range cfg.groups[1:] {
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

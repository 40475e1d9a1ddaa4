package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/routeguide/routeguide/internal/grpcclient"
	"github.com/routeguide/routeguide/internal/loadgen"
	"github.com/routeguide/routeguide/internal/wire"
)

// benchConfig is what `routeguide bench` runs with, besides the connection.
type benchConfig struct {
	workload string
	protocol string
	httpAddr string // the HTTP listener, for the HTTP protocols
	conns    int
	run      loadgen.Config // all but Workload, Timeout and CheckTimeout
}

func benchCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load a RouteGuide server and report its call rate and latency",
		Long: `Load a RouteGuide server, like redis-benchmark or pgbench, and report the
calls it answered, their rate and their latency. Workloads:

  get     GetPerson for --names in turn, from --concurrency callers spread
          over --conns connections
  people  one GetPeople stream on each of --conns connections, names
          pipelined: a sender keeps up to --window names unanswered while a
          receiver reads the answers; a name's latency runs from its send to
          its answer. Names the server does not know are skipped by
          GetPeople, and counted as NotFound errors
  add     AddPerson of new people, named from a prefix unique to the run

The first --warmup is not counted; then the run lasts --duration, or until
-n calls have completed. Calls and the rate count every completed call,
errors included; latency covers every answer, to within 0.1%. GetPerson's
"Not Found" person counts as a NotFound error. Answers are checked by name
and, over gRPC, not decoded further, so that bench's CPU goes to making
calls (the HTTP protocols decode whole answers, on every server alike).
The CPU bench itself used shows whether the client, rather than the
server, set the pace.

--protocol chooses how the calls travel: grpc (the default) to --addr, or
one of the HTTP listener's protocols to --http-addr (serve's --http-addr):
connect-json and connect-proto (Connect unary calls with JSON or binary
bodies), grpc-web, and rest (GET /v1/people/{name}, the JSON answer
decoded). The HTTP protocols run the get workload only, over HTTP/1.1 with
keep-alive, one connection per caller; --tls, --ca, --cert and --token
apply to them as to gRPC. Over REST, a name nobody has is 404 on
RouteGuide and the "Not Found" person on a gateway of the seed's service:
a NotFound error either way.

Calls have no deadline unless --timeout or ROUTEGUIDE_TIMEOUT sets one, and
a run is cut off 10s after its duration. On a terminal, a progress line
shows on stderr. The exit status is 1 when every call failed.`,
		Args: noArgs,
	}
	bc := &benchConfig{workload: "get", protocol: string(loadgen.GRPC), httpAddr: "localhost:8080", conns: 2, run: loadgen.Config{Concurrency: 32, Window: 128, Duration: 10 * time.Second, Warmup: time.Second}}
	f := cmd.Flags()
	f.StringVar(&bc.workload, "workload", bc.workload, "get, people or add")
	f.StringVar(&bc.protocol, "protocol", bc.protocol, "grpc, connect-json, connect-proto, grpc-web or rest")
	f.StringVar(&bc.httpAddr, "http-addr", bc.httpAddr, "the HTTP listener's host:port, for every --protocol but grpc")
	f.IntVarP(&bc.run.Concurrency, "concurrency", "c", bc.run.Concurrency, "callers making calls at once (get, add)")
	f.IntVar(&bc.conns, "conns", bc.conns, "connections; callers are spread over them, and people streams one each")
	f.IntVar(&bc.run.Window, "window", bc.run.Window, "names sent and not yet answered on each stream, at most (people)")
	f.DurationVar(&bc.run.Duration, "duration", bc.run.Duration, "how long to measure, after the warmup")
	f.IntVarP(&bc.run.Count, "count", "n", 0, "measure this many calls in all instead of running for --duration")
	f.DurationVar(&bc.run.Warmup, "warmup", bc.run.Warmup, "how long to run first without counting")
	f.StringSliceVar(&bc.run.Names, "names", []string{"Alice", "Bob"}, "names to ask for, in turn (get, people)")
	cfg := addClientFlags(e, cmd, true)
	f.Lookup("output").Usage = "output format: text, or json for one JSON object"
	// Unlike the other commands, bench gives its calls no deadline by
	// default: a deadline costs the client a context and a timer on every
	// call, and the end of the run bounds every call anyway.
	timeout := f.Lookup("timeout")
	timeout.Usage = "deadline for each call; by default none, and 10s for the first calls that check the server" + envHelp("ROUTEGUIDE_TIMEOUT")
	timeout.DefValue = "0s"
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := bc.check(cmd); err != nil {
			return err
		}
		res, err := runBench(cmd.Context(), e, cfg, bc)
		if err != nil {
			return err
		}
		if cfg.Output == "json" {
			return fail(res.writeJSON(e.stdout))
		}
		return fail(res.writeText(e.stdout))
	}
	return cmd
}

// benchFlag returns the flag that sets a loadgen.Config field, for its
// errors, or "" for a field no flag of bench's sets.
func benchFlag(field string) string {
	switch field {
	case "Workload":
		return "--workload"
	case "Concurrency":
		return "--concurrency"
	case "Window":
		return "--window"
	case "Duration":
		return "--duration"
	case "Count":
		return "-n"
	case "Warmup":
		return "--warmup"
	case "Names":
		return "--names"
	}
	return ""
}

// check refuses values that make no sense, and flags the workload ignores.
func (bc *benchConfig) check(cmd *cobra.Command) error {
	set := cmd.Flags().Changed
	for i, n := range bc.run.Names {
		bc.run.Names[i] = strings.TrimSpace(n)
	}
	bc.run.Workload = loadgen.Workload(bc.workload)
	switch {
	case bc.conns < 1:
		return usageError{fmt.Errorf("--conns %d: want at least 1", bc.conns)}
	case set("count") && bc.run.Count == 0:
		return usageError{errors.New("-n 0: want at least 1")}
	}
	if err := bc.run.Check(); err != nil {
		return benchConfigError(err)
	}
	if !slices.Contains(loadgen.Protocols, loadgen.Protocol(bc.protocol)) {
		return usageError{fmt.Errorf("--protocol %q: want grpc, connect-json, connect-proto, grpc-web or rest", bc.protocol)}
	}
	if bc.protocol != string(loadgen.GRPC) {
		switch {
		case bc.workload != "get":
			return usageError{fmt.Errorf("--protocol %s runs the get workload only; people and add are measured over grpc", bc.protocol)}
		case set("conns"):
			return usageError{fmt.Errorf("--conns is for grpc; --protocol %s uses one HTTP/1.1 connection per caller", bc.protocol)}
		}
		if _, _, err := net.SplitHostPort(bc.httpAddr); err != nil || strings.Contains(bc.httpAddr, "/") {
			return usageError{fmt.Errorf("--http-addr %q: want host:port", bc.httpAddr)}
		}
	} else if set("http-addr") {
		return usageError{errors.New("--http-addr is for the HTTP protocols; grpc calls --addr")}
	}
	switch {
	case set("count") && set("duration"):
		return usageError{errors.New("--duration and -n are alternatives: give one")}
	case bc.workload == "people" && set("concurrency"):
		return usageError{errors.New("--concurrency is for get and add; people runs one stream on each of --conns connections")}
	case bc.workload != "people" && set("window"):
		return usageError{errors.New("--window is for people")}
	case bc.workload == "add" && set("names"):
		return usageError{errors.New("--names is for get and people; add makes up new names")}
	}
	return nil
}

// benchConfigError words loadgen's complaint about a field as one about
// its flag.
func benchConfigError(err error) error {
	var ce *loadgen.ConfigError
	if !errors.As(err, &ce) || benchFlag(ce.Field) == "" {
		return usageError{err}
	}
	if ce.Value == "" {
		return usageError{fmt.Errorf("%s: %s", benchFlag(ce.Field), ce.Want)}
	}
	return usageError{fmt.Errorf("%s %s: %s", benchFlag(ce.Field), ce.Value, ce.Want)}
}

// runBench connects and runs the load, and returns the measured phase's
// result.
func runBench(ctx context.Context, e *env, cfg *clientConfig, bc *benchConfig) (*benchResult, error) {
	var conns []grpc.ClientConnInterface
	addr := cfg.Addr
	if bc.protocol == string(loadgen.GRPC) {
		opts, err := cfg.dialOptions()
		if err != nil {
			return nil, err
		}
		for range bc.conns {
			conn, err := grpcclient.Dial(cfg.Addr, opts...)
			if err != nil {
				return nil, usageError{err}
			}
			defer conn.Close()
			conns = append(conns, conn)
		}
	} else {
		addr = bc.httpAddr
		conn, err := httpConn(ctx, cfg, bc)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		conns = append(conns, conn)
	}
	lc := bc.run
	// The calls that check the server get --timeout's default; the
	// measured calls only a --timeout given.
	lc.CheckTimeout = cfg.Timeout
	if cfg.timeoutSet {
		lc.Timeout = cfg.Timeout
	}
	res, err := loadgen.Run(ctx, conns, lc, newBenchProgress(e.stderr, cfg.Output != "json", bc.workload))
	switch {
	case errors.Is(err, loadgen.ErrNoKnownNames):
		return nil, failure{fmt.Errorf("the server at %s knows none of --names (%s), and GetPeople skips unknown names: nothing to measure", cfg.Addr, strings.Join(lc.Names, ","))}
	case errors.As(err, new(*loadgen.ConfigError)):
		return nil, benchConfigError(err)
	case err != nil:
		if bc.protocol != string(loadgen.GRPC) {
			return nil, failure{fmt.Errorf("RouteGuide at %s over %s: %s", addr, bc.protocol, status.Convert(err).Message())}
		}
		return nil, fail(cfg.describe(wire.FromStatus(err)))
	}
	out := newBenchResult(addr, res)
	out.Protocol = bc.protocol
	if bc.protocol != string(loadgen.GRPC) {
		out.Conns = out.Workers // one HTTP/1.1 connection per caller
	}
	if res.Calls > 0 && out.errorCount() == res.Calls {
		first := cfg.describe(wire.FromStatus(res.FirstError))
		if bc.protocol != string(loadgen.GRPC) {
			// describe names --addr; these calls went to --http-addr.
			first = errors.New(status.Convert(res.FirstError).Message())
		}
		return nil, failure{fmt.Errorf("every call failed: %s (first: %v)", out.errorSummary(), first)}
	}
	if res.Calls == 0 {
		return nil, failure{errors.New("no call completed")}
	}
	return out, nil
}

// httpConn returns the connection the HTTP protocols call --http-addr on,
// with cfg's TLS and token.
func httpConn(ctx context.Context, cfg *clientConfig, bc *benchConfig) (*loadgen.HTTPConn, error) {
	client := loadgen.HTTPClient(bc.run.Concurrency)
	scheme := "http"
	if cfg.TLS {
		tc, err := cfg.tlsConfig()
		if err != nil {
			return nil, err
		}
		client.Transport.(*http.Transport).TLSClientConfig = tc
		scheme = "https"
	}
	header := http.Header{}
	if cfg.Token != "" {
		if !cfg.TLS {
			if err := allLoopback(ctx, bc.httpAddr, []string{bc.httpAddr}); err != nil {
				return nil, err
			}
		}
		header.Set("Authorization", "Bearer "+cfg.Token)
	}
	conn, err := loadgen.NewHTTPConn(loadgen.Protocol(bc.protocol), scheme+"://"+bc.httpAddr, client, header)
	if err != nil {
		return nil, usageError{err}
	}
	return conn, nil
}

// benchResult is what a run measured.
type benchResult struct {
	Workload  string            `json:"workload"`
	Protocol  string            `json:"protocol"`
	Addr      string            `json:"addr"`
	Workers   int               `json:"workers"` // callers, or streams for people
	Conns     int               `json:"conns"`
	Window    int               `json:"window,omitempty"`
	Calls     uint64            `json:"calls"`
	Errors    map[string]uint64 `json:"errors"` // by code name, such as "NotFound"
	DurationS float64           `json:"duration_s"`
	Rate      float64           `json:"rate_per_s"`
	Latency   benchLatency      `json:"latency_us"`
	// ClientCPU is the CPU this process used while measuring, in cores: near
	// the cores it may use, the rate is the client's limit, not the server's.
	ClientCPU float64 `json:"client_cpu,omitempty"`
}

// benchLatency holds latency quantiles in microseconds.
type benchLatency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// newBenchResult returns what r measured, as bench prints it.
func newBenchResult(addr string, r loadgen.Result) *benchResult {
	res := &benchResult{
		Workload: string(r.Workload),
		Addr:     addr,
		Workers:  r.Workers,
		Conns:    r.Conns,
		Window:   r.Window,
		Calls:    r.Calls,
		Errors:   map[string]uint64{},
	}
	for c, n := range r.Errors {
		res.Errors[c.String()] += n
	}
	res.DurationS = round(r.Wall.Seconds(), 1e6)
	res.Rate = round(float64(r.Calls)/r.Wall.Seconds(), 10)
	if r.CPU >= 0 {
		res.ClientCPU = round(r.CPU.Seconds()/r.Wall.Seconds(), 100)
	}
	us := func(d time.Duration) float64 { return round(float64(d)/1e3, 10) }
	res.Latency = benchLatency{
		P50:  us(r.Latency.P50),
		P90:  us(r.Latency.P90),
		P99:  us(r.Latency.P99),
		P999: us(r.Latency.P999),
		Max:  us(r.Latency.Max),
	}
	return res
}

// round rounds x to 1/per.
func round(x, per float64) float64 { return math.Round(x*per) / per }

func (r *benchResult) errorCount() uint64 {
	var n uint64
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// errorSummary lists the errors by code, most frequent first, such as
// "20 NotFound, 3 Unavailable".
func (r *benchResult) errorSummary() string {
	type kv struct {
		code string
		n    uint64
	}
	var all []kv
	for c, n := range r.Errors {
		all = append(all, kv{c, n})
	}
	slices.SortFunc(all, func(a, b kv) int {
		if a.n != b.n {
			if a.n > b.n {
				return -1
			}
			return 1
		}
		return strings.Compare(a.code, b.code)
	})
	parts := make([]string, len(all))
	for i, e := range all {
		parts[i] = fmt.Sprintf("%d %s", e.n, e.code)
	}
	return strings.Join(parts, ", ")
}

func (r *benchResult) writeJSON(w io.Writer) error {
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(append(line, '\n'))
	return err
}

func (r *benchResult) writeText(w io.Writer) error {
	var what string
	switch r.Workload {
	case "get":
		if r.Protocol != "" && r.Protocol != string(loadgen.GRPC) {
			what = fmt.Sprintf("get: GetPerson over %s, %s on %s", r.Protocol, plural(r.Workers, "caller"), plural(r.Conns, "HTTP/1.1 connection"))
			break
		}
		what = fmt.Sprintf("get: GetPerson, %s on %s", plural(r.Workers, "caller"), plural(r.Conns, "connection"))
	case "add":
		what = fmt.Sprintf("add: AddPerson, %s on %s", plural(r.Workers, "caller"), plural(r.Conns, "connection"))
	case "people":
		what = fmt.Sprintf("people: GetPeople, %s of up to %d names in flight", plural(r.Workers, "stream"), r.Window)
	}
	errs := "0"
	if n := r.errorCount(); n > 0 {
		errs = fmt.Sprintf("%d (%s)", n, r.errorSummary())
	}
	us := func(v float64) string { return shortDuration(time.Duration(v * 1e3)) }
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "workload\t%s\n", what)
	fmt.Fprintf(tw, "server\t%s\n", r.Addr)
	fmt.Fprintf(tw, "duration\t%.2fs\n", r.DurationS)
	fmt.Fprintf(tw, "calls\t%d\n", r.Calls)
	fmt.Fprintf(tw, "errors\t%s\n", errs)
	fmt.Fprintf(tw, "rate\t%.0f calls/s\n", r.Rate)
	fmt.Fprintf(tw, "latency\tp50 %s\tp90 %s\tp99 %s\tp99.9 %s\tmax %s\n",
		us(r.Latency.P50), us(r.Latency.P90), us(r.Latency.P99), us(r.Latency.P999), us(r.Latency.Max))
	if r.ClientCPU > 0 {
		fmt.Fprintf(tw, "client\t%.2f cores of CPU\n", r.ClientCPU)
	}
	return tw.Flush()
}

// plural returns "1 thing" or "n things".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return strconv.Itoa(n) + " " + thing + "s"
}

// shortDuration formats d with three significant digits in the largest
// unit that keeps it at least 1: 850ns, 312µs, 1.21ms, 12.1ms, 1.50s.
func shortDuration(d time.Duration) string {
	v, unit := float64(d), "ns"
	for _, u := range []struct {
		name string
		size float64
	}{{"s", 1e9}, {"ms", 1e6}, {"µs", 1e3}} {
		if float64(d) >= u.size {
			v, unit = float64(d)/u.size, u.name
			break
		}
	}
	switch {
	case unit == "ns" || v >= 100:
		return fmt.Sprintf("%.0f%s", v, unit)
	case v >= 10:
		return fmt.Sprintf("%.1f%s", v, unit)
	default:
		return fmt.Sprintf("%.2f%s", v, unit)
	}
}

// benchProgress draws one line on a terminal, redrawn at each progress
// report, with the calls so far, and erases it when a phase ends.
type benchProgress struct {
	w        io.Writer
	workload string
}

// newBenchProgress returns the progress function for a run of workload:
// like import's progress line, it draws only when wanted and w is a
// terminal, and is nil otherwise.
func newBenchProgress(w io.Writer, wanted bool, workload string) func(loadgen.Progress) {
	f, ok := w.(*os.File)
	if !wanted || !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return (&benchProgress{w: w, workload: workload}).show
}

func (p *benchProgress) show(pr loadgen.Progress) {
	if pr.Done {
		fmt.Fprint(p.w, "\r\033[K")
		return
	}
	label := p.workload
	if pr.Phase == loadgen.Warmup {
		label = "warming up"
	}
	rate := float64(pr.Calls) / max(pr.Elapsed.Seconds(), 1e-3)
	fmt.Fprintf(p.w, "\r%s: %.0fs, %d calls, %.0f/s, %d errors\033[K", label, pr.Elapsed.Seconds(), pr.Calls, rate, pr.Errors)
}

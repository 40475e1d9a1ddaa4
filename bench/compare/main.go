// Command compare prints bench/compare.sh's results: it reads the runs the
// script collected, one JSON object a line, and prints one table of the
// medians over rounds, with each server's rate as a ratio to the bare
// grpc-go baseline's and to the Python server's, then the key ratios in a
// few lines.
//
//	compare [-client-cores N] [-steal-max PCT] runs.jsonl
//
// -client-cores is how many cores the load generator could use (1 when
// pinned); a run whose client used nearly all of them is flagged, since its
// rate may be the client's limit rather than the server's. -steal-max is the
// CPU steal, in percent of the machine's CPU time during a run, above which
// the script repeats a run: a run kept above it (every try had more) is
// marked, since the hypervisor, not the server, may have set its pace.
//
// Each line is {"round":1,"server":"routeguide","workload":"get","try":1,
// "rss_kib":24576,"anon_kib":8192,"steal_pct":0.4,"cpu_ticks":{...},
// "result":{...}} with the result `routeguide bench -o json` printed, or,
// for a run that failed, "error" in place of "result". A try the script
// repeated for its steal has "discarded":true and is only counted.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"unicode/utf8"
)

func main() {
	var opt options
	flag.Float64Var(&opt.clientCores, "client-cores", 1, "cores the load generator could use")
	flag.Float64Var(&opt.stealMax, "steal-max", 2, "CPU steal, in percent of a run's CPU time, above which a kept run is marked")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: compare [-client-cores N] [-steal-max PCT] RUNS.jsonl")
		os.Exit(2)
	}
	f, err := os.Open(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
	defer f.Close()
	if err := run(f, os.Stdout, opt); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

// options are the summary's settings.
type options struct {
	clientCores float64 // cores the load generator could use
	stealMax    float64 // percent of CPU time; a kept run above it is marked
}

// runLine is one server's run of one workload in one round.
type runLine struct {
	Round     int     `json:"round"`
	Server    string  `json:"server"`
	Workload  string  `json:"workload"`
	Try       int     `json:"try"`
	Discarded bool    `json:"discarded"`
	RSSKiB    float64 `json:"rss_kib"`
	AnonKiB   float64 `json:"anon_kib"`
	// StealPct is nil in runs saved before steal was measured.
	StealPct *float64 `json:"steal_pct"`
	Error    string   `json:"error"`
	Result   *struct {
		Calls   uint64            `json:"calls"`
		Errors  map[string]uint64 `json:"errors"`
		Rate    float64           `json:"rate_per_s"`
		Latency struct {
			P50 float64 `json:"p50"`
			P99 float64 `json:"p99"`
		} `json:"latency_us"`
		ClientCPU float64 `json:"client_cpu"`
	} `json:"result"`
}

// The servers and workloads in the order the table shows them, and how.
var (
	servers = []struct{ key, label string }{
		{"routeguide", "routeguide"},
		{"routeguide-metrics", "routeguide --metrics-addr"},
		{"baseline", "baseline (grpc-go)"},
		{"python", "python (grpcio)"},
	}
	workloads = []struct{ key, label string }{
		{"get", "GetPerson"},
		{"people", "GetPeople"},
		{"add", "AddPerson"},
	}
)

// cell is the medians of one server's runs of one workload.
type cell struct {
	runs, failed int
	rate, p50    float64 // per second; microseconds
	p99, rssMiB  float64 // microseconds; MiB
	anonMiB      float64 // MiB; 0 when no run sampled it
	clientCPU    float64 // cores
	lastError    string
	stolen       []string // the kept runs above the steal limit, such as "round 2 at 8.1% (try 4)"
}

type key struct{ workload, server string }

// summarise returns the medians of every (workload, server) that ran,
// leaving out the discarded tries.
func summarise(lines []runLine, stealMax float64) map[key]*cell {
	type samples struct {
		rate, p50, p99, rss []float64
		anon, clientCPU     []float64
		failed              int
		lastError           string
		stolen              []string
	}
	all := map[key]*samples{}
	for _, l := range lines {
		if l.Discarded {
			continue
		}
		k := key{l.Workload, l.Server}
		s := all[k]
		if s == nil {
			s = &samples{}
			all[k] = s
		}
		if l.Result == nil {
			s.failed++
			s.lastError = l.Error
			continue
		}
		s.rate = append(s.rate, l.Result.Rate)
		s.p50 = append(s.p50, l.Result.Latency.P50)
		s.p99 = append(s.p99, l.Result.Latency.P99)
		s.rss = append(s.rss, l.RSSKiB/1024)
		if l.AnonKiB > 0 {
			s.anon = append(s.anon, l.AnonKiB/1024)
		}
		s.clientCPU = append(s.clientCPU, l.Result.ClientCPU)
		if l.StealPct != nil && *l.StealPct > stealMax {
			s.stolen = append(s.stolen, fmt.Sprintf("round %d at %.1f%% (try %d)", l.Round, *l.StealPct, l.Try))
		}
	}
	cells := map[key]*cell{}
	for k, s := range all {
		cells[k] = &cell{
			runs: len(s.rate), failed: s.failed, lastError: s.lastError,
			rate: median(s.rate), p50: median(s.p50), p99: median(s.p99), rssMiB: median(s.rss),
			anonMiB: median(s.anon), clientCPU: median(s.clientCPU), stolen: s.stolen,
		}
	}
	return cells
}

// stealSummary describes the CPU steal over every kept run, and how many
// tries were repeated for it, or returns "" when no run measured it.
func stealSummary(lines []runLine, stealMax float64) string {
	var measured, repeated int
	var most float64
	for _, l := range lines {
		switch {
		case l.Discarded:
			repeated++
		case l.StealPct != nil:
			measured++
			most = max(most, *l.StealPct)
		}
	}
	if measured == 0 {
		return ""
	}
	again := "no try was discarded"
	switch {
	case repeated == 1:
		again = "1 try was discarded for steal above it and run again"
	case repeated > 1:
		again = fmt.Sprintf("%d tries were discarded for steal above it and run again", repeated)
	}
	return fmt.Sprintf("CPU steal: at most %.1f%% of the CPU time of a kept run (limit %g%%); %s", most, stealMax, again)
}

// median returns the median of xs, or 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	xs = slices.Sorted(slices.Values(xs))
	if n := len(xs); n%2 == 0 {
		return (xs[n/2-1] + xs[n/2]) / 2
	}
	return xs[len(xs)/2]
}

// clientBound is the share of its cores above which the load generator is
// taken to have set the pace.
const clientBound = 0.9

func run(in io.Reader, out io.Writer, opt options) error {
	var lines []runLine
	sc := bufio.NewScanner(in)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var l runLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	cells := summarise(lines, opt.stealMax)

	rows := [][]string{{"workload", "server", "rate/s", "p50", "p99", "peak RSS MiB", "peak anon MiB", "vs baseline", "vs Python"}}
	var failures, busy, stolen []string
	for _, w := range workloads {
		base, py := cells[key{w.key, "baseline"}], cells[key{w.key, "python"}]
		for _, s := range servers {
			c := cells[key{w.key, s.key}]
			label := s.label
			if c != nil && len(c.stolen) > 0 {
				// The mark goes on the left-aligned server column, so the
				// figures stay aligned.
				label += " *"
				stolen = append(stolen, fmt.Sprintf("%s on %s: CPU steal above %g%% in every try; kept %s", w.label, s.label, opt.stealMax, strings.Join(c.stolen, ", ")))
			}
			switch {
			case c == nil:
				rows = append(rows, []string{w.label, label, "n/a"})
				continue
			case c.runs == 0:
				rows = append(rows, []string{w.label, label, "failed"})
			default:
				anon := "n/a"
				if c.anonMiB > 0 {
					anon = fmt.Sprintf("%.1f", c.anonMiB)
				}
				rows = append(rows, []string{w.label, label, fmt.Sprintf("%.0f", c.rate), micros(c.p50), micros(c.p99),
					fmt.Sprintf("%.1f", c.rssMiB), anon, ratio(c, base), ratio(c, py)})
			}
			if c.runs > 0 && c.clientCPU >= clientBound*opt.clientCores {
				busy = append(busy, fmt.Sprintf("%s on %s: the load generator used %.2f cores of the %g it could use; the server may be faster than this", w.label, s.label, c.clientCPU, opt.clientCores))
			}
			if c.failed > 0 {
				failures = append(failures, fmt.Sprintf("%s on %s: %d of %d runs failed: %s", w.label, s.label, c.failed, c.failed+c.runs, c.lastError))
			}
		}
	}
	if err := writeTable(out, rows, 2); err != nil {
		return err
	}
	for _, f := range failures {
		fmt.Fprintln(out, "failed:", f)
	}
	for _, b := range busy {
		fmt.Fprintln(out, "client-bound:", b)
	}
	for _, s := range stolen {
		fmt.Fprintln(out, "*", s)
	}
	if s := stealSummary(lines, opt.stealMax); s != "" {
		fmt.Fprintln(out, s)
	}

	fmt.Fprintln(out)
	get := func(w, s string) *cell { return cells[key{w, s}] }
	fmt.Fprintf(out, "GetPerson rate: RouteGuide/baseline %s (with --metrics-addr %s), RouteGuide/Python %s\n",
		ratio(get("get", "routeguide"), get("get", "baseline")),
		ratio(get("get", "routeguide-metrics"), get("get", "baseline")),
		ratio(get("get", "routeguide"), get("get", "python")))
	fmt.Fprintf(out, "GetPeople rate: RouteGuide/baseline %s (with --metrics-addr %s), RouteGuide/Python %s\n",
		ratio(get("people", "routeguide"), get("people", "baseline")),
		ratio(get("people", "routeguide-metrics"), get("people", "baseline")),
		ratio(get("people", "routeguide"), get("people", "python")))
	for _, w := range workloads[:2] {
		rg, base := get(w.key, "routeguide"), get(w.key, "baseline")
		if ok(rg) && ok(base) {
			fmt.Fprintf(out, "%s p99: RouteGuide %s, baseline %s (%.2fx)\n", w.label, micros(rg.p99), micros(base.p99), rg.p99/base.p99)
		}
	}
	if rg, base := get("get", "routeguide"), get("get", "baseline"); ok(rg) && ok(base) {
		fmt.Fprintf(out, "peak RSS under GetPerson: RouteGuide %.1f MiB, baseline %.1f MiB (%.2fx)", rg.rssMiB, base.rssMiB, rg.rssMiB/base.rssMiB)
		if rg.anonMiB > 0 && base.anonMiB > 0 {
			fmt.Fprintf(out, "; anonymous memory (heap and stacks): %.1f vs %.1f MiB (%.2fx)", rg.anonMiB, base.anonMiB, rg.anonMiB/base.anonMiB)
		}
		fmt.Fprintln(out)
	}
	return nil
}

// writeTable writes rows as columns two spaces apart, the first left
// columns aligned left and the others right, with no trailing spaces.
func writeTable(w io.Writer, rows [][]string, left int) error {
	var widths []int
	for _, r := range rows {
		for i, c := range r {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		var line strings.Builder
		for i, c := range r {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			if i > 0 {
				line.WriteString("  ")
			}
			if i < left {
				line.WriteString(c + pad)
			} else {
				line.WriteString(pad + c)
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ok reports whether c holds at least one measured run.
func ok(c *cell) bool { return c != nil && c.runs > 0 && c.rate > 0 }

// ratio returns c's rate over of's, such as "0.61x", or "n/a".
func ratio(c, of *cell) string {
	if !ok(c) || !ok(of) {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", c.rate/of.rate)
}

// micros formats a latency given in microseconds with three significant
// digits: 85.2µs, 312µs, 1.21ms, 12.1ms.
func micros(us float64) string {
	v, unit := us, "µs"
	if us >= 1000 {
		v, unit = us/1000, "ms"
	}
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f%s", v, unit)
	case v >= 10:
		return fmt.Sprintf("%.1f%s", v, unit)
	default:
		return fmt.Sprintf("%.2f%s", v, unit)
	}
}

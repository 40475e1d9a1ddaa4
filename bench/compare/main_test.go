package main

import (
	"fmt"
	"strings"
	"testing"
)

// fake is one collected run, as bench/compare.sh writes it.
type fake struct {
	round, try       int
	server, workload string
	rate, p50, p99   float64 // per second; microseconds
	rssKiB, anonKiB  float64
	steal            float64 // percent
	discarded        bool
}

// String returns f as a line of the script's output.
func (f fake) String() string {
	cpu := 0.5
	if f.server == "baseline" {
		cpu = 0.95 // the client was the limit
	}
	discarded := ""
	if f.discarded {
		discarded = `"discarded":true,`
	}
	return fmt.Sprintf(`{"round":%d,"server":%q,"workload":%q,"try":%d,%s"rss_kib":%g,"anon_kib":%g,"steal_pct":%g,"cpu_ticks":{"total":400,"user":200,"system":100,"idle":100,"steal":0},"result":{"workload":%q,"calls":100,"errors":{},"rate_per_s":%g,"latency_us":{"p50":%g,"p90":1,"p99":%g,"p999":1,"max":1},"client_cpu":%g}}`,
		f.round, f.server, f.workload, f.try, discarded, f.rssKiB, f.anonKiB, f.steal, f.workload, f.rate, f.p50, f.p99, cpu)
}

// lines joins runs into the script's output.
func lines(runs ...fmt.Stringer) string {
	var b strings.Builder
	for _, r := range runs {
		b.WriteString(r.String() + "\n")
	}
	return b.String()
}

// raw is a line written as is.
type raw string

func (r raw) String() string { return string(r) }

func TestRun(t *testing.T) {
	in := lines(
		// Three rounds of GetPerson: the medians are the middle values.
		fake{1, 1, "routeguide", "get", 9000, 300, 3000, 30720, 8192, 0.2, false},
		// A try discarded for its steal counts in no median.
		fake{2, 1, "routeguide", "get", 1, 90000, 900000, 90000, 90000, 9.5, true},
		fake{2, 2, "routeguide", "get", 8000, 400, 4000, 20480, 9216, 0.5, false},
		fake{3, 1, "routeguide", "get", 10000, 200, 2000, 25600, 7168, 0.1, false},
		// Every try over the limit: the last is kept, and marked.
		fake{1, 1, "routeguide-metrics", "get", 100, 400, 4000, 30720, 9216, 9.5, true},
		fake{1, 2, "routeguide-metrics", "get", 100, 400, 4000, 30720, 9216, 8, true},
		fake{1, 3, "routeguide-metrics", "get", 100, 400, 4000, 30720, 9216, 4, true},
		fake{1, 4, "routeguide-metrics", "get", 7000, 400, 4000, 30720, 9216, 3.2, false},
		fake{1, 1, "baseline", "get", 20000, 150, 1500, 10240, 6656, 0.1, false},
		fake{2, 1, "baseline", "get", 10000, 150, 1500, 10240, 6656, 0.4, false},
		fake{1, 1, "python", "get", 2000, 12000, 20000, 40960, 20480, 0, false},
		fake{1, 1, "routeguide", "people", 30000, 1000, 5000, 30720, 10240, 0, false},
		fake{1, 1, "baseline", "people", 60000, 85.2, 2500, 10240, 7168, 0, false},
		raw(`{"round":1,"server":"python","workload":"people","try":1,"error":"routeguide: RouteGuide at 127.0.0.1:50071 is unavailable: connection refused"}`),
		fake{1, 1, "routeguide", "add", 1500, 20000, 90000, 35840, 12288, 0, false},
		raw(""),
	)
	var out strings.Builder
	if err := run(strings.NewReader(in), &out, options{clientCores: 1, stealMax: 2}); err != nil {
		t.Fatal(err)
	}
	want := `workload   server                       rate/s     p50     p99  peak RSS MiB  peak anon MiB  vs baseline  vs Python
GetPerson  routeguide                     9000   300µs  3.00ms          25.0            8.0        0.60x      4.50x
GetPerson  routeguide --metrics-addr *    7000   400µs  4.00ms          30.0            9.0        0.47x      3.50x
GetPerson  baseline (grpc-go)            15000   150µs  1.50ms          10.0            6.5        1.00x      7.50x
GetPerson  python (grpcio)                2000  12.0ms  20.0ms          40.0           20.0        0.13x      1.00x
GetPeople  routeguide                    30000  1.00ms  5.00ms          30.0           10.0        0.50x        n/a
GetPeople  routeguide --metrics-addr       n/a
GetPeople  baseline (grpc-go)            60000  85.2µs  2.50ms          10.0            7.0        1.00x        n/a
GetPeople  python (grpcio)              failed
AddPerson  routeguide                     1500  20.0ms  90.0ms          35.0           12.0          n/a        n/a
AddPerson  routeguide --metrics-addr       n/a
AddPerson  baseline (grpc-go)              n/a
AddPerson  python (grpcio)                 n/a
failed: GetPeople on python (grpcio): 1 of 1 runs failed: routeguide: RouteGuide at 127.0.0.1:50071 is unavailable: connection refused
client-bound: GetPerson on baseline (grpc-go): the load generator used 0.95 cores of the 1 it could use; the server may be faster than this
client-bound: GetPeople on baseline (grpc-go): the load generator used 0.95 cores of the 1 it could use; the server may be faster than this
* GetPerson on routeguide --metrics-addr: CPU steal above 2% in every try; kept round 1 at 3.2% (try 4)
CPU steal: at most 3.2% of the CPU time of a kept run (limit 2%); 4 tries were discarded for steal above it and run again

GetPerson rate: RouteGuide/baseline 0.60x (with --metrics-addr 0.47x), RouteGuide/Python 4.50x
GetPeople rate: RouteGuide/baseline 0.50x (with --metrics-addr n/a), RouteGuide/Python n/a
GetPerson p99: RouteGuide 3.00ms, baseline 1.50ms (2.00x)
GetPeople p99: RouteGuide 5.00ms, baseline 2.50ms (2.00x)
peak RSS under GetPerson: RouteGuide 25.0 MiB, baseline 10.0 MiB (2.50x); anonymous memory (heap and stacks): 8.0 vs 6.5 MiB (1.23x)
`
	if got := out.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// TestRunSteal checks which kept runs are marked, and the steal line, for
// the limit the script used.
func TestRunSteal(t *testing.T) {
	in := lines(
		fake{1, 1, "routeguide", "get", 9000, 300, 3000, 30720, 8192, 6, true},
		fake{1, 2, "routeguide", "get", 9000, 300, 3000, 30720, 8192, 3, false},
		fake{1, 1, "baseline", "get", 20000, 150, 1500, 10240, 6656, 0.5, false},
	)
	tests := []struct {
		stealMax          float64
		marked            bool
		wantNote, wantSum string
	}{
		{stealMax: 2, marked: true,
			wantNote: "* GetPerson on routeguide: CPU steal above 2% in every try; kept round 1 at 3.0% (try 2)\n",
			wantSum:  "CPU steal: at most 3.0% of the CPU time of a kept run (limit 2%); 1 try was discarded for steal above it and run again\n"},
		{stealMax: 4.5, marked: false,
			wantSum: "CPU steal: at most 3.0% of the CPU time of a kept run (limit 4.5%); 1 try was discarded for steal above it and run again\n"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.stealMax), func(t *testing.T) {
			var out strings.Builder
			if err := run(strings.NewReader(in), &out, options{clientCores: 1, stealMax: tt.stealMax}); err != nil {
				t.Fatal(err)
			}
			got := out.String()
			if marked := strings.Contains(got, "GetPerson  routeguide *"); marked != tt.marked {
				t.Errorf("routeguide's row marked = %v, want %v:\n%s", marked, tt.marked, got)
			}
			if hasNote := strings.Contains(got, "\n* "); hasNote != (tt.wantNote != "") || !strings.Contains(got, tt.wantNote) {
				t.Errorf("got:\n%s\nwant the note %q", got, tt.wantNote)
			}
			if !strings.Contains(got, "\n"+tt.wantSum) {
				t.Errorf("got:\n%s\nwant the line %q", got, tt.wantSum)
			}
		})
	}
}

// TestRunOldRuns checks that runs saved before steal and anonymous memory
// were measured still summarise, showing neither.
func TestRunOldRuns(t *testing.T) {
	in := lines(
		raw(`{"round":1,"server":"routeguide","workload":"get","rss_kib":25600,"result":{"calls":100,"rate_per_s":9000,"latency_us":{"p50":300,"p99":3000}}}`),
		raw(`{"round":1,"server":"baseline","workload":"get","rss_kib":10240,"result":{"calls":100,"rate_per_s":15000,"latency_us":{"p50":150,"p99":1500}}}`),
	)
	var out strings.Builder
	if err := run(strings.NewReader(in), &out, options{clientCores: 1, stealMax: 2}); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"GetPerson  routeguide                   9000  300µs  3.00ms          25.0            n/a        0.60x        n/a\n",
		"\npeak RSS under GetPerson: RouteGuide 25.0 MiB, baseline 10.0 MiB (2.50x)\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("got:\n%s\nwant the line %q", got, want)
		}
	}
	if strings.Contains(got, "steal") {
		t.Errorf("got:\n%s\nwant no word of steal", got)
	}
}

func TestRunRefusesABadLine(t *testing.T) {
	in := fake{1, 1, "baseline", "get", 1, 1, 1, 1, 1, 0, false}.String() + "\nnot json\n"
	err := run(strings.NewReader(in), &strings.Builder{}, options{clientCores: 1, stealMax: 2})
	if err == nil || !strings.HasPrefix(err.Error(), "line 2: ") {
		t.Errorf("run = %v, want an error naming line 2", err)
	}
}

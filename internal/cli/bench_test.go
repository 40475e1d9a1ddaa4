package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/routeguide/routeguide/internal/loadgen"
)

// runBenchJSON runs `routeguide bench -o json` with args and returns its
// result, failing the test unless it exits 0 with nothing on stderr.
func runBenchJSON(t *testing.T, args ...string) benchResult {
	t.Helper()
	got := runCLI(t, nil, "", append([]string{"bench", "-o", "json"}, args...)...)
	if got.code != exitOK || got.stderr != "" {
		t.Fatalf("bench %q: exit %d, stderr:\n%s", args, got.code, got.stderr)
	}
	if strings.Count(got.stdout, "\n") != 1 {
		t.Fatalf("bench -o json printed %q, want one line", got.stdout)
	}
	var res benchResult
	dec := json.NewDecoder(strings.NewReader(got.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("bench -o json printed %q: %v", got.stdout, err)
	}
	return res
}

// checkLatency fails unless the quantiles are positive and in order.
func checkLatency(t *testing.T, l benchLatency) {
	t.Helper()
	q := []float64{l.P50, l.P90, l.P99, l.P999, l.Max}
	if q[0] <= 0 || !slices.IsSorted(q) {
		t.Errorf("latency_us = %+v, want positive quantiles in order", l)
	}
}

func TestBenchWorkloads(t *testing.T) {
	addr := startServer(t)
	tests := []struct {
		name       string
		args       []string
		want       benchResult // Calls, Errors, Workers, Conns, Window
		noLatency  bool
		addsPeople int
	}{
		{
			name: "get",
			args: []string{"--workload", "get", "-n", "50", "-c", "4", "--conns", "2"},
			want: benchResult{Workload: "get", Workers: 4, Conns: 2, Calls: 50, Errors: map[string]uint64{}},
		},
		{
			name: "get with a name nobody has",
			args: []string{"-n", "40", "-c", "4", "--names", "Alice,Charlie"},
			// Each caller makes 10 calls, half of them for Charlie.
			want: benchResult{Workload: "get", Workers: 4, Conns: 2, Calls: 40, Errors: map[string]uint64{"NotFound": 20}},
		},
		{
			name: "a deadline for each call",
			args: []string{"-n", "10", "-c", "2", "--timeout", "10s"},
			want: benchResult{Workload: "get", Workers: 2, Conns: 2, Calls: 10, Errors: map[string]uint64{}},
		},
		{
			name: "fewer calls than callers",
			args: []string{"-n", "3", "-c", "8", "--conns", "3"},
			want: benchResult{Workload: "get", Workers: 8, Conns: 3, Calls: 3, Errors: map[string]uint64{}},
		},
		{
			name: "people",
			args: []string{"--workload", "people", "-n", "60", "--conns", "2", "--window", "4", "--names", "Alice,Bob,Alice"},
			want: benchResult{Workload: "people", Workers: 2, Conns: 2, Window: 4, Calls: 60, Errors: map[string]uint64{}},
		},
		{
			name: "people skips a name nobody has",
			// The window grows to the number of names, so that it always
			// holds one the server answers.
			args: []string{"--workload", "people", "-n", "30", "--conns", "1", "--window", "2", "--names", "Charlie,Bob,Dana"},
			want: benchResult{Workload: "people", Workers: 1, Conns: 1, Window: 3, Calls: 30, Errors: map[string]uint64{"NotFound": 20}},
		},
		{
			name:       "add",
			args:       []string{"--workload", "add", "-n", "20", "-c", "3"},
			want:       benchResult{Workload: "add", Workers: 3, Conns: 2, Calls: 20, Errors: map[string]uint64{}},
			addsPeople: 20,
		},
		{
			name:       "add again, under new names",
			args:       []string{"--workload", "add", "-n", "7", "-c", "2", "--conns", "1"},
			want:       benchResult{Workload: "add", Workers: 2, Conns: 1, Calls: 7, Errors: map[string]uint64{}},
			addsPeople: 7,
		},
	}
	added := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runBenchJSON(t, append([]string{"--addr", addr, "--warmup", "0"}, tt.args...)...)
			checkLatency(t, got.Latency)
			if got.DurationS <= 0 || got.Rate <= 0 {
				t.Errorf("duration_s = %v, rate_per_s = %v; want both positive", got.DurationS, got.Rate)
			}
			if got.ClientCPU <= 0 {
				t.Errorf("client_cpu = %v, want the CPU bench used", got.ClientCPU)
			}
			got.Latency, got.DurationS, got.Rate, got.ClientCPU = benchLatency{}, 0, 0, 0
			tt.want.Addr, tt.want.Protocol = addr, "grpc"
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("result = %+v, want %+v", got, tt.want)
			}
			added += tt.addsPeople
			list := runCLI(t, nil, "", "list", "--addr", addr, "-o", "json", "--prefix", "bench-")
			if n := strings.Count(list.stdout, "\n"); n != added {
				t.Errorf("after %d people added by bench, list --prefix bench- shows %d:\n%s%s", added, n, list.stdout, list.stderr)
			}
		})
	}
}

func TestBenchForADuration(t *testing.T) {
	addr := startServer(t)
	for _, workload := range []string{"get", "people"} {
		t.Run(workload, func(t *testing.T) {
			got := runBenchJSON(t, "--addr", addr, "--workload", workload, "--conns", "1", "--duration", "300ms", "--warmup", "100ms")
			if got.Calls == 0 || len(got.Errors) != 0 {
				t.Errorf("calls = %d, errors = %v; want some calls and no errors", got.Calls, got.Errors)
			}
			checkLatency(t, got.Latency)
		})
	}
}

// numbers matches what varies from run to run in bench's text output.
var numbers = regexp.MustCompile(`(^|[\s(])[0-9][0-9.]*(ns|µs|ms|s)?`)

func TestBenchText(t *testing.T) {
	addr := startServer(t)
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"bench_text_get", []string{"-n", "20", "--names", "Alice,Charlie"}},
		{"bench_text_people", []string{"--workload", "people", "-n", "20"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := runCLI(t, nil, "", append([]string{"bench", "--addr", addr, "--warmup", "0"}, tt.args...)...)
			got.stdout = numbers.ReplaceAllString(strings.ReplaceAll(got.stdout, addr, "ADDR"), "${1}N")
			checkGolden(t, tt.name, got.golden(addr))
		})
	}
}

func TestBenchFailures(t *testing.T) {
	addr := startServer(t)
	closed := closedAddr(t)
	silent := silentListener(t)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     string // stderr's first line
	}{
		{"every call fails", []string{"--addr", addr, "-n", "10", "--names", "Charlie"}, exitFailure,
			`routeguide: every call failed: 10 NotFound (first: no person named "Charlie")`},
		{"unreachable", []string{"--addr", closed, "-n", "10"}, exitFailure,
			`routeguide: RouteGuide at CLOSED is unavailable: connection refused`},
		{"silent", []string{"--addr", silent, "-n", "10", "--timeout", "200ms"}, exitFailure,
			`routeguide: no answer from RouteGuide at SILENT within 200ms (--timeout)`},
		{"people knowing nobody", []string{"--addr", addr, "--workload", "people", "-n", "10", "--names", "Charlie,Dana"}, exitFailure,
			`routeguide: the server at ADDR knows none of --names (Charlie,Dana), and GetPeople skips unknown names: nothing to measure`},
		{"unknown workload", []string{"--workload", "list"}, exitUsage, `routeguide: --workload "list": want get, people or add`},
		{"count and duration", []string{"-n", "5", "--duration", "1s"}, exitUsage, `routeguide: --duration and -n are alternatives: give one`},
		{"zero count", []string{"-n", "0"}, exitUsage, `routeguide: -n 0: want at least 1`},
		{"concurrency for people", []string{"--workload", "people", "-c", "4"}, exitUsage,
			`routeguide: --concurrency is for get and add; people runs one stream on each of --conns connections`},
		{"window for get", []string{"--window", "4"}, exitUsage, `routeguide: --window is for people`},
		{"names for add", []string{"--workload", "add", "--names", "Alice"}, exitUsage,
			`routeguide: --names is for get and people; add makes up new names`},
		{"empty name", []string{"--names", "Alice,,Bob"}, exitUsage, `routeguide: --names: a name is empty`},
		{"no connections", []string{"--conns", "0"}, exitUsage, `routeguide: --conns 0: want at least 1`},
		{"unknown protocol", []string{"--protocol", "soap"}, exitUsage,
			`routeguide: --protocol "soap": want grpc, connect-json, connect-proto, grpc-web or rest`},
		{"people over rest", []string{"--protocol", "rest", "--workload", "people"}, exitUsage,
			`routeguide: --protocol rest runs the get workload only; people and add are measured over grpc`},
		{"conns over http", []string{"--protocol", "connect-json", "--conns", "4"}, exitUsage,
			`routeguide: --conns is for grpc; --protocol connect-json uses one HTTP/1.1 connection per caller`},
		{"http-addr for grpc", []string{"--http-addr", "127.0.0.1:8080"}, exitUsage,
			`routeguide: --http-addr is for the HTTP protocols; grpc calls --addr`},
		{"http-addr without port", []string{"--protocol", "rest", "--http-addr", "localhost"}, exitUsage,
			`routeguide: --http-addr "localhost": want host:port`},
		{"http-addr as a URL", []string{"--protocol", "rest", "--http-addr", "http://localhost:8080"}, exitUsage,
			`routeguide: --http-addr "http://localhost:8080": want host:port`},
		{"http unreachable", []string{"--protocol", "rest", "--http-addr", closed, "-n", "10"}, exitFailure,
			`routeguide: RouteGuide at CLOSED over rest: Get "http://CLOSED/v1/people/Alice": dial tcp CLOSED: connect: connection refused`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runCLI(t, nil, "", append([]string{"bench", "--warmup", "0"}, tt.args...)...)
			stderr := strings.NewReplacer(closed, "CLOSED", silent, "SILENT", addr, "ADDR").Replace(got.stderr)
			first, _, _ := strings.Cut(stderr, "\n")
			if got.code != tt.wantCode || first != tt.want || got.stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant exit %d and first line\n%s", got.code, got.stdout, stderr, tt.wantCode, tt.want)
			}
		})
	}
}

// httpAddrLine is serve's start line's HTTP listener address.
var httpAddrLine = regexp.MustCompile(`msg="serving RouteGuide" .*http_addr=(\S+)`)

// startHTTPServer runs `routeguide serve` with its HTTP listener on a free
// loopback port and returns the listener's address.
func startHTTPServer(t *testing.T) string {
	t.Helper()
	s := runServe(t, noEnv, "--addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--store", filepath.Join(t.TempDir(), "people.db"))
	waitServing(t, s.addr)
	m := httpAddrLine.FindStringSubmatch(s.logs.String())
	if m == nil {
		t.Fatalf("no http_addr in serve's start line:\n%s", s.logs)
	}
	return m[1]
}

func TestBenchHTTPProtocols(t *testing.T) {
	addr := startHTTPServer(t)
	for _, p := range loadgen.Protocols[1:] {
		t.Run(string(p), func(t *testing.T) {
			// Each caller makes 10 calls, half of them for Charlie, whom
			// RouteGuide does not know: the "Not Found" person over Connect
			// and gRPC-Web, 404 over REST, a NotFound error either way.
			got := runBenchJSON(t, "--protocol", string(p), "--http-addr", addr, "--warmup", "0", "-n", "30", "-c", "3", "--names", "Alice,Charlie")
			checkLatency(t, got.Latency)
			want := benchResult{Workload: "get", Protocol: string(p), Addr: addr, Workers: 3, Conns: 3, Calls: 30, Errors: map[string]uint64{"NotFound": 15}}
			got.Latency, got.DurationS, got.Rate, got.ClientCPU = benchLatency{}, 0, 0, 0
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("result = %+v, want %+v", got, want)
			}
		})
	}
	t.Run("text", func(t *testing.T) {
		got := runCLI(t, nil, "", "bench", "--protocol", "rest", "--http-addr", addr, "--warmup", "0", "-n", "20", "--names", "Alice,Charlie")
		got.stdout = numbers.ReplaceAllString(strings.ReplaceAll(got.stdout, addr, "ADDR"), "${1}N")
		checkGolden(t, "bench_text_rest", got.golden(addr))
	})
	t.Run("every call fails", func(t *testing.T) {
		got := runCLI(t, nil, "", "bench", "--protocol", "connect-proto", "--http-addr", addr, "--warmup", "0", "-n", "10", "--names", "Charlie")
		want := `routeguide: every call failed: 10 NotFound (first: no person named "Charlie")`
		if first, _, _ := strings.Cut(got.stderr, "\n"); got.code != exitFailure || first != want {
			t.Errorf("exit %d, stderr:\n%s\nwant exit %d and first line\n%s", got.code, got.stderr, exitFailure, want)
		}
	})
}

func TestShortDuration(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{850, "850ns"},
		{312 * time.Microsecond, "312µs"},
		{1210 * time.Microsecond, "1.21ms"},
		{12100 * time.Microsecond, "12.1ms"},
		{1500 * time.Millisecond, "1.50s"},
	} {
		if got := shortDuration(tt.d); got != tt.want {
			t.Errorf("shortDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestBenchProgress(t *testing.T) {
	if p := newBenchProgress(&bytes.Buffer{}, true, "get"); p != nil {
		t.Error("progress is drawn on a buffer, want it only on a terminal")
	}
	var buf bytes.Buffer
	p := &benchProgress{w: &buf, workload: "get"}
	p.show(loadgen.Progress{Phase: loadgen.Warmup, Elapsed: 1500 * time.Millisecond, Calls: 30, Errors: 0})
	p.show(loadgen.Progress{Phase: loadgen.Warmup, Done: true})
	p.show(loadgen.Progress{Phase: loadgen.Measure, Elapsed: 2 * time.Second, Calls: 2, Errors: 1})
	p.show(loadgen.Progress{Phase: loadgen.Measure, Done: true})
	want := "\rwarming up: 2s, 30 calls, 20/s, 0 errors\x1b[K\r\x1b[K" +
		"\rget: 2s, 2 calls, 1/s, 1 errors\x1b[K\r\x1b[K"
	if got := buf.String(); got != want {
		t.Errorf("progress wrote\n%q\nwant\n%q", got, want)
	}
}

// TestBenchHTTPToken checks that --token reaches the HTTP listener as a
// bearer token, in every HTTP protocol.
func TestBenchHTTPToken(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("reader-token-0123456789 rita reader\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := runServe(t, noEnv, "--addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--store", "memory", "--tokens", tokens)
	waitServing(t, s.addr)
	m := httpAddrLine.FindStringSubmatch(s.logs.String())
	if m == nil {
		t.Fatalf("no http_addr in serve's start line:\n%s", s.logs)
	}
	addr := m[1]
	for _, p := range loadgen.Protocols[1:] {
		t.Run(string(p), func(t *testing.T) {
			got := runBenchJSON(t, "--protocol", string(p), "--http-addr", addr, "--token", "reader-token-0123456789", "--warmup", "0", "-n", "10", "-c", "2")
			if got.Calls != 10 || len(got.Errors) != 0 {
				t.Errorf("with the token: %d calls, errors %v; want 10 calls and none", got.Calls, got.Errors)
			}
			anon := runCLI(t, nil, "", "bench", "--protocol", string(p), "--http-addr", addr, "--warmup", "0", "-n", "10")
			first, _, _ := strings.Cut(strings.ReplaceAll(anon.stderr, addr, "ADDR"), "\n")
			if want := "routeguide: RouteGuide at ADDR over " + string(p) + ": "; anon.code != exitFailure || !strings.HasPrefix(first, want) || !strings.Contains(strings.ToLower(first), "token") {
				t.Errorf("without a token: exit %d, stderr:\n%s\nwant exit %d and a first line starting %q that speaks of the token", anon.code, anon.stderr, exitFailure, want)
			}
		})
	}
}

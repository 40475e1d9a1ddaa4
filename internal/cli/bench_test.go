package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	pb "github.com/routeguide/routeguide/internal/gen/routeguidepb"
	"github.com/routeguide/routeguide/internal/syncbuf"
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
			tt.want.Addr = addr
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

func TestHistogram(t *testing.T) {
	// Every bucket's middle falls in that bucket, and the buckets are in
	// order, so no value is misplaced by more than half a bucket.
	for i := range histBuckets {
		if got := histIndex(histValue(i)); got != i {
			t.Fatalf("histIndex(histValue(%d) = %d) = %d", i, histValue(i), got)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		v := r.Uint64() >> r.IntN(64)
		mid := histValue(histIndex(v))
		if diff := float64(max(v, mid) - min(v, mid)); diff > float64(v)/256+0.5 {
			t.Fatalf("value %d is reported as %d, off by more than 1/256", v, mid)
		}
	}

	var h histogram
	for v := 1; v <= 1000; v++ {
		h.record(time.Duration(v) * time.Microsecond)
	}
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {1, 1000 * time.Microsecond}} {
		got := h.quantile(tt.q)
		if d := (got - tt.want).Abs(); d > tt.want/128 {
			t.Errorf("quantile(%v) = %v, want %v to within 1/128", tt.q, got, tt.want)
		}
	}
	var merged histogram
	merged.merge(&h)
	merged.merge(&h)
	if merged.n != 2000 || merged.max != time.Millisecond || merged.quantile(0.5) != h.quantile(0.5) {
		t.Errorf("merged: n %d, max %v, p50 %v; want 2000, 1ms, %v", merged.n, merged.max, merged.quantile(0.5), h.quantile(0.5))
	}
	if got := (&histogram{}).quantile(0.5); got != 0 {
		t.Errorf("empty quantile = %v, want 0", got)
	}
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
	var quiet bytes.Buffer
	if p := newBenchProgress(&quiet, true); p.active {
		t.Error("progress is active on a buffer, want it only on a terminal")
	}
	var buf syncbuf.Buffer
	p := &benchProgress{w: &buf, active: true, every: time.Millisecond}
	recs := []*recorder{new(recorder), new(recorder)}
	recs[0].answered(time.Millisecond)
	recs[1].failed(5, time.Millisecond, true, func() error { return nil })
	stop := p.run("get", time.Now(), recs)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(buf.String(), "2 calls") {
		if time.Now().After(deadline) {
			t.Fatalf("no progress line after 5s: %q", buf.String())
		}
		time.Sleep(time.Millisecond)
	}
	stop()
	out := buf.String()
	if !regexp.MustCompile(`^\rget: \d+s, 2 calls, \d+/s, 1 errors\x1b\[K`).MatchString(out) || !strings.HasSuffix(out, "\r\x1b[K") {
		t.Errorf("progress wrote %q, want lines like \"\\rget: 0s, 2 calls, N/s, 1 errors\" ending erased", out)
	}
}

// skipsBob is a server that knows Bob through GetPerson but wrongly skips
// him in GetPeople.
type skipsBob struct {
	pb.UnimplementedRouteGuideServer
}

func (skipsBob) GetPerson(_ context.Context, req *pb.Name) (*pb.Person, error) {
	return &pb.Person{Name: req.GetName(), Age: 1}, nil
}

func (skipsBob) GetPeople(stream grpc.BidiStreamingServer[pb.Name, pb.Person]) error {
	for {
		req, err := stream.Recv()
		if err != nil {
			return nil
		}
		if req.GetName() != "Bob" {
			if err := stream.Send(&pb.Person{Name: req.GetName()}); err != nil {
				return err
			}
		}
	}
}

// TestBenchPeopleChecksTheOrder checks that a GetPeople answer is matched
// to its own name: a known name left unanswered is an error, not a
// latency.
func TestBenchPeopleChecksTheOrder(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pb.RegisterRouteGuideServer(srv, skipsBob{})
	go srv.Serve(lis)
	defer srv.Stop()

	got := runBenchJSON(t, "--addr", lis.Addr().String(), "--warmup", "0", "--workload", "people", "--conns", "1", "-n", "20", "--window", "1")
	if got.Errors["Internal"] == 0 || got.Calls == 0 || got.Calls > 20 {
		t.Errorf("calls = %d, errors = %v; want some Internal errors for Bob", got.Calls, got.Errors)
	}
}

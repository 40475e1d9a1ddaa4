package loadgen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/routeguide/routeguide/internal/grpcserver"
	"github.com/routeguide/routeguide/internal/memory"
	"github.com/routeguide/routeguide/internal/people"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// valid returns a Config Run accepts, for workload w.
func valid(w Workload) Config {
	return Config{Workload: w, Concurrency: 2, Window: 4, Count: 10, Names: []string{"Alice", "Bob"}}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want string // the error, or "" for none
	}{
		{"get", func(*Config) {}, ""},
		{"people", func(c *Config) { c.Workload = People; c.Concurrency = 0 }, ""},
		{"add ignores names", func(c *Config) { c.Workload = Add; c.Names = nil }, ""},
		{"duration instead of count", func(c *Config) { c.Count = 0; c.Duration = time.Second }, ""},
		{"unknown workload", func(c *Config) { c.Workload = "list" }, `loadgen: Workload "list": want get, people or add`},
		{"no callers", func(c *Config) { c.Concurrency = 0 }, "loadgen: Concurrency 0: want at least 1"},
		{"no window", func(c *Config) { c.Workload = People; c.Window = 0 }, "loadgen: Window 0: want at least 1"},
		{"neither count nor duration", func(c *Config) { c.Count = 0 }, "loadgen: Duration 0s: want more than 0"},
		{"negative count", func(c *Config) { c.Count = -1 }, "loadgen: Count -1: want at least 1"},
		{"negative warmup", func(c *Config) { c.Warmup = -time.Second }, "loadgen: Warmup -1s: must not be negative"},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, "loadgen: Timeout -1s: must not be negative"},
		{"negative check timeout", func(c *Config) { c.CheckTimeout = -time.Second }, "loadgen: CheckTimeout -1s: must not be negative"},
		{"negative progress", func(c *Config) { c.ProgressEvery = -time.Second }, "loadgen: ProgressEvery -1s: must not be negative"},
		{"no names", func(c *Config) { c.Names = nil }, "loadgen: Names: want at least one name"},
		{"an empty name", func(c *Config) { c.Names = []string{"Alice", ""} }, "loadgen: Names: a name is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid(Get)
			tt.edit(&c)
			err := c.Check()
			if tt.want == "" {
				if err != nil {
					t.Errorf("Check() = %v, want nil", err)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || err.Error() != tt.want {
				t.Errorf("Check() = %v, want a *ConfigError %q", err, tt.want)
			}
			// Run refuses it before calling anyone.
			if _, err := Run(context.Background(), nil, c, nil); !errors.As(err, &ce) {
				t.Errorf("Run() = %v, want a *ConfigError", err)
			}
		})
	}
	if _, err := Run(context.Background(), nil, valid(Get), nil); err == nil || !strings.Contains(err.Error(), "conns 0") {
		t.Errorf("Run with no connections = %v, want a *ConfigError", err)
	}
}

// TestHistogram checks the quantiles of a known distribution: each to
// within 0.1%, and with the three significant digits bench prints equal to
// the exact value's.
func TestHistogram(t *testing.T) {
	h := newHistogram()
	for v := 1; v <= 1000; v++ {
		h.record(time.Duration(v) * time.Microsecond)
	}
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 500 * time.Microsecond},
		{0.9, 900 * time.Microsecond},
		{0.99, 990 * time.Microsecond},
		{0.999, 999 * time.Microsecond},
		{1, 1000 * time.Microsecond},
	} {
		got := h.quantile(tt.q)
		if d := (got - tt.want).Abs(); d > tt.want/1000 {
			t.Errorf("quantile(%v) = %v, want %v to within 0.1%%", tt.q, got, tt.want)
		}
		if g, w := fmt.Sprintf("%.3g", got.Seconds()), fmt.Sprintf("%.3g", tt.want.Seconds()); g != w {
			t.Errorf("quantile(%v) = %v, printed %s; want %s", tt.q, got, g, w)
		}
	}
	if h.max != time.Millisecond {
		t.Errorf("max = %v, want 1ms", h.max)
	}

	// Random values, recorded once each: every quantile is the exact one
	// to within 0.1%, and none is more than the maximum.
	r := rand.New(rand.NewPCG(1, 2))
	var all []time.Duration
	h = newHistogram()
	for range 100000 {
		v := time.Duration(r.Int64N(int64(time.Second)) >> r.IntN(30))
		all = append(all, v)
		h.record(v)
	}
	slices.Sort(all)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		exact := all[int(q*float64(len(all)))-1]
		if got := h.quantile(q); (got-exact).Abs() > exact/1000+1 || got > h.max {
			t.Errorf("quantile(%v) = %v, want %v to within 0.1%% and at most max %v", q, got, exact, h.max)
		}
	}

	merged := newHistogram()
	merged.merge(h)
	merged.merge(h)
	if merged.h.TotalCount() != 200000 || merged.max != h.max || merged.quantile(0.5) != h.quantile(0.5) {
		t.Errorf("merged: n %d, max %v, p50 %v; want 200000, %v, %v", merged.h.TotalCount(), merged.max, merged.quantile(0.5), h.max, h.quantile(0.5))
	}
	if got := newHistogram().quantile(0.5); got != 0 {
		t.Errorf("empty quantile = %v, want 0", got)
	}

	// Out of range: counted at the edges, never an error.
	h = newHistogram()
	h.record(-time.Second)
	h.record(2 * histHighest)
	if h.quantile(0.5) != 0 || h.quantile(1) != 2*histHighest || h.max != 2*histHighest {
		t.Errorf("p50 %v, p100 %v, max %v; want 0 and %v twice", h.quantile(0.5), h.quantile(1), h.max, 2*histHighest)
	}
}

// BenchmarkHistogramRecord measures what recording a latency costs a
// caller, in a hot loop.
func BenchmarkHistogramRecord(b *testing.B) {
	lat := make([]time.Duration, 1024)
	for i := range lat {
		lat[i] = time.Duration(20000 + i*37)
	}
	h := newHistogram()
	for i := 0; b.Loop(); i++ {
		h.record(lat[i&1023])
	}
}

// serve runs a RouteGuide server on a loopback port with the seed's people
// and returns its store and n connections to it.
func serve(t *testing.T, n int) (*memory.Store, []grpc.ClientConnInterface) {
	t.Helper()
	store := memory.New(0, people.Seed()...)
	srv := grpcserver.New(store, grpcserver.Options{Log: slog.New(slog.DiscardHandler), Limits: grpcserver.DefaultLimits(), Slow: time.Minute})
	return store, serveWith(t, n, func(lis net.Listener) (serve func() error, stop func()) {
		return func() error { return srv.Serve(lis) }, func() { srv.Shutdown(context.Background()) }
	})
}

// serveWith serves on a loopback port with start and returns n connections.
func serveWith(t *testing.T, n int, start func(net.Listener) (serve func() error, stop func())) []grpc.ClientConnInterface {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	run, stop := start(lis)
	var wg sync.WaitGroup
	wg.Go(func() { _ = run() })
	t.Cleanup(func() {
		stop()
		wg.Wait()
	})
	var conns []grpc.ClientConnInterface
	for range n {
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		conns = append(conns, conn)
	}
	return conns
}

// checkLatency fails unless the quantiles are positive and in order.
func checkLatency(t *testing.T, l Latency) {
	t.Helper()
	q := []time.Duration{l.P50, l.P90, l.P99, l.P999, l.Max}
	if q[0] <= 0 || !slices.IsSorted(q) {
		t.Errorf("latency = %+v, want positive quantiles in order", l)
	}
}

func TestRun(t *testing.T) {
	store, conns := serve(t, 3)
	tests := []struct {
		name      string
		conns     int
		cfg       Config
		want      Result // Workload, Workers, Conns, Window, Calls, Errors
		wantFirst string // FirstError
		adds      int
	}{
		{
			name:  "get",
			conns: 2,
			cfg:   Config{Workload: Get, Concurrency: 4, Count: 50, Names: []string{"Alice", "Bob"}},
			want:  Result{Workload: Get, Workers: 4, Conns: 2, Calls: 50, Errors: map[codes.Code]uint64{}},
		},
		{
			name:  "get with a name nobody has",
			conns: 2,
			// Each caller makes 10 calls, half of them for Charlie.
			cfg:       Config{Workload: Get, Concurrency: 4, Count: 40, Names: []string{"Alice", "Charlie"}},
			want:      Result{Workload: Get, Workers: 4, Conns: 2, Calls: 40, Errors: map[codes.Code]uint64{codes.NotFound: 20}},
			wantFirst: `no person named "Charlie"`,
		},
		{
			name:  "a deadline for each call, fewer calls than callers",
			conns: 3,
			cfg:   Config{Workload: Get, Concurrency: 8, Count: 3, Timeout: 10 * time.Second, Names: []string{"Bob"}},
			want:  Result{Workload: Get, Workers: 8, Conns: 3, Calls: 3, Errors: map[codes.Code]uint64{}},
		},
		{
			name:  "people",
			conns: 2,
			cfg:   Config{Workload: People, Window: 4, Count: 60, Names: []string{"Alice", "Bob", "Alice"}},
			want:  Result{Workload: People, Workers: 2, Conns: 2, Window: 4, Calls: 60, Errors: map[codes.Code]uint64{}},
		},
		{
			name:  "people skips a name nobody has",
			conns: 1,
			// The window grows to the number of names, so that it always
			// holds one the server answers.
			cfg:       Config{Workload: People, Window: 2, Count: 30, Names: []string{"Charlie", "Bob", "Dana"}},
			want:      Result{Workload: People, Workers: 1, Conns: 1, Window: 3, Calls: 30, Errors: map[codes.Code]uint64{codes.NotFound: 20}},
			wantFirst: `GetPeople skipped "Charlie": no person of that name`,
		},
		{
			name:  "add",
			conns: 2,
			cfg:   Config{Workload: Add, Concurrency: 3, Count: 20, Warmup: 10 * time.Millisecond},
			want:  Result{Workload: Add, Workers: 3, Conns: 2, Calls: 20, Errors: map[codes.Code]uint64{}},
			adds:  20,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := countBench(t, store)
			got, err := Run(context.Background(), conns[:tt.conns], tt.cfg, nil)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			checkLatency(t, got.Latency)
			if got.Wall <= 0 || got.CPU == 0 {
				t.Errorf("wall %v, CPU %v; want both positive or CPU -1", got.Wall, got.CPU)
			}
			if fmt.Sprint(got.FirstError) != fmt.Sprint(errOrNil(tt.wantFirst)) {
				t.Errorf("first error %v, want %q", got.FirstError, tt.wantFirst)
			}
			got.Latency, got.Wall, got.CPU, got.FirstError = Latency{}, 0, 0, nil
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("result = %+v, want %+v", got, tt.want)
			}
			// The warmup's calls add people too, under other numbers.
			if added := countBench(t, store) - before; added < tt.adds || tt.adds == 0 && added != 0 {
				t.Errorf("the run added %d people, want %d (and the warmup's)", added, tt.adds)
			}
		})
	}
}

func errOrNil(msg string) error {
	if msg == "" {
		return nil
	}
	return errors.New(msg)
}

// countBench returns how many people Add has added to store.
func countBench(t *testing.T, store *memory.Store) int {
	t.Helper()
	ps, err := store.List(context.Background(), people.Query{NamePrefix: "bench-", Limit: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return len(ps)
}

// TestRunForADuration checks a run measured by time, and that progress
// reports each phase and its end.
func TestRunForADuration(t *testing.T) {
	_, conns := serve(t, 1)
	for _, w := range []Workload{Get, People} {
		t.Run(string(w), func(t *testing.T) {
			var mu sync.Mutex
			var seen []Progress
			cfg := Config{Workload: w, Concurrency: 2, Window: 8, Duration: 300 * time.Millisecond, Warmup: 100 * time.Millisecond,
				Names: []string{"Alice"}, ProgressEvery: 20 * time.Millisecond}
			got, err := Run(context.Background(), conns, cfg, func(p Progress) {
				mu.Lock()
				defer mu.Unlock()
				seen = append(seen, p)
			})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if got.Calls == 0 || len(got.Errors) != 0 {
				t.Errorf("calls = %d, errors = %v; want some calls and no errors", got.Calls, got.Errors)
			}
			checkLatency(t, got.Latency)

			mu.Lock()
			defer mu.Unlock()
			var dones []Phase
			for i, p := range seen {
				if p.Done {
					dones = append(dones, p.Phase)
				}
				if i > 0 && seen[i-1].Phase == p.Phase && !seen[i-1].Done && p.Calls < seen[i-1].Calls {
					t.Errorf("progress went back from %+v to %+v", seen[i-1], p)
				}
			}
			last := seen[len(seen)-1]
			if !slices.Equal(dones, []Phase{Warmup, Measure}) || !last.Done || last.Calls != got.Calls {
				t.Errorf("progress ended phases %v, last %+v; want warmup and measure, the last with the result's %d calls", dones, last, got.Calls)
			}
		})
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

// fakeServer serves rg on a loopback port and returns n connections to it.
func fakeServer(t *testing.T, n int, rg pb.RouteGuideServer) []grpc.ClientConnInterface {
	t.Helper()
	srv := grpc.NewServer()
	pb.RegisterRouteGuideServer(srv, rg)
	return serveWith(t, n, func(lis net.Listener) (func() error, func()) {
		return func() error { return srv.Serve(lis) }, srv.Stop
	})
}

// TestPeopleChecksTheOrder checks that a GetPeople answer is matched to
// its own name: a known name left unanswered is an error, not a latency.
func TestPeopleChecksTheOrder(t *testing.T) {
	conns := fakeServer(t, 1, skipsBob{})
	got, err := Run(context.Background(), conns, Config{Workload: People, Window: 1, Count: 20, Names: []string{"Alice", "Bob"}}, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got.Errors[codes.Internal] == 0 || got.Calls == 0 || got.Calls > 20 {
		t.Errorf("calls = %d, errors = %v; want some Internal errors for Bob", got.Calls, got.Errors)
	}
	if want := `GetPeople answered "Alice" before "Bob", which was sent first`; fmt.Sprint(got.FirstError) != want {
		t.Errorf("first error %v, want %q", got.FirstError, want)
	}
}

// failing is a server whose every call fails with code.
type failing struct {
	pb.UnimplementedRouteGuideServer
	code codes.Code
}

func (f failing) GetPerson(context.Context, *pb.Name) (*pb.Person, error) {
	return nil, status.Error(f.code, "no")
}

func TestRunFails(t *testing.T) {
	_, conns := serve(t, 1)
	t.Run("the server knows none of the names", func(t *testing.T) {
		_, err := Run(context.Background(), conns, Config{Workload: People, Window: 1, Count: 5, Names: []string{"Charlie", "Dana"}}, nil)
		if !errors.Is(err, ErrNoKnownNames) {
			t.Errorf("Run = %v, want ErrNoKnownNames", err)
		}
	})
	t.Run("the check fails", func(t *testing.T) {
		conns := fakeServer(t, 2, failing{code: codes.PermissionDenied})
		_, err := Run(context.Background(), conns, valid(Get), nil)
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("Run = %v, want the check's PermissionDenied", err)
		}
	})
	t.Run("interrupted", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cfg := Config{Workload: Get, Concurrency: 2, Duration: time.Hour, Names: []string{"Alice"}, ProgressEvery: time.Millisecond}
		var once sync.Once
		_, err := Run(ctx, conns, cfg, func(p Progress) {
			if p.Calls > 0 {
				once.Do(cancel)
			}
		})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
	})
}

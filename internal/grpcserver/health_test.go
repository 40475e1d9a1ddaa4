package grpcserver

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/routeguide/routeguide/internal/memory"
	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/syncbuf"
)

// pingStore is a seeded directory whose Ping answers what ping says.
type pingStore struct {
	*memory.Store
	pings atomic.Int64

	mu   sync.Mutex
	ping func(ctx context.Context) error // guarded by mu

	// hold, when set, makes Person send on held and then wait until
	// hold is closed, so that a test can keep a call in flight.
	hold, held chan struct{}
}

func (s *pingStore) Person(ctx context.Context, name string) (people.Person, error) {
	if s.hold != nil {
		s.held <- struct{}{}
		<-s.hold
	}
	return s.Store.Person(ctx, name)
}

func (s *pingStore) Ping(ctx context.Context) error {
	s.pings.Add(1)
	s.mu.Lock()
	ping := s.ping
	s.mu.Unlock()
	return ping(ctx)
}

func (s *pingStore) answer(ping func(ctx context.Context) error) {
	s.mu.Lock()
	s.ping = ping
	s.mu.Unlock()
}

var errDown = people.Errorf(people.Unavailable, "the database is down")

func up(context.Context) error   { return nil }
func down(context.Context) error { return errDown }

// healthHarness is a Server on a pingStore, checked every few milliseconds,
// with a health client and the server's JSON log.
type healthHarness struct {
	*harness
	store  *pingStore
	health healthpb.HealthClient
	logs   *syncbuf.Buffer
}

func startHealth(t *testing.T) *healthHarness {
	t.Helper()
	store := &pingStore{Store: seedStore(), ping: up}
	logs := &syncbuf.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	h := startWith(t, store, Options{Log: log, Limits: DefaultLimits(), Slow: time.Second, StoreCheck: 5 * time.Millisecond})
	return &healthHarness{harness: h, store: store, health: healthpb.NewHealthClient(h.conn), logs: logs}
}

// waitStatus reads w until it reports want, failing after a few seconds.
func waitStatus(t *testing.T, w healthpb.Health_WatchClient, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	for {
		resp, err := w.Recv()
		if err != nil {
			t.Fatalf("health Watch ended waiting for %v: %v", want, err)
		}
		if resp.GetStatus() == want {
			return
		}
	}
}

// checkStatus asks health about "" and ServiceName and wants st for both.
func (h *healthHarness) checkStatus(t *testing.T, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	for _, svc := range []string{"", ServiceName} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := h.health.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		cancel()
		if err != nil || resp.GetStatus() != want {
			t.Errorf("health Check(%q) = %v, %v; want %v", svc, resp.GetStatus(), err, want)
		}
	}
}

// waitPings waits until the store has been pinged n more times.
func (h *healthHarness) waitPings(t *testing.T, n int64) {
	t.Helper()
	target := h.store.pings.Load() + n
	deadline := time.Now().Add(5 * time.Second)
	for h.store.pings.Load() < target {
		if time.Now().After(deadline) {
			t.Fatalf("the store was pinged %d times in 5s, want %d more", h.store.pings.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// logged counts the log lines at level whose message starts with prefix.
func (h *healthHarness) logged(t *testing.T, level, prefix string) int {
	n := 0
	for _, l := range logLines(t, h.logs) {
		if l["level"] == level && strings.HasPrefix(l["msg"].(string), prefix) {
			n++
		}
	}
	return n
}

// TestHealthFollowsStore takes the store away and brings it back: health
// turns NOT_SERVING for "" and RouteGuide while pings fail and SERVING when
// they succeed again, with one log line for each change however many pings
// failed.
func TestHealthFollowsStore(t *testing.T) {
	h := startHealth(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watch, err := h.health.Watch(ctx, &healthpb.HealthCheckRequest{Service: ServiceName})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, watch, healthpb.HealthCheckResponse_SERVING)
	h.waitPings(t, 3)
	h.checkStatus(t, healthpb.HealthCheckResponse_SERVING)

	for round := range 2 {
		h.store.answer(down)
		waitStatus(t, watch, healthpb.HealthCheckResponse_NOT_SERVING)
		h.checkStatus(t, healthpb.HealthCheckResponse_NOT_SERVING)
		h.waitPings(t, 10) // many failed pings, still one line
		if got, want := h.logged(t, "WARN", "store unreachable"), round+1; got != want {
			t.Errorf("round %d: %d warnings that the store is unreachable, want %d; logs:\n%v", round, got, want, logLines(t, h.logs))
		}

		h.store.answer(up)
		waitStatus(t, watch, healthpb.HealthCheckResponse_SERVING)
		h.checkStatus(t, healthpb.HealthCheckResponse_SERVING)
		h.waitPings(t, 10)
		if got, want := h.logged(t, "INFO", "store reachable again"), round+1; got != want {
			t.Errorf("round %d: %d lines that the store is reachable again, want %d; logs:\n%v", round, got, want, logLines(t, h.logs))
		}
	}
}

// TestHealthTimesOutHungPing checks that a ping that never answers counts
// as a failure once its time is up.
func TestHealthTimesOutHungPing(t *testing.T) {
	h := startHealth(t)
	h.store.answer(func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watch, err := h.health.Watch(ctx, &healthpb.HealthCheckRequest{Service: ""})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, watch, healthpb.HealthCheckResponse_NOT_SERVING)
}

// TestHealthNeverServingAfterShutdown brings the store back just as
// Shutdown begins: health stays NOT_SERVING, and Shutdown ends the checker
// even while a ping hangs (TestMain's goleak finds it otherwise).
func TestHealthNeverServingAfterShutdown(t *testing.T) {
	h := startHealth(t)
	h.store.answer(down)
	h.waitPings(t, 3)
	h.checkStatus(t, healthpb.HealthCheckResponse_NOT_SERVING)

	// The next ping hangs until Shutdown cancels it, then reports the store
	// reachable, as a ping that succeeded at that very moment would.
	pinging := make(chan struct{})
	var once sync.Once
	h.store.answer(func(ctx context.Context) error {
		once.Do(func() { close(pinging) })
		<-ctx.Done()
		return nil
	})
	select {
	case <-pinging:
	case <-time.After(5 * time.Second):
		t.Fatal("the store was not pinged")
	}
	h.shutdown(t)
	pings := h.store.pings.Load()
	for _, svc := range []string{"", ServiceName} {
		resp, err := h.srv.health.Check(context.Background(), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("health of %q after Shutdown = %v, %v; want NOT_SERVING", svc, resp.GetStatus(), err)
		}
	}
	time.Sleep(50 * time.Millisecond) // ten check intervals
	if got := h.store.pings.Load(); got != pings {
		t.Errorf("the store was pinged %d times after Shutdown returned", got-pings)
	}
	if n := h.logged(t, "INFO", "store reachable again"); n != 0 {
		t.Errorf("%d lines that the store is reachable again after Shutdown began", n)
	}
}

// TestHealthWithoutPinger checks that a store with no Ping method is taken
// as always reachable.
func TestHealthWithoutPinger(t *testing.T) {
	h := start(t, seedStore())
	if h.srv.checked != nil {
		t.Fatal("a checker runs for a store that cannot be pinged")
	}
	resp, err := healthpb.NewHealthClient(h.conn).Check(context.Background(), &healthpb.HealthCheckRequest{Service: ServiceName})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health = %v, %v; want SERVING", resp.GetStatus(), err)
	}
}

// failing returns a ping that fails n times, then succeeds.
func failing(n int) func(context.Context) error {
	var calls atomic.Int64
	return func(context.Context) error {
		if calls.Add(1) <= int64(n) {
			return errDown
		}
		return nil
	}
}

// TestHealthIgnoresOneFailedPing checks that one failed ping, as a pooled
// connection the database closed gives, leaves health SERVING, and that two
// in a row turn it NOT_SERVING.
func TestHealthIgnoresOneFailedPing(t *testing.T) {
	h := startHealth(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watch, err := h.health.Watch(ctx, &healthpb.HealthCheckRequest{Service: ServiceName})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, watch, healthpb.HealthCheckResponse_SERVING)
	for range 3 {
		h.store.answer(failing(1))
		h.waitPings(t, 5)
	}
	h.checkStatus(t, healthpb.HealthCheckResponse_SERVING)
	if n := h.logged(t, "WARN", "store unreachable"); n != 0 {
		t.Errorf("%d warnings that the store is unreachable after single failed pings, want 0; logs:\n%v", n, logLines(t, h.logs))
	}

	h.store.answer(failing(2))
	waitStatus(t, watch, healthpb.HealthCheckResponse_NOT_SERVING)
	waitStatus(t, watch, healthpb.HealthCheckResponse_SERVING)
	if n := h.logged(t, "WARN", "store unreachable"); n != 1 {
		t.Errorf("%d warnings that the store is unreachable after two failed pings, want 1", n)
	}
}

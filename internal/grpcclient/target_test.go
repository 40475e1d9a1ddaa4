package grpcclient_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/stats"

	"github.com/routeguide/routeguide/internal/grpcclient"
	"github.com/routeguide/routeguide/internal/grpcserver"
	"github.com/routeguide/routeguide/internal/memory"
	"github.com/routeguide/routeguide/internal/people"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

// replica is one RouteGuide server of a fleet, on a real loopback listener.
type replica struct {
	addr  string
	store *pingedStore
	calls atomic.Int64 // GetPerson calls begun
	lis   *trackingListener
}

// pingedStore is a seeded store whose health check fails while down is set,
// which turns the replica's health NOT_SERVING.
type pingedStore struct {
	*memory.Store
	down atomic.Bool
}

func (s *pingedStore) Ping(context.Context) error {
	if s.down.Load() {
		return errors.New("store unreachable")
	}
	return nil
}

// trackingListener keeps every connection it accepted, so that kill can
// drop them all at once, as the death of the process would.
type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn // guarded by mu
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

// kill stops the replica abruptly: no GOAWAY, no NOT_SERVING first; its
// connections just close and its port refuses new ones.
func (r *replica) kill() {
	r.lis.Close()
	r.lis.mu.Lock()
	defer r.lis.mu.Unlock()
	for _, c := range r.lis.conns {
		c.Close()
	}
}

// counter is a stats.Handler that counts the GetPerson calls a replica
// begins.
type counter struct{ n *atomic.Int64 }

func (c counter) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	if info.FullMethodName == pb.RouteGuide_GetPerson_FullMethodName {
		c.n.Add(1)
	}
	return ctx
}
func (counter) HandleRPC(context.Context, stats.RPCStats)                         {}
func (counter) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (counter) HandleConn(context.Context, stats.ConnStats)                       {}

// startFleet serves three replicas on 127.0.0.1, 127.0.0.2 and 127.0.0.3,
// each with a store of its own, and returns them with their target, a
// comma-separated list.
func startFleet(t *testing.T) ([]*replica, string) {
	t.Helper()
	var fleet []*replica
	var addrs []string
	for _, host := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
		l, err := net.Listen("tcp", host+":0")
		if err != nil {
			t.Fatal(err)
		}
		r := &replica{addr: l.Addr().String(), store: &pingedStore{Store: memory.New(0, people.Seed()...)}, lis: &trackingListener{Listener: l}}
		srv := grpcserver.New(r.store, grpcserver.Options{
			Log:          slog.New(slog.DiscardHandler),
			Limits:       grpcserver.DefaultLimits(),
			Slow:         time.Minute,
			StatsHandler: counter{&r.calls},
			StoreCheck:   5 * time.Millisecond,
		})
		served := make(chan error, 1)
		go func() { served <- srv.Serve(r.lis) }()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			srv.Shutdown(ctx)
			<-served // a killed replica's Serve fails on its closed listener
		})
		fleet = append(fleet, r)
		addrs = append(addrs, r.addr)
	}
	return fleet, strings.Join(addrs, ",")
}

// connect returns a client for target, closed at cleanup.
func connect(t *testing.T, target string) *grpcclient.Client {
	t.Helper()
	c, err := grpcclient.New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// calls makes n GetPerson calls one after another and returns how many
// each replica began.
func calls(t *testing.T, c *grpcclient.Client, fleet []*replica, n int) []int64 {
	t.Helper()
	before := make([]int64, len(fleet))
	for i, r := range fleet {
		before[i] = r.calls.Load()
	}
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := c.Person(ctx, "Alice")
		cancel()
		if err != nil {
			t.Fatalf("Person: %v", err)
		}
	}
	got := make([]int64, len(fleet))
	for i, r := range fleet {
		got[i] = r.calls.Load() - before[i]
	}
	return got
}

// waitUntil makes batches of calls until done says the counts of a batch
// are what it waits for, and fails after 10s.
func waitUntil(t *testing.T, c *grpcclient.Client, fleet []*replica, what string, done func([]int64) bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if got := calls(t, c, fleet, 30); done(got) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s, still not %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func allServed(got []int64) bool {
	for _, n := range got {
		if n == 0 {
			return false
		}
	}
	return true
}

// TestFleetSpreadsCalls checks that calls through a list of replicas are
// spread round-robin over all of them.
func TestFleetSpreadsCalls(t *testing.T) {
	fleet, target := startFleet(t)
	c := connect(t, target)
	// The replicas join the balancing as their connections come up.
	waitUntil(t, c, fleet, "served by every replica", allServed)
	got := calls(t, c, fleet, 90)
	for i, n := range got {
		if n < 20 {
			t.Errorf("replica %s served %d of 90 calls, want about 30 (all: %v)", fleet[i].addr, n, got)
		}
	}
}

// TestFleetSkipsNotServing checks that a replica whose health says
// NOT_SERVING gets no calls, and gets them again once it is SERVING.
func TestFleetSkipsNotServing(t *testing.T) {
	fleet, target := startFleet(t)
	c := connect(t, target)
	waitUntil(t, c, fleet, "served by every replica", allServed)

	fleet[1].store.down.Store(true)
	waitUntil(t, c, fleet, "avoiding the NOT_SERVING replica", func(got []int64) bool { return got[1] == 0 })
	if got := calls(t, c, fleet, 90); got[1] != 0 || got[0] == 0 || got[2] == 0 {
		t.Errorf("calls per replica with %s NOT_SERVING: %v, want none on it and some on each other", fleet[1].addr, got)
	}

	fleet[1].store.down.Store(false)
	waitUntil(t, c, fleet, "served by every replica again", allServed)
}

// TestFleetSurvivesKill checks that when a replica dies in the middle of a
// load of reads, no read fails: the calls it was answering are retried on
// the others, and new calls go to the others.
func TestFleetSurvivesKill(t *testing.T) {
	fleet, target := startFleet(t)
	c := connect(t, target)
	waitUntil(t, c, fleet, "served by every replica", allServed)

	const callers, each = 8, 150
	var (
		wg       sync.WaitGroup
		done     atomic.Int64
		failures atomic.Int64
		firstErr atomic.Value
	)
	for range callers {
		wg.Go(func() {
			for i := range each {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				var err error
				if i%5 == 4 { // a stream now and then: GetPeople
					err = c.People(ctx, slices.Values([]string{"Alice", "Bob"}), func(people.Person) error { return nil })
				} else {
					_, err = c.Person(ctx, "Bob")
				}
				cancel()
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
				done.Add(1)
			}
		})
	}
	// Kill a replica once a third of the calls are done.
	for done.Load() < callers*each/3 {
		time.Sleep(time.Millisecond)
	}
	killedAt := fleet[2].calls.Load()
	fleet[2].kill()
	wg.Wait()

	if n := failures.Load(); n > 0 {
		t.Errorf("%d of %d reads failed while a replica died; first: %v", n, callers*each, firstErr.Load())
	}
	if killedAt == 0 {
		t.Errorf("the killed replica had served no call before it died")
	}
	if got := calls(t, c, fleet, 30); got[2] != 0 {
		t.Errorf("the killed replica still got %d calls", got[2])
	}
}

func TestAddresses(t *testing.T) {
	tests := []struct {
		target  string
		want    []string
		wantErr string
	}{
		{target: "localhost:50051", want: []string{"localhost:50051"}},
		{target: "127.0.0.1:1,127.0.0.2:2", want: []string{"127.0.0.1:1", "127.0.0.2:2"}},
		{target: "[::1]:1,127.0.0.2:2", want: []string{"[::1]:1", "127.0.0.2:2"}},
		{target: "dns:///routeguide:50051"},
		{target: "unix:///run/routeguide.sock"},
		{target: "localhost", wantErr: `"localhost": want host:port`},
		{target: "127.0.0.1:1,localhost", wantErr: `"127.0.0.1:1,localhost": entry "localhost": want host:port`},
		{target: "127.0.0.1:1,", wantErr: `"127.0.0.1:1,": entry "": want host:port`},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			got, err := grpcclient.Addresses(tt.target)
			if gotErr := fmt.Sprint(err); (err != nil || tt.wantErr != "") && gotErr != tt.wantErr {
				t.Fatalf("error %s, want %s", gotErr, tt.wantErr)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestSchemeTarget checks that a target with a resolver scheme reaches the
// servers its resolver finds.
func TestSchemeTarget(t *testing.T) {
	fleet, _ := startFleet(t)
	c := connect(t, "dns:///"+fleet[0].addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Person(ctx, "Alice"); err != nil {
		t.Fatalf("Person: %v", err)
	}
	if n := fleet[0].calls.Load(); n != 1 {
		t.Errorf("%s served %d calls, want 1", fleet[0].addr, n)
	}
}

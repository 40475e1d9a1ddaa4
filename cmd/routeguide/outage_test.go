package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/routeguide/routeguide/internal/cache"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

// callTimeout is every call's deadline in the outage test: far longer than
// any call should take, so a call that reaches it hung.
const callTimeout = 10 * time.Second

// The phases of the outage test, by what the database was doing when a call
// began.
const (
	phaseUp = iota
	phaseDown
	phaseBack
	phases
)

// outcomes counts the codes of the calls made in each phase.
type outcomes struct {
	mu     sync.Mutex
	counts [phases]map[codes.Code]int // guarded by mu
	acked  []string                   // names whose AddPerson answered OK; guarded by mu
	writes [phases]int                // acknowledged writes begun in each phase; guarded by mu
	first  map[codes.Code]error       // an example of each code; guarded by mu
}

func (o *outcomes) record(phase int, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.counts[phase] == nil {
		o.counts[phase] = map[codes.Code]int{}
	}
	code := status.Code(err)
	o.counts[phase][code]++
	if o.first == nil {
		o.first = map[codes.Code]error{}
	}
	if _, ok := o.first[code]; !ok && err != nil {
		o.first[code] = err
	}
}

func (o *outcomes) ack(phase int, name string) {
	o.mu.Lock()
	o.acked = append(o.acked, name)
	o.writes[phase]++
	o.mu.Unlock()
}

func (o *outcomes) count(phase int, code codes.Code) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.counts[phase][code]
}

func (o *outcomes) acknowledged(phase int) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.writes[phase]
}

// watched follows a watch opened before the outage, resuming it from its
// last revision whenever it ends with UNAVAILABLE.
type watched struct {
	mu      sync.Mutex
	added   map[string]bool // guarded by mu
	last    int64           // the revision of the last event; guarded by mu
	gaps    []string        // guarded by mu
	ended   error           // how the first stream ended; guarded by mu
	resumes int             // guarded by mu
	failed  error           // how a resumed stream ended, when not UNAVAILABLE; guarded by mu
}

func (w *watched) follow(stream grpc.ServerStreamingClient[pb.WatchPeopleResponse]) error {
	for {
		ev, err := stream.Recv()
		if err != nil {
			return err
		}
		w.mu.Lock()
		if ev.GetRevision() != w.last+1 {
			w.gaps = append(w.gaps, fmt.Sprintf("revision %d after %d", ev.GetRevision(), w.last))
		}
		w.last = ev.GetRevision()
		if ev.GetType() == pb.WatchPeopleResponse_TYPE_ADDED {
			w.added[ev.GetPerson().GetName()] = true
		}
		w.mu.Unlock()
	}
}

func (w *watched) missing(names []string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, n := range names {
		if !w.added[n] {
			out = append(out, n)
		}
	}
	return out
}

// TestPostgresOutage runs writers, readers and a watcher against `routeguide
// serve` on a PostgreSQL cluster of its own, stops the cluster at once (as a
// crash would) under that load, and starts it again. While it is down,
// calls answer UNAVAILABLE, never INTERNAL and never by running into their
// deadline, and health reports NOT_SERVING; once it is back, health reports
// SERVING and writes succeed with no restart of routeguide. Every
// acknowledged write is then stored, and the watcher opened before the
// outage has seen each of them, in revision order with none skipped. The
// watch normally stays open through the outage; if the database went away
// while the watch was reading the change log, it ends with UNAVAILABLE, and
// resuming from its last revision loses nothing. Either way is accepted, and
// the test logs which happened.
func TestPostgresOutage(t *testing.T) {
	db := newCluster(t)
	p := serve(t, "--store", db.URL)
	conn, err := grpc.NewClient(p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client := pb.NewRouteGuideClient(conn)
	health := healthpb.NewHealthClient(conn)
	defer func() {
		if t.Failed() {
			t.Logf("routeguide's log:\n%s\nPostgreSQL's log:\n%s", p.log(), db.log())
		}
	}()

	// The watcher starts before any write, from the current revision, which
	// its header names.
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	w := &watched{added: map[string]bool{}}
	stream, err := client.WatchPeople(watchCtx, &pb.WatchPeopleRequest{})
	if err != nil {
		t.Fatal(err)
	}
	header, err := stream.Header()
	if err != nil {
		t.Fatal(err)
	}
	if v := header.Get("routeguide-watch-revision"); len(v) != 1 {
		t.Fatalf("watch header %v names no revision", header)
	} else if _, err := fmt.Sscan(v[0], &w.last); err != nil {
		t.Fatalf("watch revision %q: %v", v[0], err)
	}
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		err := w.follow(stream)
		w.mu.Lock()
		w.ended = err
		w.mu.Unlock()
		// Resume from the last revision seen, again and again while the
		// database is down.
		for status.Code(err) == codes.Unavailable && watchCtx.Err() == nil {
			time.Sleep(100 * time.Millisecond)
			w.mu.Lock()
			w.resumes++
			last := w.last
			w.mu.Unlock()
			var s grpc.ServerStreamingClient[pb.WatchPeopleResponse]
			if s, err = client.WatchPeople(watchCtx, &pb.WatchPeopleRequest{AfterRevision: last}); err == nil {
				err = w.follow(s)
			}
		}
		if watchCtx.Err() == nil {
			w.mu.Lock()
			w.failed = err
			w.mu.Unlock()
		}
	}()

	var (
		phase atomic.Int32 // phaseUp, phaseDown or phaseBack
		out   outcomes
		stop  = make(chan struct{})
		load  sync.WaitGroup
	)
	call := func(f func(ctx context.Context, phase int) error) {
		ph := int(phase.Load())
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		out.record(ph, f(ctx, ph))
	}
	for i := range 4 { // writers
		load.Add(1)
		go func() {
			defer load.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("w%d-%d", i, n) // never retried: a failed write may still have been applied
				call(func(ctx context.Context, phase int) error {
					_, err := client.AddPerson(ctx, &pb.AddPersonRequest{Person: &pb.Person{Name: name, Age: int32(n % 150)}})
					if err == nil {
						out.ack(phase, name)
					}
					return err
				})
			}
		}()
	}
	for i := range 2 { // readers
		load.Add(1)
		go func() {
			defer load.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				call(func(ctx context.Context, _ int) error {
					if i == 0 {
						_, err := client.GetPerson(ctx, &pb.Name{Name: "Alice"})
						return err
					}
					_, err := client.ListPeople(ctx, &pb.ListPeopleRequest{PageSize: 20})
					return err
				})
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	stopLoad := sync.OnceFunc(func() {
		close(stop)
		load.Wait()
	})
	defer stopLoad()

	waitFor := func(what string, within time.Duration, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(within)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %v", what, within)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	healthIs := func(want healthpb.HealthCheckResponse_ServingStatus) func() bool {
		return func() bool {
			for _, svc := range []string{"", "RouteGuide"} {
				ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
				resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
				cancel()
				if err != nil || resp.GetStatus() != want {
					return false
				}
			}
			return true
		}
	}

	waitFor("writes acknowledged before the outage", 20*time.Second, func() bool { return out.acknowledged(phaseUp) >= 100 })
	if !healthIs(healthpb.HealthCheckResponse_SERVING)() {
		t.Fatal("health is not SERVING before the outage")
	}

	// The outage: every process of the database ends at once, mid-load.
	phase.Store(phaseDown)
	db.stop(t, "immediate")
	waitFor("health NOT_SERVING for \"\" and RouteGuide", 20*time.Second, healthIs(healthpb.HealthCheckResponse_NOT_SERVING))
	// With health NOT_SERVING the database is surely gone. Reads may still
	// be answered from memory until the cache has gone unconfirmed for
	// cache.DefaultMaxStale; after that, each kind of call answers
	// UNAVAILABLE, in good time.
	time.Sleep(cache.DefaultMaxStale)
	checks := map[string]func(ctx context.Context) error{
		"GetPerson": func(ctx context.Context) error {
			_, err := client.GetPerson(ctx, &pb.Name{Name: "Alice"})
			return err
		},
		"AddPerson": func(ctx context.Context) error {
			_, err := client.AddPerson(ctx, &pb.AddPersonRequest{Person: &pb.Person{Name: "during the outage"}})
			return err
		},
		"UpdatePerson": func(ctx context.Context) error {
			_, err := client.UpdatePerson(ctx, &pb.UpdatePersonRequest{Person: &pb.Person{Name: "Alice", Age: 31}})
			return err
		},
		"DeletePerson": func(ctx context.Context) error {
			_, err := client.DeletePerson(ctx, &pb.DeletePersonRequest{Name: "Bob"})
			return err
		},
		"ListPeople": func(ctx context.Context) error {
			_, err := client.ListPeople(ctx, &pb.ListPeopleRequest{})
			return err
		},
		"WatchPeople": func(ctx context.Context) error {
			s, err := client.WatchPeople(ctx, &pb.WatchPeopleRequest{SendCurrent: true})
			if err != nil {
				return err
			}
			_, err = s.Recv()
			return err
		},
		"GetPeople": func(ctx context.Context) error {
			s, err := client.GetPeople(ctx)
			if err != nil {
				return err
			}
			if err := s.Send(&pb.Name{Name: "Alice"}); err != nil {
				return err
			}
			_, err = s.Recv()
			return err
		},
	}
	for _, method := range slices.Sorted(maps.Keys(checks)) {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		err := checks[method](ctx)
		cancel()
		if status.Code(err) != codes.Unavailable {
			t.Errorf("%s with the database down: %v; want code %v", method, err, codes.Unavailable)
		}
	}
	waitFor("background calls failing UNAVAILABLE during the outage", 20*time.Second, func() bool { return out.count(phaseDown, codes.Unavailable) >= 20 })

	// The database comes back; routeguide recovers by itself.
	phase.Store(phaseBack)
	db.start(t)
	waitFor("health SERVING again", 20*time.Second, healthIs(healthpb.HealthCheckResponse_SERVING))
	waitFor("writes acknowledged after the outage", 20*time.Second, func() bool { return out.acknowledged(phaseBack) >= 100 })
	stopLoad()

	// Every call answered OK or UNAVAILABLE: none INTERNAL, none ran into
	// its deadline, none anything else.
	out.mu.Lock()
	for ph, counts := range out.counts {
		for code, n := range counts {
			if code != codes.OK && code != codes.Unavailable {
				t.Errorf("phase %d: %d calls answered %v, e.g. %v", ph, n, code, out.first[code])
			}
		}
	}
	acked := slices.Clone(out.acked)
	t.Logf("calls by code: up %v, down %v, back %v; writes acknowledged: %v", out.counts[phaseUp], out.counts[phaseDown], out.counts[phaseBack], out.writes)
	out.mu.Unlock()

	// Every acknowledged write is stored.
	stored := map[string]bool{}
	for token := ""; ; {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		page, err := client.ListPeople(ctx, &pb.ListPeopleRequest{PageSize: 1000, PageToken: token})
		cancel()
		if err != nil {
			t.Fatalf("ListPeople after the outage: %v", err)
		}
		for _, p := range page.GetPeople() {
			stored[p.GetName()] = true
		}
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	var lost []string
	for _, name := range acked {
		if !stored[name] {
			lost = append(lost, name)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d of %d acknowledged writes are missing after the outage, e.g. %q", len(lost), len(acked), lost[:min(5, len(lost))])
	}

	// The watcher opened before the outage saw every acknowledged write.
	waitFor("the watcher seeing every acknowledged write", 20*time.Second, func() bool { return len(w.missing(acked)) == 0 })
	stopWatch()
	<-watchDone
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.gaps) > 0 {
		t.Errorf("the watcher skipped revisions: %s", strings.Join(w.gaps[:min(5, len(w.gaps))], "; "))
	}
	switch code := status.Code(w.ended); {
	case w.failed != nil:
		t.Errorf("a resumed watch ended with %v; want it open until cancelled, or UNAVAILABLE", w.failed)
	case code == codes.Canceled:
		t.Logf("the watch stayed open through the outage and saw all %d acknowledged writes", len(acked))
	case code == codes.Unavailable:
		t.Logf("the watch ended with UNAVAILABLE during the outage (%v); resumed %d times from its last revision, it saw all %d acknowledged writes", w.ended, w.resumes, len(acked))
	default:
		t.Errorf("the watch opened before the outage ended with %v; want it open until cancelled, or UNAVAILABLE and resumable", w.ended)
	}

	// One line when the database became unreachable, one when it came back,
	// however many pings failed in between; no call was an internal error.
	logs := p.log()
	if n := strings.Count(logs, `level=WARN msg="store unreachable`); n != 1 {
		t.Errorf("routeguide logged %d lines that the store is unreachable, want 1", n)
	}
	if n := strings.Count(logs, `level=INFO msg="store reachable again`); n != 1 {
		t.Errorf("routeguide logged %d lines that the store is reachable again, want 1", n)
	}
	if strings.Contains(logs, "level=ERROR") {
		t.Errorf("routeguide logged errors")
	}
}

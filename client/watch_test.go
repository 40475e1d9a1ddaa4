package client_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/routeguide/routeguide/client"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

// conns keeps the connections a client dialed, to cut them as a replica
// that dies would.
type conns struct {
	mu  sync.Mutex
	all []net.Conn // guarded by mu
}

func (cs *conns) dial(ctx context.Context, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err == nil {
		cs.mu.Lock()
		cs.all = append(cs.all, c)
		cs.mu.Unlock()
	}
	return c, err
}

func (cs *conns) cut() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for _, c := range cs.all {
		c.Close()
	}
	cs.all = nil
}

// TestWatchResumes cuts a watch's connection after each change and makes
// the next change while it is cut: the loop gets every change once, in
// order, and OnReconnect is told each time, with the status that ended the
// stream.
func TestWatchResumes(t *testing.T) {
	addr, stop := startServer()
	defer stop()
	var cs conns
	watcher, err := client.New(addr, client.WithDialOptions(grpc.WithContextDialer(cs.dial)))
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()
	writer, err := client.New(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	var mu sync.Mutex
	var reconnects []client.Reconnect
	watch := watcher.Watch(ctx, &pb.WatchPeopleRequest{SendCurrent: true}, client.OnReconnect(func(r client.Reconnect) {
		mu.Lock()
		reconnects = append(reconnects, r)
		mu.Unlock()
	}))
	names := []string{"Carol", "Dan", "Erin", "Fay"}
	var last int64
	next := 0
	for ev, err := range watch {
		if err != nil {
			t.Fatal(err)
		}
		switch ev.GetType() {
		case pb.WatchPeopleResponse_TYPE_CURRENT:
			continue
		case pb.WatchPeopleResponse_TYPE_SYNCED:
		default:
			if ev.GetPerson().GetName() != names[next] || ev.GetRevision() != last+1 {
				t.Fatalf("after revision %d got %d %s, want %d %s", last, ev.GetRevision(), ev.GetPerson().GetName(), last+1, names[next])
			}
			next++
		}
		last = ev.GetRevision()
		if next == len(names) {
			break
		}
		cs.cut()
		if _, err := writer.Add(ctx, &pb.Person{Name: names[next]}); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reconnects) < len(names) {
		t.Fatalf("%d reconnections, want at least %d", len(reconnects), len(names))
	}
	for _, r := range reconnects {
		if status.Code(r.Err) != codes.Unavailable || r.Listing || r.Delay <= 0 {
			t.Errorf("Reconnect %+v, want UNAVAILABLE, not listing, a delay", r)
		}
	}
}

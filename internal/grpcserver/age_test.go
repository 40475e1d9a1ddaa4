package grpcserver

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	pb "github.com/routeguide/routeguide/routeguidepb"
)

// connCounter is a stats.Handler that counts the connections a server
// accepts.
type connCounter struct{ n atomic.Int64 }

func (c *connCounter) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (c *connCounter) HandleConn(_ context.Context, s stats.ConnStats) {
	if _, ok := s.(*stats.ConnBegin); ok {
		c.n.Add(1)
	}
}
func (c *connCounter) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (c *connCounter) HandleRPC(context.Context, stats.RPCStats)                       {}

// TestConnectionAge checks that a connection past MaxConnectionAge is
// replaced, so that its client resolves and balances again, and that a
// watch still open when the grace ends is told so with UNAVAILABLE rather
// than left hanging or ended as if complete.
func TestConnectionAge(t *testing.T) {
	limits := DefaultLimits()
	limits.MaxConnectionAge = 200 * time.Millisecond
	limits.MaxConnectionAgeGrace = 300 * time.Millisecond
	conns := &connCounter{}
	client := dial(t, startTCPWith(t, seedStore(), Options{Limits: limits, StatsHandler: conns}))
	ctx := callCtx(t)

	w, err := openWatch(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	go func() {
		for {
			if _, err := w.Recv(); err != nil {
				ended <- err
				return
			}
		}
	}()
	select {
	case err := <-ended:
		if status.Code(err) != codes.Unavailable {
			t.Errorf("watch past the connection's age and grace ended with %v, want UNAVAILABLE", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("watch still open long after its connection's age and grace")
	}

	if _, err := client.GetPerson(ctx, &pb.Name{Name: "Alice"}); err != nil {
		t.Fatalf("GetPerson after the connection aged: %v", err)
	}
	if n := conns.n.Load(); n < 2 {
		t.Errorf("the server accepted %d connections, want a new one after the first aged", n)
	}
}

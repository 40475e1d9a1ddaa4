package grpcclient

import (
	"context"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/routeguide/routeguide/internal/people"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

// flakyServer fails each AddPerson with the next of its codes, then
// answers, recording the request id of every call.
type flakyServer struct {
	pb.UnimplementedRouteGuideServer
	mu    sync.Mutex
	codes []codes.Code
	ids   []string
}

func (f *flakyServer) AddPerson(_ context.Context, req *pb.AddPersonRequest) (*pb.AddPersonResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ids = append(f.ids, req.GetRequestId())
	if len(f.codes) > 0 {
		c := f.codes[0]
		f.codes = f.codes[1:]
		return nil, status.Error(c, "failing as the test asks")
	}
	return &pb.AddPersonResponse{Person: req.GetPerson(), Revision: 7}, nil
}

// dialFlaky returns a Client of f, in process.
func dialFlaky(t *testing.T, f *flakyServer) *Client {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	pb.RegisterRouteGuideServer(srv, f)
	go srv.Serve(lis)
	c, err := New("passthrough:///bufconn", grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		srv.Stop()
	})
	return c
}

// TestWritesRetryWithTheirRequestID checks that a write failing with
// UNAVAILABLE, or DEADLINE_EXCEEDED while the caller has time left, is sent
// again with the same request id until it succeeds, and that other
// failures are not retried.
func TestWritesRetryWithTheirRequestID(t *testing.T) {
	tests := []struct {
		name     string
		codes    []codes.Code
		wantCode codes.Code
		calls    int
	}{
		{"unavailable then deadline", []codes.Code{codes.Unavailable, codes.DeadlineExceeded, codes.Unavailable}, codes.OK, 4},
		{"invalid", []codes.Code{codes.InvalidArgument}, codes.InvalidArgument, 1},
		// Each of the client's attempts is tried again by the retry policy,
		// up to 5 times; past both, the write fails.
		{"unavailable throughout", slices.Repeat([]codes.Code{codes.Unavailable}, 100), codes.Unavailable, writeAttempts * 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &flakyServer{codes: tt.codes}
			c := dialFlaky(t, f)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, rev, err := c.Add(ctx, people.Person{Name: "Carol"})
			if status.Code(err) != tt.wantCode || (err == nil && rev != 7) {
				t.Errorf("Add = %d, %v; want code %v", rev, err, tt.wantCode)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.ids) != tt.calls {
				t.Errorf("the server saw %d calls, want %d", len(f.ids), tt.calls)
			}
			for _, id := range f.ids {
				if id == "" || id != f.ids[0] {
					t.Errorf("request ids %q: want one, the same on every attempt", f.ids)
					break
				}
			}
		})
	}
}

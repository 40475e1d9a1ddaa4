package grpcclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/routeguide/routeguide/internal/grpcserver"
	"github.com/routeguide/routeguide/internal/memory"
	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/wire"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

// scriptedWatch is a RouteGuide server whose WatchPeople plays one stream
// of a script per call, recording each call's request.
type scriptedWatch struct {
	pb.UnimplementedRouteGuideServer
	streams []scriptedStream

	mu   sync.Mutex
	reqs []*pb.WatchPeopleRequest // guarded by mu
}

type scriptedStream struct {
	header string // the revision header; "" sends none
	events []int64
	end    error
}

func (s *scriptedWatch) WatchPeople(req *pb.WatchPeopleRequest, stream grpc.ServerStreamingServer[pb.WatchPeopleResponse]) error {
	s.mu.Lock()
	n := len(s.reqs)
	s.reqs = append(s.reqs, req)
	s.mu.Unlock()
	if n >= len(s.streams) {
		return status.Error(codes.FailedPrecondition, "no more streams in the script")
	}
	st := s.streams[n]
	if st.header != "" {
		if err := stream.SendHeader(metadata.Pairs(wire.WatchRevisionHeader, st.header)); err != nil {
			return err
		}
	}
	for _, rev := range st.events {
		m := &pb.WatchPeopleResponse{Revision: rev, Type: pb.WatchPeopleResponse_TYPE_ADDED, Person: &pb.Person{Name: fmt.Sprint("p", rev)}}
		if err := stream.Send(m); err != nil {
			return err
		}
	}
	return st.end
}

// serveScript returns a client of a server playing streams.
func serveScript(t *testing.T, streams ...scriptedStream) (*Client, *scriptedWatch) {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	fake := &scriptedWatch{streams: streams}
	srv := grpc.NewServer()
	pb.RegisterRouteGuideServer(srv, fake)
	go srv.Serve(lis)
	c, err := New("passthrough:///bufconn", grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		srv.Stop()
	})
	return c, fake
}

// TestWatchResumes checks, against scripted streams, which endings a watch
// resumes after and from which revision.
func TestWatchResumes(t *testing.T) {
	unavailable := status.Error(codes.Unavailable, "replica gone")
	stalled := status.Error(codes.ResourceExhausted, "watch ended: the client accepted no data")
	tests := []struct {
		name      string
		after     int64
		streams   []scriptedStream
		wantRevs  []int64
		wantAfter []int64 // after_revision of each request
		wantCode  codes.Code
	}{{
		name:      "unavailable resumes after the last revision delivered",
		streams:   []scriptedStream{{"4", []int64{5, 6}, unavailable}, {"6", []int64{7}, nil}},
		wantRevs:  []int64{5, 6, 7},
		wantAfter: []int64{0, 6},
	}, {
		name:      "a watch cut before any change resumes from where it began",
		streams:   []scriptedStream{{"4", nil, unavailable}, {"4", []int64{5}, nil}},
		wantRevs:  []int64{5},
		wantAfter: []int64{0, 4},
	}, {
		name:      "a stalled watch resumes",
		after:     2,
		streams:   []scriptedStream{{"2", []int64{3}, stalled}, {"3", nil, unavailable}, {"3", []int64{4}, nil}},
		wantRevs:  []int64{3, 4},
		wantAfter: []int64{2, 3, 3},
	}, {
		name:      "changes no longer kept end the watch",
		after:     2,
		streams:   []scriptedStream{{"2", []int64{3}, unavailable}, {"", nil, status.Error(codes.OutOfRange, "gone")}},
		wantRevs:  []int64{3},
		wantAfter: []int64{2, 3},
		wantCode:  codes.OutOfRange,
	}, {
		name:      "a stream that fails before it is in place is not resumed",
		streams:   []scriptedStream{{"", nil, stalled}},
		wantAfter: []int64{0},
		wantCode:  codes.ResourceExhausted,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, fake := serveScript(t, tt.streams...)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var revs, noted []int64
			err := c.Watch(ctx, false, tt.after, func(r Reconnect) {
				if r.Delay <= 0 || r.Delay > watchBackoffMax*2 {
					t.Errorf("reconnect delay %v, want within (0, %v]", r.Delay, watchBackoffMax*2)
				}
				noted = append(noted, r.After)
			}, func(ev Event) error {
				revs = append(revs, ev.Revision)
				return nil
			})
			if status.Code(err) != tt.wantCode {
				t.Fatalf("Watch = %v, want code %v", err, tt.wantCode)
			}
			if !slices.Equal(revs, tt.wantRevs) {
				t.Errorf("revisions delivered %v, want %v", revs, tt.wantRevs)
			}
			var after []int64
			for _, r := range fake.reqs {
				after = append(after, r.GetAfterRevision())
			}
			if !slices.Equal(after, tt.wantAfter) {
				t.Errorf("after_revision of each stream %v, want %v", after, tt.wantAfter)
			}
			if want := tt.wantAfter[1:]; !slices.Equal(noted, want) {
				t.Errorf("reconnections noted after %v, want %v", noted, want)
			}
		})
	}
}

// cuttable is a real server in process whose client connections can be cut,
// as a replica that dies cuts them.
type cuttable struct {
	store  *memory.Store
	client *Client // through connections cut() closes
	writer *Client // through a connection left alone

	mu    sync.Mutex
	conns []net.Conn // guarded by mu
}

func newCuttable(t *testing.T, seed ...people.Person) *cuttable {
	t.Helper()
	return newCuttableWith(t, grpcserver.DefaultLimits(), seed...)
}

// newCuttableWith is newCuttable with the server's limits given.
func newCuttableWith(t *testing.T, limits grpcserver.Limits, seed ...people.Person) *cuttable {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	k := &cuttable{store: memory.New(0, seed...)}
	srv := grpcserver.New(k.store, grpcserver.Options{Log: slog.New(slog.DiscardHandler), Limits: limits})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	dialer := func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }
	var err error
	// Small flow-control windows, so that a listing cut halfway has not
	// already arrived whole.
	k.client, err = New("passthrough:///bufconn", grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10), grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
		c, err := dialer(ctx, a)
		if err == nil {
			k.mu.Lock()
			k.conns = append(k.conns, c)
			k.mu.Unlock()
		}
		return c, err
	}))
	if err != nil {
		t.Fatal(err)
	}
	if k.writer, err = New("passthrough:///bufconn", grpc.WithContextDialer(dialer)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		k.client.Close()
		k.writer.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-served
	})
	return k
}

// cut closes every connection of k.client.
func (k *cuttable) cut() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, c := range k.conns {
		c.Close()
	}
	k.conns = nil
}

// TestWatchSurvivesCutConnections cuts a watch's connection after each
// change, makes the next change while it is cut, and checks that every
// change arrives once, in order.
func TestWatchSurvivesCutConnections(t *testing.T) {
	k := newCuttable(t, people.Seed()...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := make(chan Event, 1)
	var reconnects atomic.Int64
	done := make(chan error, 1)
	go func() {
		done <- k.client.Watch(ctx, false, 0, func(Reconnect) { reconnects.Add(1) }, func(ev Event) error {
			k.cut()
			select {
			case got <- ev:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	// The watch is in place once it reports a change; make one until it
	// does.
	var last Event
	for last.Revision == 0 {
		if _, _, err := k.writer.Add(ctx, people.Person{Name: fmt.Sprint("Ready ", time.Now().UnixNano())}); err != nil {
			t.Fatal(err)
		}
		select {
		case last = <-got:
		case <-time.After(200 * time.Millisecond):
		}
	}
	const n = 5
	for i := range n {
		_, rev, err := k.writer.Add(ctx, people.Person{Name: "P" + strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case ev := <-got:
			if ev.Revision != last.Revision+1 || ev.Revision != rev || ev.Person.Name != "P"+strconv.Itoa(i) {
				t.Errorf("after revision %d the watch got %d %s, want %d P%d", last.Revision, ev.Revision, ev.Person.Name, rev, i)
			}
			last = ev
		case <-ctx.Done():
			t.Fatalf("the watch did not report P%d", i)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Watch = %v, want context.Canceled", err)
	}
	if got := reconnects.Load(); got < n {
		t.Errorf("%d reconnections, want at least %d", got, n)
	}
}

var errDone = errors.New("done")

// TestWatchResumesListing cuts a watch with send_current after its first
// person: the listing resumes where it stopped when the directory has not
// changed, and the watch ends with ErrListingChanged when it has.
func TestWatchResumesListing(t *testing.T) {
	// Enough people that the listing cannot have arrived whole when the
	// watch's connection is cut after the first.
	var many []people.Person
	for i := range 3000 {
		many = append(many, people.Person{Name: fmt.Sprintf("P%04d", i), Address: people.Address{Street: strings.Repeat("x", 150)}})
	}
	for _, changed := range []bool{false, true} {
		t.Run(fmt.Sprint("changed=", changed), func(t *testing.T) {
			k := newCuttable(t, many...)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var names []string
			reconnects := 0
			err := k.client.Watch(ctx, true, 0, func(r Reconnect) {
				reconnects++
				if !r.Listing {
					t.Errorf("Reconnect.Listing false while listing")
				}
			}, func(ev Event) error {
				if ev.Type == EventSynced {
					return errDone
				}
				names = append(names, ev.Person.Name)
				if len(names) == 1 {
					k.cut()
					if changed {
						if _, _, err := k.writer.Add(ctx, people.Person{Name: "Zed"}); err != nil {
							return err
						}
					}
				}
				return nil
			})
			if reconnects != 1 {
				t.Errorf("%d reconnections, want 1", reconnects)
			}
			if changed {
				if !errors.Is(err, ErrListingChanged) {
					t.Fatalf("Watch = %v, want ErrListingChanged", err)
				}
				if len(names) >= len(many) {
					t.Errorf("listed %d people before the cut, want fewer than %d", len(names), len(many))
				}
				return
			}
			if !errors.Is(err, errDone) {
				t.Fatalf("Watch = %v, want the listing to end with SYNCED", err)
			}
			var want []string
			for _, p := range many {
				want = append(want, p.Name)
			}
			if !slices.Equal(names, want) {
				t.Errorf("listed %d people, want each of %d once, in order", len(names), len(want))
			}
		})
	}
}

// TestWatchResumesAfterStall reads a watch too slowly for the server, which
// ends it with RESOURCE_EXHAUSTED, and checks that the watch resumes and
// delivers every person of its listing once.
func TestWatchResumesAfterStall(t *testing.T) {
	limits := grpcserver.DefaultLimits()
	limits.WatchStallTimeout = 200 * time.Millisecond
	var many []people.Person
	for i := range 3000 {
		many = append(many, people.Person{Name: fmt.Sprintf("P%04d", i), Address: people.Address{Street: strings.Repeat("x", 150)}})
	}
	k := newCuttableWith(t, limits, many...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var names []string
	var stalls []Reconnect
	err := k.client.Watch(ctx, true, 0, func(r Reconnect) { stalls = append(stalls, r) }, func(ev Event) error {
		if ev.Type == EventSynced {
			return errDone
		}
		names = append(names, ev.Person.Name)
		if len(names) == 1 {
			time.Sleep(time.Second) // the server's sends wait past its stall timeout
		}
		return nil
	})
	if !errors.Is(err, errDone) {
		t.Fatalf("Watch = %v, want the listing to end with SYNCED", err)
	}
	if len(stalls) == 0 || status.Code(stalls[0].Err) != codes.ResourceExhausted {
		t.Fatalf("reconnections %+v, want the first after RESOURCE_EXHAUSTED", stalls)
	}
	var want []string
	for _, p := range many {
		want = append(want, p.Name)
	}
	if !slices.Equal(names, want) {
		t.Errorf("listed %d people, want each of %d once, in order", len(names), len(want))
	}
}

package grpcserver

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/routeguide/routeguide/internal/memory"
	"github.com/routeguide/routeguide/internal/people"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

// startTCP serves store with limits on a loopback TCP port, since the
// watch limits per connection tell connections apart by their addresses,
// and bufconn gives them all the same.
func startTCP(t *testing.T, store people.Store, limits Limits) string {
	t.Helper()
	return startTCPWith(t, store, Options{Limits: limits})
}

// startTCPWith is startTCP with more options; a nil Log discards.
func startTCPWith(t *testing.T, store people.Store, opts Options) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	srv := New(store, opts)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return lis.Addr().String()
}

// dial returns a client on its own connection to addr.
func dial(t *testing.T, addr string, opts ...grpc.DialOption) pb.RouteGuideClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return pb.NewRouteGuideClient(conn)
}

// openWatch starts a watch and returns it once the server has answered with
// its header, or the status the watch was refused with.
func openWatch(ctx context.Context, client pb.RouteGuideClient) (pb.RouteGuide_WatchPeopleClient, error) {
	w, err := client.WatchPeople(ctx, &pb.WatchPeopleRequest{})
	if err != nil {
		return nil, err
	}
	md, err := w.Header()
	if err != nil {
		return nil, err
	}
	if len(md.Get(watchRevisionHeader)) == 0 {
		_, err := w.Recv() // refused: the status is the answer
		return nil, err
	}
	return w, nil
}

// TestWatchersLimited checks that a watch past the limit per connection, or
// per server, is refused with RESOURCE_EXHAUSTED naming the limit, and that
// a watch's place is given back when it ends.
func TestWatchersLimited(t *testing.T) {
	limits := DefaultLimits()
	limits.MaxWatchersPerConn = 2
	limits.MaxWatchers = 3
	addr := startTCP(t, seedStore(), limits)
	first, second := dial(t, addr), dial(t, addr)
	ctx := callCtx(t)

	wantRefused := func(client pb.RouteGuideClient, limit string) {
		t.Helper()
		_, err := openWatch(ctx, client)
		if status.Code(err) != codes.ResourceExhausted || !strings.Contains(status.Convert(err).Message(), limit) {
			t.Fatalf("watch past the limit: %v; want RESOURCE_EXHAUSTED naming %q", err, limit)
		}
	}
	watchCtx, endWatch := context.WithCancel(ctx)
	for range 2 {
		if _, err := openWatch(watchCtx, first); err != nil {
			t.Fatalf("watch within the limits: %v", err)
		}
	}
	wantRefused(first, "limit per connection")
	if _, err := openWatch(ctx, second); err != nil {
		t.Fatalf("watch on another connection: %v", err)
	}
	wantRefused(second, "the server has 3 watches open")

	// Ending the first connection's watches gives their places back.
	endWatch()
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, err = openWatch(ctx, first); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("watch after others ended: %v", err)
	}
}

// largePeople returns a store of n people with long hobbies and addresses,
// some 2.5 KiB each.
func largePeople(t *testing.T, n int) *memory.Store {
	t.Helper()
	var batch []people.Person
	for i := range n {
		p := people.Person{Name: fmt.Sprintf("p%05d", i), Address: people.Address{Street: strings.Repeat("s", people.MaxAddressLen), City: strings.Repeat("c", people.MaxAddressLen)}}
		for j := range 32 {
			p.Hobbies = append(p.Hobbies, fmt.Sprintf("%02d%s", j, strings.Repeat("h", 60)))
		}
		batch = append(batch, p)
	}
	s := memory.New(0)
	if _, err := s.Import(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestWatchStalledClientIsEnded checks the slow-consumer policy: a watch
// whose client accepts no data for WatchStallTimeout is ended, freeing its
// place, and the client, once it reads, gets what was sent and then
// RESOURCE_EXHAUSTED telling it how to resume.
func TestWatchStalledClientIsEnded(t *testing.T) {
	limits := DefaultLimits()
	limits.MaxWatchersPerConn = 1
	limits.WatchStallTimeout = 100 * time.Millisecond
	addr := startTCP(t, largePeople(t, 400), limits)
	// Small windows, so that the server's sends wait soon.
	client := dial(t, addr, grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	ctx := callCtx(t)

	stalled, err := client.WatchPeople(ctx, &pb.WatchPeopleRequest{SendCurrent: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stalled.Header(); err != nil {
		t.Fatal(err)
	}
	// Until the server ends the stalled watch, the connection has no room
	// for another.
	var second pb.RouteGuide_WatchPeopleClient
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if second, err = openWatch(ctx, client); err == nil {
			break
		}
		if status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("second watch: %v", err)
		}
	}
	if second == nil {
		t.Fatalf("the stalled watch was not ended: %v", err)
	}

	current := 0
	for {
		ev, err := stalled.Recv()
		if err != nil {
			if status.Code(err) != codes.ResourceExhausted || !strings.Contains(status.Convert(err).Message(), "after_revision") {
				t.Fatalf("stalled watch ended with %v; want RESOURCE_EXHAUSTED telling how to resume", err)
			}
			break
		}
		if ev.GetType() == pb.WatchPeopleResponse_TYPE_SYNCED {
			t.Fatalf("stalled watch sent every person; it was not ended")
		}
		current++
	}
	if current == 0 || current >= 400 {
		t.Errorf("stalled watch delivered %d people before its end, want some but not all 400", current)
	}
}

// TestWatchPagesByBytes checks that a watch sends every person and change
// when a page holds only a few people at their longest.
func TestWatchPagesByBytes(t *testing.T) {
	limits := DefaultLimits()
	limits.WatchPageBytes = 3 * personCost // three people a page
	addr := startTCP(t, largePeople(t, 10), limits)
	client := dial(t, addr)
	ctx := callCtx(t)
	w, err := client.WatchPeople(ctx, &pb.WatchPeopleRequest{SendCurrent: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		ev, err := w.Recv()
		if want := fmt.Sprintf("p%05d", i); err != nil || ev.GetPerson().GetName() != want {
			t.Fatalf("event %d: %v, %v; want %s", i, ev, err, want)
		}
	}
	if ev, err := w.Recv(); err != nil || ev.GetType() != pb.WatchPeopleResponse_TYPE_SYNCED {
		t.Fatalf("after the people: %v, %v; want SYNCED", ev, err)
	}
	for i := range 7 {
		if _, err := client.AddPerson(ctx, &pb.AddPersonRequest{Person: &pb.Person{Name: fmt.Sprintf("q%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 7 {
		ev, err := w.Recv()
		if want := fmt.Sprintf("q%d", i); err != nil || ev.GetPerson().GetName() != want {
			t.Fatalf("change %d: %v, %v; want %s added", i, ev, err, want)
		}
	}
}

// TestGetPeopleLongNames checks that names longer than any spelling of a
// valid name are skipped like other unknown names, and that the longest
// valid name in bytes, and a name in much white space, are still found.
func TestGetPeopleLongNames(t *testing.T) {
	longest := strings.Repeat("😀", people.MaxNameLen) // people.MaxNameBytes bytes
	s := seedStore()
	if _, err := s.Add(context.Background(), people.Person{Name: longest}); err != nil {
		t.Fatal(err)
	}
	h := start(t, s)
	stream, err := h.client.GetPeople(callCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	padded := strings.Repeat(" ", 1<<20) + "Alice" + strings.Repeat(" ", 1<<20) // found, as lookups trim
	for _, name := range []string{strings.Repeat("x", 1<<20), strings.Repeat("x", people.MaxNameSpelling+1), longest + "x", longest, padded, "Bob"} {
		if err := stream.Send(&pb.Name{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	stream.CloseSend()
	var got []string
	for {
		p, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p.GetName())
	}
	if want := []string{longest, "Alice", "Bob"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("answers %q, want %q", got, want)
	}
}

package grpcserver

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/syncbuf"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

// logLines returns the JSON log lines written to b so far.
func logLines(t *testing.T, b *syncbuf.Buffer) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// startLogged starts a server on store that logs JSON at level to the
// returned buffer, and returns a client.
func startLogged(t *testing.T, store people.Store, level slog.Level, slow time.Duration) (pb.RouteGuideClient, *syncbuf.Buffer) {
	t.Helper()
	logs := &syncbuf.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: level}))
	srv := New(store, Options{Log: log, Limits: DefaultLimits(), Slow: slow})
	lis := bufconn.Listen(1 << 20)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-served
	})
	return pb.NewRouteGuideClient(conn), logs
}

func rpcLines(t *testing.T, logs *syncbuf.Buffer) []map[string]any {
	var out []map[string]any
	for _, l := range logLines(t, logs) {
		if l["msg"] == "rpc" {
			out = append(out, l)
		}
	}
	return out
}

func TestCallLogging(t *testing.T) {
	t.Run("info: failures and slow calls only", func(t *testing.T) {
		client, logs := startLogged(t, seedStore(), slog.LevelInfo, time.Hour)
		ctx := callCtx(t)
		client.GetPerson(ctx, &pb.Name{Name: "Alice"})
		client.DeletePerson(ctx, &pb.DeletePersonRequest{Name: "Nobody"})
		lines := rpcLines(t, logs)
		if len(lines) != 1 {
			t.Fatalf("rpc lines at info = %v, want one, for the failed delete", lines)
		}
		l := lines[0]
		if l["level"] != "INFO" || l["method"] != "/RouteGuide/DeletePerson" || l["code"] != "NotFound" || l["peer"] == nil || l["duration"] == nil {
			t.Errorf("rpc line = %v, want INFO /RouteGuide/DeletePerson NotFound with peer and duration", l)
		}
	})
	t.Run("info: slow calls", func(t *testing.T) {
		client, logs := startLogged(t, seedStore(), slog.LevelInfo, 0)
		client.GetPerson(callCtx(t), &pb.Name{Name: "Alice"})
		if lines := rpcLines(t, logs); len(lines) != 1 || lines[0]["code"] != "OK" {
			t.Errorf("rpc lines with every call slow = %v, want the GetPerson", lines)
		}
	})
	t.Run("debug: every call", func(t *testing.T) {
		client, logs := startLogged(t, seedStore(), slog.LevelDebug, time.Hour)
		ctx := callCtx(t)
		client.GetPerson(ctx, &pb.Name{Name: "Alice"})
		stream, _ := client.GetPeople(ctx)
		stream.CloseSend()
		stream.Recv()
		time.Sleep(50 * time.Millisecond) // the stream's line is written after its status is sent
		lines := rpcLines(t, logs)
		if len(lines) != 2 || lines[0]["level"] != "DEBUG" {
			t.Errorf("rpc lines at debug = %v, want GetPerson and GetPeople at DEBUG", lines)
		}
	})
}

// panicStore panics on every lookup.
func panicStore() people.Store {
	return storeWith{seedStore(), func(context.Context, string) (people.Person, error) {
		panic("lookup exploded")
	}}
}

func TestPanicsAnswerInternal(t *testing.T) {
	client, logs := startLogged(t, panicStore(), slog.LevelInfo, time.Hour)
	ctx := callCtx(t)
	_, err := client.GetPerson(ctx, &pb.Name{Name: "Alice"})
	if st := status.Convert(err); st.Code() != codes.Internal || st.Message() != "internal error" {
		t.Errorf("GetPerson with a panicking store = %v %q, want INTERNAL \"internal error\"", st.Code(), st.Message())
	}
	stream, err := client.GetPeople(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stream.Send(&pb.Name{Name: "Alice"})
	if _, err := stream.Recv(); status.Code(err) != codes.Internal {
		t.Errorf("GetPeople with a panicking store: %v, want INTERNAL", err)
	}
	// The server goes on serving.
	if _, err := client.AddPerson(ctx, &pb.AddPersonRequest{Person: &pb.Person{Name: "Carol"}}); err != nil {
		t.Errorf("AddPerson after the panics: %v", err)
	}
	var panics int
	for _, l := range logLines(t, logs) {
		if l["msg"] == "handler panicked" {
			panics++
			if !strings.Contains(l["stack"].(string), "panicStore") {
				t.Errorf("panic line without the stack: %v", l)
			}
		}
	}
	if panics != 2 {
		t.Errorf("%d panic lines logged, want 2", panics)
	}
}

// TestFailedCallFloodIsSummarised floods a server with calls that fail and
// checks that at most failuresBurst lines per method and code (and
// interval) are logged one by one, and that the summaries account for
// every other call.
func TestFailedCallFloodIsSummarised(t *testing.T) {
	const n = 300
	logs := &syncbuf.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	tokens := []Token{{hash: sha256.Sum256([]byte("reader-token-0123456789")), Principal: Principal{Name: "rita", Role: RoleReader}}}
	srv := New(seedStore(), Options{Log: log, Limits: DefaultLimits(), Slow: time.Hour, Auth: NewAuth(tokens, false)})
	lis := bufconn.Listen(1 << 20)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	client := pb.NewRouteGuideClient(conn)
	ctx := callCtx(t)
	for range n {
		if _, err := client.GetPerson(ctx, &pb.Name{Name: "Alice"}); status.Code(err) != codes.Unauthenticated {
			t.Fatalf("GetPerson without a token: %v, want UNAUTHENTICATED", err)
		}
		stream, err := client.ListPeople(ctx, &pb.ListPeopleRequest{})
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("ListPeople without a token: %v %v, want UNAUTHENTICATED", stream, err)
		}
	}
	conn.Close()
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shutCtx)
	<-served

	type tally struct{ lines, logged, suppressed, summaries int }
	got := map[string]*tally{}
	at := func(method string) *tally {
		if got[method] == nil {
			got[method] = &tally{}
		}
		return got[method]
	}
	for _, l := range logLines(t, logs) {
		switch l["msg"] {
		case "rpc":
			if l["code"] != "Unauthenticated" {
				t.Errorf("rpc line %v, want Unauthenticated", l)
			}
			at(l["method"].(string)).lines++
		case "rpc failures not logged one by one":
			tl := at(l["method"].(string))
			tl.summaries++
			tl.suppressed += int(l["suppressed"].(float64))
			tl.logged += int(l["logged"].(float64))
		}
	}
	for _, method := range []string{"/RouteGuide/GetPerson", "/RouteGuide/ListPeople"} {
		tl := at(method)
		// An interval may end during the flood on a slow machine: each
		// gets its own burst, and a summary when it suppressed any.
		if tl.summaries == 0 || tl.lines > failuresBurst*(tl.summaries+1) || tl.lines+tl.suppressed != n {
			t.Errorf("%s: %d calls gave %d lines and %d summaries of %d logged and %d suppressed; want at most %d lines an interval and every call counted",
				method, n, tl.lines, tl.summaries, tl.logged, tl.suppressed, failuresBurst)
		}
	}
}

// TestFailureSummaryAtIntervalEnd checks that the summary is logged when
// the interval ends, not only when the server stops.
func TestFailureSummaryAtIntervalEnd(t *testing.T) {
	logs := &syncbuf.Buffer{}
	f := newFailureLog(slog.New(slog.NewJSONHandler(logs, nil)), 2, 20*time.Millisecond)
	defer f.close()
	var levels []slog.Level
	for range 5 {
		levels = append(levels, f.level("/RouteGuide/GetPerson", codes.Unauthenticated))
	}
	want := []slog.Level{slog.LevelInfo, slog.LevelInfo, slog.LevelDebug, slog.LevelDebug, slog.LevelDebug}
	if !slices.Equal(levels, want) {
		t.Errorf("levels = %v, want %v", levels, want)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), `"suppressed":3`); {
		if time.Now().After(deadline) {
			t.Fatalf("no summary of 3 suppressed failures after the interval; logs:\n%s", logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A new interval logs its first failures again.
	if got := f.level("/RouteGuide/GetPerson", codes.Unauthenticated); got != slog.LevelInfo {
		t.Errorf("first failure of the next interval at %v, want INFO", got)
	}
}

// TestWatchersGauge checks that Watchers counts open WatchPeople streams.
func TestWatchersGauge(t *testing.T) {
	srv := New(seedStore(), Options{Log: slog.New(slog.DiscardHandler), Limits: DefaultLimits()})
	lis := bufconn.Listen(1 << 20)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer func() {
		srv.Shutdown(context.Background())
		<-served
	}()
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := pb.NewRouteGuideClient(conn)
	waitFor := func(want int64) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); srv.Watchers() != want; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("Watchers() = %d, want %d", srv.Watchers(), want)
			}
		}
	}
	ctx, cancel := context.WithCancel(callCtx(t))
	var streams []grpc.ServerStreamingClient[pb.WatchPeopleResponse]
	for range 2 {
		s, err := client.WatchPeople(ctx, &pb.WatchPeopleRequest{})
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, s)
	}
	if _, err := client.GetPerson(ctx, &pb.Name{Name: "Alice"}); err != nil {
		t.Fatal(err)
	}
	waitFor(2)
	cancel()
	for _, s := range streams {
		s.Recv()
	}
	waitFor(0)
}

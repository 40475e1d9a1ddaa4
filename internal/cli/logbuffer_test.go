package cli

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/routeguide/routeguide/routeguidepb"
)

// writes records each call of Write.
type writes struct {
	mu    sync.Mutex
	calls []string
}

func (w *writes) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, string(p))
	return len(p), nil
}

func (w *writes) got() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.calls...)
}

func equal(a, b []string) bool { return strings.Join(a, "|") == strings.Join(b, "|") }

// TestLogBufferHoldsLinesUntilClose writes a line, which goes out at once,
// then lines soon after, which are held until Close writes them together;
// after Close, lines go straight out.
func TestLogBufferHoldsLinesUntilClose(t *testing.T) {
	var w writes
	b := newLogBuffer(&w, time.Hour, 1<<10)
	for _, line := range []string{"one\n", "two\n", "three\n"} {
		if n, err := b.Write([]byte(line)); n != len(line) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", line, n, err)
		}
	}
	if got, want := w.got(), []string{"one\n"}; !equal(got, want) {
		t.Fatalf("before Close, written %q, want %q", got, want)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got, want := w.got(), []string{"one\n", "two\nthree\n"}; !equal(got, want) {
		t.Fatalf("after Close, written %q, want %q", got, want)
	}
	b.Write([]byte("four\n"))
	if got, want := w.got(), []string{"one\n", "two\nthree\n", "four\n"}; !equal(got, want) {
		t.Errorf("a write after Close: written %q, want %q", got, want)
	}
}

// TestLogBufferWritesHeldLinesSoon checks that held lines go out within
// the delay, without another write or a Close.
func TestLogBufferWritesHeldLinesSoon(t *testing.T) {
	var w writes
	b := newLogBuffer(&w, 20*time.Millisecond, 1<<10)
	defer b.Close()
	b.Write([]byte("one\n"))
	b.Write([]byte("two\n"))
	b.Write([]byte("three\n"))
	want := []string{"one\n", "two\nthree\n"}
	for deadline := time.Now().Add(5 * time.Second); !equal(w.got(), want); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("written %q, want %q", w.got(), want)
		}
	}
}

// TestLogBufferBound checks that the buffer holds no more than its bound:
// a line that would pass it writes out the lines held, and a line longer
// than the bound goes out at once, after them.
func TestLogBufferBound(t *testing.T) {
	var w writes
	b := newLogBuffer(&w, time.Hour, 10)
	defer b.Close()
	for _, line := range []string{"0\n", "1234\n", "5678\n", "9abc\n", "a line longer than ten\n"} {
		b.Write([]byte(line))
	}
	want := []string{"0\n", "1234\n5678\n", "9abc\n", "a line longer than ten\n"}
	if got := w.got(); !equal(got, want) {
		t.Errorf("written %q, want %q", got, want)
	}
}

// TestFlushingHandlerWritesWarnings checks that a warning goes out at
// once, with the lines held before it, through a logger with attributes
// and groups too.
func TestFlushingHandlerWritesWarnings(t *testing.T) {
	var w writes
	b := newLogBuffer(&w, time.Hour, 1<<10)
	defer b.Close()
	log := slog.New(flushingHandler{slog.NewTextHandler(b, &slog.HandlerOptions{ReplaceAttr: noTime}), b})
	log.Info("first")
	log.Info("held")
	log.With("k", "v").WithGroup("g").Warn("warned", "x", 1)
	want := []string{
		"level=INFO msg=first\n",
		"level=INFO msg=held\nlevel=WARN msg=warned k=v g.x=1\n",
	}
	if got := w.got(); !equal(got, want) {
		t.Errorf("written %q, want %q", got, want)
	}
}

func noTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// TestServeWritesEveryAuditLine adds people as fast as one caller can and
// stops the server at once: every write's audit line is in serve's
// stderr when it returns, the ones held at the end included.
func TestServeWritesEveryAuditLine(t *testing.T) {
	s := runServe(t, noEnv, "--addr", "127.0.0.1:0", "--store", "memory")
	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := pb.NewRouteGuideClient(conn)
	const n = 200
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := client.AddPerson(ctx, &pb.AddPersonRequest{Person: &pb.Person{Name: fmt.Sprintf("Person %d", i)}})
		cancel()
		if err != nil {
			t.Fatalf("AddPerson %d: %v", i, err)
		}
	}
	s.stop(t)
	if got := strings.Count(s.logs.String(), "msg=audit method=AddPerson "); got != n {
		t.Errorf("%d audit lines for AddPerson, want %d; logs:\n%s", got, n, s.logs)
	}
}

// logs is what holds a server's log in tests.
type logs interface{ String() string }

// logged reports whether l holds want, waiting a while for it: serve
// holds its lines for up to logFlushEvery (see logBuffer).
func logged(l logs, want string) bool {
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(l.String(), want); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

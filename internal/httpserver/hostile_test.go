package httpserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/protobuf/proto"

	"github.com/routeguide/routeguide/internal/grpcserver"
	"github.com/routeguide/routeguide/internal/people"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

// TestRapidResetIsBounded floods the HTTP listener over h2c with streams
// reset as soon as they open, gRPC and REST alike, from connections that
// never wait for an answer. No more than MaxConcurrentStreams calls of a
// connection run at once, another client is answered throughout and after,
// and the server then stops gracefully.
func TestRapidResetIsBounded(t *testing.T) {
	const streamsPerConn, conns = 2000, 3
	limits := grpcserver.DefaultLimits()
	limits.MaxConcurrentStreams = 8
	var now, most atomic.Int64
	f := start(t, setup{limits: &limits, wrap: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := now.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			defer now.Add(-1)
			time.Sleep(time.Millisecond) // calls overlap, as slow lookups would
			next.ServeHTTP(w, r)
		})
	}})

	done := make(chan error, conns)
	for range conns {
		go func() { done <- flood(f.addr, streamsPerConn) }()
	}
	for range 20 {
		if a := f.do(t, "GET", "/v1/people/Alice", ""); a.code != 200 {
			t.Fatalf("a client during the flood: %d %s", a.code, a.body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for range conns {
		if err := <-done; err != nil {
			t.Logf("flood ended early: %v", err) // the server may close a flooding connection
		}
	}
	if a := f.do(t, "POST", "/RouteGuide/GetPerson", `{"name":"Bob"}`); a.code != 200 {
		t.Errorf("a client after the flood: %d %s", a.code, a.body)
	}
	// Each connection's calls are bounded; with three connections, three
	// times the limit at most.
	if got, bound := most.Load(), int64(conns*int(limits.MaxConcurrentStreams)); got > bound {
		t.Errorf("%d calls ran at once, over %d connections of at most %d streams", got, conns, limits.MaxConcurrentStreams)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f.svc.Drain()
	if !f.hs.Shutdown(ctx) {
		t.Error("the HTTP server did not stop gracefully after the flood")
	}
}

// flood opens streams on one h2c connection, each reset right after its
// request, alternating a gRPC GetPerson and a REST GET.
func flood(addr string, streams int) error {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	go func() { // drain what the server sends, so its writes never block
		var buf [32 << 10]byte
		for {
			if _, err := conn.Read(buf[:]); err != nil {
				return
			}
		}
	}()
	bw := bufio.NewWriterSize(conn, 64<<10)
	fr := http2.NewFramer(bw, nil)
	bw.WriteString(http2.ClientPreface)
	fr.WriteSettings()
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	msg, _ := proto.Marshal(&pb.Name{Name: "Alice"})
	grpcMsg := append(binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg))), msg...)
	for i := range streams {
		id := uint32(2*i + 1)
		hbuf.Reset()
		fields := []hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"}, {Name: ":path", Value: "/v1/people/Alice"}, {Name: ":authority", Value: addr}}
		grpcCall := i%2 == 0
		if grpcCall {
			fields = []hpack.HeaderField{{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "http"}, {Name: ":path", Value: "/RouteGuide/GetPerson"},
				{Name: ":authority", Value: addr}, {Name: "content-type", Value: "application/grpc"}, {Name: "te", Value: "trailers"}}
		}
		for _, hf := range fields {
			enc.WriteField(hf)
		}
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hbuf.Bytes(), EndHeaders: true, EndStream: !grpcCall}); err != nil {
			return fmt.Errorf("stream %d: %w", i, err)
		}
		if grpcCall {
			if err := fr.WriteData(id, true, grpcMsg); err != nil {
				return fmt.Errorf("stream %d: %w", i, err)
			}
		}
		if err := fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
			return fmt.Errorf("stream %d: %w", i, err)
		}
		if i%16 == 15 {
			if err := bw.Flush(); err != nil {
				return fmt.Errorf("stream %d: %w", i, err)
			}
		}
	}
	return bw.Flush()
}

// TestAbandonedFeedEnds opens a watch feed of everyone and never reads it:
// once its writes have waited the stall timeout, the feed ends and lets go
// of its watch, and the server stops gracefully.
func TestAbandonedFeedEnds(t *testing.T) {
	limits := grpcserver.DefaultLimits()
	limits.WatchStallTimeout = 300 * time.Millisecond
	// More than the socket buffers on both sides hold (some MiB).
	many := make([]people.Person, 10000)
	hobby := strings.Repeat("h", 900)
	for i := range many {
		many[i] = people.Person{Name: fmt.Sprintf("Person %05d", i), Age: 30, Hobbies: []string{hobby, hobby + "2"}}
	}
	f := start(t, setup{limits: &limits, initial: many})

	conn, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(4 << 10)
	fmt.Fprintf(conn, "GET /v1/people:watch?current=true HTTP/1.1\r\nHost: %s\r\n\r\n", f.addr)

	// The watch opens, fills what the connection holds, then stalls.
	deadline := time.Now().Add(10 * time.Second)
	for f.svc.Watchers() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if f.svc.Watchers() != 1 {
		t.Fatalf("%d watches open, want the feed's", f.svc.Watchers())
	}
	for f.svc.Watchers() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := f.svc.Watchers(); n != 0 {
		t.Fatalf("%d watches open 10s after the client stopped reading, want 0", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	f.svc.Drain()
	if !f.hs.Shutdown(ctx) {
		t.Error("the HTTP server did not stop gracefully: the abandoned feed still holds its handler")
	}
}

// TestSlowAndIdleConnectionsClosed checks the HTTP server's timeouts: a
// client that never finishes its headers is cut after ConnectionTimeout,
// and a kept-alive connection without requests after MaxConnectionIdle.
func TestSlowAndIdleConnectionsClosed(t *testing.T) {
	limits := grpcserver.DefaultLimits()
	limits.ConnectionTimeout = 200 * time.Millisecond
	limits.MaxConnectionIdle = 300 * time.Millisecond
	f := start(t, setup{limits: &limits})
	closedWithin := func(conn net.Conn, d time.Duration) bool {
		conn.SetReadDeadline(time.Now().Add(d))
		_, err := io.Copy(io.Discard, conn)
		var ne net.Error
		return err == nil || !(errors.As(err, &ne) && ne.Timeout())
	}

	slow, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "GET /v1/people/Alice HTTP/1.1\r\nHost: %s\r\n", f.addr) // no end of headers
	if !closedWithin(slow, 5*time.Second) {
		t.Error("a connection whose headers never end is still open after 5s")
	}

	idle, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	fmt.Fprintf(idle, "GET /v1/people/Alice HTTP/1.1\r\nHost: %s\r\n\r\n", f.addr)
	resp, err := http.ReadResponse(bufio.NewReader(idle), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the request before going idle: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	if !closedWithin(idle, 5*time.Second) {
		t.Error("an idle kept-alive connection is still open after 5s")
	}
}

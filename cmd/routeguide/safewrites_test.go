package main

import (
	"bytes"
	"context"
	be "encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/routeguide/routeguide/internal/postgres/postgrestest"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

// runCmd runs the binary with args and returns its stdout, stderr and exit
// code.
func runCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// changesTo returns the changes to name in the change log.
func changesTo(t *testing.T, client pb.RouteGuideClient, name string) []*pb.WatchPeopleResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := client.ListPersonChanges(ctx, &pb.ListPersonChangesRequest{Name: name, PageSize: 1000})
	if err != nil {
		t.Fatalf("ListPersonChanges(%s): %v", name, err)
	}
	return resp.GetChanges()
}

// TestRequestIDSurvivesKill adds a person with a request id, kills the
// server with SIGKILL, and sends the same request to the restarted server:
// the retry answers the first answer, and the person has one change. The
// request id is durable with the write it answers.
func TestRequestIDSurvivesKill(t *testing.T) {
	stores := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "people.db") },
		"postgres": func(t *testing.T) string { return postgrestest.Schema(t) },
	}
	for name, newStore := range stores {
		t.Run(name, func(t *testing.T) {
			store := newStore(t)
			p := serve(t, "--store", store)
			req := &pb.AddPersonRequest{Person: &pb.Person{Name: "Carol", Age: 41}, RequestId: "3b8f3e0a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			first, err := dial(t, p.addr).AddPerson(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			p.cmd.Process.Kill()
			p.wait(t, 10*time.Second)

			p = serve(t, "--store", store)
			client := dial(t, p.addr)
			again, err := client.AddPerson(ctx, req)
			if err != nil || again.GetRevision() != first.GetRevision() {
				t.Errorf("the retry after kill -9 = %v, %v; want the first answer, revision %d", again, err, first.GetRevision())
			}
			if cs := changesTo(t, client, "Carol"); len(cs) != 1 {
				t.Errorf("changes to Carol = %v, want one", cs)
			}
		})
	}
}

// cutProxy forwards connections to target, except that it closes the
// first connection that carries a call of method when the server starts
// to answer it (the HEADERS frame of its stream), without passing the
// answer on: the server has then applied the call, and the client never
// hears so. It returns its address.
func cutProxy(t *testing.T, target, method string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		conns.Wait()
	})
	var cut atomic.Bool // whether a connection was cut
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			var stream atomic.Uint32 // the call's stream, once the client has sent it
			conns.Add(2)
			go func() {
				defer conns.Done()
				defer s.Close()
				findStream(io.TeeReader(c, s), method, &stream)
				io.Copy(s, c)
			}()
			go func() {
				defer conns.Done()
				defer c.Close()
				forwardUntilAnswer(c, s, &stream, &cut)
			}()
		}
	}()
	return l.Addr().String()
}

// findStream reads the client's side of an HTTP/2 connection until it
// opens a stream calling method, whose id it stores in stream.
func findStream(client io.Reader, method string, stream *atomic.Uint32) {
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(client, preface); err != nil {
		return
	}
	fr := http2.NewFramer(io.Discard, client)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		if h, ok := f.(*http2.MetaHeadersFrame); ok && h.PseudoValue("path") == method {
			stream.Store(h.StreamID)
			return
		}
	}
}

// forwardUntilAnswer copies HTTP/2 frames from server to client. Once a
// stream is set, and unless a connection was cut already, it stops at that
// stream's HEADERS frame, which it drops.
func forwardUntilAnswer(client io.Writer, server io.Reader, stream *atomic.Uint32, cut *atomic.Bool) {
	var head [9]byte
	for {
		if _, err := io.ReadFull(server, head[:]); err != nil {
			return
		}
		length := int(head[0])<<16 | int(head[1])<<8 | int(head[2])
		id := be.BigEndian.Uint32(head[5:9]) & 0x7fffffff
		if http2.FrameType(head[3]) == http2.FrameHeaders && id != 0 && id == stream.Load() && cut.CompareAndSwap(false, true) {
			return
		}
		payload := make([]byte, length)
		if _, err := io.ReadFull(server, payload); err != nil {
			return
		}
		if _, err := client.Write(append(head[:], payload...)); err != nil {
			return
		}
	}
}

// TestAddRetriedThroughCutConnection runs `routeguide add` through a
// connection cut after the server applied the write: the CLI retries with
// the same request id and exits 0, and there is one person with one
// change.
func TestAddRetriedThroughCutConnection(t *testing.T) {
	p := serve(t, "--store", filepath.Join(t.TempDir(), "people.db"))
	proxy := cutProxy(t, p.addr, "/RouteGuide/AddPerson")
	out, errOut, code := runCmd(t, "add", "--addr", proxy, "--name", "Carol", "--age", "41")
	if code != 0 || !strings.HasPrefix(out, "Carol  age 41") {
		t.Fatalf("add through a cut connection: exit %d, stdout %q, stderr %q; server logs:\n%s", code, out, errOut, p.log())
	}
	client := dial(t, p.addr)
	cs := changesTo(t, client, "Carol")
	if len(cs) != 1 || cs[0].GetRevision() != 3 {
		t.Errorf("changes to Carol = %v, want one, revision 3", cs)
	}
	// The server holds its log lines for a few milliseconds before
	// writing them (see serve's logBuffer).
	audits := 0
	for deadline := time.Now().Add(5 * time.Second); audits < 2 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		audits = strings.Count(p.log(), `msg=audit method=AddPerson`)
	}
	if audits != 2 {
		t.Errorf("audit lines for AddPerson = %d, want 2 (the write and its retry); logs:\n%s", audits, p.log())
	}
}

// TestUpdateIfMatchRace runs two `routeguide update --if-match` with the
// etag `get -o json` printed: exactly one succeeds, the other says the
// person changed since it was read; `routeguide history` shows who changed
// her.
func TestUpdateIfMatchRace(t *testing.T) {
	p := serve(t, "--store", filepath.Join(t.TempDir(), "people.db"))
	out, _, code := runCmd(t, "get", "--addr", p.addr, "-o", "json", "Alice")
	var got struct{ Etag string }
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil || got.Etag == "" {
		t.Fatalf("get -o json Alice: exit %d, %q, %v", code, out, err)
	}
	type outcome struct {
		stderr string
		code   int
	}
	results := make(chan outcome, 2)
	for _, age := range []string{"31", "32"} {
		go func() {
			_, stderr, code := runCmd(t, "update", "Alice", "--addr", p.addr, "--age", age, "--if-match", got.Etag)
			results <- outcome{stderr, code}
		}()
	}
	var wins, aborted int
	for range 2 {
		r := <-results
		switch {
		case r.code == 0:
			wins++
		case strings.Contains(r.stderr, "changed since it was read"):
			aborted++
		default:
			t.Errorf("update --if-match: exit %d, stderr %q", r.code, r.stderr)
		}
	}
	if wins != 1 || aborted != 1 {
		t.Errorf("%d updates succeeded and %d were refused; want one each", wins, aborted)
	}
	out, errOut, code := runCmd(t, "history", "Alice", "--addr", p.addr)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || !strings.Contains(lines[1], " local ") || !strings.Contains(lines[1], "updated age 30 -> 3") {
		t.Errorf("history Alice: exit %d, stderr %q, stdout:\n%s\nwant a header, her update by local, and her addition", code, errOut, out)
	}
}

// TestRequestIDAcrossReplicas sends one AddPerson, with one request id,
// through two replicas on one PostgreSQL database at once, again and
// again: every answer has the same revision, and there is one change and
// one watch event.
func TestRequestIDAcrossReplicas(t *testing.T) {
	store := postgrestest.Schema(t)
	a, b := serve(t, "--store", store), serve(t, "--store", store)
	clients := []pb.RouteGuideClient{dial(t, a.addr), dial(t, b.addr)}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	watch, err := clients[1].WatchPeople(ctx, &pb.WatchPeopleRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Header(); err != nil {
		t.Fatal(err)
	}
	req := &pb.AddPersonRequest{Person: &pb.Person{Name: "Carol"}, RequestId: "3b8f3e0a-1c2d-4e5f-8a9b-0c1d2e3f4a5c"}
	revs := make(chan int64, 16)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := clients[i%2].AddPerson(ctx, req)
			if err != nil {
				t.Errorf("AddPerson through replica %d: %v", i%2, err)
				return
			}
			revs <- resp.GetRevision()
		}()
	}
	wg.Wait()
	close(revs)
	for rev := range revs {
		if rev != 3 {
			t.Errorf("an answer has revision %d, want 3", rev)
		}
	}
	if _, err := clients[0].DeletePerson(ctx, &pb.DeletePersonRequest{Name: "Bob"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"added Carol at 3", "deleted Bob at 4"} {
		ev, err := watch.Recv()
		if err != nil {
			t.Fatal(err)
		}
		got := fmt.Sprintf("%s %s at %d", strings.ToLower(strings.TrimPrefix(ev.GetType().String(), "TYPE_")), ev.GetPerson().GetName(), ev.GetRevision())
		if got != want {
			t.Errorf("watch event %q, want %q", got, want)
		}
	}
}

// TestETagRaceAcrossReplicas has clients increment one person's age
// through three replicas on one PostgreSQL database, each update
// conditional on the etag it read: the final age counts every
// acknowledged update (none was lost), and the others were refused with
// ABORTED.
func TestETagRaceAcrossReplicas(t *testing.T) {
	store := postgrestest.Schema(t)
	var clients []pb.RouteGuideClient
	for range 3 {
		clients = append(clients, dial(t, serve(t, "--store", store).addr))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var acked, aborted atomic.Int64
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clients[i%3]
			for range 10 {
				var header metadata.MD
				p, err := c.GetPerson(ctx, &pb.Name{Name: "Bob"}, grpc.Header(&header))
				if err != nil || len(header.Get("etag")) != 1 {
					t.Errorf("GetPerson(Bob): %v, etag %v", err, header.Get("etag"))
					return
				}
				_, err = c.UpdatePerson(ctx, &pb.UpdatePersonRequest{
					Person:     &pb.Person{Name: "Bob", Age: p.GetAge() + 1},
					UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"age"}},
					Etag:       header.Get("etag")[0],
				})
				switch status.Code(err) {
				case codes.OK:
					acked.Add(1)
				case codes.Aborted:
					aborted.Add(1)
				default:
					t.Errorf("UpdatePerson: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// The change log is read from the database itself, where a replica's
	// read cache may not have caught up with the others' last writes yet.
	cs := changesTo(t, clients[0], "Bob")
	if int64(len(cs)) != acked.Load()+1 || cs[0].GetPerson().GetAge() != 25+int32(acked.Load()) {
		t.Errorf("Bob has %d changes, the newest to age %d, after %d acknowledged increments from 25: want one change each, and no update lost",
			len(cs), cs[0].GetPerson().GetAge(), acked.Load())
	}
	t.Logf("%d updates acknowledged, %d refused with ABORTED", acked.Load(), aborted.Load())
}

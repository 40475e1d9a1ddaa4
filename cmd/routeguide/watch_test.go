package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/routeguide/routeguide/internal/syncbuf"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

// watchEvent is one line `routeguide watch -o json` printed.
type watchEvent struct {
	Revision int64 `json:"revision,string"`
	Type     string
	Person   struct{ Name string }
}

// watcher is a running `routeguide watch -o json`.
type watcher struct {
	cmd    *exec.Cmd
	events chan watchEvent // closed when stdout ends
	stderr syncbuf.Buffer
	bad    chan string // a line of stdout that is not an event
	last   int64       // the last revision expect read
}

// startWatch runs `routeguide watch -o json` on target, with args.
func startWatch(t *testing.T, target string, args ...string) *watcher {
	t.Helper()
	w := &watcher{events: make(chan watchEvent, 1000), bad: make(chan string, 1)}
	w.cmd = exec.Command(binary, append([]string{"watch", "--addr", target, "-o", "json"}, args...)...)
	w.cmd.Stderr = &w.stderr
	out, err := w.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		w.cmd.Process.Kill()
		w.cmd.Wait()
	})
	go func() {
		defer close(w.events)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var ev watchEvent
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.Revision == 0 {
				select {
				case w.bad <- sc.Text():
				default:
				}
				continue
			}
			w.events <- ev
		}
	}()
	return w
}

// ready adds people through add until the watch prints one, and drops the
// events printed so far.
func (w *watcher) ready(t *testing.T, add func(name string) error) {
	t.Helper()
	for i := range 40 {
		if err := add(fmt.Sprintf("Ready %d", i)); err != nil {
			t.Fatalf("add: %v", err)
		}
		select {
		case ev := <-w.events:
			// Drop the reports of other additions made while it started.
			w.last = ev.Revision
			for {
				select {
				case ev := <-w.events:
					w.last = ev.Revision
				case <-time.After(300 * time.Millisecond):
					return
				}
			}
		case <-time.After(250 * time.Millisecond):
		}
	}
	t.Fatalf("the watch printed nothing; stderr:\n%s", w.stderr.String())
}

// expect reads the watch's events until every name in names has been
// printed, and fails unless they follow the events read before in order of
// revision, each revision printed once, each name once, and every line an
// event.
func (w *watcher) expect(t *testing.T, names []string, within time.Duration) {
	t.Helper()
	want := make(map[string]bool)
	for _, n := range names {
		want[n] = true
	}
	seen := make(map[string]int)
	deadline := time.After(within)
	for len(want) > 0 {
		select {
		case ev, ok := <-w.events:
			if !ok {
				t.Fatalf("the watch ended; stderr:\n%s", w.stderr.String())
			}
			if ev.Revision <= w.last {
				t.Errorf("revision %d (%s %s) printed after revision %d: a duplicate or out of order", ev.Revision, ev.Type, ev.Person.Name, w.last)
			}
			w.last = ev.Revision
			seen[ev.Person.Name]++
			if seen[ev.Person.Name] > 1 {
				t.Errorf("%s printed %d times", ev.Person.Name, seen[ev.Person.Name])
			}
			delete(want, ev.Person.Name)
		case line := <-w.bad:
			t.Errorf("the watch printed %q on stdout, which is not an event", line)
		case <-deadline:
			var missing []string
			for n := range want {
				missing = append(missing, n)
			}
			t.Fatalf("the watch did not print %d changes within %v, such as %q; stderr:\n%s", len(missing), within, missing[:min(5, len(missing))], w.stderr.String())
		}
	}
}

// dialConn returns a plain connection to addr, closed when t ends.
func dialConn(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// addVia returns a function that adds a person through conn.
func addVia(conn grpc.ClientConnInterface) func(name string) error {
	c := pb.NewRouteGuideClient(conn)
	return func(name string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := c.AddPerson(ctx, &pb.AddPersonRequest{Person: &pb.Person{Name: name}})
		return err
	}
}

// TestWatchResumesAcrossRestart kills the server under a watch with SIGKILL,
// makes changes once it is back on the same port and store, and checks that
// the watch printed every change once, in order, with its reconnections
// noted on stderr only.
func TestWatchResumesAcrossRestart(t *testing.T) {
	store := filepath.Join(t.TempDir(), "people.db")
	p := serve(t, "--store", store)
	add := addVia(dialConn(t, p.addr))
	w := startWatch(t, p.addr)
	w.ready(t, add)

	var before []string
	for i := range 10 {
		name := "Before " + strconv.Itoa(i)
		if err := add(name); err != nil {
			t.Fatal(err)
		}
		before = append(before, name)
	}
	w.expect(t, before, 10*time.Second)

	p.cmd.Process.Kill()
	p.wait(t, 10*time.Second)
	time.Sleep(300 * time.Millisecond) // the watch notices and backs off
	p = serve(t, "--store", store, "--addr", p.addr)
	add = addVia(dialConn(t, p.addr))
	var after []string
	for i := range 10 {
		name := "After " + strconv.Itoa(i)
		if err := add(name); err != nil {
			t.Fatal(err)
		}
		after = append(after, name)
	}
	w.expect(t, after, 15*time.Second)
	if notes := w.stderr.String(); !strings.Contains(notes, "routeguide: the watch was cut (") || !strings.Contains(notes, "; resuming after revision ") {
		t.Errorf("stderr = %q, want a note that the watch reconnects", notes)
	}
	t.Logf("the watch's stderr:\n%s", w.stderr.String())
}

package main

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/routeguide/routeguide/internal/postgres/postgrestest"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

func dial(t *testing.T, addr string) pb.RouteGuideClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return pb.NewRouteGuideClient(conn)
}

// TestAcknowledgedWritesSurviveKill adds people from several clients, kills
// the server with SIGKILL at a random moment, restarts it on the same store,
// and checks that every write it acknowledged is there.
func TestAcknowledgedWritesSurviveKill(t *testing.T) {
	stores := map[string]func(t *testing.T) string{
		"sqlite": func(t *testing.T) string { return filepath.Join(t.TempDir(), "people.db") },
	}
	stores["postgres"] = func(t *testing.T) string { return postgrestest.Schema(t) }
	for name, newStore := range stores {
		t.Run(name, func(t *testing.T) {
			store := newStore(t)
			p := serve(t, "--store", store)
			client := dial(t, p.addr)

			var mu sync.Mutex
			var acked []string
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ; i++ {
						name := fmt.Sprintf("w%d-%d", w, i)
						ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
						_, err := client.AddPerson(ctx, &pb.AddPersonRequest{Person: &pb.Person{Name: name, Age: int32(i % 150)}})
						cancel()
						if err != nil {
							return // the server is gone
						}
						mu.Lock()
						acked = append(acked, name)
						mu.Unlock()
					}
				}()
			}
			time.Sleep(time.Duration(200+rand.IntN(600)) * time.Millisecond)
			p.cmd.Process.Kill()
			wg.Wait()
			p.wait(t, 10*time.Second) // the next server may start only once this one is gone
			if len(acked) == 0 {
				t.Fatalf("no write was acknowledged before the kill; logs:\n%s", p.log())
			}

			p = serve(t, "--store", store)
			client = dial(t, p.addr)
			missing := 0
			for _, name := range acked {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				got, err := client.GetPerson(ctx, &pb.Name{Name: name})
				cancel()
				if err != nil || got.GetName() != name {
					missing++
					if missing <= 5 {
						t.Errorf("acknowledged %q is missing after kill -9 and restart: %v, %v", name, got, err)
					}
				}
			}
			t.Logf("%d acknowledged writes, %d missing after SIGKILL", len(acked), missing)
		})
	}
}

// TestReplicas runs three servers on one PostgreSQL database: a person added
// through one is read through the second, and the third's watch prints the
// addition within a second.
func TestReplicas(t *testing.T) {
	store := postgrestest.Schema(t)
	a, b, c := serve(t, "--store", store), serve(t, "--store", store), serve(t, "--store", store)

	watch := exec.Command(binary, "watch", "--addr", c.addr, "-o", "json")
	out, err := watch.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		watch.Process.Kill()
		watch.Wait()
	})
	lines := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	// The watch is ready once it reports a change. It only reports changes
	// made after it is in place, and the process may still be starting, so
	// make one every half second until it reports one.
	ready := false
	for i := 0; !ready && i < 20; i++ {
		run(t, "add", "--addr", a.addr, "--name", fmt.Sprintf("Ready %d", i))
		select {
		case <-lines:
			ready = true
		case <-time.After(500 * time.Millisecond):
		}
	}
	if !ready {
		t.Fatal("the watch on the third replica printed nothing")
	}
	// Drop the reports of any other additions made while it started.
	for drained := false; !drained; {
		select {
		case <-lines:
		case <-time.After(200 * time.Millisecond):
			drained = true
		}
	}

	start := time.Now()
	run(t, "add", "--addr", a.addr, "--name", "Carol", "--age", "41", "--city", "Boston")
	if got := run(t, "get", "--addr", b.addr, "-o", "json", "Carol"); got != `{"name":"Carol","age":41,"address":{"city":"Boston"},"etag":"fef8d55f26274c58"}`+"\n" {
		t.Errorf("get through the second replica = %q", got)
	}
	select {
	case line := <-lines:
		if !strings.Contains(line, `"type":"TYPE_ADDED"`) || !strings.Contains(line, `"name":"Carol"`) {
			t.Errorf("the third replica's watch printed %q, want Carol's addition", line)
		}
		if d := time.Since(start); d > time.Second {
			t.Logf("the watch saw the addition after %v", d) // reported, not asserted
		}
	case <-time.After(5 * time.Second):
		t.Errorf("the third replica's watch did not print the addition")
	}
}

// run runs the binary's client and returns its stdout, failing on a non-zero
// exit.
func run(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("routeguide %v: %v\n%s", args, err, stderr.String())
	}
	return string(out)
}

// TestOneServerPerSQLiteFile starts a second server on the file a first one
// serves: it exits with an error naming the file and the first server's
// PID. After the first is killed with SIGKILL, a new one starts.
func TestOneServerPerSQLiteFile(t *testing.T) {
	store := filepath.Join(t.TempDir(), "people.db")
	first := serve(t, "--store", store)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	began := time.Now()
	_, err := exec.CommandContext(ctx, binary, "serve", "--addr", "127.0.0.1:0", "--store", store).Output()
	took := time.Since(began)
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() == 0 {
		t.Fatalf("a second server on %s: %v, want a non-zero exit", store, err)
	}
	msg := string(ee.Stderr)
	for _, want := range []string{store, fmt.Sprintf("process %d", first.cmd.Process.Pid)} {
		if !strings.Contains(msg, want) {
			t.Errorf("the second server's stderr = %q, want it to name %q", msg, want)
		}
	}
	t.Logf("the second server exited %d after %v: %s", ee.ExitCode(), took.Round(time.Millisecond), strings.TrimSpace(msg))

	first.cmd.Process.Kill()
	first.wait(t, 10*time.Second)
	client := dial(t, serve(t, "--store", store).addr)
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := client.GetPerson(ctx, &pb.Name{Name: "Alice"}); err != nil {
		t.Errorf("GetPerson(Alice) on the server started after SIGKILL: %v", err)
	}
}

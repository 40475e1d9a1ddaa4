package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/routeguide/routeguide/routeguidepb"
)

// The hostile-client tests: clients that send much and never read, run
// against the real binary over loopback TCP, with small flow-control
// windows. Each checks that the server's resident memory stays under
// hostileRSSBound throughout, that a writer on another connection is
// answered throughout, and that the server recovers once the hostile
// clients go.

// hostileRSSBound is the resident memory a server under attack must stay
// under.
const hostileRSSBound = 400 << 20

var (
	releaseOnce sync.Once
	releaseBin  string
	releaseErr  error
)

// releaseBinary returns routeguide built as the README installs it, without
// the race detector: the detector's shadow memory multiplies the resident
// memory these tests measure, and that of a shipped server is what counts.
// The other tests run the race-enabled binary.
func releaseBinary(t *testing.T) string {
	t.Helper()
	releaseOnce.Do(func() {
		releaseBin = filepath.Join(filepath.Dir(binary), "routeguide-release")
		build := exec.Command("go", "build", "-tags", "grpcnotrace", "-o", releaseBin, ".")
		if out, err := build.CombinedOutput(); err != nil {
			releaseErr = fmt.Errorf("build routeguide: %v\n%s", err, out)
		}
	})
	if releaseErr != nil {
		t.Fatal(releaseErr)
	}
	return releaseBin
}

// skipUnlessHostile skips t unless ROUTEGUIDE_HOSTILE=1. Each hostile test
// takes some 20 s and both cores, and the resident memory it measures is
// only meaningful with the machine to itself: run beside the other
// packages' tests, it starved their deadlines. .ci/run runs them in a step
// of their own and fails if they skip.
func skipUnlessHostile(t *testing.T) {
	t.Helper()
	if os.Getenv("ROUTEGUIDE_HOSTILE") != "1" {
		t.Skip("set ROUTEGUIDE_HOSTILE=1 to run the hostile-client tests (about 20 s each, on a machine to themselves)")
	}
}

var metricsLine = regexp.MustCompile(`msg="serving metrics" addr=(\S+)`)

// hostileServer is a release routeguide serving with metrics.
type hostileServer struct {
	*process
	metrics string // the metrics address
}

func serveHostile(t *testing.T, args ...string) *hostileServer {
	t.Helper()
	p := serveBinary(t, releaseBinary(t), append(args, "--metrics-addr", "127.0.0.1:0")...)
	m := metricsLine.FindStringSubmatch(p.log())
	if m == nil {
		t.Fatalf("no metrics address logged; logs:\n%s", p.log())
	}
	return &hostileServer{process: p, metrics: m[1]}
}

// rss returns the server's resident memory, in bytes.
func (s *hostileServer) rss(t *testing.T) int64 {
	t.Helper()
	n, err := rssOf(s.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// rssOf returns the resident memory of process pid, in bytes, from
// /proc/PID/status.
func rssOf(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS line %q: %w", line, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// goroutines returns the server's goroutine count, from its metrics.
func (s *hostileServer) goroutines(t *testing.T) int {
	t.Helper()
	resp, err := http.Get("http://" + s.metrics + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	m := regexp.MustCompile(`(?m)^go_goroutines (\d+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("no go_goroutines in the metrics")
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// monitor samples the server's resident memory and runs a canary writer on
// a connection of its own until stopped.
type monitor struct {
	stop chan struct{}
	done sync.WaitGroup

	mu      sync.Mutex
	peak    int64         // the highest RSS seen; guarded by mu
	over    chan struct{} // closed when the RSS first passes the bound
	calls   int           // canary calls answered; guarded by mu
	slowest time.Duration // guarded by mu
	failed  error         // the first canary failure; guarded by mu
}

func startMonitor(t *testing.T, s *hostileServer) *monitor {
	t.Helper()
	m := &monitor{stop: make(chan struct{}), over: make(chan struct{})}
	t.Logf("before the hostile clients: RSS %d MiB", s.rss(t)>>20)
	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	client := pb.NewRouteGuideClient(conn)
	m.done.Add(2)
	go func() {
		defer m.done.Done()
		var once sync.Once
		for {
			rss, err := rssOf(s.cmd.Process.Pid)
			if err != nil {
				rss = 0 // the process ended; the canary reports it
			}
			m.mu.Lock()
			m.peak = max(m.peak, rss)
			m.mu.Unlock()
			if rss > hostileRSSBound {
				once.Do(func() { close(m.over) })
			}
			select {
			case <-m.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	go func() {
		defer m.done.Done()
		defer conn.Close()
		for i := 0; ; i++ {
			// A generous deadline: the test fails when the writer is not
			// answered, not when the loaded machine makes it slow.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			start := time.Now()
			_, err := client.AddPerson(ctx, &pb.AddPersonRequest{Person: &pb.Person{Name: fmt.Sprintf("canary %d", i)}})
			took := time.Since(start)
			cancel()
			m.mu.Lock()
			if err != nil && m.failed == nil {
				m.failed = fmt.Errorf("canary AddPerson %d after %v: %w", i, took, err)
			}
			m.calls++
			m.slowest = max(m.slowest, took)
			m.mu.Unlock()
			select {
			case <-m.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return m
}

// finish stops the monitor and fails t if the canary failed or the RSS
// passed the bound.
func (m *monitor) finish(t *testing.T, what string) {
	t.Helper()
	close(m.stop)
	m.done.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	t.Logf("%s: peak RSS %d MiB (bound %d MiB); canary: %d calls, slowest %v", what, m.peak>>20, hostileRSSBound>>20, m.calls, m.slowest)
	if m.failed != nil {
		t.Errorf("%s: %v", what, m.failed)
	}
	if m.peak > hostileRSSBound {
		t.Errorf("%s: peak RSS %d MiB, want under %d MiB", what, m.peak>>20, hostileRSSBound>>20)
	}
}

// hostileConn returns a connection with the smallest flow-control windows
// grpc-go allows, which stop reading once 64 KiB wait unread.
func hostileConn(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(8<<20)))
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// largePerson returns a person at the domain's limits, some 10 KiB.
func largePerson(name string) *pb.Person {
	p := &pb.Person{Name: name, Age: 150, Gender: pb.Person_FEMALE,
		Address: &pb.Person_Address{Street: strings.Repeat("街", 200), City: strings.Repeat("市", 200)}}
	for i := range 32 {
		p.Hobbies = append(p.Hobbies, fmt.Sprintf("%02d", i)+strings.Repeat("😀", 62))
	}
	return p
}

// importLarge adds n large people named large00000, large00001, …, an
// import of 200 at a time, so that the server holds little of them after.
func importLarge(t *testing.T, addr string, n int) {
	t.Helper()
	conn := hostileConn(t, addr)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for start := 0; start < n; start += 200 {
		stream, err := pb.NewRouteGuideClient(conn).ImportPeople(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var batch []*pb.Person
		for i := start; i < min(start+200, n); i++ {
			batch = append(batch, largePerson(fmt.Sprintf("large%05d", i)))
		}
		if err := stream.Send(&pb.ImportPeopleRequest{People: batch}); err != nil {
			t.Fatal(err)
		}
		if _, err := stream.CloseAndRecv(); err != nil {
			t.Fatalf("import: %v", err)
		}
	}
}

// checkRecovered waits for the server to give back what the hostile clients
// made it hold, then checks that it answers.
func checkRecovered(t *testing.T, s *hostileServer, goroutinesBefore int) {
	t.Helper()
	var n int
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if n = s.goroutines(t); n <= goroutinesBefore+5 {
			break
		}
	}
	t.Logf("after the hostile clients left: %d goroutines (%d before), RSS %d MiB", n, goroutinesBefore, s.rss(t)>>20)
	if n > goroutinesBefore+5 {
		t.Errorf("server still runs %d goroutines after the hostile clients left, %d before", n, goroutinesBefore)
	}
	if rss := s.rss(t); rss > hostileRSSBound {
		t.Errorf("server RSS %d MiB after the hostile clients left, want under %d MiB", rss>>20, hostileRSSBound>>20)
	}
	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client := pb.NewRouteGuideClient(conn)
	if p, err := client.GetPerson(ctx, &pb.Name{Name: "Alice"}); err != nil || p.GetName() != "Alice" {
		t.Errorf("GetPerson after the hostile clients left: %v, %v", p, err)
	}
	w, err := client.WatchPeople(ctx, &pb.WatchPeopleRequest{})
	if err == nil {
		_, err = w.Header()
	}
	if err != nil {
		t.Errorf("WatchPeople after the hostile clients left: %v", err)
	}
}

// TestHostileGetPeople: twelve GetPeople streams on one connection that
// never read their answers, each sending known names, enough for the
// answers to fill the flow-control windows, and then 4 MiB names.
func TestHostileGetPeople(t *testing.T) {
	skipUnlessHostile(t)
	s := serveHostile(t, "--store", "memory")
	importLarge(t, s.addr, 1)
	before := s.goroutines(t)
	m := startMonitor(t, s)

	conn := hostileConn(t, s.addr)
	ctx, cancel := context.WithCancel(context.Background())
	huge := strings.Repeat("x", 4<<20-64)
	// The answers to a few dozen large people fill the flow-control
	// windows; the names sent after them wait in the server's queue.
	const streams, known, hugeNames = 12, 32, 16
	var sent sync.WaitGroup
	for range streams {
		stream, err := pb.NewRouteGuideClient(conn).GetPeople(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sent.Add(1)
		go func() {
			defer sent.Done()
			for range known {
				if stream.Send(&pb.Name{Name: "large00000"}) != nil {
					return
				}
			}
			for range hugeNames {
				if stream.Send(&pb.Name{Name: huge}) != nil {
					return
				}
			}
		}()
	}
	allSent := make(chan struct{})
	go func() { sent.Wait(); close(allSent) }()
	select {
	case <-allSent:
		// The server took every name without holding them: give it a
		// moment with the streams still open.
		time.Sleep(time.Second)
	case <-m.over:
	case <-time.After(10 * time.Second):
		// Senders wait on flow control: the server holds what it read.
	}
	m.finish(t, "12 GetPeople streams that do not read")
	cancel()
	conn.Close()
	sent.Wait()
	checkRecovered(t, s, before)
}

// TestHostileWatchers: 500 watches with send_current over 2,000 large
// people, on ten connections, that never read. The people are in SQLite,
// whose pages are fresh copies: the memory store's share their text.
func TestHostileWatchers(t *testing.T) {
	skipUnlessHostile(t)
	s := serveHostile(t)
	importLarge(t, s.addr, 2000)
	before := s.goroutines(t)
	m := startMonitor(t, s)

	ctx, cancel := context.WithCancel(context.Background())
	const conns, perConn = 10, 50
	var clients []*grpc.ClientConn
	for range conns {
		conn := hostileConn(t, s.addr)
		clients = append(clients, conn)
		for range perConn {
			w, err := pb.NewRouteGuideClient(conn).WatchPeople(ctx, &pb.WatchPeopleRequest{SendCurrent: true})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Header(); err != nil {
				t.Fatalf("watch: %v", err)
			}
		}
	}
	// Every watch is open; give the server time to fill what it holds.
	select {
	case <-m.over:
	case <-time.After(5 * time.Second):
	}
	m.finish(t, "500 watches that do not read")
	cancel()
	for _, c := range clients {
		c.Close()
	}
	checkRecovered(t, s, before)
}

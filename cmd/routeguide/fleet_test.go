package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"google.golang.org/grpc/resolver/dns"

	"github.com/routeguide/routeguide/client"
	"github.com/routeguide/routeguide/internal/postgres/postgrestest"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

// The fleet tests run replicas of the built binary on one PostgreSQL
// schema, each on a loopback address of its own (127.0.0.1, 127.0.0.2,
// ...), behind one comma-separated target, and load them through the
// client's balancing, health checking and read retries while replicas are
// killed, drained and started.

// replica is one `routeguide serve` of a fleet, with its metrics address.
type replica struct {
	*process
	metrics string
}

// startReplica starts a replica on ip, port 0, on store, with its metrics
// on ip too (their address found by hostile_test.go's metricsLine).
func startReplica(t *testing.T, store, ip string, args ...string) *replica {
	t.Helper()
	p := serve(t, append([]string{"--store", store, "--addr", ip + ":0", "--metrics-addr", ip + ":0"}, args...)...)
	m := metricsLine.FindStringSubmatch(p.log())
	if m == nil {
		t.Fatalf("the replica on %s logged no metrics address; logs:\n%s", ip, p.log())
	}
	return &replica{process: p, metrics: m[1]}
}

// fleet starts a replica on each of ips and returns them with the target
// that lists them all.
func fleet(t *testing.T, store string, ips ...string) ([]*replica, string) {
	t.Helper()
	var rs []*replica
	var addrs []string
	for _, ip := range ips {
		r := startReplica(t, store, ip)
		rs = append(rs, r)
		addrs = append(addrs, r.addr)
	}
	return rs, strings.Join(addrs, ",")
}

// metric returns the sum of the samples of the metric name on r whose
// labels contain label ("" for any), or fails t.
func (r *replica) metric(t *testing.T, name, label string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + r.metrics + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", r.addr, err)
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") || !strings.Contains(line, label) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("scrape %s: %v", r.addr, err)
	}
	return sum
}

// gets returns the GetPerson calls r has answered.
func (r *replica) gets(t *testing.T) float64 {
	return r.metric(t, "grpc_server_handled_total", `grpc_method="GetPerson"`)
}

// benchRun is what `routeguide bench -o json` reported.
type benchRun struct {
	Calls  uint64
	Errors map[string]uint64
	err    error
	out    string
}

// startBench runs `routeguide bench` on target for d with workload, and
// returns where its report will arrive.
func startBench(target, workload string, d time.Duration) <-chan benchRun {
	done := make(chan benchRun, 1)
	go func() {
		cmd := exec.Command(binary, "bench", "--addr", target, "--workload", workload,
			"--duration", d.String(), "--warmup", "0s", "-c", "4", "--conns", "2", "-o", "json")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		run := benchRun{err: err, out: string(out) + stderr.String()}
		if err == nil {
			run.err = json.Unmarshal(out, &run)
		}
		done <- run
	}()
	return done
}

// check fails t unless the run made calls and none failed.
func (b benchRun) check(t *testing.T, what string) {
	t.Helper()
	if b.err != nil {
		t.Fatalf("%s: bench: %v\n%s", what, b.err, b.out)
	}
	var failed uint64
	for _, n := range b.Errors {
		failed += n
	}
	if b.Calls == 0 || failed > 0 {
		t.Errorf("%s: %d calls, errors %v; want calls and no error", what, b.Calls, b.Errors)
	}
	t.Logf("%s: %d calls, errors %v", what, b.Calls, b.Errors)
}

// writer adds people through c until stopped, and keeps the names the
// server acknowledged. A write on a replica that is killed is retried
// with its request id, but may still fail once the retries run out; only
// acknowledged ones must be watched.
type writer struct {
	mu     sync.Mutex
	acked  []string // guarded by mu
	failed int      // guarded by mu
	first  error    // the first failure; guarded by mu
	stop   chan struct{}
	done   chan struct{}
}

func startWriter(c *client.Client, prefix string) *writer {
	w := &writer{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			name := fmt.Sprintf("%s %d", prefix, i)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := c.Add(ctx, &pb.Person{Name: name})
			cancel()
			w.mu.Lock()
			if err == nil {
				w.acked = append(w.acked, name)
			} else {
				w.failed++
				w.first = cmp.Or(w.first, err)
			}
			w.mu.Unlock()
		}
	}()
	return w
}

// finish stops w and returns the names acknowledged and the writes failed,
// logging the first failure.
func (w *writer) finish(t *testing.T) ([]string, int) {
	close(w.stop)
	<-w.done
	if w.first != nil {
		t.Logf("the first write that failed: %v", w.first)
	}
	return w.acked, w.failed
}

// TestFleetKill loads three replicas with reads through one target, and a
// watch through the same target, and kills the replica the watch is on
// with SIGKILL mid-run: no read fails, every replica served a share before
// the kill, and the watch prints every acknowledged change once, in order.
func TestFleetKill(t *testing.T) {
	store := postgrestest.Schema(t)
	rs, target := fleet(t, store, "127.0.0.1", "127.0.0.2", "127.0.0.3")
	c, err := client.New(target)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	add := func(name string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := c.Add(ctx, &pb.Person{Name: name})
		return err
	}
	w := startWatch(t, target)
	w.ready(t, add)

	var before []float64
	for _, r := range rs {
		before = append(before, r.gets(t))
	}
	load := startBench(target, "get", 5*time.Second)
	writes := startWriter(c, "Writer")
	time.Sleep(1500 * time.Millisecond)

	// Every replica serves a share.
	var shares []float64
	total := 0.0
	for i, r := range rs {
		shares = append(shares, r.gets(t)-before[i])
		total += shares[i]
	}
	for i, n := range shares {
		if n < total/3/2 {
			t.Errorf("replica %s served %.0f of %.0f GetPerson calls, want at least half its third", rs[i].addr, n, total)
		}
	}
	t.Logf("GetPerson calls per replica in the first 1.5s: %v", shares)

	victim := watchedReplica(t, rs)
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed %s, which had the watch", victim.addr)

	run := <-load
	acked, failed := writes.finish(t)
	run.check(t, "GetPerson over three replicas, one killed")
	t.Logf("%d writes acknowledged, %d failed", len(acked), failed)
	// Changes made once the replica is gone, which the watch can only
	// print from another replica.
	for i := range 5 {
		name := fmt.Sprintf("After %d", i)
		if err := add(name); err != nil {
			t.Fatalf("add %s after the kill: %v", name, err)
		}
		acked = append(acked, name)
	}
	w.expect(t, acked, 15*time.Second)
	if !strings.Contains(w.stderr.String(), "resuming after revision") {
		t.Errorf("the watch's stderr = %q, want a note that it reconnected", w.stderr.String())
	}
}

// TestFleetDrain loads three replicas with reads and writes through one
// target, with a watch through it too, and stops the replica the watch is
// on with SIGTERM mid-run: no call of any kind fails, and the watch prints
// every change once, in order.
func TestFleetDrain(t *testing.T) {
	store := postgrestest.Schema(t)
	rs, target := fleet(t, store, "127.0.0.1", "127.0.0.2", "127.0.0.3")
	c, err := client.New(target)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	add := func(name string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := c.Add(ctx, &pb.Person{Name: name})
		return err
	}
	w := startWatch(t, target)
	w.ready(t, add)

	reads := startBench(target, "get", 4*time.Second)
	writes := startWriter(c, "Writer")
	time.Sleep(1500 * time.Millisecond)
	victim := watchedReplica(t, rs)
	if err := victim.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := victim.wait(t, 15*time.Second); code != 0 {
		t.Errorf("the drained replica exited %d, want 0; logs:\n%s", code, victim.log())
	}
	t.Logf("drained %s, which had the watch", victim.addr)
	(<-reads).check(t, "GetPerson over three replicas, one drained")
	acked, failed := writes.finish(t)
	if failed > 0 {
		t.Errorf("AddPerson over three replicas, one drained: %d acknowledged, %d failed; want none failed", len(acked), failed)
	}
	t.Logf("AddPerson over three replicas, one drained: %d acknowledged, %d failed", len(acked), failed)
	for i := range 5 {
		name := fmt.Sprintf("After %d", i)
		if err := add(name); err != nil {
			t.Fatalf("add %s after the drain: %v", name, err)
		}
		acked = append(acked, name)
	}
	w.expect(t, acked, 15*time.Second)
}

// watchedReplica returns the replica of rs that has a watch open.
func watchedReplica(t *testing.T, rs []*replica) *replica {
	t.Helper()
	for _, r := range rs {
		if r.metric(t, "routeguide_watchers", "") >= 1 {
			return r
		}
	}
	t.Fatal("no replica has the watch open")
	return nil
}

// dnsServer answers A queries for one name with a list of addresses the
// test changes, over UDP on loopback: a fleet whose replicas a dns:///
// target finds, as a Kubernetes headless Service's would be. Every other
// query is answered with no record.
type dnsServer struct {
	conn net.PacketConn
	name dnsmessage.Name

	mu  sync.Mutex
	ips []netip.Addr // guarded by mu
}

func startDNS(t *testing.T, name string) *dnsServer {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &dnsServer{conn: conn, name: dnsmessage.MustNewName(name + ".")}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return // closed
			}
			if resp, err := s.answer(buf[:n]); err == nil {
				conn.WriteTo(resp, from)
			}
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return s
}

// set makes the name resolve to ips.
func (s *dnsServer) set(ips ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ips = nil
	for _, ip := range ips {
		s.ips = append(s.ips, netip.MustParseAddr(ip))
	}
}

func (s *dnsServer) answer(query []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired})
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	if q.Type == dnsmessage.TypeA && strings.EqualFold(q.Name.String(), s.name.String()) {
		s.mu.Lock()
		ips := slices.Clone(s.ips)
		s.mu.Unlock()
		for _, ip := range ips {
			rh := dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 0}
			if err := b.AResource(rh, dnsmessage.AResource{A: ip.As4()}); err != nil {
				return nil, err
			}
		}
	}
	return b.Finish()
}

func init() {
	// grpc-go resolves a dns:/// target again at most every 30s, which a
	// replica's connection age, 5 minutes by default, always exceeds; the
	// test ages connections within seconds, so it lets the client
	// re-resolve as often.
	dns.SetMinResolutionInterval(100 * time.Millisecond)
}

// TestFleetNewReplica reads through a dns:/// target from three replicas
// with a short connection age, then starts a fourth and adds it to the
// name: it serves calls within its connection age plus a few seconds, and
// no read fails.
func TestFleetNewReplica(t *testing.T) {
	const age = 2 * time.Second
	store := postgrestest.Schema(t)
	// One port on every address, as a headless Service's pods have.
	first := startReplica(t, store, "127.0.0.1", "--max-connection-age", age.String())
	_, port, _ := net.SplitHostPort(first.addr)
	rs := []*replica{first}
	for _, ip := range []string{"127.0.0.2", "127.0.0.3"} {
		rs = append(rs, startReplica(t, store, ip, "--addr", ip+":"+port, "--max-connection-age", age.String()))
	}
	ns := startDNS(t, "fleet.routeguide.test")
	ns.set("127.0.0.1", "127.0.0.2", "127.0.0.3")
	c, err := client.New("dns://" + ns.conn.LocalAddr().String() + "/fleet.routeguide.test:" + port)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// Readers, until stopped.
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var mu sync.Mutex
	var calls, failed int
	var firstErr error
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := c.GetPerson(callCtx, "Alice")
				cancel()
				if ctx.Err() != nil {
					return
				}
				mu.Lock()
				calls++
				if err != nil {
					failed++
					firstErr = cmp.Or(firstErr, err)
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(time.Second)

	fourth := startReplica(t, store, "127.0.0.4", "--addr", "127.0.0.4:"+port, "--max-connection-age", age.String())
	ns.set("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")
	added := time.Now()
	limit := age*11/10 + 5*time.Second
	for fourth.gets(t) == 0 {
		if time.Since(added) > limit {
			t.Fatalf("the fourth replica served no call %v after it joined the name (connection age %v)", limit, age)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the fourth replica served its first call %v after it joined the name (connection age %v)", time.Since(added).Round(10*time.Millisecond), age)
	time.Sleep(time.Second)
	stop()
	wg.Wait()
	for _, r := range append(rs, fourth) {
		if n := r.gets(t); n == 0 {
			t.Errorf("replica %s served no call", r.addr)
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d reads failed, such as %v", failed, calls, firstErr)
	}
	t.Logf("%d reads, %d failed", calls, failed)
}

package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/routeguide/routeguide/routeguidepb"
)

// server is a `routeguide serve` process that startServer started: lines
// carries its log lines, started is when the process was started.
type server struct {
	cmd     *exec.Cmd
	addr    string
	metrics string
	started time.Time
	lines   chan string
	loaded  time.Duration // when the read cache's "loaded" line came, if it came during startServer
}

var (
	servingRE = regexp.MustCompile(`msg="serving RouteGuide" addr=(\S+)`)
	metricsRE = regexp.MustCompile(`msg="serving metrics" addr=(\S+)`)
)

// startServer runs bin serve on store with metrics and profiles on
// loopback, and extra flags, and returns once the server has logged both
// addresses.
func startServer(bin, store string, extra ...string) (*server, error) {
	// --http-addr too: its default, localhost:8080, can serve only one of
	// the servers a run starts at once.
	args := []string{"serve", "--addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--store", store, "--metrics-addr", "127.0.0.1:0", "--pprof"}
	cmd := exec.Command(bin, append(args, extra...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, lines: make(chan string, 1024)}
	s.started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			select {
			case s.lines <- sc.Text():
			default: // nobody is reading: drop it
			}
		}
		close(s.lines)
	}()
	deadline := time.After(10 * time.Minute)
	for s.addr == "" || s.metrics == "" {
		select {
		case line, ok := <-s.lines:
			if !ok {
				return nil, fmt.Errorf("%s serve --store %s ended before serving", bin, store)
			}
			if m := servingRE.FindStringSubmatch(line); m != nil {
				s.addr = m[1]
			}
			if m := metricsRE.FindStringSubmatch(line); m != nil {
				s.metrics = m[1]
			}
			if cacheReady(line) {
				s.loaded = time.Since(s.started)
			}
		case <-deadline:
			s.stop()
			return nil, fmt.Errorf("%s serve --store %s did not start within 10 minutes", bin, store)
		}
	}
	return s, nil
}

// cacheReady reports whether line says the read cache answers: loaded, or
// started when bounded (--cache-max-bytes), which loads nothing.
func cacheReady(line string) bool {
	return strings.Contains(line, `msg="read cache loaded"`) || strings.Contains(line, `msg="read cache started, bounded"`)
}

// waitLoaded waits for the read cache's "loaded" line and returns how long
// after the process started it came.
func (s *server) waitLoaded(limit time.Duration) (time.Duration, error) {
	if s.loaded > 0 {
		return s.loaded, nil
	}
	deadline := time.After(limit)
	for {
		select {
		case line, ok := <-s.lines:
			if !ok {
				return 0, fmt.Errorf("the server ended before its read cache loaded")
			}
			if cacheReady(line) {
				return time.Since(s.started), nil
			}
		case <-deadline:
			return 0, fmt.Errorf("the read cache did not load within %v", limit)
		}
	}
}

func (s *server) stop() {
	s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

// rss returns the process's resident memory in bytes.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// cpuTime returns the CPU time the process has used, user and system: on a
// busy machine, what a cold start costs even when other processes delay it.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command may hold spaces; the fields after it are fixed.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad times %q %q", pid, f[11], f[12])
	}
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticks, nil
}

// liveHeap forces a collection in the server (through its heap profile)
// and returns the heap it then holds, from its metrics.
func liveHeap(metrics string) (int64, error) {
	get := func(path string) (string, error) {
		resp, err := http.Get("http://" + metrics + path)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		return string(b), err
	}
	best := int64(-1)
	for range 3 {
		if _, err := get("/debug/pprof/heap?gc=1"); err != nil {
			return 0, err
		}
		body, err := get("/metrics")
		if err != nil {
			return 0, err
		}
		for _, line := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(line, "go_memstats_heap_alloc_bytes "); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					return 0, err
				}
				if best < 0 || int64(f) < best {
					best = int64(f)
				}
			}
		}
	}
	if best < 0 {
		return 0, fmt.Errorf("no go_memstats_heap_alloc_bytes in the metrics")
	}
	return best, nil
}

// serveMode starts a server on store, and prints how long its read cache
// took to load from the process's start, the live heap after a forced
// collection, and its resident memory after serving GetPerson for a while.
func serveMode(bin, store string, n int, d time.Duration) {
	s, err := startServer(bin, store)
	if err != nil {
		fail(err)
	}
	defer s.stop()
	cold, err := s.waitLoaded(5 * time.Minute)
	if err != nil {
		fail(err)
	}
	coldCPU, err := cpuTime(s.cmd.Process.Pid)
	if err != nil {
		fail(err)
	}
	heap, err := liveHeap(s.metrics)
	if err != nil {
		fail(err)
	}
	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fail(err)
	}
	defer conn.Close()
	get([]pb.RouteGuideClient{pb.NewRouteGuideClient(conn)}, n, d, 32, io.Discard)
	r, err := rss(s.cmd.Process.Pid)
	if err != nil {
		fail(err)
	}
	fmt.Printf("cold_start_s %.3f\ncold_start_cpu_s %.3f\nlive_heap_bytes %d\nrss_bytes %d\n", cold.Seconds(), coldCPU.Seconds(), heap, r)
}

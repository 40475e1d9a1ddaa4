package cli

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/routeguide/routeguide/internal/syncbuf"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var addrLine = regexp.MustCompile(`msg="serving RouteGuide" addr=(\S+)`)

// served is a `routeguide serve` running in process.
type served struct {
	addr     string
	logs     *syncbuf.Buffer
	stopOnce sync.Once
	cancel   context.CancelFunc
	exited   chan int
}

// runServe runs `routeguide serve` in process with args and getenv, and
// returns once it has logged its address. stop (also run at cleanup) stops
// it and checks that it exited 0 after a graceful stop.
func runServe(t *testing.T, getenv func(string) string, args ...string) *served {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &served{logs: &syncbuf.Buffer{}, cancel: cancel, exited: make(chan int, 1)}
	go func() {
		s.exited <- Run(ctx, withoutHTTP(append([]string{"serve"}, args...)), getenv, strings.NewReader(""), &bytes.Buffer{}, s.logs)
	}()
	for deadline := time.Now().Add(10 * time.Second); s.addr == ""; {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("server did not log its address; logs:\n%s", s.logs)
		}
		select {
		case code := <-s.exited:
			cancel()
			t.Fatalf("serve exited early with %d; logs:\n%s", code, s.logs)
		case <-time.After(10 * time.Millisecond):
		}
		if m := addrLine.FindStringSubmatch(s.logs.String()); m != nil {
			s.addr = m[1]
		}
	}
	t.Cleanup(func() { s.stop(t) })
	return s
}

// stop stops the server, once, and checks it stopped gracefully with exit 0.
func (s *served) stop(t *testing.T) {
	s.stopOnce.Do(func() {
		s.cancel()
		select {
		case code := <-s.exited:
			if code != exitOK {
				t.Errorf("serve exited with %d; logs:\n%s", code, s.logs)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("serve did not stop; logs:\n%s", s.logs)
		}
		if !strings.Contains(s.logs.String(), `msg="stopped RouteGuide" graceful=true`) {
			t.Errorf("no graceful stop line in the logs:\n%s", s.logs)
		}
	})
}

// startServer runs `routeguide serve` in process on a free loopback port with
// a store of its own, waits until its health check answers SERVING, and
// returns its address.
func startServer(t *testing.T, extraArgs ...string) string {
	t.Helper()
	s := runServe(t, noEnv, append([]string{"--addr", "127.0.0.1:0", "--store", filepath.Join(t.TempDir(), "people.db")}, extraArgs...)...)
	if !slices.Contains(extraArgs, "--tls-cert") { // TLS servers are checked by their tests' own calls
		waitServing(t, s.addr)
	}
	return s.addr
}

// waitServing polls the health service at addr until it answers SERVING.
func waitServing(t *testing.T, addr string) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "RouteGuide"})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("health at %s: %v, %v", addr, resp, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func noEnv(string) string { return "" }

// result is what one command run printed and returned.
type result struct {
	stdout, stderr string
	code           int
}

// golden renders r for a golden file, with addr replaced by ADDR.
func (r result) golden(addr string) string {
	s := r.stdout + "--- stderr\n" + r.stderr + "--- exit " + strconv.Itoa(r.code) + "\n"
	if addr != "" {
		s = strings.ReplaceAll(s, addr, "ADDR")
	}
	return s
}

func runCLI(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	getenv := func(k string) string { return env[k] }
	code := Run(context.Background(), withoutHTTP(args), getenv, strings.NewReader(stdin), &stdout, &stderr)
	return result{stdout.String(), stderr.String(), code}
}

// withoutHTTP turns the HTTP listener off in a serve command that does not
// name one, so that tests running at once do not all bind its default port.
func withoutHTTP(args []string) []string {
	if len(args) == 0 || args[0] != "serve" {
		return args
	}
	for _, a := range args {
		if strings.HasPrefix(a, "--http-addr") {
			return args
		}
	}
	return append([]string{"serve", "--http-addr=off"}, args[1:]...)
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run go test -update to accept):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// silentListener accepts connections and never answers, so calls to it run
// into their deadline.
func silentListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestCommands(t *testing.T) {
	addr := startServer(t)
	silent := silentListener(t)
	closed := closedAddr(t)
	withAddr := map[string]string{"ROUTEGUIDE_ADDR": addr}
	tests := []struct {
		name  string
		env   map[string]string
		stdin string
		args  []string
	}{
		{name: "demo", args: []string{"demo", "--addr", addr}},
		{name: "get", args: []string{"get", "--addr", addr, "Alice", "Bob"}},
		{name: "get_json", args: []string{"get", "--addr", addr, "-o", "json", "Bob"}},
		{name: "get_missing", args: []string{"get", "--addr", addr, "Alice", "Charlie", "Bob"}},
		{name: "get_addr_from_env", env: withAddr, args: []string{"get", "Bob"}},
		{name: "get_flag_beats_env", env: map[string]string{"ROUTEGUIDE_ADDR": "127.0.0.1:1"}, args: []string{"get", "--addr", addr, "Bob"}},
		{name: "people_args", args: []string{"people", "--addr", addr, "Bob", "Charlie", "Alice", "Bob"}},
		{name: "people_stdin_json", env: withAddr, stdin: "Alice\n\n  Bob  \nCharlie\n", args: []string{"people", "-o", "json"}},
		{name: "people_none_found", env: withAddr, stdin: "Charlie\nDana\n", args: []string{"people"}},
		{name: "unreachable", args: []string{"get", "--addr", closed, "Alice"}},
		{name: "deadline", args: []string{"get", "--addr", silent, "--timeout", "200ms", "Alice"}},
		{name: "demo_deadline", args: []string{"demo", "--addr", silent, "--timeout", "200ms"}},
		{name: "watch_deadline", args: []string{"watch", "--addr", addr, "--current", "--timeout", "1s"}},
		{name: "watch_deadline_json", args: []string{"watch", "--addr", addr, "--current", "--timeout", "1s", "-o", "json"}},
		{name: "get_no_names", args: []string{"get"}},
		{name: "demo_extra_args", args: []string{"demo", "Alice"}},
		{name: "bad_output", args: []string{"get", "-o", "yaml", "Alice"}},
		{name: "bad_timeout_env", env: map[string]string{"ROUTEGUIDE_TIMEOUT": "soon"}, args: []string{"get", "Alice"}},
		{name: "unknown_flag", args: []string{"get", "--colour", "Alice"}},
		{name: "unknown_command", args: []string{"fetch", "Alice"}},
		{name: "help", args: []string{"--help"}},
		{name: "addr_without_port", args: []string{"get", "--addr", "localhost", "Alice"}},
		{name: "serve_addr_without_port", args: []string{"serve", "--addr", "localhost"}},
		{name: "serve_zero_shutdown_timeout", args: []string{"serve", "--shutdown-timeout", "0s"}},
		{name: "serve_zero_connection_age", args: []string{"serve", "--max-connection-age", "0s"}},
		{name: "serve_pprof_without_metrics", args: []string{"serve", "--pprof"}},
		{name: "serve_bad_cache_max_bytes", args: []string{"serve", "--cache-max-bytes", "lots"}},
		{name: "serve_bad_cache_max_bytes_env", env: map[string]string{"ROUTEGUIDE_CACHE_MAX_BYTES": "-1GiB"}, args: []string{"serve"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runCLI(t, tt.env, tt.stdin, tt.args...)
			out := got.golden(addr)
			out = strings.ReplaceAll(out, silent, "SILENT")
			out = strings.ReplaceAll(out, closed, "CLOSED")
			checkGolden(t, tt.name, out)
		})
	}
}

// TestCompletion checks that the completion command prints a script for
// each shell it offers.
func TestCompletion(t *testing.T) {
	for shell, want := range map[string]string{
		"bash":       "__start_routeguide",
		"zsh":        "#compdef routeguide",
		"fish":       "complete -c routeguide",
		"powershell": "Register-ArgumentCompleter",
	} {
		t.Run(shell, func(t *testing.T) {
			got := runCLI(t, nil, "", "completion", shell)
			if got.code != exitOK || !strings.Contains(got.stdout, want) {
				t.Errorf("completion %s: exit %d, stdout without %q:\n%.300s\nstderr: %s", shell, got.code, want, got.stdout, got.stderr)
			}
		})
	}
}

// TestPeopleStreamsLive checks that `people` prints each person before the
// next name has even been written to its stdin.
func TestPeopleStreamsLive(t *testing.T) {
	addr := startServer(t)
	stdinR, stdinW := io.Pipe()
	stdout := &syncbuf.Buffer{}
	done := make(chan int, 1)
	go func() {
		done <- Run(context.Background(), []string{"people", "--addr", addr}, noEnv, stdinR, stdout, &syncbuf.Buffer{})
	}()
	for i, name := range []string{"Alice", "Bob"} {
		if _, err := stdinW.Write([]byte(name + "\n")); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for strings.Count(stdout.String(), "\n") < i+1 {
			if time.Now().After(deadline) {
				t.Fatalf("no answer to %q while stdin stays open; stdout so far:\n%s", name, stdout)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	stdinW.Close()
	if code := <-done; code != exitOK {
		t.Errorf("exit code %d, want 0", code)
	}
	want := "Alice  age 30  female  hobbies: reading, swimming  address: 123 Main St, New York\n" +
		"Bob  age 25  male  hobbies: gaming, cycling  address: 456 Elm St, Los Angeles\n"
	if got := stdout.String(); got != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", got, want)
	}
}

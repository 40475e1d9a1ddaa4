// Package browser drives RouteGuide's web page in headless Chromium against
// the built routeguide binary: page.test.mjs, on playwright-core, opens the
// page and works it as a person would, while this test runs the server,
// stops and starts it, and runs routeguide commands in other processes
// when the script asks.
//
// The tests run when ROUTEGUIDE_BROWSER=1, and then fail, not skip, when
// Node.js or Chromium cannot run them. They need Node.js 20 or later with
// npm, and Debian's chromium at /usr/bin/chromium (playwright's own browser
// download is not used). Screenshots of every step go to out/ beside this
// file, or to ROUTEGUIDE_BROWSER_OUT.
package browser

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/routeguide/routeguide/internal/syncbuf"
)

// chromium is Debian's build; the tests pass its path to playwright-core.
const chromium = "/usr/bin/chromium"

// binary is the routeguide binary built for these tests.
var binary string

func TestMain(m *testing.M) {
	if os.Getenv("ROUTEGUIDE_BROWSER") != "1" {
		// Nothing to build; each test skips and says why.
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "routeguide-browser")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "routeguide")
	// The binary is built with the race detector, which by default waits a
	// second at exit; a race still fails the run with exit code 66.
	os.Setenv("GORACE", "atexit_sleep_ms=0 halt_on_error=1")
	build := exec.Command("go", "build", "-race", "-tags", "grpcnotrace", "-o", binary, "../../cmd/routeguide")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		os.RemoveAll(dir)
		panic("build routeguide: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

// requireNode skips unless browser tests were asked for, and fails when
// they were but Node.js 20 or later is missing.
func requireNode(t *testing.T) string {
	t.Helper()
	if os.Getenv("ROUTEGUIDE_BROWSER") != "1" {
		t.Skip("set ROUTEGUIDE_BROWSER=1 to run the browser tests (needs Node.js 20 or later, npm, and Debian's chromium)")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("ROUTEGUIDE_BROWSER=1 but node is not on PATH (install Node.js 20 or later): %v", err)
	}
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", node, err)
	}
	version := strings.TrimSpace(string(out))
	major, err := strconv.Atoi(strings.TrimPrefix(strings.SplitN(version, ".", 2)[0], "v"))
	if err != nil || major < 20 {
		t.Fatalf("ROUTEGUIDE_BROWSER=1 but node is %s; the script needs Node.js 20 or later", version)
	}
	return node
}

// requireBrowser is requireNode, and fails too when the script's packages
// or Chromium are missing. It runs npm ci when node_modules does not hold
// what package-lock.json pins.
func requireBrowser(t *testing.T) string {
	t.Helper()
	node := requireNode(t)
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("ROUTEGUIDE_BROWSER=1 but Chromium is missing (apt-get install chromium): %v", err)
	}
	if !installed(t) {
		npm, err := exec.LookPath("npm")
		if err != nil {
			t.Fatalf("ROUTEGUIDE_BROWSER=1 but node_modules is missing or out of date and npm is not on PATH: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		// npm ci installs exactly what package-lock.json records, each
		// package checked against its integrity hash.
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci: %v\n%s", err, out)
		}
	}
	return node
}

// lockedPackages is the part of package-lock.json, and of the copy npm keeps
// in node_modules/.package-lock.json, that says what is installed.
type lockedPackages struct {
	Packages map[string]struct {
		Version   string `json:"version"`
		Integrity string `json:"integrity"`
	} `json:"packages"`
}

// installed reports whether node_modules holds exactly the packages
// package-lock.json pins.
func installed(t *testing.T) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("node_modules", ".package-lock.json"))
	if err != nil {
		return false
	}
	var have, want lockedPackages
	if json.Unmarshal(b, &have) != nil {
		return false
	}
	readJSON(t, "package-lock.json", &want)
	delete(want.Packages, "")
	if len(have.Packages) != len(want.Packages) {
		return false
	}
	for name, p := range want.Packages {
		if have.Packages[name] != p {
			return false
		}
	}
	return true
}

// serverReady is the line `routeguide serve` logs once it listens, with
// the gRPC and HTTP addresses it took.
var serverReady = regexp.MustCompile(`msg="serving RouteGuide" addr=(\S+) .*\bhttp_addr=(\S+)`)

// server is `routeguide serve` on one SQLite file, which the test stops and
// starts again on the same ports.
type server struct {
	t      *testing.T
	store  string
	tokens string // a --tokens file, or ""
	grpc   string // host:port; 127.0.0.1:0 until the first start
	http   string

	mu   sync.Mutex // guards proc
	proc *process
}

type process struct {
	cmd  *exec.Cmd
	logs syncbuf.Buffer
	done chan struct{} // closed when the log pipe ends
}

func (s *server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return fmt.Errorf("the server is already running")
	}
	args := []string{"serve", "--store", s.store, "--addr", s.grpc, "--http-addr", s.http}
	if s.tokens != "" {
		args = append(args, "--tokens", s.tokens)
	}
	cmd := exec.Command(binary, args...)
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		w.Close()
		r.Close()
		return fmt.Errorf("start routeguide serve: %w", err)
	}
	w.Close()
	p := &process{cmd: cmd, done: make(chan struct{})}
	ready := make(chan []string, 1)
	go func() {
		defer close(p.done)
		defer r.Close()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			p.logs.Write([]byte(sc.Text() + "\n"))
			if m := serverReady.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case ready <- m[1:]:
				default:
				}
			}
		}
	}()
	select {
	case addrs := <-ready:
		s.proc = p
		s.grpc, s.http = addrs[0], addrs[1]
		return nil
	case <-p.done:
		cmd.Wait()
		return fmt.Errorf("routeguide serve exited before it was ready: %v\n%s", cmd.ProcessState, p.logs.String())
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-p.done
		cmd.Wait()
		return fmt.Errorf("routeguide serve not ready after 30s:\n%s", p.logs.String())
	}
}

// stop ends the server with SIGTERM, as an operator restarting it would,
// and fails the test if it does not exit cleanly.
func (s *server) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	if p == nil {
		return nil
	}
	s.proc = nil
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
	err := p.cmd.Wait()
	s.t.Logf("routeguide serve's log:\n%s", p.logs.String())
	if err != nil {
		return fmt.Errorf("routeguide serve: %v", err)
	}
	return nil
}

// control is what page.test.mjs calls to act outside the browser: run a
// routeguide command against the server, or stop and start it.
func (s *server) control(w http.ResponseWriter, r *http.Request) {
	var err error
	var out []byte
	switch r.URL.Path {
	case "/stop":
		err = s.stop()
	case "/start":
		s.tokens = ""
		if r.URL.Query().Get("tokens") == "1" {
			s.tokens = filepath.Join(filepath.Dir(s.store), "tokens.txt")
		}
		err = s.start()
	case "/routeguide":
		var args []string
		if err = json.NewDecoder(r.Body).Decode(&args); err != nil {
			break
		}
		s.mu.Lock()
		addr := s.grpc
		s.mu.Unlock()
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, binary, append(args, "--addr", addr)...)
		if token := r.Header.Get("X-Routeguide-Token"); token != "" {
			cmd.Env = append(os.Environ(), "ROUTEGUIDE_TOKEN="+token)
		}
		out, err = cmd.CombinedOutput()
		if err != nil {
			err = fmt.Errorf("routeguide %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		s.t.Errorf("%s: %v", r.URL.Path, err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Write(out)
}

// outputDir returns where screenshots go, emptied.
func outputDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("ROUTEGUIDE_BROWSER_OUT")
	if dir == "" {
		dir = "out"
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// The tokens the page is given once the server asks for one.
const (
	writerToken = "browser-test-writer-token-0123456789"
	readerToken = "browser-test-reader-token-0123456789"
)

// TestPage runs page.test.mjs in headless Chromium against routeguide serve
// on a fresh SQLite file: the steps are in the script, each with a
// screenshot.
func TestPage(t *testing.T) {
	node := requireBrowser(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tokens.txt"), []byte(writerToken+" browser writer\n"+readerToken+" viewer reader\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, store: filepath.Join(dir, "routeguide.db"), grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Error(err)
		}
	})
	// Both ports are kept for restarts: check the HTTP one is a port.
	if _, _, err := net.SplitHostPort(s.http); err != nil {
		t.Fatalf("http_addr %q: %v", s.http, err)
	}
	control := httptest.NewServer(http.HandlerFunc(s.control))
	defer control.Close()

	shots := outputDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test-reporter=spec", "page.test.mjs")
	cmd.Env = append(os.Environ(),
		"ROUTEGUIDE_URL=http://"+s.http+"/",
		"ROUTEGUIDE_CONTROL="+control.URL,
		"ROUTEGUIDE_SCREENSHOTS="+shots,
		"ROUTEGUIDE_CHROMIUM="+chromium,
		"ROUTEGUIDE_WRITER_TOKEN="+writerToken,
		"ROUTEGUIDE_READER_TOKEN="+readerToken,
	)
	out, err := cmd.CombinedOutput()
	t.Logf("page.test.mjs:\n%s", out)
	if err != nil {
		t.Errorf("page.test.mjs: %v; screenshots of each step are in %s", err, shots)
	}
}

// TestFeedParser runs feed.test.mjs: the page's event-stream parser, fed
// the watch feed split at every byte, in Node.js alone.
func TestFeedParser(t *testing.T) {
	node := requireNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, "--test-reporter=spec", "feed.test.mjs").CombinedOutput()
	if err != nil {
		t.Fatalf("feed.test.mjs: %v\n%s", err, out)
	}
	t.Logf("feed.test.mjs:\n%s", out)
}

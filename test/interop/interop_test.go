// Package interop proves that RouteGuide speaks the seed contract with real
// Python grpcio peers, in both directions: a Python client against the Go
// server, and the Go client against a Python server. Both Python sides are
// compiled from the seed's own proto files (protos/testdata/seed). A Node.js
// client on @grpc/grpc-js (node/client.mjs) calls every method of the server,
// loading protos/ at run time, and GetPerson and GetPeople from the seed's
// files; it needs Node.js 20 or later and npm (node_test.go).
//
// The tests need /usr/bin/python3 with grpcio and grpc_tools (Debian's
// python3-grpcio and python3-grpc-tools). They run when ROUTEGUIDE_INTEROP=1,
// and then fail, not skip, when Python cannot run them. With
// ROUTEGUIDE_SEED_DOC naming the seed document, they also extract the seed's
// own server.py and client.py from it and run those unchanged but for the
// port.
package interop

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/routeguide/routeguide/internal/syncbuf"
)

const python = "/usr/bin/python3"

// seedLines is what the seed's client prints against a server holding the
// seed's people, byte for byte.
const seedLines = `GetPerson: Alice, Age: 30, Gender: 2, Hobbies: ['reading', 'swimming'], Address: 123 Main St, New York
GetPeople: Alice, Age: 30, Gender: 2, Hobbies: ['reading', 'swimming'], Address: 123 Main St, New York
GetPeople: Bob, Age: 25, Gender: 1, Hobbies: ['gaming', 'cycling'], Address: 456 Elm St, Los Angeles
`

// binary is the routeguide binary built for these tests.
var binary string

func TestMain(m *testing.M) {
	if os.Getenv("ROUTEGUIDE_INTEROP") != "1" {
		// Nothing to build; each test skips and says why.
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "routeguide-interop")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "routeguide")
	// The binary is built with the race detector, which by default waits a
	// second at exit; a race still fails the run with exit code 66.
	os.Setenv("GORACE", "atexit_sleep_ms=0 halt_on_error=1")
	// Servers run side by side; each HTTP test names its own port.
	os.Setenv("ROUTEGUIDE_HTTP_ADDR", "off")
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

// requireInterop skips unless interop tests were asked for, and fails when
// they were but Python's grpc cannot run.
func requireInterop(t *testing.T) {
	t.Helper()
	if os.Getenv("ROUTEGUIDE_INTEROP") != "1" {
		t.Skip("set ROUTEGUIDE_INTEROP=1 to run the Python interop tests (needs python3-grpcio and python3-grpc-tools)")
	}
	out, err := exec.Command(python, "-c", "import grpc, grpc_tools").CombinedOutput()
	if err != nil {
		t.Fatalf("ROUTEGUIDE_INTEROP=1 but %s cannot import grpc and grpc_tools (apt-get install python3-grpcio python3-grpc-tools): %v\n%s", python, err, out)
	}
}

// stubs compiles the seed's proto files into Python modules in a new
// directory and returns it.
func stubs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(python, "-m", "grpc_tools.protoc", "-I", "../../protos/testdata/seed",
		"--python_out="+dir, "--grpc_python_out="+dir, "person.proto", "route_guide.proto")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("compile the seed protos for Python: %v\n%s", err, out)
	}
	return dir
}

// started is a background process and what it printed.
type started struct {
	cmd    *exec.Cmd
	output syncbuf.Buffer // stdout and stderr
	done   chan struct{}
}

func (s *started) String() string { return s.output.String() }

// startProcess runs cmd and returns once a line of its output matches ready,
// with that match's first group. Cleanup stops the process.
func startProcess(t *testing.T, cmd *exec.Cmd, ready *regexp.Regexp) (*started, string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	w.Close()
	s := &started{cmd: cmd, done: make(chan struct{})}
	found := make(chan string, 1)
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			s.output.Write([]byte(sc.Text() + "\n"))
			if m := ready.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		r.Close()
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-s.done
		}
		cmd.Wait()
	})
	select {
	case v := <-found:
		return s, v
	case <-s.done:
		t.Fatalf("%v exited before it was ready:\n%s", cmd.Args, s)
	case <-time.After(30 * time.Second):
		t.Fatalf("%v not ready after 30s:\n%s", cmd.Args, s)
	}
	return nil, ""
}

var goServerReady = regexp.MustCompile(`msg="serving RouteGuide" addr=(\S+)`)

// startGoServer runs `routeguide serve` on addr and returns its address.
func startGoServer(t *testing.T, addr string) string {
	t.Helper()
	cmd := exec.Command(binary, "serve", "--addr", addr)
	cmd.Dir = t.TempDir() // where the default store, routeguide.db, goes
	_, got := startProcess(t, cmd, goServerReady)
	return got
}

// run runs a command to completion and returns its stdout, failing the test
// on a non-zero exit.
func run(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	c.Dir, c.Env, c.Stdin = cmd.Dir, cmd.Env, cmd.Stdin
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		t.Fatalf("%v: %v\nstdout:\n%s\nstderr:\n%s", c.Args, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func TestPythonClientAgainstGoServer(t *testing.T) {
	requireInterop(t)
	dir := stubs(t)
	addr := startGoServer(t, "127.0.0.1:0")
	got := run(t, exec.Command(python, "client.py", "--stubs", dir, "--target", addr))
	want, err := os.ReadFile("testdata/python_client.golden")
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("Python client against the Go server printed:\n%s\nwant:\n%s", got, want)
	}
}

var pythonServerReady = regexp.MustCompile(`^listening on (\S+)$`)

func TestGoClientAgainstPythonServer(t *testing.T) {
	requireInterop(t)
	dir := stubs(t)
	_, addr := startProcess(t, exec.Command(python, "server.py", "--stubs", dir, "--port", "0"), pythonServerReady)

	tests := []struct {
		args []string
		want string
	}{
		{[]string{"demo"}, seedLines},
		{[]string{"get", "-o", "json", "Bob"},
			`{"name":"Bob","age":25,"gender":"MALE","hobbies":["gaming","cycling"],"address":{"street":"456 Elm St","city":"Los Angeles"}}` + "\n"},
		{[]string{"people", "Charlie", "Bob", "Alice"},
			"Bob  age 25  male  hobbies: gaming, cycling  address: 456 Elm St, Los Angeles\n" +
				"Alice  age 30  female  hobbies: reading, swimming  address: 123 Main St, New York\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			got := run(t, exec.Command(binary, append(tt.args, "--addr", addr)...))
			if got != tt.want {
				t.Errorf("routeguide %v against the Python server printed:\n%s\nwant:\n%s", tt.args, got, tt.want)
			}
		})
	}
}

// seedScript extracts one of the seed document's Python files, pointed at
// port instead of the seed's 50051.
func seedScript(t *testing.T, doc []byte, file string, port int) []byte {
	t.Helper()
	re := regexp.MustCompile("(?s)<div class=\"file-name\">src/" + regexp.QuoteMeta(file) + "</div>\\s*```python\n(.*?)```")
	m := re.FindSubmatch(doc)
	if m == nil {
		t.Fatalf("the seed document has no src/%s block", file)
	}
	if !bytes.Contains(m[1], []byte("50051")) {
		t.Fatalf("src/%s in the seed document does not name port 50051", file)
	}
	return bytes.ReplaceAll(m[1], []byte("50051"), []byte(strconv.Itoa(port)))
}

// seedDoc reads the seed document named by ROUTEGUIDE_SEED_DOC, skipping when
// it is unset.
func seedDoc(t *testing.T) []byte {
	t.Helper()
	requireInterop(t)
	path := os.Getenv("ROUTEGUIDE_SEED_DOC")
	if path == "" {
		t.Skip("set ROUTEGUIDE_SEED_DOC to the seed document to run the seed's own Python client and server")
	}
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("ROUTEGUIDE_SEED_DOC: %v", err)
	}
	return doc
}

// freePort returns a TCP port free on every loopback address at the moment.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestSeedClientAgainstGoServer(t *testing.T) {
	doc := seedDoc(t)
	dir := stubs(t)
	port := freePort(t)
	if err := os.WriteFile(filepath.Join(dir, "client.py"), seedScript(t, doc, "client.py", port), 0o644); err != nil {
		t.Fatal(err)
	}
	// The seed's client dials localhost; serve there as a user would.
	startGoServer(t, "localhost:"+strconv.Itoa(port))
	cmd := exec.Command(python, "client.py")
	cmd.Dir = dir
	if got := run(t, cmd); got != seedLines {
		t.Errorf("the seed's client against routeguide serve printed:\n%s\nwant:\n%s", got, seedLines)
	}
}

// TestSeedClientFindsAddedPerson adds Charlie, whom the seed's client asks
// GetPeople for, with routeguide add; the seed's client then prints him too,
// and still does after the server is killed with SIGKILL and restarted.
func TestSeedClientFindsAddedPerson(t *testing.T) {
	doc := seedDoc(t)
	dir := stubs(t)
	port := freePort(t)
	if err := os.WriteFile(filepath.Join(dir, "client.py"), seedScript(t, doc, "client.py", port), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := "localhost:" + strconv.Itoa(port)
	storeDir := t.TempDir()
	serve := func() *started {
		cmd := exec.Command(binary, "serve", "--addr", addr)
		cmd.Dir = storeDir // the default store, routeguide.db, lives here
		p, _ := startProcess(t, cmd, goServerReady)
		return p
	}
	server := serve()
	run(t, exec.Command(binary, "add", "--addr", addr, "--name", "Charlie", "--age", "35", "--gender", "male",
		"--hobby", "chess", "--street", "789 Oak Ave", "--city", "Chicago"))
	want := seedLines + "GetPeople: Charlie, Age: 35, Gender: 1, Hobbies: ['chess'], Address: 789 Oak Ave, Chicago\n"
	seedClient := func() string {
		cmd := exec.Command(python, "client.py")
		cmd.Dir = dir
		return run(t, cmd)
	}
	if got := seedClient(); got != want {
		t.Errorf("the seed's client after routeguide add printed:\n%s\nwant:\n%s", got, want)
	}

	server.cmd.Process.Kill()
	<-server.done
	server.cmd.Wait()
	serve()
	if got := seedClient(); got != want {
		t.Errorf("the seed's client after kill -9 and restart printed:\n%s\nwant:\n%s", got, want)
	}
}

func TestGoDemoAgainstSeedServer(t *testing.T) {
	doc := seedDoc(t)
	dir := stubs(t)
	port := freePort(t)
	if err := os.WriteFile(filepath.Join(dir, "server.py"), seedScript(t, doc, "server.py", port), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, "-u", "server.py")
	cmd.Dir = dir
	startProcess(t, cmd, regexp.MustCompile(`^(Server started on port \d+)$`))
	// The seed's server prints its line before it starts; wait until it
	// accepts connections.
	addr := "localhost:" + strconv.Itoa(port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the seed's server does not accept connections on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := run(t, exec.Command(binary, "demo", "--addr", addr)); got != seedLines {
		t.Errorf("routeguide demo against the seed's server printed:\n%s\nwant:\n%s", got, seedLines)
	}
}

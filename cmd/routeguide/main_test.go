package main

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/routeguide/routeguide/internal/syncbuf"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

// binary is the routeguide binary built once for these tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "routeguide-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "routeguide")
	// The binary is built with the race detector, which by default waits a
	// second at exit; a race still fails the run with exit code 66.
	os.Setenv("GORACE", "atexit_sleep_ms=0 halt_on_error=1")
	// Servers run side by side; each HTTP test names its own port.
	os.Setenv("ROUTEGUIDE_HTTP_ADDR", "off")
	build := exec.Command("go", "build", "-race", "-tags", "grpcnotrace", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		os.RemoveAll(dir)
		panic("build routeguide: " + err.Error())
	}
	code := func() int {
		defer os.RemoveAll(dir)
		return m.Run()
	}()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

// TestReleaseBuildLeavesOutRequestTracing checks what the grpcnotrace tag,
// with which the README installs routeguide, is for: grpc-go's request
// tracing (golang.org/x/net/trace, never turned on here) imports
// html/template, whose method lookups by name make the linker keep every
// exported method of every type; without them the binary is 5 MB smaller,
// and its mapped pages are most of a server's memory.
func TestReleaseBuildLeavesOutRequestTracing(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-tags", "grpcnotrace", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	for _, unwanted := range []string{"golang.org/x/net/trace", "html/template"} {
		if slices.Contains(deps, unwanted) {
			t.Errorf("the release build links %s", unwanted)
		}
	}
}

// process is a running `routeguide serve`.
type process struct {
	cmd  *exec.Cmd
	addr string
	logs syncbuf.Buffer
	done chan struct{} // closed when stderr is drained
}

func (p *process) log() string { return p.logs.String() }

var addrLine = regexp.MustCompile(`msg="serving RouteGuide" addr=(\S+)`)

// serve starts the binary's server on a free loopback port and returns once
// it has logged its address.
func serve(t *testing.T, args ...string) *process {
	t.Helper()
	return serveBinary(t, binary, args...)
}

// serveBinary is serve with the binary to run given.
func serveBinary(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Dir = t.TempDir() // where the default store, routeguide.db, goes
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	found := make(chan string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.logs.Write([]byte(sc.Text() + "\n"))
			if m := addrLine.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
		cmd.Wait()
	})
	select {
	case p.addr = <-found:
	case <-time.After(20 * time.Second):
		t.Fatalf("server logged no address; logs:\n%s", p.log())
	}
	return p
}

// wait waits for the process to exit and returns its exit code.
func (p *process) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	exited := make(chan error, 1)
	go func() {
		<-p.done
		exited <- p.cmd.Wait()
	}()
	select {
	case err := <-exited:
		if err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				return ee.ExitCode()
			}
			t.Fatalf("wait: %v", err)
		}
		return 0
	case <-time.After(within):
		t.Fatalf("server still running %v after the signal; logs:\n%s", within, p.log())
		return -1
	}
}

// TestStopSignals checks that SIGTERM and SIGINT stop the server gracefully
// and promptly even with a GetPeople stream open, which ends UNAVAILABLE.
func TestStopSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			p := serve(t)
			conn, err := grpc.NewClient(p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			stream, err := pb.NewRouteGuideClient(conn).GetPeople(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.Send(&pb.Name{Name: "Bob"}); err != nil {
				t.Fatal(err)
			}
			if got, err := stream.Recv(); err != nil || got.GetName() != "Bob" {
				t.Fatalf("Recv = %v, %v; want Bob", got, err)
			}

			if err := p.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if _, err := stream.Recv(); status.Code(err) != codes.Unavailable {
				t.Errorf("open stream after %v: code %v, want %v (err %v)", sig, status.Code(err), codes.Unavailable, err)
			}
			if code := p.wait(t, 5*time.Second); code != 0 {
				t.Errorf("exit code %d, want 0; logs:\n%s", code, p.log())
			}
			if !strings.Contains(p.log(), `msg="stopped RouteGuide" graceful=true`) {
				t.Errorf("no graceful stop line; logs:\n%s", p.log())
			}
		})
	}
}

func TestDemoAgainstBinary(t *testing.T) {
	p := serve(t)
	out, err := exec.Command(binary, "demo", "--addr", p.addr).CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	want := `GetPerson: Alice, Age: 30, Gender: 2, Hobbies: ['reading', 'swimming'], Address: 123 Main St, New York
GetPeople: Alice, Age: 30, Gender: 2, Hobbies: ['reading', 'swimming'], Address: 123 Main St, New York
GetPeople: Bob, Age: 25, Gender: 1, Hobbies: ['gaming', 'cycling'], Address: 456 Elm St, Los Angeles
`
	if string(out) != want {
		t.Errorf("demo printed:\n%s\nwant:\n%s", out, want)
	}
}

func TestServeRefusesBusyPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = exec.Command(binary, "serve", "--store", "memory", "--addr", l.Addr().String()).Output()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("serve on a busy port: %v, want exit code 1", err)
	}
	msg := string(ee.Stderr)
	if !strings.Contains(msg, "routeguide: listen on "+l.Addr().String()) || !strings.Contains(msg, "address already in use") {
		t.Errorf("stderr = %q, want a listen error naming the address", msg)
	}
}

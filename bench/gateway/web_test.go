package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// tableRow is a row of bench/web.sh's table with a measured rate.
var tableRow = regexp.MustCompile(`(?m)^\| (routeguide|gateway) \| (grpc|connect-json|connect-proto|grpc-web|rest) \| [0-9]+ \| [0-9.]+ms \| [0-9.]+ms \|`)

// TestWebScript runs bench/web.sh for one short round, without the
// "before" build: every row measures, and the ratios print. It builds two
// binaries, so it runs only with ROUTEGUIDE_WEB_BENCH=1 (CI sets it).
func TestWebScript(t *testing.T) {
	if os.Getenv("ROUTEGUIDE_WEB_BENCH") == "" {
		t.Skip("set ROUTEGUIDE_WEB_BENCH=1 to run bench/web.sh for one short round")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "../web.sh")
	cmd.Env = append(os.Environ(), "ROUNDS=1", "DURATION=200ms", "WARMUP=0s", "CONCURRENCY=4", "BEFORE=none",
		fmt.Sprintf("PORT=%d", freePorts(t)))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bench/web.sh: %v\n%s", err, out)
	}
	if rows := tableRow.FindAllString(string(out), -1); len(rows) != 6 {
		t.Errorf("bench/web.sh measured %d rows, want 6:\n%s", len(rows), out)
	}
	if !regexp.MustCompile(`RouteGuide REST / gateway REST: [0-9.]+ of the calls per second`).Match(out) {
		t.Errorf("bench/web.sh printed no REST ratio:\n%s", out)
	}
	if strings.Contains(string(out), "failed:") {
		t.Errorf("a run failed:\n%s", out)
	}
}

// freePorts returns a port p such that p, p+1 and p+2 were free on
// loopback a moment ago, as bench/web.sh's PORT wants.
func freePorts(t *testing.T) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		free := p+2 < 65536
		for i := 1; i <= 2 && free; i++ {
			if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+i)); err != nil {
				free = false
			} else {
				l.Close()
			}
		}
		if free {
			return p
		}
	}
	t.Fatal("no three free ports in a row")
	return 0
}

package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/routeguide/routeguide/internal/syncbuf"
	"github.com/routeguide/routeguide/internal/telemetry"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var addrLine = regexp.MustCompile(`msg="serving RouteGuide" addr=(\S+)`)

// running is a server started by start.
type running struct {
	addr   string
	logs   *syncbuf.Buffer
	cancel context.CancelFunc
	done   chan error
}

// start runs the server with cfg until the test ends, and returns once it
// has logged its address.
func start(t *testing.T, cfg Config) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{logs: &syncbuf.Buffer{}, cancel: cancel, done: make(chan error, 1)}
	log := slog.New(slog.NewTextHandler(r.logs, nil))
	go func() { r.done <- Run(ctx, log, cfg) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("the server did not stop; logs:\n%s", r.logs)
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if m := addrLine.FindStringSubmatch(r.logs.String()); m != nil {
			r.addr = m[1]
			return r
		}
		select {
		case err := <-r.done:
			r.done <- err
			t.Fatalf("Run returned %v before serving; logs:\n%s", err, r.logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not log its address; logs:\n%s", r.logs)
		}
	}
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// checkFree fails the test when addr cannot be bound.
func checkFree(t *testing.T, addr string) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Errorf("%s is still bound after the failure: %v", addr, err)
		return
	}
	l.Close()
}

func testConfig(t *testing.T) Config {
	cfg := DefaultConfig()
	cfg.Addr = freeAddr(t)
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Store = filepath.Join(t.TempDir(), "people.db")
	return cfg
}

// TestNothingAcquiredOnFailure checks that a configuration that cannot
// start leaves no store file created and no port bound, whether the
// mistake is found while loading the configuration or while acquiring.
func TestNothingAcquiredOnFailure(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	failTracing := func(context.Context, func(string) string, string) (stats.Handler, func(context.Context) error, error) {
		return nil, nil, errors.New("tracing refused")
	}

	tests := []struct {
		name    string
		change  func(*Config)
		tracing tracingFunc
		want    string
	}{
		{name: "missing TLS files", change: func(c *Config) { c.TLSCert, c.TLSKey = "/missing.pem", "/missing.pem" }, want: "tls:"},
		{name: "TLS files not PEM", change: func(c *Config) { c.TLSCert, c.TLSKey = notPEM, notPEM }, want: "tls:"},
		{name: "missing client CA", change: func(c *Config) { c.TLSCert, c.TLSKey, c.ClientCA = notPEM, notPEM, "/missing-ca.pem" }, want: "tls:"},
		{name: "missing tokens", change: func(c *Config) { c.Tokens = "/missing-tokens" }, want: "tokens:"},
		{name: "malformed PostgreSQL URL", change: func(c *Config) { c.Store = "postgres://u@h:notaport/db" }, want: "store"},
		{name: "metrics port taken", change: func(c *Config) { c.MetricsAddr = busy.Addr().String() }, want: "metrics:"},
		{name: "HTTP port taken", change: func(c *Config) { c.HTTPAddr = busy.Addr().String() }, want: "http:"},
		{name: "CORS origin with a path", change: func(c *Config) { c.CORSOrigins = []string{"https://app.example.com/page"} }, want: "cors origin"},
		{name: "trusted proxy not an address", change: func(c *Config) { c.TrustedProxies = []string{"proxy.example.com"} }, want: "trusted proxy"},
		{name: "health port taken", change: func(c *Config) { c.HealthAddr = busy.Addr().String() }, want: "health:"},
		{name: "tracing fails", change: func(c *Config) { c.MetricsAddr = freeAddr(t) }, tracing: failTracing, want: "tracing refused"},
		{name: "store cannot be opened", change: func(c *Config) {
			c.MetricsAddr = freeAddr(t)
			c.HealthAddr = freeAddr(t)
			c.Store = filepath.Join(dir, "no-such-dir", "people.db")
		}, want: "open store"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			tt.change(&cfg)
			tracing := tt.tracing
			if tracing == nil {
				tracing = telemetry.Tracing
			}
			var logs syncbuf.Buffer
			err := run(context.Background(), slog.New(slog.NewTextHandler(&logs, nil)), cfg, tracing)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run: %v, want an error containing %q", err, tt.want)
			}
			if _, err := os.Stat(cfg.Store); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("store %s exists after the failure (%v)", cfg.Store, err)
			}
			checkFree(t, cfg.Addr)
			for _, addr := range []string{cfg.MetricsAddr, cfg.HealthAddr} {
				if addr != "" && addr != busy.Addr().String() {
					checkFree(t, addr)
				}
			}
			if strings.Contains(logs.String(), "serving RouteGuide") {
				t.Errorf("logged a start line though it failed:\n%s", logs.String())
			}
		})
	}
}

func check(ctx context.Context, conn *grpc.ClientConn) error {
	_, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "RouteGuide"})
	return err
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestConnectionLimit checks that past MaxConnections a new connection
// waits, while a connection already open goes on being answered, that the
// limit is logged once, and that the waiting connection is served once a
// slot is free.
func TestConnectionLimit(t *testing.T) {
	cfg := testConfig(t)
	cfg.Store = "memory"
	cfg.MaxConnections = 1
	srv := start(t, cfg)

	first := dial(t, srv.addr)
	if err := check(context.Background(), first); err != nil {
		t.Fatalf("first connection: %v", err)
	}
	second := dial(t, srv.addr)
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		err := check(ctx, second)
		cancel()
		if status.Code(err) != codes.DeadlineExceeded {
			t.Fatalf("second connection past the limit: %v, want DeadlineExceeded", err)
		}
		if err := check(context.Background(), first); err != nil {
			t.Fatalf("first connection while the second waits: %v", err)
		}
	}
	if n := strings.Count(srv.logs.String(), "connection limit reached"); n != 1 {
		t.Errorf("the limit was logged %d times, want once:\n%s", n, srv.logs)
	}

	first.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := check(ctx, second); err != nil {
		t.Errorf("second connection once the first closed: %v", err)
	}
}

// TestIdleConnectionClosed checks that a connection with no call open for
// MaxConnectionIdle is closed by the server.
func TestIdleConnectionClosed(t *testing.T) {
	cfg := testConfig(t)
	cfg.Store = "memory"
	cfg.Limits.MaxConnectionIdle = 200 * time.Millisecond
	srv := start(t, cfg)
	if !strings.Contains(srv.logs.String(), "max_connection_idle=200ms") {
		t.Errorf("the start line does not give the idle timeout:\n%s", srv.logs)
	}

	conn := dial(t, srv.addr)
	if err := check(context.Background(), conn); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The client goes idle when the server's GOAWAY closes its connection;
	// its own idle timeout is 30 minutes.
	for s := conn.GetState(); s != connectivity.Idle; s = conn.GetState() {
		if !conn.WaitForStateChange(ctx, s) {
			t.Fatalf("the idle connection is still %v", s)
		}
	}
}

// TestStartLine checks that the start line gives the connection settings
// and the open files limit, and that the limit was raised to the hard one.
func TestStartLine(t *testing.T) {
	cfg := testConfig(t)
	cfg.Store = "memory"
	cfg.MaxConnections = 123
	srv := start(t, cfg)
	for _, want := range []string{"max_connections=123", "max_connection_idle=5m0s", "max_connection_age=5m0s", "max_connection_age_grace=never", "file_limit="} {
		if !strings.Contains(srv.logs.String(), want) {
			t.Errorf("start line lacks %s:\n%s", want, srv.logs)
		}
	}
}

var healthLine = regexp.MustCompile(`health_addr=(\S+)`)

// TestHealthAddr checks the health-only listener end to end: it answers
// health, including the liveness status, and does not serve RouteGuide.
func TestHealthAddr(t *testing.T) {
	cfg := testConfig(t)
	cfg.Store = "memory"
	cfg.HealthAddr = "127.0.0.1:0"
	srv := start(t, cfg)
	m := healthLine.FindStringSubmatch(srv.logs.String())
	if m == nil || m[1] == "" {
		t.Fatalf("the start line gives no health address:\n%s", srv.logs)
	}
	conn := dial(t, m[1])
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, svc := range []string{"", "RouteGuide", "liveness"} {
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health Check(%q) on the health address = %v, %v; want SERVING", svc, resp.GetStatus(), err)
		}
	}
	err := conn.Invoke(ctx, "/RouteGuide/GetPerson", &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{})
	if got := status.Code(err); got != codes.Unimplemented {
		t.Errorf("RouteGuide/GetPerson on the health address: %v; want Unimplemented", err)
	}
}

// TestHealthAddrConnectionLimit checks that the health-only listener holds
// a connection past maxHealthConnections back, and serves it once one
// closes.
func TestHealthAddrConnectionLimit(t *testing.T) {
	cfg := testConfig(t)
	cfg.Store = "memory"
	cfg.HealthAddr = "127.0.0.1:0"
	srv := start(t, cfg)
	m := healthLine.FindStringSubmatch(srv.logs.String())
	if m == nil {
		t.Fatalf("the start line gives no health address:\n%s", srv.logs)
	}
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range maxHealthConnections {
		c, err := net.Dial("tcp", m[1])
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	conn := dial(t, m[1])
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err := check(ctx, conn)
	cancel()
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("health check past the limit: %v, want DeadlineExceeded", err)
	}
	held[0].Close()
	held = held[1:]
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := check(ctx, conn); err != nil {
		t.Errorf("health check once a connection closed: %v", err)
	}
}

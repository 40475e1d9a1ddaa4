package cli

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
)

// collector is an OTLP trace collector that keeps the span names it gets.
type collector struct {
	collectortrace.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []string // guarded by mu
}

func (c *collector) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.spans = append(c.spans, s.GetName())
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// TestTracing checks that with OTEL_EXPORTER_OTLP_ENDPOINT set, every call
// is traced and the spans reach the collector by the time serve stops.
func TestTracing(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	col := &collector{}
	collectortrace.RegisterTraceServiceServer(gs, col)
	go gs.Serve(l)
	defer gs.Stop()
	// The exporter reads the standard OTEL_* variables from the process.
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+l.Addr().String())
	t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
	env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + l.Addr().String()}

	s := runServe(t, func(k string) string { return env[k] }, "--addr", "127.0.0.1:0", "--store", filepath.Join(t.TempDir(), "people.db"))
	if !strings.Contains(s.logs.String(), "tracing=true") {
		t.Errorf("start line does not say tracing is on:\n%s", s.logs)
	}
	if r := runCLI(t, nil, "", "demo", "--addr", s.addr); r.code != 0 {
		t.Fatalf("demo: %+v", r)
	}
	s.stop(t) // stopping flushes the spans
	col.mu.Lock()
	defer col.mu.Unlock()
	for _, want := range []string{"RouteGuide/GetPerson", "RouteGuide/GetPeople"} {
		found := false
		for _, s := range col.spans {
			found = found || s == want
		}
		if !found {
			t.Errorf("collector got spans %q, missing %s", col.spans, want)
		}
	}
}

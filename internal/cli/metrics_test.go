package cli

import (
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

var metricsLine = regexp.MustCompile(`msg="serving metrics" addr=(\S+)`)

// startWithMetrics runs serve with --metrics-addr on a free port and returns
// the gRPC and metrics addresses.
func startWithMetrics(t *testing.T, extra ...string) (addr, metrics string) {
	t.Helper()
	s := runServe(t, noEnv, append([]string{"--addr", "127.0.0.1:0", "--store", filepath.Join(t.TempDir(), "people.db"), "--metrics-addr", "127.0.0.1:0"}, extra...)...)
	m := metricsLine.FindStringSubmatch(s.logs.String())
	if m == nil {
		t.Fatalf("no metrics address logged:\n%s", s.logs)
	}
	waitServing(t, s.addr)
	return s.addr, m[1]
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestMetricsAfterDemo checks that the metrics address shows per-method
// gRPC metrics after a demo, with the runtime's and the store's.
func TestMetricsAfterDemo(t *testing.T) {
	addr, metrics := startWithMetrics(t)
	if r := runCLI(t, nil, "", "demo", "--addr", addr); r.code != 0 {
		t.Fatalf("demo: %+v", r)
	}
	code, body := httpGet(t, "http://"+metrics+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", code)
	}
	for _, want := range []string{
		`grpc_server_handled_total{grpc_code="OK",grpc_method="GetPerson",grpc_service="RouteGuide",grpc_type="unary"} 1`,
		`grpc_server_handled_total{grpc_code="OK",grpc_method="GetPeople",grpc_service="RouteGuide",grpc_type="bidi_stream"} 1`,
		`grpc_server_msg_sent_total{grpc_method="GetPeople",grpc_service="RouteGuide",grpc_type="bidi_stream"} 2`,
		`grpc_server_handling_seconds_bucket{grpc_method="GetPerson"`,
		`go_goroutines `,
		`process_resident_memory_bytes `,
		`go_sql_open_connections{db_name="sqlite_read"}`,
		"routeguide_people 2\n", // the seed; the demo only reads
		"routeguide_revision ",
		"routeguide_watchers 0\n",
		"routeguide_sqlite_write_groups_total ",
		"routeguide_sqlite_write_group_seconds_bucket{le=",
		"routeguide_sqlite_wal_bytes ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if code, _ := httpGet(t, "http://"+metrics+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/ without --pprof: %d, want 404", code)
	}
	if runtime.MemProfileRate != 0 {
		t.Errorf("without --pprof, allocations are sampled for a heap profile nobody can read: MemProfileRate %d, want 0", runtime.MemProfileRate)
	}
}

func TestPprof(t *testing.T) {
	_, metrics := startWithMetrics(t, "--pprof")
	if code, body := httpGet(t, "http://"+metrics+"/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("GET /debug/pprof/ with --pprof: %d", code)
	}
	if runtime.MemProfileRate != 512*1024 {
		t.Errorf("with --pprof, MemProfileRate %d, want the runtime's default %d", runtime.MemProfileRate, 512*1024)
	}
	if code, body := httpGet(t, "http://"+metrics+"/debug/pprof/heap?debug=1"); code != http.StatusOK || !strings.HasPrefix(body, "heap profile: ") {
		t.Errorf("GET /debug/pprof/heap with --pprof: %d %.40q", code, body)
	}
}

package cli

import (
	"net/http"
	"strings"
	"testing"
)

func TestByteSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"1048576", 1 << 20, true},
		{"256MiB", 256 << 20, true},
		{"256 mib", 256 << 20, true},
		{"1GiB", 1 << 30, true},
		{"1.5GiB", 3 << 29, true},
		{"32MB", 32_000_000, true},
		{"", 0, false},
		{"lots", 0, false},
		{"-1MiB", 0, false},
		{"12 parsecs", 0, false},
		{"99999999999999999999", 0, false},
	} {
		var n int64 = -7
		err := byteSize{&n}.Set(tt.in)
		if tt.ok && (err != nil || n != tt.want) {
			t.Errorf("Set(%q) = %d, %v; want %d", tt.in, n, err, tt.want)
		}
		if !tt.ok && err == nil {
			t.Errorf("Set(%q) = %d, want an error", tt.in, n)
		}
	}
	n := int64(256 << 20)
	if got := (byteSize{&n}).String(); got != "256 MiB" {
		t.Errorf("String() = %q, want 256 MiB", got)
	}
}

// TestBoundedCacheServes serves with --cache-max-bytes from the
// environment: the cache starts bounded, answers, and its metrics show
// the lookups.
func TestBoundedCacheServes(t *testing.T) {
	addr, metrics := startWithMetrics(t, "--cache-max-bytes", "1MiB")
	if r := runCLI(t, nil, "", "get", "--addr", addr, "Alice", "Alice"); r.code != 0 || strings.Count(r.stdout, "Alice") < 2 {
		t.Fatalf("get: %+v", r)
	}
	code, body := httpGet(t, "http://"+metrics+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", code)
	}
	for _, want := range []string{
		"routeguide_cache_max_bytes 1.048576e+06\n",
		"routeguide_cache_misses_total 1\n",
		"routeguide_cache_hits_total 1\n",
		"routeguide_cache_people 1\n",
		"routeguide_cache_evicted_total 0\n",
		"routeguide_cache_bytes ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

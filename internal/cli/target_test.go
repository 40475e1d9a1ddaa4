package cli

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startFleet runs three `routeguide serve` in process, on 127.0.0.1,
// 127.0.0.2 and 127.0.0.3, each with a store of its own, and returns them
// with their target, a comma-separated list.
func startFleet(t *testing.T) ([]*served, string) {
	t.Helper()
	var fleet []*served
	var addrs []string
	for _, host := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
		s := runServe(t, noEnv, "--addr", host+":0", "--store", filepath.Join(t.TempDir(), "people.db"))
		waitServing(t, s.addr)
		fleet = append(fleet, s)
		addrs = append(addrs, s.addr)
	}
	return fleet, strings.Join(addrs, ",")
}

// TestAddrList checks that the client commands take a comma-separated list
// of replicas in --addr, and check each entry as they check one address.
func TestAddrList(t *testing.T) {
	_, list := startFleet(t)
	tests := []struct {
		name string
		args []string
	}{
		{name: "get_addr_list", args: []string{"get", "--addr", list, "Alice", "Bob", "Alice", "Bob"}},
		{name: "addr_list_bad_entry", args: []string{"get", "--addr", list + ",localhost", "Alice"}},
		{name: "addr_list_empty_entry", args: []string{"get", "--addr", list + ",", "Alice"}},
		{name: "addr_list_token_not_loopback", args: []string{"get", "--addr", list + ",192.0.2.1:50051", "--token", "secret", "Alice"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runCLI(t, nil, "", tt.args...)
			checkGolden(t, tt.name, got.golden(list))
		})
	}
}

// TestBenchFleet checks that bench runs over a list of replicas, and that
// a replica stopping gracefully in the middle of the run fails no call.
func TestBenchFleet(t *testing.T) {
	fleet, list := startFleet(t)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		time.Sleep(500 * time.Millisecond)
		fleet[2].stop(t)
	}()
	got := runBenchJSON(t, "--addr", list, "--workload", "get", "-c", "8", "--duration", "2s", "--warmup", "0s")
	<-stopped
	if got.Calls == 0 || len(got.Errors) != 0 {
		t.Errorf("calls = %d, errors = %v; want some calls and no errors", got.Calls, got.Errors)
	}
}

package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestAddrList checks that the client commands take a comma-separated list
// of replicas in --addr, and check each entry as they check one address.
func TestAddrList(t *testing.T) {
	var addrs []string
	for _, host := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
		s := runServe(t, noEnv, "--addr", host+":0", "--store", filepath.Join(t.TempDir(), "people.db"))
		waitServing(t, s.addr)
		addrs = append(addrs, s.addr)
	}
	list := strings.Join(addrs, ",")
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

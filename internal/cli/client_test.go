package cli

import "testing"

func TestBriefly(t *testing.T) {
	tests := []struct{ msg, want string }{
		{`connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:1: connect: connection refused"`, "connection refused"},
		{`max retries exhausted: failed after 5 attempts: rpc error: code = Unavailable desc = connection error: desc = "error reading server preface: connection reset by peer"`, "connection reset by peer"},
		{"error reading from server: EOF", "error reading from server: EOF"},
		{"the server is draining", "the server is draining"},
	}
	for _, tt := range tests {
		if got := briefly(tt.msg); got != tt.want {
			t.Errorf("briefly(%q) = %q, want %q", tt.msg, got, tt.want)
		}
	}
}

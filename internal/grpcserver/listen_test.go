package grpcserver

import (
	"context"
	"log/slog"
	"net"
	"testing"
)

func TestListenLocalhostServesBothLoopbacks(t *testing.T) {
	ls, err := Listen(context.Background(), slog.New(slog.DiscardHandler), "localhost:0")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	if len(ls) == 1 {
		// A machine without IPv6 still serves IPv4.
		t.Logf("only %v: this machine has no IPv6 loopback", ls[0].Addr())
	}
	port := ls[0].Addr().(*net.TCPAddr).Port
	for _, l := range ls {
		a := l.Addr().(*net.TCPAddr)
		if !a.IP.IsLoopback() {
			t.Errorf("listening on %v, want a loopback address", a)
		}
		if a.Port != port {
			t.Errorf("listening on %v, want port %d like the first listener", a, port)
		}
	}
	if got := ls[0].Addr().(*net.TCPAddr).IP.String(); got != "127.0.0.1" {
		t.Errorf("first listener on %s, want 127.0.0.1", got)
	}
}

func TestListenErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, addr := range []string{"no-port", busy.Addr().String(), "127.0.0.1:http-alt-nonsense"} {
		if ls, err := Listen(context.Background(), slog.New(slog.DiscardHandler), addr); err == nil {
			for _, l := range ls {
				l.Close()
			}
			t.Errorf("Listen(%q) succeeded, want an error", addr)
		}
	}
}

func TestLoopback(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"localhost:50051", true},
		{"127.0.0.1:50051", true},
		{"127.1.2.3:0", true},
		{"[::1]:50051", true},
		{"0.0.0.0:50051", false},
		{":50051", false},
		{"[::]:50051", false},
		{"192.0.2.1:50051", false},
		{"no-port", false},
		{"name.invalid:50051", false}, // does not resolve
	}
	for _, tt := range tests {
		if got := Loopback(context.Background(), tt.addr); got != tt.want {
			t.Errorf("Loopback(%q) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}

package grpcserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"syscall"
)

// Listen opens TCP listeners for addr (host:port). A host name gets a listener
// on each of its addresses, so "localhost" serves both 127.0.0.1 and ::1. It
// resolves "localhost" to the two loopback addresses itself (RFC 6761)
// rather than trusting the hosts file. With port 0, the later listeners reuse
// the port the first one was given. An address family the machine lacks
// (no IPv6, say) is skipped with a warning as long as one listener opens.
// Listen fails when no listener opens or one fails for any other reason.
func Listen(ctx context.Context, log *slog.Logger, addr string) ([]net.Listener, error) {
	for attempt := 1; ; attempt++ {
		ls, err := listen(ctx, log, addr)
		// With port 0, the port the first address got may be taken on
		// another; a few fresh tries find one free on all of them.
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) || !strings.HasSuffix(addr, ":0") || attempt == 5 {
			return ls, err
		}
	}
}

func listen(ctx context.Context, log *slog.Logger, addr string) ([]net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %q: %w", addr, err)
	}
	ips, err := resolve(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("listen on %q: %w", addr, err)
	}

	var listeners []net.Listener
	closeAll := func() {
		for _, l := range listeners {
			l.Close()
		}
	}
	var skipped error
	for _, ip := range ips {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, port))
		if err != nil {
			if errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EAFNOSUPPORT) {
				skipped = err
				log.Warn("address family unavailable; not listening on it", "addr", net.JoinHostPort(ip, port), "error", err)
				continue
			}
			closeAll()
			return nil, fmt.Errorf("listen on %s: %w", net.JoinHostPort(ip, port), err)
		}
		if port == "0" {
			port = strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
		}
		listeners = append(listeners, l)
	}
	if len(listeners) == 0 {
		return nil, fmt.Errorf("listen on %q: %w", addr, skipped)
	}
	return listeners, nil
}

// resolve returns the IP addresses to listen on for host. An empty host
// means every interface, as with net.Listen.
func resolve(ctx context.Context, host string) ([]string, error) {
	switch host {
	case "":
		return []string{""}, nil
	case "localhost":
		return []string{"127.0.0.1", "::1"}, nil
	}
	if ip := net.ParseIP(host); ip != nil {
		return []string{host}, nil
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, err
	}
	ips := make([]string, 0, len(addrs))
	for _, a := range addrs {
		ips = append(ips, a.String())
	}
	return ips, nil
}

// Loopback reports whether addr's host names only loopback addresses. An
// empty host means every interface, which is not loopback; a name that does
// not resolve is not either. The server refuses plaintext (and profiles) on
// an address that is not loopback, and the client refuses to send a token
// in plaintext to one.
func Loopback(ctx context.Context, addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if host == "localhost" {
		return true
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil || len(ips) == 0 {
		return false
	}
	for _, ip := range ips {
		if !ip.IP.IsLoopback() {
			return false
		}
	}
	return true
}

package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"time"
)

// tlsProbeTimeout bounds the extra connection diagnoseTLS makes.
const tlsProbeTimeout = 2 * time.Second

// diagnoseTLS returns what is wrong between this client's TLS settings and
// the server's, and the flag that fixes it, or "" when it finds nothing.
// It is asked only after a connection failed, since the failed call's own
// error says little: grpc-go reports a plaintext client to a TLS server as
// "error reading server preface: EOF", and a TLS 1.3 client whose
// certificate the server refuses learns it only after the handshake, so it
// sees whatever its next write or read meets ("broken pipe", "connection
// reset by peer"). A fresh connection shows the cause: a TLS handshake
// tells a TLS server from a plaintext one and a trusted certificate from an
// unknown one, and a read after it receives the server's alert about the
// client's certificate.
func (cfg *clientConfig) diagnoseTLS() string {
	if strings.Contains(cfg.Addr, ":///") {
		return "" // a resolver address may name several servers
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), tlsProbeTimeout)
	defer cancel()
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return "" // the call's own error says why
	}
	defer raw.Close()
	if d, ok := ctx.Deadline(); ok {
		raw.SetDeadline(d)
	}

	if !cfg.TLS {
		// Only whether the server speaks TLS matters here, not whom it is.
		conn := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
		if err := conn.HandshakeContext(ctx); err == nil || isRemoteAlert(err) {
			return "the server speaks TLS and this client plaintext: connect with --tls, adding --ca FILE when the server's certificate is not from a CA the system trusts, and --cert FILE --key FILE when the server asks for a client certificate"
		}
		return ""
	}

	tc, err := cfg.tlsConfig()
	if err != nil {
		return ""
	}
	tc.ServerName = host
	tc.NextProtos = []string{"h2"}
	conn := tls.Client(raw, tc)
	err = conn.HandshakeContext(ctx)
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	switch {
	case errors.As(err, new(tls.RecordHeaderError)):
		return "the server speaks plaintext and this client TLS: connect without --tls, --ca, --cert and --key"
	case errors.As(err, &unknownCA) && cfg.CA == "":
		return "the server's certificate is not signed by a CA the system trusts: give the CA that signed it with --ca FILE"
	case errors.As(err, &unknownCA):
		return "the server's certificate is not signed by the CA in --ca " + cfg.CA + ": give the CA that signed it with --ca FILE"
	case errors.As(err, &hostname):
		return "the server's certificate is not for " + host + ": " + hostname.Error()
	case err != nil:
		return clientCertHint(cfg, err)
	}
	// In TLS 1.3 the server checks the client's certificate after the
	// client's handshake is done, and says what it thinks in an alert.
	_, err = conn.Read(make([]byte, 1))
	return clientCertHint(cfg, err)
}

// clientCertHint returns what a TLS alert from the server says about this
// client's certificate, and the flags that fix it, or "".
func clientCertHint(cfg *clientConfig, err error) string {
	if !isRemoteAlert(err) {
		return ""
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "certificate required") && cfg.Cert == "":
		return "the server requires a client certificate: give one with --cert FILE --key FILE"
	case strings.Contains(msg, "certificate required"),
		strings.Contains(msg, "bad certificate"),
		strings.Contains(msg, "unknown certificate authority"),
		strings.Contains(msg, "certificate expired"),
		strings.Contains(msg, "unsupported certificate"):
		// A Go client sends no certificate at all when its own is not
		// from a CA the server names, so "certificate required" can
		// mean this too.
		return "the server refused the client certificate in --cert " + cfg.Cert + " (" + strings.TrimPrefix(msg, "remote error: tls: ") + "): give one signed by a CA the server trusts with --cert FILE --key FILE"
	}
	return ""
}

// isRemoteAlert reports whether err is a TLS alert the server sent.
func isRemoteAlert(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error"
}

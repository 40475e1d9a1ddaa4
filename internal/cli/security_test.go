package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pki is a test certificate authority and the files it issued.
type pki struct {
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newPKI(t *testing.T, name string) *pki {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	p := &pki{dir: t.TempDir(), cert: cert, key: key}
	p.write(t, "ca.pem", "CERTIFICATE", der)
	return p
}

func (p *pki) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// issue writes a certificate and key for cn (server when server is true)
// and returns their paths.
func (p *pki) issue(t *testing.T, cn, ou string, server bool) (certPath, keyPath string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn, OrganizationalUnit: []string{ou}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return p.write(t, cn+".pem", "CERTIFICATE", der), p.write(t, cn+"-key.pem", "EC PRIVATE KEY", kder)
}

func TestPlaintextOnlyOnLoopback(t *testing.T) {
	got := runCLI(t, nil, "", "serve", "--store", "memory", "--addr", "0.0.0.0:50051")
	if got.code != exitUsage || !strings.Contains(got.stderr, "is not a loopback address") || !strings.Contains(got.stderr, "--insecure") {
		t.Errorf("serve on 0.0.0.0 without TLS: %+v", got)
	}
	got = runCLI(t, nil, "", "serve", "--store", "memory", "--addr", ":50051")
	if got.code != exitUsage {
		t.Errorf("serve on every interface without TLS: exit %d, want %d", got.code, exitUsage)
	}

	// --insecure starts, with a warning.
	srv := runServe(t, noEnv, "--store", "memory", "--addr", "0.0.0.0:0", "--insecure")
	srv.stop(t)
	if !strings.Contains(srv.logs.String(), "level=WARN msg=\"serving plaintext on a non-loopback address") {
		t.Errorf("no warning for --insecure:\n%s", srv.logs)
	}
}

// TestHTTPListenerFlags checks the HTTP listener's address rule, the
// gRPC port's, and its other flags' checks, all before anything is bound.
func TestHTTPListenerFlags(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"plaintext off loopback", []string{"--http-addr", "0.0.0.0:8080"}, nil, "--http-addr 0.0.0.0:8080 is not a loopback address"},
		{"no port", []string{"--http-addr", "localhost"}, nil, "--http-addr \"localhost\": want host:port"},
		{"an origin with a path", []string{"--cors-origin", "https://app.example/page"}, nil, "want scheme://host[:port]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := runCLI(t, tt.env, "", append([]string{"serve", "--store", "memory", "--addr", "127.0.0.1:0"}, tt.args...)...)
			if got.code != exitUsage || !strings.Contains(got.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", got.code, got.stderr, exitUsage, tt.want)
			}
		})
	}
	// From the environment: runCLI's serve names no --http-addr here.
	var stderr strings.Builder
	code := Run(t.Context(), []string{"serve", "--store", "memory", "--addr", "127.0.0.1:0"}, func(k string) string {
		if k == "ROUTEGUIDE_HTTP_ADDR" {
			return ":8080"
		}
		return ""
	}, strings.NewReader(""), &strings.Builder{}, &stderr)
	if code != exitUsage || !strings.Contains(stderr.String(), "--http-addr :8080 is not a loopback address") {
		t.Errorf("ROUTEGUIDE_HTTP_ADDR=:8080: exit %d, stderr %q", code, stderr.String())
	}
}

func TestTokenNeverInPlaintextToTheNetwork(t *testing.T) {
	got := runCLI(t, nil, "", "get", "--addr", "192.0.2.1:50051", "--token", "secret-token-0123456789", "Alice")
	if got.code != exitUsage || !strings.Contains(got.stderr, "refusing to send a token in plaintext") || strings.Contains(got.stderr, "secret-token") {
		t.Errorf("token over plaintext to a remote address: %+v", got)
	}
}

func TestTLSAndClientCertificates(t *testing.T) {
	ca, other := newPKI(t, "routeguide test CA"), newPKI(t, "another CA")
	srvCert, srvKey := ca.issue(t, "server", "", true)
	writerCert, writerKey := ca.issue(t, "wanda", "writer", false)
	readerCert, readerKey := ca.issue(t, "rudy", "reader", false)
	strangerCert, strangerKey := other.issue(t, "mallory", "writer", false)
	caFile := filepath.Join(ca.dir, "ca.pem")

	t.Run("TLS", func(t *testing.T) {
		addr := startServer(t, "--tls-cert", srvCert, "--tls-key", srvKey)
		if got := runCLI(t, nil, "", "get", "--addr", addr, "--ca", caFile, "Alice"); got.code != 0 {
			t.Errorf("get over TLS: %+v", got)
		}
		if got := runCLI(t, nil, "", "get", "--addr", addr, "--timeout", "2s", "Alice"); got.code == 0 {
			t.Errorf("get in plaintext from a TLS server succeeded: %+v", got)
		}
		if got := runCLI(t, nil, "", "get", "--addr", addr, "--tls", "--timeout", "2s", "Alice"); got.code == 0 {
			t.Errorf("get trusting only the system's CAs succeeded: %+v", got)
		}
	})

	t.Run("mTLS", func(t *testing.T) {
		srv := runServe(t, noEnv, "--addr", "127.0.0.1:0", "--store", filepath.Join(t.TempDir(), "people.db"), "--tls-cert", srvCert, "--tls-key", srvKey, "--client-ca", caFile)
		addr := srv.addr
		run := func(cmd string, args ...string) result {
			return runCLI(t, nil, "", append([]string{cmd, "--addr", addr, "--ca", caFile, "--timeout", "5s"}, args...)...)
		}
		if got := run("get", "Alice"); got.code == 0 {
			t.Errorf("get without a client certificate succeeded: %+v", got)
		}
		if got := run("get", "--cert", strangerCert, "--key", strangerKey, "Alice"); got.code == 0 {
			t.Errorf("get with another CA's certificate succeeded: %+v", got)
		}
		if got := run("get", "--cert", readerCert, "--key", readerKey, "Alice"); got.code != 0 {
			t.Errorf("get with a reader certificate: %+v", got)
		}
		if got := run("add", "--cert", readerCert, "--key", readerKey, "--name", "Rudy"); got.code != 1 || !strings.Contains(got.stderr, "needs the writer role") {
			t.Errorf("add with a reader certificate: %+v", got)
		}
		if got := run("add", "--cert", writerCert, "--key", writerKey, "--name", "Wanda"); got.code != 0 {
			t.Errorf("add with a writer certificate: %+v", got)
		}
		// The certificate's subject is who made the change.
		if got := run("history", "--cert", readerCert, "--key", readerKey, "-o", "json", "Wanda"); got.code != 0 || !strings.Contains(got.stdout, `"principal":"wanda"`) {
			t.Errorf("history of Wanda: %+v, want her addition by wanda", got)
		}
		if !logged(srv.logs, "msg=audit method=AddPerson principal=wanda") {
			t.Errorf("no audit line names wanda; logs:\n%s", srv.logs)
		}
	})
}

func TestTokens(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(tokens, []byte("reader-token-0123456789 rita reader\nwriter-token-0123456789 wes writer\n"), 0o600)
	srv := runServe(t, noEnv, "--addr", "127.0.0.1:0", "--store", filepath.Join(t.TempDir(), "people.db"), "--tokens", tokens)
	addr := srv.addr
	run := func(token string, args ...string) result {
		return runCLI(t, map[string]string{"ROUTEGUIDE_TOKEN": token}, "", append([]string{args[0], "--addr", addr}, args[1:]...)...)
	}
	tests := []struct {
		name, token string
		args        []string
		code        int
		stderr      string
	}{
		{"anonymous get", "", []string{"get", "Alice"}, 1, "unauthenticated"},
		{"wrong token", "reader-token-0123456780", []string{"get", "Alice"}, 1, "unauthenticated"},
		{"reader get", "reader-token-0123456789", []string{"get", "Alice"}, 0, ""},
		{"reader add", "reader-token-0123456789", []string{"add", "--name", "Rita"}, 1, "permission denied"},
		{"reader update", "reader-token-0123456789", []string{"update", "Alice", "--age", "3"}, 1, "permission denied"},
		{"reader deletes someone", "reader-token-0123456789", []string{"delete", "Alice"}, 1, "permission denied"},
		{"reader deletes nobody", "reader-token-0123456789", []string{"delete", "Nobody"}, 1, "permission denied"},
		{"reader import", "reader-token-0123456789", []string{"import", "testdata/import/people.csv"}, 1, "permission denied"},
		{"writer add", "writer-token-0123456789", []string{"add", "--name", "Wes"}, 0, ""},
		{"writer import", "writer-token-0123456789", []string{"import", "testdata/import/people.csv"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := run(tt.token, tt.args...)
			if got.code != tt.code || !strings.Contains(got.stderr, tt.stderr) {
				t.Errorf("%v: %+v, want exit %d and %q on stderr", tt.args, got, tt.code, tt.stderr)
			}
			if strings.Contains(got.stderr, "token-0123") {
				t.Errorf("stderr shows the token: %q", got.stderr)
			}
		})
	}
	// The token's name, never the token, is who made a change.
	if got := run("reader-token-0123456789", "history", "-o", "json", "Wes"); got.code != 0 || !strings.Contains(got.stdout, `"principal":"wes"`) {
		t.Errorf("history of Wes: %+v, want his addition by wes", got)
	}
	if !logged(srv.logs, "msg=audit method=AddPerson principal=wes") {
		t.Errorf("no audit line names wes; logs:\n%s", srv.logs)
	}
	if strings.Contains(srv.logs.String(), "token-0123") {
		t.Errorf("the server's log holds a token:\n%s", srv.logs)
	}
}

// TestServeBadConfigLeavesNothing checks that a configuration whose files
// cannot be loaded, or whose metrics port is taken, fails with exit 1 and
// leaves no store file created and the port free.
func TestServeBadConfigLeavesNothing(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name string
		args []string
	}{
		{"missing TLS files", []string{"--tls-cert", "/missing.pem", "--tls-key", "/missing.pem"}},
		{"missing tokens", []string{"--tokens", "/missing-tokens"}},
		{"metrics port taken", []string{"--metrics-addr", busy.Addr().String()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := filepath.Join(t.TempDir(), "x.db")
			addr := closedAddr(t)
			got := runCLI(t, nil, "", append([]string{"serve", "--store", store, "--addr", addr}, tt.args...)...)
			if got.code != exitFailure {
				t.Errorf("exit %d, want %d; stderr:\n%s", got.code, exitFailure, got.stderr)
			}
			if _, err := os.Stat(store); !os.IsNotExist(err) {
				t.Errorf("%s was created though serve did not start (%v)", store, err)
			}
			l, err := net.Listen("tcp", addr)
			if err != nil {
				t.Errorf("%s is still bound after serve failed: %v", addr, err)
			} else {
				l.Close()
			}
		})
	}
}

func TestPprofOnlyOnLoopback(t *testing.T) {
	got := runCLI(t, nil, "", "serve", "--store", "memory", "--addr", "127.0.0.1:0", "--metrics-addr", "0.0.0.0:0", "--pprof")
	if got.code != exitUsage || !strings.Contains(got.stderr, "--pprof must not face the network") || !strings.Contains(got.stderr, "--insecure") {
		t.Errorf("--pprof on 0.0.0.0: %+v", got)
	}
	got = runCLI(t, map[string]string{"ROUTEGUIDE_PPROF": "true", "ROUTEGUIDE_METRICS_ADDR": ":0"}, "", "serve", "--store", "memory", "--addr", "127.0.0.1:0")
	if got.code != exitUsage {
		t.Errorf("--pprof on every interface, from the environment: exit %d, want %d", got.code, exitUsage)
	}

	// Metrics alone may face the network, with a warning; so may profiles
	// with --insecure.
	for _, extra := range [][]string{nil, {"--pprof", "--insecure"}} {
		srv := runServe(t, noEnv, append([]string{"--store", "memory", "--addr", "127.0.0.1:0", "--metrics-addr", "0.0.0.0:0"}, extra...)...)
		srv.stop(t)
		if !strings.Contains(srv.logs.String(), "level=WARN msg=\"serving metrics") || !strings.Contains(srv.logs.String(), "non-loopback address") {
			t.Errorf("%v: no warning for metrics on 0.0.0.0:\n%s", extra, srv.logs)
		}
	}
}

// TestTLSFromEnvironment checks that the TLS and token flags of serve and of
// the client can be given as environment variables.
func TestTLSFromEnvironment(t *testing.T) {
	ca := newPKI(t, "routeguide test CA")
	srvCert, srvKey := ca.issue(t, "server", "", true)
	cliCert, cliKey := ca.issue(t, "wanda", "writer", false)
	caFile := filepath.Join(ca.dir, "ca.pem")
	tokens := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(tokens, []byte("writer-token-0123456789 wes writer\n"), 0o600)
	serveEnv := map[string]string{
		"ROUTEGUIDE_TLS_CERT":  srvCert,
		"ROUTEGUIDE_TLS_KEY":   srvKey,
		"ROUTEGUIDE_CLIENT_CA": caFile,
		"ROUTEGUIDE_TOKENS":    tokens,
	}
	srv := runServe(t, func(k string) string { return serveEnv[k] }, "--addr", "127.0.0.1:0", "--store", "memory")
	for _, want := range []string{"tls=true", "mtls=true", "tokens=1"} {
		if !strings.Contains(srv.logs.String(), want) {
			t.Errorf("start line lacks %s:\n%s", want, srv.logs)
		}
	}
	clientEnv := map[string]string{"ROUTEGUIDE_CA": caFile, "ROUTEGUIDE_CERT": cliCert, "ROUTEGUIDE_KEY": cliKey}
	if got := runCLI(t, clientEnv, "", "get", "--addr", srv.addr, "--timeout", "5s", "Alice"); got.code != 0 {
		t.Errorf("get with CA and certificate from the environment: %+v", got)
	}
	if got := runCLI(t, map[string]string{"ROUTEGUIDE_TLS": "true"}, "", "get", "--addr", srv.addr, "--timeout", "5s", "Alice"); got.code == 0 || strings.Contains(got.stderr, "server preface") {
		// ROUTEGUIDE_TLS alone speaks TLS (no plaintext preface error) but
		// does not trust the test CA.
		t.Errorf("get with ROUTEGUIDE_TLS and the system's CAs: %+v", got)
	}
}

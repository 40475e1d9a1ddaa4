package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestTLSFailuresNameTheFix checks that a client whose TLS settings do not
// match the server's is told what is wrong and which flag fixes it, against
// real TLS, mTLS and plaintext servers.
func TestTLSFailuresNameTheFix(t *testing.T) {
	ca, other := newPKI(t, "routeguide test CA"), newPKI(t, "another CA")
	srvCert, srvKey := ca.issue(t, "server", "", true)
	strangerCert, strangerKey := other.issue(t, "mallory", "writer", false)
	caFile, otherCA := filepath.Join(ca.dir, "ca.pem"), filepath.Join(other.dir, "ca.pem")
	tlsAddr := startServer(t, "--tls-cert", srvCert, "--tls-key", srvKey)
	mtlsAddr := startServer(t, "--tls-cert", srvCert, "--tls-key", srvKey, "--client-ca", caFile)
	plainAddr := startServer(t)

	tests := []struct {
		name string
		args []string
		want []string // each on stderr
	}{
		{"plaintext client, TLS server", []string{"--addr", tlsAddr}, []string{"the server speaks TLS and this client plaintext", "--tls", "--ca"}},
		{"plaintext client, mTLS server", []string{"--addr", mtlsAddr}, []string{"the server speaks TLS and this client plaintext", "--tls", "--cert"}},
		{"system CAs only", []string{"--addr", tlsAddr, "--tls"}, []string{"not signed by a CA the system trusts", "--ca FILE"}},
		{"another CA", []string{"--addr", tlsAddr, "--ca", otherCA}, []string{"not signed by the CA in --ca " + otherCA, "--ca FILE"}},
		{"no client certificate", []string{"--addr", mtlsAddr, "--ca", caFile}, []string{"requires a client certificate", "--cert FILE --key FILE"}},
		{"client certificate from another CA", []string{"--addr", mtlsAddr, "--ca", caFile, "--cert", strangerCert, "--key", strangerKey}, []string{"refused the client certificate in --cert " + strangerCert, "--cert FILE --key FILE"}},
		{"TLS client, plaintext server", []string{"--addr", plainAddr, "--tls"}, []string{"the server speaks plaintext and this client TLS", "without --tls, --ca, --cert and --key"}},
	}
	for _, tt := range tests {
		for _, cmd := range []string{"get", "watch"} { // a unary call and a stream
			t.Run(tt.name+"/"+cmd, func(t *testing.T) {
				args := append([]string{cmd, "--timeout", "10s"}, tt.args...)
				if cmd == "get" {
					args = append(args, "Alice")
				}
				got := runCLI(t, nil, "", args...)
				if got.code != exitFailure || strings.Count(got.stderr, "\n") != 1 {
					t.Errorf("exit %d, stderr %q; want exit 1 and one line", got.code, got.stderr)
				}
				for _, w := range tt.want {
					if !strings.Contains(got.stderr, w) {
						t.Errorf("stderr %q does not say %q", got.stderr, w)
					}
				}
			})
		}
	}
}

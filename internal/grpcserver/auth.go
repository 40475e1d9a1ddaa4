package grpcserver

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Role is what a caller may do.
type Role int

// The roles, each allowed what the one before it is.
const (
	RoleNone   Role = iota
	RoleReader      // may read
	RoleWriter      // may also add, change, delete and import
)

// rolePublic marks methods anyone may call, credentials or not.
const rolePublic Role = -1

// String returns "reader", "writer" or "none".
func (r Role) String() string {
	switch r {
	case RoleReader:
		return "reader"
	case RoleWriter:
		return "writer"
	}
	return "none"
}

// methodRoles is the role each method needs. A method missing here is
// refused to everyone: deny by default, so a method added later stays closed
// until it is classified (a test walks the service descriptors to check).
var methodRoles = map[string]Role{
	"/RouteGuide/GetPerson":         RoleReader,
	"/RouteGuide/GetPeople":         RoleReader,
	"/RouteGuide/ListPeople":        RoleReader,
	"/RouteGuide/WatchPeople":       RoleReader,
	"/RouteGuide/AddPerson":         RoleWriter,
	"/RouteGuide/UpdatePerson":      RoleWriter,
	"/RouteGuide/DeletePerson":      RoleWriter,
	"/RouteGuide/ImportPeople":      RoleWriter,
	"/RouteGuide/ListPersonChanges": RoleReader,

	"/grpc.health.v1.Health/Check": rolePublic,
	"/grpc.health.v1.Health/Watch": rolePublic,
	"/grpc.health.v1.Health/List":  rolePublic,

	"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      RoleReader,
	"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": RoleReader,
}

// Principal is who is calling.
type Principal struct {
	Name string
	Role Role
}

// Auth decides who a caller is. With neither tokens nor client certificates
// configured, a caller on the same machine is a writer and any other a
// reader; with either configured, every caller must present one.
type Auth struct {
	tokens     []Token
	clientCert bool // client certificates are verified (mTLS)
}

// Token is one bearer token's principal. Only the token's hash is kept.
type Token struct {
	hash [sha256.Size]byte
	Principal
}

// minTokenLen is the shortest token LoadTokens accepts, in bytes: short
// enough for any generator, long enough that guessing is hopeless.
const minTokenLen = 16

// LoadTokens reads a tokens file: one "TOKEN NAME ROLE" entry a line,
// fields separated by spaces or tabs, ROLE reader or writer, TOKEN at least
// minTokenLen bytes; blank lines and lines whose first non-blank character
// is # are skipped. It fails naming the file and line of any malformed
// entry, without echoing the token; it fails when the file holds no token
// at all, since an empty file must not quietly turn authentication off, and
// when a token appears twice, naming both lines, since one of the two
// entries would otherwise be silently ignored. One name may hold several
// tokens (to rotate a token, add the new one, then remove the old).
func LoadTokens(path string) ([]Token, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	defer f.Close()
	var out []Token
	seen := map[[sha256.Size]byte]int{} // token hash to its line
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) != 3 {
			return nil, fmt.Errorf("tokens: %s line %d: want TOKEN NAME ROLE", path, line)
		}
		var role Role
		switch fields[2] {
		case "reader":
			role = RoleReader
		case "writer":
			role = RoleWriter
		default:
			return nil, fmt.Errorf("tokens: %s line %d: role %q is not reader or writer", path, line, fields[2])
		}
		if len(fields[0]) < minTokenLen {
			return nil, fmt.Errorf("tokens: %s line %d: the token is shorter than %d characters", path, line, minTokenLen)
		}
		h := sha256.Sum256([]byte(fields[0]))
		if first, dup := seen[h]; dup {
			return nil, fmt.Errorf("tokens: %s line %d: the token of line %d again; each token must name one principal", path, line, first)
		}
		seen[h] = line
		out = append(out, Token{hash: h, Principal: Principal{Name: fields[1], Role: role}})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tokens: %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("tokens: %s holds no token; refusing to start with authentication off (omit --tokens to run without tokens)", path)
	}
	return out, nil
}

// NewAuth returns the Auth for the given tokens, and for client certificates
// when clientCert is true.
func NewAuth(tokens []Token, clientCert bool) *Auth {
	return &Auth{tokens: tokens, clientCert: clientCert}
}

func (a *Auth) configured() bool { return a != nil && (len(a.tokens) > 0 || a.clientCert) }

// authenticate returns the caller's principal, or UNAUTHENTICATED.
func (a *Auth) authenticate(ctx context.Context) (Principal, error) {
	if vals := metadata.ValueFromIncomingContext(ctx, "authorization"); len(vals) > 0 {
		token, ok := bearer(vals[0])
		if !ok {
			return Principal{}, status.Error(codes.Unauthenticated, "invalid credentials")
		}
		if a == nil || len(a.tokens) == 0 {
			// Refused rather than ignored: a caller that sends a token
			// expects to act as its principal, and should learn that this
			// server does not know it rather than get another role.
			return Principal{}, status.Error(codes.Unauthenticated, "this server accepts no bearer tokens (it was started without --tokens); call it without one")
		}
		// Compare hashes, every entry, in constant time: neither the
		// result nor the time says how much of a token was right.
		h := sha256.Sum256([]byte(token))
		found := -1
		for i := range a.tokens {
			if subtle.ConstantTimeCompare(h[:], a.tokens[i].hash[:]) == 1 {
				found = i
			}
		}
		if found < 0 {
			return Principal{}, status.Error(codes.Unauthenticated, "invalid credentials")
		}
		return a.tokens[found].Principal, nil
	}
	p, _ := peer.FromContext(ctx)
	if a != nil && a.clientCert {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 {
			return certPrincipal(ti.State), nil
		}
	}
	if a.configured() {
		return Principal{}, status.Error(codes.Unauthenticated, "credentials required: a bearer token or a client certificate")
	}
	if local(p) {
		return Principal{Name: "local", Role: RoleWriter}, nil
	}
	return Principal{Name: "anonymous", Role: RoleReader}, nil
}

// bearer returns the token of an authorization header value using the
// Bearer scheme, whose name is case-insensitive (RFC 7235, section 2.1).
func bearer(v string) (token string, ok bool) {
	const scheme = "bearer "
	if len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return "", false
	}
	return v[len(scheme):], true
}

// certPrincipal names a verified client certificate's holder by its common
// name; its organizational unit "writer" makes it a writer, else a reader.
func certPrincipal(st tls.ConnectionState) Principal {
	cert := st.VerifiedChains[0][0]
	role := RoleReader
	for _, ou := range cert.Subject.OrganizationalUnit {
		if ou == "writer" {
			role = RoleWriter
		}
	}
	return Principal{Name: cert.Subject.CommonName, Role: role}
}

// local reports whether the peer is on this machine: a loopback address, or
// a connection that is not over IP at all (in process, a Unix socket).
func local(p *peer.Peer) bool {
	if p == nil || p.Addr == nil {
		return false
	}
	if tcp, ok := p.Addr.(*net.TCPAddr); ok {
		return tcp.IP.IsLoopback()
	}
	if p.Addr.Network() == "tcp" {
		// A call through ServeHTTP (the HTTP listener) has its peer as the
		// request's RemoteAddr string: the TCP peer the HTTP server
		// accepted, or the client a trusted proxy named.
		ap, err := netip.ParseAddrPort(p.Addr.String())
		return err == nil && ap.Addr().IsLoopback()
	}
	return p.Addr.Network() != "udp"
}

// authorize returns nil when principal may call method, else
// PERMISSION_DENIED. It never looks at the request, so the answer is the
// same whether the person concerned exists or not.
func authorize(method string, principal Principal) error {
	need, ok := methodRoles[method]
	switch {
	case !ok:
		return status.Errorf(codes.PermissionDenied, "%s is not open to any role", method)
	case need == rolePublic || principal.Role >= need:
		return nil
	}
	return status.Errorf(codes.PermissionDenied, "%s needs the %s role; %s is a %s", method, need, principal.Name, principal.Role)
}

// check authenticates and authorizes one call, and returns the caller's
// principal (the zero Principal for a public method, which needs none).
func (a *Auth) check(ctx context.Context, method string) (Principal, error) {
	need, known := methodRoles[method]
	if known && need == rolePublic {
		return Principal{}, nil
	}
	pr, err := a.authenticate(ctx)
	if err != nil {
		return Principal{}, err
	}
	return pr, authorize(method, pr)
}

// ServerTLS returns the TLS configuration for certFile and keyFile: TLS 1.2
// or later, HTTP/2. With clientCAFile, clients must present a certificate
// from one of its CAs.
func ServerTLS(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2"}}
	if clientCAFile != "" {
		pem, err := os.ReadFile(clientCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls: client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: client CA %s holds no PEM certificate", clientCAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

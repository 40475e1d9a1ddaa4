package grpcserver

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// TestEveryMethodIsClassified walks every service the server registers: a
// method added later is refused to everyone until methodRoles names it, and
// this test says so.
func TestEveryMethodIsClassified(t *testing.T) {
	srv := New(seedStore(), Options{Log: slog.New(slog.DiscardHandler), Limits: DefaultLimits()})
	defer srv.Shutdown(context.Background())
	n := 0
	for svc, info := range srv.grpc.GetServiceInfo() {
		for _, m := range info.Methods {
			n++
			method := "/" + svc + "/" + m.Name
			if _, ok := methodRoles[method]; !ok {
				t.Errorf("%s has no role in methodRoles, so everyone is refused it", method)
			}
		}
	}
	if n < 10 {
		t.Errorf("walked only %d methods", n)
	}
	if err := authorize("/RouteGuide/SomethingNew", Principal{Name: "root", Role: RoleWriter}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("an unclassified method: %v, want PERMISSION_DENIED", err)
	}
}

func withPeer(ip string) context.Context {
	return peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP(ip), Port: 5555}})
}

func withToken(ctx context.Context, token string) context.Context {
	return metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", "Bearer "+token))
}

func TestAuthWithoutCredentialsConfigured(t *testing.T) {
	var a *Auth // nothing configured
	tests := []struct {
		ctx    context.Context
		method string
		code   codes.Code
	}{
		{withPeer("127.0.0.1"), "/RouteGuide/AddPerson", codes.OK},
		{withPeer("::1"), "/RouteGuide/ImportPeople", codes.OK},
		{withPeer("192.0.2.7"), "/RouteGuide/GetPerson", codes.OK},
		{withPeer("192.0.2.7"), "/RouteGuide/AddPerson", codes.PermissionDenied},
		{withPeer("192.0.2.7"), "/RouteGuide/UpdatePerson", codes.PermissionDenied},
		{withPeer("192.0.2.7"), "/RouteGuide/DeletePerson", codes.PermissionDenied},
		{withPeer("192.0.2.7"), "/RouteGuide/ImportPeople", codes.PermissionDenied},
		{withToken(withPeer("127.0.0.1"), "some-token-nobody-has"), "/RouteGuide/GetPerson", codes.Unauthenticated},
	}
	for _, tt := range tests {
		if _, err := a.check(tt.ctx, tt.method); status.Code(err) != tt.code {
			p, _ := peer.FromContext(tt.ctx)
			t.Errorf("%v calling %s: %v, want %v", p.Addr, tt.method, err, tt.code)
		}
	}
}

func TestAuthWithTokens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(path, []byte("# token name role\nreader-token-0123456789 rita reader\n\nwriter-token-0123456789 wes writer\n"), 0o600)
	tokens, err := LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	a := NewAuth(tokens, false)
	local := withPeer("127.0.0.1")
	tests := []struct {
		name   string
		ctx    context.Context
		method string
		code   codes.Code
	}{
		{"anonymous, even local", local, "/RouteGuide/GetPerson", codes.Unauthenticated},
		{"anonymous health check", local, "/grpc.health.v1.Health/Check", codes.OK},
		{"wrong token", withToken(local, "reader-token-0123456780"), "/RouteGuide/GetPerson", codes.Unauthenticated},
		{"reader reads", withToken(local, "reader-token-0123456789"), "/RouteGuide/ListPeople", codes.OK},
		{"reader adds", withToken(local, "reader-token-0123456789"), "/RouteGuide/AddPerson", codes.PermissionDenied},
		{"reader imports", withToken(withPeer("192.0.2.7"), "reader-token-0123456789"), "/RouteGuide/ImportPeople", codes.PermissionDenied},
		{"writer adds from afar", withToken(withPeer("192.0.2.7"), "writer-token-0123456789"), "/RouteGuide/AddPerson", codes.OK},
		{"not a bearer token", metadata.NewIncomingContext(local, metadata.Pairs("authorization", "Basic abc")), "/RouteGuide/GetPerson", codes.Unauthenticated},
	}
	for _, tt := range tests {
		if _, err := a.check(tt.ctx, tt.method); status.Code(err) != tt.code {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.code)
		}
	}
}

func TestLoadTokensErrors(t *testing.T) {
	tests := []struct {
		name, content string
		want          []string // in the error, beside the file's path
	}{
		{"two fields", "abcdefghijklmnopq rita\n", []string{"line 1", "want TOKEN NAME ROLE"}},
		{"bad role", "abcdefghijklmnopq rita admin\n", []string{"line 1", `role "admin"`}},
		{"short token", "short rita reader\n", []string{"line 1", "shorter than 16"}},
		{"empty file", "", []string{"holds no token"}},
		{"only comments and blanks", "# token name role\n\n   \n\t# abcdefghijklmnopq rita reader\n", []string{"holds no token"}},
		{"same token, other name", "abcdefghijklmnopq rita reader\n# rotated\nabcdefghijklmnopq wes writer\n", []string{"line 3", "line 1"}},
		{"same token, same entry", "abcdefghijklmnopq rita reader\n abcdefghijklmnopq\trita  reader \n", []string{"line 2", "line 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tokens")
			os.WriteFile(path, []byte(tt.content), 0o600)
			_, err := LoadTokens(path)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range append(tt.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "abcdefghijklmnopq") {
				t.Errorf("the error shows the token: %v", err)
			}
		})
	}
}

func TestLoadTokens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	// Tabs and runs of spaces separate fields; one name may hold two tokens.
	os.WriteFile(path, []byte("  # comment\n\nold-token-0123456789\trita\treader\n  new-token-0123456789   rita  reader  \nabcdefghijklmnop wes writer"), 0o600)
	tokens, err := LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []Principal
	for _, tok := range tokens {
		got = append(got, tok.Principal)
	}
	want := []Principal{{"rita", RoleReader}, {"rita", RoleReader}, {"wes", RoleWriter}}
	if !slices.Equal(got, want) {
		t.Errorf("principals = %v, want %v", got, want)
	}
}

// TestBearerSchemeAnyCase checks that the scheme's name is matched without
// regard to case, and nothing else is loosened.
func TestBearerSchemeAnyCase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(path, []byte("reader-token-0123456789 rita reader\n"), 0o600)
	tokens, err := LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	a := NewAuth(tokens, false)
	for _, tt := range []struct {
		header string
		code   codes.Code
	}{
		{"Bearer reader-token-0123456789", codes.OK},
		{"bearer reader-token-0123456789", codes.OK},
		{"BEARER reader-token-0123456789", codes.OK},
		{"bEaReR reader-token-0123456789", codes.OK},
		{"Bearer READER-TOKEN-0123456789", codes.Unauthenticated}, // the token itself is exact
		{"Bearerreader-token-0123456789", codes.Unauthenticated},
		{"Bearer", codes.Unauthenticated},
		{"Basic reader-token-0123456789", codes.Unauthenticated},
		{"reader-token-0123456789", codes.Unauthenticated},
	} {
		ctx := metadata.NewIncomingContext(withPeer("127.0.0.1"), metadata.Pairs("authorization", tt.header))
		if _, err := a.check(ctx, "/RouteGuide/GetPerson"); status.Code(err) != tt.code {
			t.Errorf("authorization %q: %v, want %v", tt.header, err, tt.code)
		}
	}
}

// TestTokenToAServerWithoutTokens checks that a server started without
// --tokens refuses a bearer token, saying why.
func TestTokenToAServerWithoutTokens(t *testing.T) {
	for _, a := range []*Auth{nil, NewAuth(nil, true)} {
		_, err := a.check(withToken(withPeer("127.0.0.1"), "some-token-nobody-has"), "/RouteGuide/GetPerson")
		if st := status.Convert(err); st.Code() != codes.Unauthenticated || !strings.Contains(st.Message(), "accepts no bearer tokens") {
			t.Errorf("a token to a server without tokens (client certificates %v): %v, want UNAUTHENTICATED saying it accepts no tokens", a != nil, err)
		}
	}
}

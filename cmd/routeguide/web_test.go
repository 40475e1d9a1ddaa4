package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	enc "encoding/binary"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/routeguide/routeguide/routeguidepb"
)

var httpAddrLine = regexp.MustCompile(`msg="serving RouteGuide" .*http_addr=(\S+)`)

// httpURL returns the base URL of p's HTTP listener.
func (p *process) httpURL(t *testing.T, scheme string) string {
	t.Helper()
	m := httpAddrLine.FindStringSubmatch(p.log())
	if m == nil || m[1] == "" {
		t.Fatalf("no http_addr in the start line:\n%s", p.log())
	}
	return scheme + "://" + m[1]
}

type reply struct {
	code   int
	header http.Header
	body   string
	proto  string
}

func call(t *testing.T, c *http.Client, method, url, contentType, body string, headers ...string) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, string(b), resp.Proto}
}

// TestWebEndToEnd runs the built binary's HTTP listener: the page, the
// OpenAPI document, REST, Connect and gRPC-Web, and the browser guards.
func TestWebEndToEnd(t *testing.T) {
	p := serve(t, "--store", "memory", "--http-addr", "127.0.0.1:0")
	u := p.httpURL(t, "http")
	c := http.DefaultClient
	const js = "application/json"

	if r := call(t, c, "GET", u+"/v1/people/Alice", "", ""); r.code != 200 || !strings.Contains(r.body, `"name":"Alice"`) {
		t.Errorf("GET /v1/people/Alice: %d %s", r.code, r.body)
	}
	if r := call(t, c, "GET", u+"/v1/people/Nobody", "", ""); r.code != 404 || !strings.Contains(r.body, `"code":5`) {
		t.Errorf("GET /v1/people/Nobody: %d %s, want 404 with code 5", r.code, r.body)
	}
	r := call(t, c, "POST", u+"/v1/people", js, `{"name":"Carol","age":33}`)
	if r.code != 201 || r.header.Get("Location") != "/v1/people/Carol" {
		t.Errorf("POST /v1/people: %d %v %s, want 201 and Location /v1/people/Carol", r.code, r.header, r.body)
	}
	if r := call(t, c, "POST", u+"/RouteGuide/GetPerson", js, `{"name":"Carol"}`); r.code != 200 || !strings.Contains(r.body, `"age":33`) {
		t.Errorf("Connect GetPerson: %d %s", r.code, r.body)
	}
	msg, _ := proto.Marshal(&pb.Name{Name: "Bob"})
	framed := append(enc.BigEndian.AppendUint32([]byte{0}, uint32(len(msg))), msg...)
	r = call(t, c, "POST", u+"/RouteGuide/GetPerson", "application/grpc-web+proto", string(framed), "X-Grpc-Web: 1")
	var bob pb.Person
	if r.code != 200 || len(r.body) < 5 || proto.Unmarshal([]byte(r.body[5:5+enc.BigEndian.Uint32([]byte(r.body[1:5]))]), &bob) != nil || bob.GetName() != "Bob" {
		t.Errorf("gRPC-Web GetPerson: %d %q", r.code, r.body)
	}
	if r := call(t, c, "DELETE", u+"/v1/people/Carol", "", ""); r.code != 204 {
		t.Errorf("DELETE: %d %s, want 204", r.code, r.body)
	}
	if r := call(t, c, "GET", u+"/", "", ""); r.code != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Errorf("GET /: %d %s, want the page", r.code, r.header.Get("Content-Type"))
	}
	if r := call(t, c, "GET", u+"/openapi.json", "", ""); r.code != 200 || !strings.Contains(r.body, `"/v1/people/{name}"`) {
		t.Errorf("GET /openapi.json: %d %.200s", r.code, r.body)
	}

	// The attacks a local writer's browser could carry.
	if r := call(t, c, "POST", u+"/v1/people", js, `{"name":"Mallory"}`, "Host: rebound.example"); r.code != 403 {
		t.Errorf("DNS rebinding write: %d %s, want 403", r.code, r.body)
	}
	if r := call(t, c, "POST", u+"/v1/people", js, `{"name":"Mallory"}`, "Origin: https://evil.example", "Sec-Fetch-Site: cross-site"); r.code != 403 {
		t.Errorf("cross-site write: %d %s, want 403", r.code, r.body)
	}
	if r := call(t, c, "POST", u+"/v1/people", "text/plain", `{"name":"Mallory"}`); r.code != 415 {
		t.Errorf("a text/plain write: %d %s, want 415", r.code, r.body)
	}
	if r := call(t, c, "GET", u+"/v1/people/Mallory", "", ""); r.code != 404 {
		t.Errorf("Mallory was stored: %d %s", r.code, r.body)
	}
}

// TestWebSafeWrites runs the built binary's safe writes over REST, on the
// default SQLite store: two PATCHes with the same If-Match race, one wins
// with 200 and the other is 412; a POST retried with its Idempotency-Key
// answers the same person, and the directory records one change.
func TestWebSafeWrites(t *testing.T) {
	p := serve(t, "--http-addr", "127.0.0.1:0")
	u := p.httpURL(t, "http")
	c := http.DefaultClient
	const json = "application/json"

	const key = "Idempotency-Key: 3b0f6f0e-8f5a-4d55-b1f9-6c3a2d7e9e01"
	first := call(t, c, "POST", u+"/v1/people", json, `{"name":"Carol","age":41}`, key)
	again := call(t, c, "POST", u+"/v1/people", json, `{"name":"Carol","age":41}`, key)
	if first.code != 201 || again.code != 201 || again.body != first.body || again.header.Get("ETag") != first.header.Get("ETag") {
		t.Fatalf("POST retried with its Idempotency-Key: %d %s, then %d %s; want the same 201 twice", first.code, first.body, again.code, again.body)
	}
	changes := call(t, c, "GET", u+"/v1/people/Carol/changes", "", "")
	if n := strings.Count(changes.body, `"revision"`); changes.code != 200 || n != 1 {
		t.Errorf("Carol's changes after the retried POST: %d %s, want one revision", changes.code, changes.body)
	}

	etag := call(t, c, "GET", u+"/v1/people/Carol", "", "").header.Get("ETag")
	if etag != first.header.Get("ETag") || !strings.HasPrefix(etag, `"`) {
		t.Fatalf("GET Carol: ETag %q, want POST's %q", etag, first.header.Get("ETag"))
	}
	codes := make(chan int, 2)
	for _, age := range []string{"42", "43"} {
		go func() {
			req, _ := http.NewRequest("PATCH", u+"/v1/people/Carol?update_mask=age", strings.NewReader(`{"age":`+age+`}`))
			req.Header.Set("Content-Type", json)
			req.Header.Set("If-Match", etag)
			resp, err := c.Do(req)
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	got := []int{<-codes, <-codes}
	if !(got[0] == 200 && got[1] == 412 || got[0] == 412 && got[1] == 200) {
		t.Errorf("two PATCHes with the same If-Match: %v, want one 200 and one 412", got)
	}
}

// TestWebTokens checks auth and roles over HTTP against the binary.
func TestWebTokens(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(tokens, []byte("reader-token-0123456789 rita reader\nwriter-token-0123456789 wes writer\n"), 0o600)
	p := serve(t, "--store", "memory", "--http-addr", "127.0.0.1:0", "--tokens", tokens)
	u := p.httpURL(t, "http")
	c := http.DefaultClient
	for _, tt := range []struct {
		method, path, body, token string
		want                      int
	}{
		{"GET", "/v1/people/Alice", "", "", 401},
		{"GET", "/v1/people/Alice", "", "reader-token-0123456789", 200},
		{"POST", "/v1/people", `{"name":"Rita"}`, "reader-token-0123456789", 403},
		{"POST", "/v1/people", `{"name":"Wes"}`, "writer-token-0123456789", 201},
		{"GET", "/v1/people:watch", "", "", 401},
	} {
		var hs []string
		if tt.token != "" {
			hs = append(hs, "Authorization: Bearer "+tt.token)
		}
		ct := ""
		if tt.body != "" {
			ct = "application/json"
		}
		if r := call(t, c, tt.method, u+tt.path, ct, tt.body, hs...); r.code != tt.want {
			t.Errorf("%s %s with token %q: %d %s, want %d", tt.method, tt.path, tt.token, r.code, r.body, tt.want)
		}
	}
}

// TestWebTLS checks HTTPS and client certificates on the HTTP listener:
// HTTP/2 by ALPN, the certificate's role, and no service without one.
func TestWebTLS(t *testing.T) {
	ca := newTestCA(t)
	cert, key := ca.issue(t, "server", "", true)
	p := serve(t, "--store", "memory", "--http-addr", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key, "--client-ca", ca.path)
	u := p.httpURL(t, "https")
	client := func(cn, ou string) *http.Client {
		cfg := &tls.Config{RootCAs: ca.pool()}
		if cn != "" {
			c, k := ca.issue(t, cn, ou, false)
			pair, err := tls.LoadX509KeyPair(c, k)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{pair}
		}
		tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}
	writer, reader := client("wes", "writer"), client("rita", "")
	r := call(t, writer, "POST", u+"/v1/people", "application/json", `{"name":"Wes"}`)
	if r.code != 201 || r.proto != "HTTP/2.0" {
		t.Errorf("a writer's POST over HTTPS: %d %s %s, want 201 over HTTP/2", r.code, r.proto, r.body)
	}
	if r := call(t, reader, "POST", u+"/v1/people", "application/json", `{"name":"Rita"}`); r.code != 403 {
		t.Errorf("a reader's POST: %d %s, want 403", r.code, r.body)
	}
	if r := call(t, reader, "GET", u+"/v1/people/Wes", "", ""); r.code != 200 {
		t.Errorf("a reader's GET: %d %s, want 200", r.code, r.body)
	}
	req, _ := http.NewRequest("GET", u+"/v1/people/Wes", nil)
	if resp, err := client("", "").Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("a client without a certificate was answered %d", resp.StatusCode)
	}
}

// TestWebWatchResumesAfterRestart checks that a watch feed cut by a server
// restart resumes with Last-Event-ID where it left off, with no change
// lost, from the SQLite store file.
func TestWebWatchResumesAfterRestart(t *testing.T) {
	store := filepath.Join(t.TempDir(), "people.db")
	p := serve(t, "--store", store, "--http-addr", "127.0.0.1:0")
	u := p.httpURL(t, "http")
	feed := openFeed(t, u, "")
	feed.next(t) // the starting id
	call(t, http.DefaultClient, "POST", u+"/v1/people", "application/json", `{"name":"Carol"}`)
	ev := feed.next(t)
	if ev.name != "added" || !strings.Contains(ev.data, "Carol") || ev.id == "" {
		t.Fatalf("got %+v, want Carol added with an id", ev)
	}
	last := ev.id

	p.cmd.Process.Signal(syscall.SIGTERM)
	if ev := feed.next(t); ev.name != "error" || !strings.Contains(ev.data, `"code":14`) {
		t.Errorf("at the stop: %+v, want an error event with UNAVAILABLE", ev)
	}
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit %d; logs:\n%s", code, p.log())
	}

	p = serve(t, "--store", store, "--http-addr", "127.0.0.1:0")
	u = p.httpURL(t, "http")
	// A change while the client was away.
	call(t, http.DefaultClient, "POST", u+"/v1/people", "application/json", `{"name":"Dan"}`)
	feed = openFeed(t, u, last)
	for {
		ev := feed.next(t)
		if ev.name == "" {
			continue // the starting id
		}
		if ev.name != "added" || !strings.Contains(ev.data, "Dan") {
			t.Fatalf("resumed after %s: %+v, want Dan added, the change after it", last, ev)
		}
		break
	}
}

type feed struct{ r *bufio.Reader }

type feedEvent struct{ id, name, data string }

func openFeed(t *testing.T, base, lastID string) *feed {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/people:watch", nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		t.Fatalf("watch: %d", resp.StatusCode)
	}
	return &feed{bufio.NewReader(resp.Body)}
}

func (f *feed) next(t *testing.T) feedEvent {
	t.Helper()
	var ev feedEvent
	for {
		line, err := f.r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the feed: %v", err)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			return ev
		}
		k, v, _ := strings.Cut(line, ": ")
		switch k {
		case "id":
			ev.id = v
		case "event":
			ev.name = v
		case "data":
			ev.data = v
		}
	}
}

// testCA is a certificate authority for a test, and the files it issued.
type testCA struct {
	dir, path string
	cert      *x509.Certificate
	key       *ecdsa.PrivateKey
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{dir: t.TempDir(), cert: cert, key: key}
	ca.path = ca.write(t, "ca.pem", "CERTIFICATE", der)
	return ca
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

func (ca *testCA) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(ca.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// issue writes a certificate for cn with the organizational unit ou, for a
// server on loopback when server is true, and returns its and its key's
// paths.
func (ca *testCA) issue(t *testing.T, cn, ou string, server bool) (certPath, keyPath string) {
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
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return ca.write(t, cn+".pem", "CERTIFICATE", der), ca.write(t, cn+"-key.pem", "EC PRIVATE KEY", kder)
}

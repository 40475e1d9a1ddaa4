package httpserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/routeguide/routeguide/internal/grpcserver"
	"github.com/routeguide/routeguide/internal/memory"
	"github.com/routeguide/routeguide/internal/people"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fixture is the HTTP listener in front of a RouteGuide server over a
// memory store, on loopback TCP: callers are local, so writers, unless
// the server has tokens or a trusted proxy says otherwise.
type fixture struct {
	url  string
	addr string
	// url2 is a second listener of the same server, as a host name with
	// two addresses (localhost) gives it.
	url2 string
	svc  *grpcserver.Server
	hs   *Server
}

// setup is what a test changes in the fixture.
type setup struct {
	opts    Options
	auth    *grpcserver.Auth
	limits  *grpcserver.Limits
	retain  int             // changes the memory store keeps; 0 means all
	initial []people.Person // the store's people; nil means the seed's
	wrap    func(http.Handler) http.Handler
}

func start(t testing.TB, s setup) *fixture {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	limits := grpcserver.DefaultLimits()
	if s.limits != nil {
		limits = *s.limits
	}
	initial := s.initial
	if initial == nil {
		initial = people.Seed()
	}
	svc := grpcserver.New(memory.New(s.retain, initial...), grpcserver.Options{Log: log, Limits: limits, Auth: s.auth, StreamWorkers: -1})
	var service Service = svc
	if s.wrap != nil {
		service = wrapped{svc, s.wrap(svc)}
	}
	o := s.opts
	o.Log, o.Limits = log, limits
	if o.Page == nil {
		o.Page = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "the page") })
	}
	hs, err := New(service, o)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(l, l2) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		svc.Drain()
		hs.Shutdown(ctx)
		svc.Shutdown(ctx)
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &fixture{url: "http://" + l.Addr().String(), addr: l.Addr().String(), url2: "http://" + l2.Addr().String(), svc: svc, hs: hs}
}

// wrapped is a Service whose calls go through a wrapping handler.
type wrapped struct {
	*grpcserver.Server
	h http.Handler
}

func (w wrapped) ServeHTTP(rw http.ResponseWriter, r *http.Request) { w.h.ServeHTTP(rw, r) }

// answer is one HTTP answer, read whole.
type answer struct {
	code   int
	header http.Header
	body   string
}

// do sends a request with the given headers ("Name: value") and returns
// the answer.
func (f *fixture) do(t *testing.T, method, path, body string, headers ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, f.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// rpcStatus is the JSON error body of the REST routes and the guards.
type rpcStatus struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Details []struct {
		Type            string `json:"@type"`
		FieldViolations []struct {
			Field       string `json:"field"`
			Description string `json:"description"`
		} `json:"fieldViolations"`
	} `json:"details"`
}

func errorOf(t *testing.T, a answer) rpcStatus {
	t.Helper()
	var st rpcStatus
	if err := json.Unmarshal([]byte(a.body), &st); err != nil {
		t.Fatalf("error body %q: %v", a.body, err)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type %q, want application/json", ct)
	}
	return st
}

func personOf(t *testing.T, body string) map[string]any {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatalf("person %q: %v", body, err)
	}
	return p
}

// TestEveryListenerServes checks that a server on two listeners answers on
// both: http.Server's first Serve sets up HTTP/2 and with it a TLS config,
// which must not turn the other listener to TLS.
func TestEveryListenerServes(t *testing.T) {
	f := start(t, setup{})
	client := &http.Client{Timeout: 5 * time.Second}
	for _, u := range []string{f.url, f.url2} {
		resp, err := client.Get(u + "/v1/people/Alice")
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s, want 200", u, resp.Status)
		}
	}
}

func TestConnect(t *testing.T) {
	f := start(t, setup{})
	t.Run("JSON", func(t *testing.T) {
		a := f.do(t, "POST", "/RouteGuide/GetPerson", `{"name":"Alice"}`)
		if a.code != 200 || personOf(t, a.body)["name"] != "Alice" {
			t.Fatalf("GetPerson Alice: %d %s", a.code, a.body)
		}
		// The seed's answer for a name nobody has, as over gRPC.
		a = f.do(t, "POST", "/RouteGuide/GetPerson", `{"name":"Nobody"}`, "Connect-Protocol-Version: 1")
		if a.code != 200 || personOf(t, a.body)["name"] != people.NotFoundName {
			t.Fatalf("GetPerson Nobody: %d %s, want the seed's Not Found person", a.code, a.body)
		}
		a = f.do(t, "POST", "/RouteGuide/AddPerson", `{"person":{"name":"Zed","age":-1}}`)
		if a.code != 400 || !strings.Contains(a.body, `"invalid_argument"`) || !strings.Contains(a.body, "fieldViolations") {
			t.Errorf("AddPerson with a bad age: %d %s, want 400 invalid_argument with field violations", a.code, a.body)
		}
	})
	t.Run("binary", func(t *testing.T) {
		msg, _ := proto.Marshal(&pb.Name{Name: "Bob"})
		a := f.do(t, "POST", "/RouteGuide/GetPerson", string(msg), "Content-Type: application/proto", "Connect-Protocol-Version: 1")
		var p pb.Person
		if a.code != 200 || proto.Unmarshal([]byte(a.body), &p) != nil || p.GetName() != "Bob" {
			t.Fatalf("GetPerson Bob in binary: %d %q", a.code, a.body)
		}
	})
	t.Run("gRPC-Web", func(t *testing.T) {
		msg, _ := proto.Marshal(&pb.Name{Name: "Alice"})
		a := f.do(t, "POST", "/RouteGuide/GetPerson", string(frame(0, msg)), "Content-Type: application/grpc-web+proto", "X-Grpc-Web: 1")
		frames := frames(t, []byte(a.body))
		if a.code != 200 || len(frames) != 2 {
			t.Fatalf("gRPC-Web GetPerson: %d, %d frames, want 200 and a message and trailers", a.code, len(frames))
		}
		var p pb.Person
		if err := proto.Unmarshal(frames[0].data, &p); err != nil || p.GetName() != "Alice" {
			t.Errorf("gRPC-Web message: %v %v, want Alice", &p, err)
		}
		if frames[1].flags&0x80 == 0 || !strings.Contains(strings.ToLower(string(frames[1].data)), "grpc-status: 0") {
			t.Errorf("gRPC-Web trailers %q (flags %x), want grpc-status:0", frames[1].data, frames[1].flags)
		}
	})
	t.Run("gRPC over h2c", func(t *testing.T) {
		conn, err := grpc.NewClient(f.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		p, err := pb.NewRouteGuideClient(conn).GetPerson(context.Background(), &pb.Name{Name: "Alice"})
		if err != nil || p.GetName() != "Alice" {
			t.Fatalf("GetPerson over h2c: %v, %v", p, err)
		}
	})
}

type envelope struct {
	flags byte
	data  []byte
}

func frame(flags byte, msg []byte) []byte {
	b := make([]byte, 5, 5+len(msg))
	b[0] = flags
	binary.BigEndian.PutUint32(b[1:], uint32(len(msg)))
	return append(b, msg...)
}

func frames(t *testing.T, b []byte) []envelope {
	t.Helper()
	var out []envelope
	for len(b) > 0 {
		if len(b) < 5 {
			t.Fatalf("a frame cut short: %q", b)
		}
		n := int(binary.BigEndian.Uint32(b[1:5]))
		if len(b) < 5+n {
			t.Fatalf("a frame of %d bytes has %d", n, len(b)-5)
		}
		out = append(out, envelope{b[0], b[5 : 5+n]})
		b = b[5+n:]
	}
	return out
}

func TestREST(t *testing.T) {
	f := start(t, setup{})

	a := f.do(t, "GET", "/v1/people/Alice", "")
	if p := personOf(t, a.body); a.code != 200 || p["name"] != "Alice" || p["age"] != 30.0 || p["gender"] != "FEMALE" {
		t.Fatalf("GET Alice: %d %s", a.code, a.body)
	}
	a = f.do(t, "GET", "/v1/people/Nobody", "")
	if st := errorOf(t, a); a.code != 404 || st.Code != int(codes.NotFound) {
		t.Fatalf("GET Nobody: %d %s, want 404 NOT_FOUND", a.code, a.body)
	}

	a = f.do(t, "POST", "/v1/people", `{"name":"Zoë Day","age":41,"hobbies":["chess"],"address":{"city":"Paris"}}`)
	if a.code != 201 || personOf(t, a.body)["name"] != "Zoë Day" {
		t.Fatalf("POST: %d %s, want 201 and the person", a.code, a.body)
	}
	if loc := a.header.Get("Location"); loc != "/v1/people/Zo%C3%AB%20Day" {
		t.Errorf("Location %q, want /v1/people/Zo%%C3%%AB%%20Day", loc)
	}
	a = f.do(t, "POST", "/v1/people", `{"name":"Zoë Day","age":41}`)
	if st := errorOf(t, a); a.code != 409 || st.Code != int(codes.AlreadyExists) {
		t.Errorf("POST again: %d %s, want 409 ALREADY_EXISTS", a.code, a.body)
	}
	a = f.do(t, "POST", "/v1/people", `{"name":"Young","age":-1}`)
	st := errorOf(t, a)
	if a.code != 400 || st.Code != int(codes.InvalidArgument) || len(st.Details) != 1 ||
		st.Details[0].Type != "type.googleapis.com/google.rpc.BadRequest" || len(st.Details[0].FieldViolations) == 0 {
		t.Fatalf("POST a bad age: %d %s, want 400 with a BadRequest", a.code, a.body)
	}
	if got := st.Details[0].FieldViolations[0].Field; got != "person.age" {
		t.Errorf("field violation on %q, want person.age", got)
	}

	a = f.do(t, "PATCH", "/v1/people/Zo%C3%AB%20Day?update_mask=age,address.city", `{"age":42,"address":{"city":"Rome","street":"ignored"}}`)
	p := personOf(t, a.body)
	if a.code != 200 || p["age"] != 42.0 || p["address"].(map[string]any)["city"] != "Rome" || p["address"].(map[string]any)["street"] != "" {
		t.Fatalf("PATCH age and address.city: %d %s", a.code, a.body)
	}
	a = f.do(t, "PATCH", "/v1/people/Nobody?update_mask=age", `{"age":42}`)
	if a.code != 404 {
		t.Errorf("PATCH Nobody: %d %s, want 404", a.code, a.body)
	}

	a = f.do(t, "GET", "/v1/people?city=Rome", "")
	var list struct {
		People        []map[string]any `json:"people"`
		NextPageToken string           `json:"nextPageToken"`
	}
	if json.Unmarshal([]byte(a.body), &list) != nil || a.code != 200 || len(list.People) != 1 || list.People[0]["name"] != "Zoë Day" {
		t.Fatalf("GET ?city=Rome: %d %s", a.code, a.body)
	}
	a = f.do(t, "GET", "/v1/people?page_size=1", "")
	if json.Unmarshal([]byte(a.body), &list) != nil || len(list.People) != 1 || list.NextPageToken == "" {
		t.Fatalf("GET ?page_size=1: %d %s, want one person and a next page token", a.code, a.body)
	}
	a = f.do(t, "GET", "/v1/people?page_size=1&page_token="+list.NextPageToken, "")
	if json.Unmarshal([]byte(a.body), &list) != nil || len(list.People) != 1 || list.People[0]["name"] != "Bob" {
		t.Errorf("the second page: %d %s, want Bob", a.code, a.body)
	}

	a = f.do(t, "DELETE", "/v1/people/Zo%C3%AB%20Day", "")
	if a.code != 204 || a.body != "" {
		t.Errorf("DELETE: %d %q, want 204 and no body", a.code, a.body)
	}
	a = f.do(t, "DELETE", "/v1/people/Zo%C3%AB%20Day", "")
	if a.code != 404 {
		t.Errorf("DELETE again: %d %s, want 404", a.code, a.body)
	}
	a = f.do(t, "PUT", "/v1/people/Alice", `{}`)
	if a.code != 405 {
		t.Errorf("PUT: %d %s, want 405", a.code, a.body)
	}
}

// TestMalformedBodies sends every route a body that is not its message:
// each answers 400 INVALID_ARGUMENT, never 500.
func TestMalformedBodies(t *testing.T) {
	f := start(t, setup{})
	for _, tt := range []struct{ method, path, body string }{
		{"POST", "/v1/people", `{"name":`},
		{"POST", "/v1/people", `[1,2]`},
		{"POST", "/v1/people", `{"age":"old"}`},
		{"PATCH", "/v1/people/Alice?update_mask=age", `{"age":`},
		{"PATCH", "/v1/people/Alice?update_mask=nosuchfield", `{"age":3}`},
		{"GET", "/v1/people?page_size=many", ""},
		{"GET", "/v1/people?page_token=not-a-token", ""},
		{"POST", "/RouteGuide/GetPerson", `{"name":`},
		{"POST", "/RouteGuide/AddPerson", `{"person":7}`},
		{"POST", "/RouteGuide/UpdatePerson", `nope`},
		{"POST", "/RouteGuide/DeletePerson", `{"name":[]}`},
		{"POST", "/RouteGuide/ListPeople", `{"page_size":"x"}`},
	} {
		a := f.do(t, tt.method, tt.path, tt.body)
		if a.code != 400 {
			t.Errorf("%s %s %s: %d %s, want 400", tt.method, tt.path, tt.body, a.code, a.body)
		}
	}
	a := f.do(t, "GET", "/v1/people:watch", "", "Last-Event-ID: yesterday")
	if a.code != 400 {
		t.Errorf("watch with Last-Event-ID: yesterday: %d %s, want 400", a.code, a.body)
	}
	a = f.do(t, "GET", "/v1/people:watch?current=perhaps", "")
	if a.code != 400 {
		t.Errorf("watch with current=perhaps: %d %s, want 400", a.code, a.body)
	}
}

func writeTokens(t *testing.T) *grpcserver.Auth {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(path, []byte("reader-token-0123456789 rita reader\nwriter-token-0123456789 wes writer\n"), 0o600)
	tokens, err := grpcserver.LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	return grpcserver.NewAuth(tokens, false)
}

func TestAuth(t *testing.T) {
	f := start(t, setup{auth: writeTokens(t)})
	const reader, writer = "Authorization: Bearer reader-token-0123456789", "Authorization: Bearer writer-token-0123456789"
	for _, tt := range []struct {
		name, method, path, body, auth string
		want                           int
	}{
		{"no token", "GET", "/v1/people/Alice", "", "", 401},
		{"wrong token", "GET", "/v1/people/Alice", "", "Authorization: Bearer wrong-token-0123456789", 401},
		{"reader reads", "GET", "/v1/people/Alice", "", reader, 200},
		{"reader writes", "POST", "/v1/people", `{"name":"Zed"}`, reader, 403},
		{"writer writes", "POST", "/v1/people", `{"name":"Zed"}`, writer, 201},
		{"Connect without a token", "POST", "/RouteGuide/GetPerson", `{"name":"Alice"}`, "", 401},
		{"Connect reader deletes", "POST", "/RouteGuide/DeletePerson", `{"name":"Zed"}`, reader, 403},
		{"watch without a token", "GET", "/v1/people:watch", "", "", 401},
	} {
		var hs []string
		if tt.auth != "" {
			hs = append(hs, tt.auth)
		}
		a := f.do(t, tt.method, tt.path, tt.body, hs...)
		if a.code != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, a.code, a.body, tt.want)
		}
	}
}

// TestGuards checks each shape of cross-site attack against a server whose
// local callers are writers.
func TestGuards(t *testing.T) {
	f := start(t, setup{opts: Options{Hosts: []string{"directory.example"}}})
	_, port, _ := net.SplitHostPort(f.addr)
	for _, tt := range []struct {
		name          string
		method, path  string
		body          string
		headers       []string
		want          int
		wantInMessage string
	}{
		{"DNS rebinding read", "GET", "/v1/people/Alice", "", []string{"Host: evil.example:" + port}, 403, "evil.example"},
		{"DNS rebinding write", "POST", "/v1/people", `{"name":"Mallory"}`, []string{"Host: evil.example"}, 403, "evil.example"},
		{"DNS rebinding page", "GET", "/", "", []string{"Host: evil.example"}, 403, ""},
		{"a listed host", "GET", "/v1/people/Alice", "", []string{"Host: Directory.Example.:" + port}, 200, ""},
		{"localhost", "GET", "/v1/people/Alice", "", []string{"Host: localhost:" + port}, 200, ""},
		{"an IP literal", "GET", "/v1/people/Alice", "", []string{"Host: [::1]:" + port}, 200, ""},
		{"cross-site fetch", "POST", "/v1/people", `{"name":"Mallory"}`, []string{"Sec-Fetch-Site: cross-site", "Origin: https://evil.example"}, 403, "cross-origin"},
		{"same-site other origin", "POST", "/v1/people", `{"name":"Mallory"}`, []string{"Sec-Fetch-Site: same-site", "Origin: http://127.0.0.1:1"}, 403, "cross-origin"},
		{"old browser, other origin", "DELETE", "/v1/people/Alice", "", []string{"Origin: https://evil.example"}, 403, "cross-origin"},
		{"Connect call from another origin", "POST", "/RouteGuide/DeletePerson", `{"name":"Alice"}`, []string{"Origin: https://evil.example"}, 403, "cross-origin"},
		{"form post", "POST", "/v1/people", `{"name":"Mallory"}`, []string{"Content-Type: application/x-www-form-urlencoded"}, 415, "content type"},
		{"text/plain post", "POST", "/RouteGuide/AddPerson", `{"person":{"name":"Mallory"}}`, []string{"Content-Type: text/plain;charset=UTF-8"}, 415, "content type"},
		{"post without a content type", "POST", "/RouteGuide/AddPerson", `{"person":{"name":"Mallory"}}`, []string{"Content-Type: "}, 415, "content type"},
		{"same origin", "POST", "/v1/people", `{"name":"Sam"}`, []string{"Sec-Fetch-Site: same-origin", "Origin: " + f.url}, 201, ""},
		{"typed in the address bar", "GET", "/v1/people/Alice", "", []string{"Sec-Fetch-Site: none"}, 200, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := f.do(t, tt.method, tt.path, tt.body, tt.headers...)
			if a.code != tt.want {
				t.Fatalf("%d %s, want %d", a.code, a.body, tt.want)
			}
			if tt.wantInMessage != "" && !strings.Contains(errorOf(t, a).Message, tt.wantInMessage) {
				t.Errorf("message %q, want it to name %q", errorOf(t, a).Message, tt.wantInMessage)
			}
			if got := a.header.Get("Access-Control-Allow-Origin"); got != "" {
				t.Errorf("Access-Control-Allow-Origin %q with CORS closed", got)
			}
		})
	}
	if a := f.do(t, "GET", "/v1/people/Mallory", ""); a.code != 404 {
		t.Errorf("Mallory was stored by a refused request: %d %s", a.code, a.body)
	}
}

func TestCORS(t *testing.T) {
	const app = "https://app.example"
	f := start(t, setup{opts: Options{CORSOrigins: []string{app}}})
	preflight := func(origin string) answer {
		return f.do(t, "OPTIONS", "/v1/people", "", "Origin: "+origin, "Access-Control-Request-Method: POST",
			"Access-Control-Request-Headers: authorization,content-type")
	}
	a := preflight(app)
	if a.header.Get("Access-Control-Allow-Origin") != app || !strings.Contains(strings.ToLower(a.header.Get("Access-Control-Allow-Headers")), "authorization") {
		t.Errorf("preflight from %s: %d %v, want it allowed", app, a.code, a.header)
	}
	if a := preflight("https://evil.example"); a.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin allowed: %v", a.header)
	}
	a = f.do(t, "POST", "/v1/people", `{"name":"Appy"}`, "Origin: "+app, "Sec-Fetch-Site: cross-site")
	if a.code != 201 || a.header.Get("Access-Control-Allow-Origin") != app || !strings.Contains(a.header.Get("Access-Control-Expose-Headers"), "Location") {
		t.Errorf("write from %s: %d %v %s, want 201 with CORS headers exposing Location", app, a.code, a.header, a.body)
	}
	a = f.do(t, "POST", "/v1/people", `{"name":"Evil"}`, "Origin: https://evil.example", "Sec-Fetch-Site: cross-site")
	if a.code != 403 {
		t.Errorf("write from another origin: %d %s, want 403", a.code, a.body)
	}
}

// TestTrustedProxy checks that the role follows the client a trusted proxy
// names, and that anyone else's X-Forwarded-For is ignored.
func TestTrustedProxy(t *testing.T) {
	const remote = "X-Forwarded-For: 198.51.100.7"
	f := start(t, setup{})
	if a := f.do(t, "POST", "/v1/people", `{"name":"Direct"}`, remote); a.code != 201 {
		t.Errorf("a local caller's X-Forwarded-For was trusted: %d %s, want 201 (its TCP peer is loopback)", a.code, a.body)
	}
	f = start(t, setup{opts: Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}})
	if a := f.do(t, "POST", "/v1/people", `{"name":"Proxied"}`, remote); a.code != 403 {
		t.Errorf("a remote client through a trusted proxy wrote: %d %s, want 403 (a reader)", a.code, a.body)
	}
	if a := f.do(t, "POST", "/v1/people", `{"name":"Proxied"}`, "X-Forwarded-For: 198.51.100.7, 127.0.0.1"); a.code != 403 {
		t.Errorf("trusted hops were not skipped: %d %s, want 403", a.code, a.body)
	}
	if a := f.do(t, "POST", "/v1/people", `{"name":"Proxied"}`, "X-Forwarded-For: ::1"); a.code != 201 {
		t.Errorf("a local client through the proxy: %d %s, want 201", a.code, a.body)
	}
	if a := f.do(t, "GET", "/v1/people/Alice", "", "X-Forwarded-For: not-an-address"); a.code != 400 {
		t.Errorf("a garbled X-Forwarded-For: %d %s, want 400", a.code, a.body)
	}
}

func TestLimits(t *testing.T) {
	limits := grpcserver.DefaultLimits()
	limits.MaxRecvMsgSize = 1 << 10
	limits.MaxHeaderListSize = 4 << 10
	f := start(t, setup{limits: &limits})
	big := `{"name":"` + strings.Repeat("x", 2<<10) + `"}`
	for _, path := range []string{"/v1/people", "/RouteGuide/GetPerson"} {
		if a := f.do(t, "POST", path, big); a.code < 400 || a.code >= 500 {
			t.Errorf("POST %s with a body over the message limit: %d %s, want a 4xx", path, a.code, a.body)
		}
	}
	// net/http allows 4 KiB above MaxHeaderBytes.
	if a := f.do(t, "GET", "/v1/people/Alice", "", "X-Padding: "+strings.Repeat("p", 16<<10)); a.code != 431 {
		t.Errorf("headers over the limit: %d, want 431", a.code)
	}
}

// sse is an open watch feed.
type sse struct {
	resp *http.Response
	r    *bufio.Reader
}

func (f *fixture) watch(t *testing.T, query string, headers ...string) *sse {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", f.url+"/v1/people:watch"+query, nil)
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("watch: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	return &sse{resp: resp, r: bufio.NewReader(resp.Body)}
}

// event is one event of the feed; comments are kept apart.
type event struct{ id, name, data, comment string }

func (s *sse) next(t *testing.T) event {
	t.Helper()
	var ev event
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the feed: %v (so far %+v)", err, ev)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			return ev
		case strings.HasPrefix(line, ":"):
			ev.comment = line
		default:
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
}

func TestWatchFeed(t *testing.T) {
	f := start(t, setup{retain: 2, opts: Options{Keepalive: 50 * time.Millisecond}})

	cur := f.watch(t, "?current=true")
	for _, want := range []string{"Alice", "Bob"} {
		ev := cur.next(t)
		if ev.name != "current" || ev.id != "" || !strings.Contains(ev.data, `"`+want+`"`) {
			t.Fatalf("got %+v, want a current event for %s with no id", ev, want)
		}
	}
	if ev := cur.next(t); ev.name != "synced" || ev.id != "2" {
		t.Fatalf("got %+v, want synced with id 2", ev)
	}

	plain := f.watch(t, "")
	if ev := plain.next(t); ev.id != "2" || ev.name != "" || ev.data != "" {
		t.Fatalf("first of a feed without current: %+v, want the id alone", ev)
	}
	f.do(t, "POST", "/v1/people", `{"name":"Carol","age":5}`)
	f.do(t, "DELETE", "/v1/people/Carol", "")
	for _, s := range []*sse{cur, plain} {
		for _, want := range []event{{id: "3", name: "added"}, {id: "4", name: "deleted"}} {
			ev := s.next(t)
			for ev.comment != "" && ev.name == "" {
				ev = s.next(t) // a keepalive
			}
			if ev.id != want.id || ev.name != want.name || !strings.Contains(ev.data, `"Carol"`) {
				t.Fatalf("got %+v, want %s with id %s", ev, want.name, want.id)
			}
		}
	}
	// Idle: keepalive comments.
	if ev := plain.next(t); ev.comment != ": ping" {
		t.Errorf("an idle feed sent %+v, want a ping comment", ev)
	}

	// Resume where a client left off: the change after id 3, and no other.
	resumed := f.watch(t, "", "Last-Event-ID: 3")
	ev := resumed.next(t)
	if ev.id == "3" && ev.data == "" {
		ev = resumed.next(t) // the starting id
	}
	if ev.id != "4" || ev.name != "deleted" {
		t.Fatalf("resumed after 3: %+v, want deleted with id 4", ev)
	}

	// Past retention (the store keeps 2 changes): a reset event.
	f.do(t, "POST", "/v1/people", `{"name":"Dan","age":5}`)
	f.do(t, "POST", "/v1/people", `{"name":"Eve","age":5}`)
	old := f.watch(t, "", "Last-Event-ID: 1")
	for {
		ev := old.next(t)
		if ev.name == "reset" {
			if !strings.Contains(ev.data, `"code":11`) && !strings.Contains(ev.data, `"code": 11`) {
				t.Errorf("reset data %q, want OUT_OF_RANGE's code 11", ev.data)
			}
			break
		}
		if ev.name != "" {
			t.Fatalf("got %+v before the reset event", ev)
		}
	}
	if _, err := old.r.ReadString('\n'); err != io.EOF {
		t.Errorf("after the reset event: %v, want the feed to end", err)
	}
}

// TestWatchFeedEndsOnDrain checks that an open feed ends with an error
// event saying UNAVAILABLE when the server drains, and that the drain does
// not wait for it.
func TestWatchFeedEndsOnDrain(t *testing.T) {
	f := start(t, setup{})
	s := f.watch(t, "")
	s.next(t) // the starting id
	f.svc.Drain()
	ev := s.next(t)
	if ev.name != "error" || !strings.Contains(ev.data, "14") {
		t.Fatalf("after the drain: %+v, want an error event with UNAVAILABLE (14)", ev)
	}
}

// TestWatchFeedLimits checks that the feed passes WatchPeople's limits:
// past MaxWatchers, 429.
func TestWatchFeedLimits(t *testing.T) {
	limits := grpcserver.DefaultLimits()
	limits.MaxWatchers = 1
	f := start(t, setup{limits: &limits})
	f.watch(t, "").next(t)
	a := f.do(t, "GET", "/v1/people:watch", "")
	if st := errorOf(t, a); a.code != 429 || st.Code != int(codes.ResourceExhausted) {
		t.Errorf("a second watch past the limit of 1: %d %s, want 429 RESOURCE_EXHAUSTED", a.code, a.body)
	}
}

func TestPageAndOpenAPI(t *testing.T) {
	f := start(t, setup{opts: Options{OpenAPI: []byte(`{"openapi":"3.0.0"}`)}})
	if a := f.do(t, "GET", "/", ""); a.code != 200 || a.body != "the page" {
		t.Errorf("GET /: %d %q", a.code, a.body)
	}
	if a := f.do(t, "GET", "/openapi.json", ""); a.code != 200 || a.header.Get("Content-Type") != "application/json" || !strings.Contains(a.body, "openapi") {
		t.Errorf("GET /openapi.json: %d %v %q", a.code, a.header, a.body)
	}
	if a := f.do(t, "DELETE", "/", ""); a.code != 405 {
		t.Errorf("DELETE /: %d, want 405", a.code)
	}
}

// TestOpenAPI checks that the embedded document decodes and describes
// every REST route with the statuses they answer.
func TestOpenAPI(t *testing.T) {
	b, err := OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                                                   `json:"openapi"`
		Paths   map[string]map[string]struct{ Responses map[string]any } `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi %q, want 3.x", doc.OpenAPI)
	}
	for _, tt := range []struct{ path, method, status string }{
		{"/v1/people", "get", "200"},
		{"/v1/people", "post", "201"},
		{"/v1/people/{name}", "get", "200"},
		{"/v1/people/{name}", "delete", "204"},
		{"/v1/people/{person.name}", "patch", "200"},
		{"/v1/people:watch", "get", "200"},
	} {
		if _, ok := doc.Paths[tt.path][tt.method].Responses[tt.status]; !ok {
			t.Errorf("%s %s: no %s response in %v", tt.method, tt.path, tt.status, doc.Paths[tt.path][tt.method].Responses)
		}
	}
}

// TestOpenAPISafeWrites checks that the document describes the headers of
// safe writes: ETag answers, If-Match and its 412, Idempotency-Key.
func TestOpenAPISafeWrites(t *testing.T) {
	b, err := OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	type response struct {
		Headers map[string]any `json:"headers"`
		Content map[string]struct {
			Schema struct {
				Ref string `json:"$ref"`
			} `json:"schema"`
		} `json:"content"`
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Parameters []struct{ Name, In string }
			Responses  map[string]response
		} `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path, method string
		params       []string // header parameters
		status       string   // the success
		etag         bool     // whether the success has an ETag
		person       bool     // whether the success is a Person
	}{
		{"/v1/people/{name}", "get", nil, "200", true, true},
		{"/v1/people", "post", []string{"Idempotency-Key"}, "201", true, true},
		{"/v1/people/{person.name}", "patch", []string{"If-Match", "Idempotency-Key"}, "200", true, true},
		{"/v1/people/{name}", "delete", []string{"If-Match", "Idempotency-Key"}, "204", false, false},
	} {
		op := doc.Paths[tt.path][tt.method]
		for _, name := range tt.params {
			found := false
			for _, p := range op.Parameters {
				found = found || p.Name == name && p.In == "header"
			}
			if !found {
				t.Errorf("%s %s: no %s header parameter in %v", tt.method, tt.path, name, op.Parameters)
			}
		}
		ok := op.Responses[tt.status]
		if _, has := ok.Headers["ETag"]; has != tt.etag {
			t.Errorf("%s %s: ETag in the %s answer %v, want %v", tt.method, tt.path, tt.status, has, tt.etag)
		}
		if got := ok.Content["application/json"].Schema.Ref; tt.person && got != "#/components/schemas/Person" {
			t.Errorf("%s %s: the %s answer is %q, want a Person", tt.method, tt.path, tt.status, got)
		}
		_, has := op.Responses["412"]
		if want := slices.Contains(tt.params, "If-Match"); has != want {
			t.Errorf("%s %s: a 412 answer %v, want %v", tt.method, tt.path, has, want)
		}
	}
}

func TestStatusMapping(t *testing.T) {
	for code, want := range map[codes.Code]int{
		codes.InvalidArgument: 400, codes.Unauthenticated: 401, codes.PermissionDenied: 403, codes.NotFound: 404,
		codes.AlreadyExists: 409, codes.Aborted: 409, codes.ResourceExhausted: 429, codes.Canceled: 499,
		codes.Unavailable: 503, codes.DeadlineExceeded: 504, codes.Code(99): 500,
	} {
		rec := &recorder{header: http.Header{}}
		writeStatus(rec, status.New(code, "x"))
		if rec.code != want {
			t.Errorf("%v: HTTP %d, want %d", code, rec.code, want)
		}
	}
}

type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(code int)        { r.code = code }
func (r *recorder) Write(p []byte) (int, error) { return r.body.Write(p) }

// TestRESTETags checks the REST routes' conditional writes: GET, POST and
// PATCH answer the person's ETag, quoted; PATCH and DELETE take it back in
// If-Match, and a stale one is 412 with the JSON error, the write undone.
func TestRESTETags(t *testing.T) {
	f := start(t, setup{})
	strong := func(t *testing.T, a answer) string {
		t.Helper()
		etag := a.header.Get("ETag")
		if len(etag) != 18 || etag[0] != '"' || etag[17] != '"' {
			t.Fatalf("ETag %q, want a quoted strong etag of 16 hex digits (%d %s)", etag, a.code, a.body)
		}
		return etag
	}

	a := f.do(t, "GET", "/v1/people/Alice", "")
	alice := strong(t, a)
	if a := f.do(t, "GET", "/v1/people/Alice", ""); a.header.Get("ETag") != alice {
		t.Errorf("GET Alice again: ETag %q, want %q", a.header.Get("ETag"), alice)
	}
	if a := f.do(t, "GET", "/v1/people/Nobody", ""); a.code != 404 || a.header.Get("ETag") != "" {
		t.Errorf("GET Nobody: %d ETag %q, want 404 and no ETag", a.code, a.header.Get("ETag"))
	}

	a = f.do(t, "POST", "/v1/people", `{"name":"Carol","age":41}`)
	if a.code != 201 {
		t.Fatalf("POST: %d %s", a.code, a.body)
	}
	carol := strong(t, a)
	if got := strong(t, f.do(t, "GET", "/v1/people/Carol", "")); got != carol {
		t.Errorf("GET Carol: ETag %s, want POST's %s", got, carol)
	}

	// Two writers read the same etag; the first PATCH wins, the second is
	// refused and changes nothing.
	a = f.do(t, "PATCH", "/v1/people/Carol?update_mask=age", `{"age":42}`, "If-Match: "+carol)
	if a.code != 200 || personOf(t, a.body)["age"] != 42.0 {
		t.Fatalf("PATCH If-Match the current etag: %d %s, want 200", a.code, a.body)
	}
	after := strong(t, a)
	if after == carol {
		t.Errorf("PATCH answered the old ETag %s", after)
	}
	a = f.do(t, "PATCH", "/v1/people/Carol?update_mask=age", `{"age":43}`, "If-Match: "+carol)
	if st := errorOf(t, a); a.code != 412 || st.Code != int(codes.Aborted) || a.header.Get("ETag") != "" {
		t.Errorf("PATCH If-Match a stale etag: %d %s ETag %q, want 412 ABORTED and no ETag", a.code, a.body, a.header.Get("ETag"))
	}
	if a := f.do(t, "GET", "/v1/people/Carol", ""); personOf(t, a.body)["age"] != 42.0 || a.header.Get("ETag") != after {
		t.Errorf("after the refused PATCH: %s ETag %s, want age 42 and %s", a.body, a.header.Get("ETag"), after)
	}
	a = f.do(t, "DELETE", "/v1/people/Carol", "", "If-Match: "+carol)
	if st := errorOf(t, a); a.code != 412 || st.Code != int(codes.Aborted) {
		t.Errorf("DELETE If-Match a stale etag: %d %s, want 412 ABORTED", a.code, a.body)
	}
	// ALREADY_EXISTS stays 409.
	if a := f.do(t, "POST", "/v1/people", `{"name":"Carol"}`); a.code != 409 || errorOf(t, a).Code != int(codes.AlreadyExists) {
		t.Errorf("POST Carol again: %d %s, want 409 ALREADY_EXISTS", a.code, a.body)
	}

	for _, tt := range []struct{ name, header, query string }{
		{"unquoted", "If-Match: " + strings.Trim(after, `"`), ""},
		{"weak", "If-Match: W/" + after, ""},
		{"two etags", "If-Match: " + after + ", " + carol, ""},
		{"another etag parameter", "If-Match: " + after, "&etag=0000000000000000"},
	} {
		a := f.do(t, "PATCH", "/v1/people/Carol?update_mask=age"+tt.query, `{"age":44}`, tt.header)
		if st := errorOf(t, a); a.code != 400 || st.Code != int(codes.InvalidArgument) || !strings.Contains(st.Message, "If-Match") {
			t.Errorf("PATCH %s: %d %s, want 400 naming If-Match", tt.name, a.code, a.body)
		}
	}

	// * and no If-Match are unconditional.
	if a := f.do(t, "PATCH", "/v1/people/Carol?update_mask=age", `{"age":45}`, "If-Match: *"); a.code != 200 {
		t.Errorf("PATCH If-Match *: %d %s, want 200", a.code, a.body)
	}
	if a := f.do(t, "PATCH", "/v1/people/Nobody?update_mask=age", `{"age":45}`, "If-Match: *"); a.code != 404 {
		t.Errorf("PATCH Nobody If-Match *: %d %s, want 404", a.code, a.body)
	}
	current := strong(t, f.do(t, "GET", "/v1/people/Carol", ""))
	if a := f.do(t, "DELETE", "/v1/people/Carol", "", "If-Match: "+current); a.code != 204 {
		t.Errorf("DELETE If-Match the current etag: %d %s, want 204", a.code, a.body)
	}
	if a := f.do(t, "DELETE", "/v1/people/Bob", ""); a.code != 204 {
		t.Errorf("DELETE without If-Match: %d %s, want 204", a.code, a.body)
	}
}

// TestRESTIdempotencyKey checks that the Idempotency-Key header carries a
// REST write's request id: a retried POST answers the first answer, and
// the directory changes once.
func TestRESTIdempotencyKey(t *testing.T) {
	f := start(t, setup{})
	const key = "Idempotency-Key: 0d9d4b8e-2f4b-4a57-9f0c-3f3c1e0b5a11"
	first := f.do(t, "POST", "/v1/people", `{"name":"Carol","age":41}`, key)
	again := f.do(t, "POST", "/v1/people", `{"name":"Carol","age":41}`, key)
	if first.code != 201 || again.code != 201 || first.body != again.body || again.header.Get("ETag") != first.header.Get("ETag") {
		t.Fatalf("POST twice with one Idempotency-Key: %d %s %q, then %d %s %q; want the same 201 twice",
			first.code, first.body, first.header.Get("ETag"), again.code, again.body, again.header.Get("ETag"))
	}
	if a := f.do(t, "GET", "/v1/people/Carol/changes", ""); strings.Count(a.body, "TYPE_ADDED") != 1 || !strings.Contains(a.body, "0d9d4b8e-2f4b-4a57-9f0c-3f3c1e0b5a11") {
		t.Errorf("Carol's changes: %s, want one addition with the request id", a.body)
	}
	// Without the key, the same POST is a second request.
	if a := f.do(t, "POST", "/v1/people", `{"name":"Carol","age":41}`); a.code != 409 {
		t.Errorf("POST again without the key: %d %s, want 409", a.code, a.body)
	}
	// The same key with another request is refused.
	a := f.do(t, "POST", "/v1/people", `{"name":"Dave","age":41}`, key)
	if st := errorOf(t, a); a.code != 400 || !strings.Contains(st.Message, "request_id") {
		t.Errorf("POST another person with the same key: %d %s, want 400 naming request_id", a.code, a.body)
	}
	a = f.do(t, "DELETE", "/v1/people/Carol", "", "Idempotency-Key: not a uuid")
	if st := errorOf(t, a); a.code != 400 || !strings.Contains(st.Message, "request_id") {
		t.Errorf("DELETE with a key that is not a UUID: %d %s, want 400 naming request_id", a.code, a.body)
	}
	const del = "Idempotency-Key: 6f1c3c59-93c5-4d9e-8d43-2d3f6a0f7e21"
	if a := f.do(t, "DELETE", "/v1/people/Carol", "", del); a.code != 204 {
		t.Errorf("DELETE: %d %s, want 204", a.code, a.body)
	}
	if a := f.do(t, "DELETE", "/v1/people/Carol", "", del); a.code != 204 {
		t.Errorf("DELETE retried with its key: %d %s, want 204 again rather than 404", a.code, a.body)
	}
}

// TestConnectETag checks that Connect's GetPerson sends the etag response
// header as gRPC's does, and that a Connect write takes Idempotency-Key.
func TestConnectETag(t *testing.T) {
	f := start(t, setup{})
	a := f.do(t, "POST", "/RouteGuide/GetPerson", `{"name":"Alice"}`)
	rest := f.do(t, "GET", "/v1/people/Alice", "")
	if got, want := a.header.Get("Etag"), strings.Trim(rest.header.Get("ETag"), `"`); a.code != 200 || got == "" || got != want {
		t.Errorf("Connect GetPerson: %d etag %q, want REST's %q unquoted, as gRPC metadata", a.code, got, want)
	}
	const key = "Idempotency-Key: 7a4e2c1d-5b6f-4e8a-9c0d-1e2f3a4b5c6d"
	first := f.do(t, "POST", "/RouteGuide/AddPerson", `{"person":{"name":"Carol"}}`, key)
	again := f.do(t, "POST", "/RouteGuide/AddPerson", `{"person":{"name":"Carol"}}`, key)
	if first.code != 200 || again.code != 200 || first.body != again.body {
		t.Errorf("Connect AddPerson twice with one Idempotency-Key: %d %s, then %d %s; want the same answer", first.code, first.body, again.code, again.body)
	}
	if first.header.Get("Etag") != "" {
		t.Errorf("Connect AddPerson: etag header %q, want the etag in the answer only", first.header.Get("Etag"))
	}
}

// TestOpenAPIConnect checks the document served at /openapi.json against
// the RouteGuide service's descriptor: every unary method has its Connect
// path, with the request and answer schemas of its messages; every $ref
// resolves; and each schema made from a descriptor agrees with the one
// protoc-gen-openapi made for the same message.
func TestOpenAPIConnect(t *testing.T) {
	b, err := OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	f := start(t, setup{opts: Options{OpenAPI: b}})
	served := f.do(t, "GET", "/openapi.json", "")
	var doc map[string]any
	if err := json.Unmarshal([]byte(served.body), &doc); err != nil {
		t.Fatalf("GET /openapi.json: %d %v", served.code, err)
	}
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	resolve := func(s any) map[string]any {
		t.Helper()
		r, _ := s.(map[string]any)["$ref"].(string)
		name, ok := strings.CutPrefix(r, "#/components/schemas/")
		if !ok || schemas[name] == nil {
			t.Errorf("schema %v does not resolve", s)
			return nil
		}
		return schemas[name].(map[string]any)
	}
	dig := func(v any, keys ...string) any {
		for _, k := range keys {
			m, _ := v.(map[string]any)
			v = m[k]
		}
		return v
	}

	svc := pb.File_route_guide_proto.Services().ByName("RouteGuide")
	unary := 0
	for i := range svc.Methods().Len() {
		m := svc.Methods().Get(i)
		path := "/RouteGuide/" + string(m.Name())
		op := dig(doc, "paths", path, "post")
		if op == nil {
			t.Errorf("%s: no POST %s", m.Name(), path)
			continue
		}
		if m.IsStreamingClient() || m.IsStreamingServer() {
			if dig(op, "requestBody", "content", "application/connect+json", "schema") == nil {
				t.Errorf("%s: a streaming method without application/connect+json", m.Name())
			}
			continue
		}
		unary++
		in := resolve(dig(op, "requestBody", "content", "application/json", "schema"))
		out := resolve(dig(op, "responses", "200", "content", "application/json", "schema"))
		for _, tt := range []struct {
			schema map[string]any
			msg    protoreflect.MessageDescriptor
		}{{in, m.Input()}, {out, m.Output()}} {
			fields := tt.msg.Fields()
			for j := range fields.Len() {
				if dig(tt.schema, "properties", fields.Get(j).JSONName()) == nil {
					t.Errorf("%s: %s's schema has no %s", m.Name(), tt.msg.FullName(), fields.Get(j).JSONName())
				}
			}
		}
		resolve(dig(op, "responses", "default", "content", "application/json", "schema"))

		// The path answers as Connect: an answer or a Connect error,
		// never 404.
		a := f.do(t, "POST", path, "{}")
		var body map[string]any
		if a.code == 404 || json.Unmarshal([]byte(a.body), &body) != nil {
			t.Errorf("POST %s {}: %d %s, want a Connect answer", path, a.code, a.body)
		} else if _, isError := body["code"].(string); a.code != 200 && !isError {
			t.Errorf("POST %s {}: %d %s, want a Connect error", path, a.code, a.body)
		}
	}
	if unary < 6 {
		t.Errorf("%d unary methods described, want at least the 6 of RouteGuide", unary)
	}

	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if _, ok := v["$ref"]; ok {
				resolve(v)
			}
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(doc)

	// messageSchema agrees with protoc-gen-openapi on every message both
	// describe: the same properties, of the same types.
	var generated struct {
		Components struct{ Schemas map[string]map[string]any }
	}
	if err := yaml.Unmarshal(openAPIYAML, &generated); err != nil {
		t.Fatal(err)
	}
	files := []protoreflect.FileDescriptor{pb.File_route_guide_proto, pb.File_person_proto, pb.File_routeguide_v1_directory_proto}
	compared := 0
	for _, fd := range files {
		msgs := fd.Messages()
		for i := range msgs.Len() {
			for _, md := range append([]protoreflect.MessageDescriptor{msgs.Get(i)}, nested(msgs.Get(i))...) {
				want, ok := generated.Components.Schemas[schemaName(md)]
				if !ok {
					continue
				}
				compared++
				got := messageSchema(map[string]any{}, md)
				wantProps, _ := want["properties"].(map[string]any)
				gotProps := got["properties"].(map[string]any)
				if len(wantProps) != len(gotProps) {
					t.Errorf("%s: properties %v, protoc-gen-openapi's %v", md.FullName(), gotProps, wantProps)
				}
				for name, w := range wantProps {
					g := gotProps[name]
					for _, key := range []string{"type", "$ref"} {
						if dig(g, key) != dig(w, key) {
							t.Errorf("%s.%s: %s %v, protoc-gen-openapi's %v", md.FullName(), name, key, dig(g, key), dig(w, key))
						}
					}
					if dig(g, "items", "type") != dig(w, "items", "type") || dig(g, "items", "$ref") != dig(w, "items", "$ref") {
						t.Errorf("%s.%s: items %v, protoc-gen-openapi's %v", md.FullName(), name, dig(g, "items"), dig(w, "items"))
					}
				}
			}
		}
	}
	if compared < 5 {
		t.Errorf("compared %d schemas with protoc-gen-openapi's, want every message both describe", compared)
	}
}

// nested returns the messages declared inside md, at any depth.
func nested(md protoreflect.MessageDescriptor) []protoreflect.MessageDescriptor {
	var all []protoreflect.MessageDescriptor
	for i := range md.Messages().Len() {
		m := md.Messages().Get(i)
		if m.IsMapEntry() {
			continue
		}
		all = append(all, m)
		all = append(all, nested(m)...)
	}
	return all
}

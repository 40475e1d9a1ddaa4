package loadgen

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/routeguide/routeguide/routeguidepb"
)

// restServer answers GET /v1/people/{name} as grpc-gateway in front of the
// seed's service does: Alice as JSON, anybody else as the "Not Found"
// person with 200; and "Down" with a google.rpc.Status body, 503.
func restServer(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/people/{name}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch name := r.PathValue("name"); name {
		case "Alice":
			b, _ := protojson.Marshal(&pb.Person{Name: "Alice", Age: 30, Hobbies: []string{"chess"}})
			w.Write(b)
		case "Down":
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"code":14,"message":"the store is down"}`)
		case "Teapot":
			w.WriteHeader(http.StatusTeapot)
		default:
			fmt.Fprint(w, `{"name":"Not Found"}`)
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestHTTPConnREST(t *testing.T) {
	srv := restServer(t)
	client := HTTPClient(2)
	defer client.CloseIdleConnections()
	conn, err := NewHTTPConn(REST, srv.URL, client, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Workload: Get, Concurrency: 2, Count: 40, Names: []string{"Alice", "Charlie", "Down", "Teapot"}}
	res, err := Run(context.Background(), []grpc.ClientConnInterface{conn}, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[codes.Code]uint64{codes.NotFound: 10, codes.Unavailable: 10, codes.Unknown: 10}
	if res.Calls != 40 || fmt.Sprint(res.Errors) != fmt.Sprint(want) {
		t.Errorf("calls %d, errors %v; want 40 and %v", res.Calls, res.Errors, want)
	}
}

func TestHTTPConnOnlyGetPerson(t *testing.T) {
	client := HTTPClient(1)
	defer client.CloseIdleConnections()
	conn, err := NewHTTPConn(ConnectJSON, "http://127.0.0.1:1", client, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = conn.Invoke(context.Background(), pb.RouteGuide_AddPerson_FullMethodName, &pb.AddPersonRequest{}, &pb.AddPersonResponse{})
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("AddPerson over connect-json: %v, want Unimplemented", err)
	}
	if _, err := conn.NewStream(context.Background(), &pb.RouteGuide_ServiceDesc.Streams[0], pb.RouteGuide_GetPeople_FullMethodName); status.Code(err) != codes.Unimplemented {
		t.Errorf("GetPeople over connect-json: %v, want Unimplemented", err)
	}
	for _, tt := range []struct {
		p    Protocol
		base string
	}{{GRPC, "http://127.0.0.1:1"}, {REST, "127.0.0.1:1"}, {REST, "ftp://x"}} {
		if _, err := NewHTTPConn(tt.p, tt.base, client, nil); err == nil {
			t.Errorf("NewHTTPConn(%s, %q) succeeded, want an error", tt.p, tt.base)
		}
	}
}

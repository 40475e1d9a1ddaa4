package httpserver

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	pb "github.com/routeguide/routeguide/routeguidepb"
)

// BenchmarkGetPerson calls GetPerson for Alice on the HTTP listener in each
// protocol, one call at a time over a kept-alive connection: what the
// translation costs next to gRPC on the same listener (h2c) and, for the
// native listener, grpcserver's BenchmarkGetPerson.
func BenchmarkGetPerson(b *testing.B) {
	f := start(b, setup{})
	msg, _ := proto.Marshal(&pb.Name{Name: "Alice"})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	b.Cleanup(client.CloseIdleConnections)
	for _, tt := range []struct {
		name, method, path, contentType, body string
	}{
		{"REST", "GET", "/v1/people/Alice", "", ""},
		{"Connect JSON", "POST", "/RouteGuide/GetPerson", "application/json", `{"name":"Alice"}`},
		{"Connect binary", "POST", "/RouteGuide/GetPerson", "application/proto", string(msg)},
		{"gRPC-Web", "POST", "/RouteGuide/GetPerson", "application/grpc-web+proto", string(frame(0, msg))},
	} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req, _ := http.NewRequest(tt.method, f.url+tt.path, strings.NewReader(tt.body))
				if tt.contentType != "" {
					req.Header.Set("Content-Type", tt.contentType)
				}
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
	b.Run("gRPC over h2c", func(b *testing.B) {
		conn, err := grpc.NewClient(f.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		rg := pb.NewRouteGuideClient(conn)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := rg.GetPerson(context.Background(), &pb.Name{Name: "Alice"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

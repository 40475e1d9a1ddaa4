package main

import (
	"context"
	"net"
	"strings"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/grpc"

	pb "github.com/routeguide/routeguide/routeguidepb"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// directory is a RouteGuide server made from the generated code alone, as
// a service's own test double would be. It answers a name nobody has as
// RouteGuide does: with a person called "Not Found".
type directory struct {
	pb.UnimplementedRouteGuideServer
	people map[string]*pb.Person
}

func (d *directory) GetPerson(_ context.Context, n *pb.Name) (*pb.Person, error) {
	if p, ok := d.people[n.GetName()]; ok {
		return p, nil
	}
	return &pb.Person{Name: "Not Found"}, nil
}

func serve(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pb.RegisterRouteGuideServer(srv, &directory{people: map[string]*pb.Person{
		"Alice": {Name: "Alice", Age: 30, Hobbies: []string{"reading", "swimming"}, Address: &pb.Person_Address{City: "New York"}},
	}})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

func TestLookup(t *testing.T) {
	addr := serve(t)
	tests := []struct {
		args       []string
		code       int
		out, inErr string
	}{
		{[]string{"-addr", addr, "Alice"}, 0, "Alice, 30, lives in New York, likes reading and swimming\n", ""},
		{[]string{"-addr", addr, "Alice", "Zed"}, 1, "Alice, 30, lives in New York, likes reading and swimming\n", `nobody is called "Zed"`},
		{[]string{"-addr", addr}, 2, "", "usage:"},
		{[]string{"-addr", addr + ",nowhere", "Alice"}, 2, "", `"nowhere"`},
	}
	for _, tt := range tests {
		var out, errOut strings.Builder
		if code := run(context.Background(), tt.args, &out, &errOut); code != tt.code {
			t.Errorf("lookup %q: exit %d, want %d; stderr %q", tt.args, code, tt.code, errOut.String())
		}
		if out.String() != tt.out {
			t.Errorf("lookup %q printed %q, want %q", tt.args, out.String(), tt.out)
		}
		if !strings.Contains(errOut.String(), tt.inErr) {
			t.Errorf("lookup %q: stderr %q, want it to contain %q", tt.args, errOut.String(), tt.inErr)
		}
	}
}

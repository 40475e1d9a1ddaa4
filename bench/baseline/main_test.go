package main

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/routeguide/routeguide/internal/cli"
	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/syncbuf"
	"github.com/routeguide/routeguide/internal/wire"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var listening = regexp.MustCompile(`listening on (\S+)`)

// start runs the baseline on a free port until the test ends and returns
// its address.
func start(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncbuf.Buffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"--addr", "127.0.0.1:0"}, out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if m := listening.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		select {
		case err := <-done:
			t.Fatalf("run ended before listening: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("not listening after 10s")
		}
	}
}

func TestSeedBehaviour(t *testing.T) {
	addr := start(t)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := pb.NewRouteGuideClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	seed := map[string]*pb.Person{}
	for _, p := range people.Seed() {
		seed[p.Name] = wire.ToProto(p)
	}
	for name, want := range map[string]*pb.Person{
		"Alice":   seed["Alice"],
		"Bob":     seed["Bob"],
		"Charlie": {Name: "Not Found"},
		"":        {Name: "Not Found"},
	} {
		got, err := c.GetPerson(ctx, &pb.Name{Name: name})
		if err != nil || !proto.Equal(got, want) {
			t.Errorf("GetPerson(%q) = %v, %v; want %v", name, got, err, want)
		}
	}

	stream, err := c.GetPeople(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Each name is answered before the next is sent, and unknown names
	// are skipped.
	for _, name := range []string{"Bob", "Charlie", "Alice", "Bob"} {
		if err := stream.Send(&pb.Name{Name: name}); err != nil {
			t.Fatal(err)
		}
		if name == "Charlie" {
			continue
		}
		got, err := stream.Recv()
		if err != nil || !proto.Equal(got, seed[name]) {
			t.Fatalf("GetPeople answer to %q = %v, %v; want %v", name, got, err, seed[name])
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if got, err := stream.Recv(); err != io.EOF {
		t.Errorf("after CloseSend, Recv = %v, %v; want io.EOF", got, err)
	}
}

// TestBench runs routeguide bench against the baseline, as
// bench/compare.sh does.
func TestBench(t *testing.T) {
	addr := start(t)
	for _, args := range [][]string{
		{"--workload", "get", "-n", "40"},
		{"--workload", "people", "--conns", "1", "-n", "40", "--names", "Alice,Charlie,Bob"},
	} {
		var stdout, stderr bytes.Buffer
		args = append([]string{"bench", "--addr", addr, "--warmup", "0", "-o", "json"}, args...)
		if code := cli.Run(context.Background(), args, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr); code != 0 {
			t.Fatalf("routeguide %q: exit %d\n%s", args, code, stderr.String())
		}
		if !strings.Contains(stdout.String(), `"calls":40,`) {
			t.Errorf("routeguide %q printed %s, want 40 calls", args, stdout.String())
		}
	}
}

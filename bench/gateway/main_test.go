package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/encoding/protojson"
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

// start runs the gateway on free ports until the test ends and returns its
// HTTP address.
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

// TestGetPerson checks the REST route the gateway serves: the seed's people
// as JSON, and the seed's "Not Found" person, with 200, for anybody else.
func TestGetPerson(t *testing.T) {
	addr := start(t)
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	seed := map[string]*pb.Person{}
	for _, p := range people.Seed() {
		seed[p.Name] = wire.ToProto(p)
	}
	for name, want := range map[string]*pb.Person{
		"Alice":   seed["Alice"],
		"Bob":     seed["Bob"],
		"Charlie": {Name: "Not Found"},
	} {
		res, err := client.Get("http://" + addr + "/v1/people/" + name)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		got := &pb.Person{}
		if res.StatusCode != http.StatusOK || protojson.Unmarshal(body, got) != nil || !proto.Equal(got, want) {
			t.Errorf("GET /v1/people/%s = %d %s; want 200 and %v", name, res.StatusCode, body, want)
		}
	}
}

// TestBench runs routeguide bench over REST against the gateway, as
// bench/web.sh does.
func TestBench(t *testing.T) {
	addr := start(t)
	var stdout, stderr bytes.Buffer
	args := []string{"bench", "--protocol", "rest", "--http-addr", addr, "--warmup", "0", "-o", "json", "-n", "40", "-c", "4"}
	if code := cli.Run(context.Background(), args, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("routeguide %q: exit %d\n%s", args, code, stderr.String())
	}
	if !strings.Contains(stdout.String(), `"calls":40,"errors":{}`) {
		t.Errorf("routeguide %q printed %s, want 40 calls without errors", args, stdout.String())
	}
}

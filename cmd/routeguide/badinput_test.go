package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	pb "github.com/routeguide/routeguide/routeguidepb"
)

// rawCodec sends and receives message bytes as they are, to put on the
// wire what a well-behaved client library would refuse to encode.
type rawCodec struct{}

type raw struct{ b []byte }

func (rawCodec) Marshal(v any) ([]byte, error)   { return v.(*raw).b, nil }
func (rawCodec) Unmarshal(b []byte, v any) error { v.(*raw).b = append([]byte(nil), b...); return nil }
func (rawCodec) Name() string                    { return "proto" }

// TestBadInput sends a table of malformed and hostile requests to the real
// binary over TCP: each gets its code, and the server keeps serving.
func TestBadInput(t *testing.T) {
	p := serve(t, "--store", "memory")
	conn, err := grpc.NewClient(p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := pb.NewRouteGuideClient(conn)
	add := func(name string) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			_, err := c.AddPerson(ctx, &pb.AddPersonRequest{Person: &pb.Person{Name: name}})
			return err
		}
	}
	invokeRaw := func(method string, b []byte) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			var out raw
			return conn.Invoke(ctx, method, &raw{b}, &out, grpc.ForceCodec(rawCodec{}))
		}
	}
	nameWithUnknownField, _ := proto.Marshal(&pb.Name{Name: "Alice"})
	nameWithUnknownField = append(nameWithUnknownField, 0xf8, 0x06, 0x01) // field 111, varint 1
	resp, err := c.ListPeople(context.Background(), &pb.ListPeopleRequest{PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	tampered := resp.GetNextPageToken() + "x"

	tests := []struct {
		name string
		call func(ctx context.Context) error
		code codes.Code
	}{
		{"empty name", add(""), codes.InvalidArgument},
		{"blank name", add("   "), codes.InvalidArgument},
		{"101-character name", add(strings.Repeat("n", 101)), codes.InvalidArgument},
		{"control character", add("a\x07b"), codes.InvalidArgument},
		{"right-to-left override", add("abc\u202Etxt"), codes.InvalidArgument},
		{"NUL", add("a\x00b"), codes.InvalidArgument},
		{"invalid UTF-8 on the wire", invokeRaw("/RouteGuide/GetPerson", []byte{0x0a, 0x02, 0xff, 0xfe}), codes.Internal},
		{"over the receive limit", add(strings.Repeat("x", 5<<20)), codes.ResourceExhausted},
		{"unknown fields are ignored", invokeRaw("/RouteGuide/GetPerson", nameWithUnknownField), codes.OK},
		{"huge page size", func(ctx context.Context) error {
			_, err := c.ListPeople(ctx, &pb.ListPeopleRequest{PageSize: 1<<31 - 1})
			return err
		}, codes.OK},
		{"negative page size", func(ctx context.Context) error {
			_, err := c.ListPeople(ctx, &pb.ListPeopleRequest{PageSize: -5})
			return err
		}, codes.InvalidArgument},
		{"tampered page token", func(ctx context.Context) error {
			_, err := c.ListPeople(ctx, &pb.ListPeopleRequest{PageToken: tampered})
			return err
		}, codes.InvalidArgument},
		{"unknown field-mask path", func(ctx context.Context) error {
			_, err := c.UpdatePerson(ctx, &pb.UpdatePersonRequest{Person: &pb.Person{Name: "Alice"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"ssn"}}})
			return err
		}, codes.InvalidArgument},
		{"1 ms deadline", func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, time.Millisecond)
			defer cancel()
			w, err := c.WatchPeople(ctx, &pb.WatchPeopleRequest{})
			if err == nil {
				_, err = w.Recv()
			}
			return err
		}, codes.DeadlineExceeded},
		{"malformed method path", invokeRaw("RouteGuide.GetPerson", nil), codes.Unimplemented},
		{"unknown method", invokeRaw("/RouteGuide/GetEveryone", nil), codes.Unimplemented},
		{"unknown service", invokeRaw("/routeguide.v2.RouteGuide/GetPerson", nil), codes.Unimplemented},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if got := status.Code(tt.call(ctx)); got != tt.code {
				t.Errorf("code %v, want %v", got, tt.code)
			}
			// The canary: the server still answers.
			if got, err := c.GetPerson(ctx, &pb.Name{Name: "Bob"}); err != nil || got.GetName() != "Bob" {
				t.Fatalf("canary after %q: %v, %v", tt.name, got, err)
			}
		})
	}
}

// TestGetPeopleFlood streams 100,000 names, known, unknown, repeated and
// invalid, while reading the answers: every known name is answered, in
// order, and nothing else.
func TestGetPeopleFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 100,000 names")
	}
	p := serve(t, "--store", "memory")
	c := dial(t, p.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stream, err := c.GetPeople(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"Alice", "Bob", "Charlie", "", "a\x00b", "\u202eevil", "Bob", strings.Repeat("z", 500)}
	var want []string
	go func() {
		for i := range 100_000 {
			n := names[i%len(names)]
			if err := stream.Send(&pb.Name{Name: n}); err != nil {
				return
			}
		}
		stream.CloseSend()
	}()
	for i := range 100_000 {
		if n := names[i%len(names)]; n == "Alice" || n == "Bob" {
			want = append(want, n)
		}
	}
	got := 0
	for {
		m, err := stream.Recv()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("Recv after %d answers: %v", got, err)
			}
			break
		}
		if got >= len(want) || m.GetName() != want[got] {
			t.Fatalf("answer %d = %q, want %s", got, m.GetName(), fmt.Sprint(want[min(got, len(want)-1)]))
		}
		got++
	}
	if got != len(want) {
		t.Errorf("%d answers, want %d", got, len(want))
	}
}

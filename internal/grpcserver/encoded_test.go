package grpcserver

import (
	"bytes"
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/routeguide/routeguide/internal/cache"
	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/wire"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

// TestEncodeIsToProto checks that a person's kept wire form decodes to the
// message wire.ToProto builds, for people with and without optional parts.
func TestEncodeIsToProto(t *testing.T) {
	for _, p := range append(people.Seed(),
		people.Person{Name: "Nobody else"},
		people.Person{Name: "Zoë", Age: 7, Gender: people.GenderFemale, Hobbies: []string{"", "ski"}, Address: people.Address{City: "Łódź"}},
	) {
		e, err := encode(p)
		if err != nil {
			t.Fatalf("encode(%+v): %v", p, err)
		}
		var got pb.Person
		if err := proto.Unmarshal(e.Bytes(), &got); err != nil {
			t.Fatalf("Unmarshal(encode(%+v)): %v", p, err)
		}
		if want := wire.ToProto(p); !proto.Equal(&got, want) {
			t.Errorf("encode(%+v) decodes to %v, want %v", p, &got, want)
		}
	}
	if _, err := encode(people.Person{Name: "\xff"}); err == nil {
		t.Error("Encode of a name that is not UTF-8 succeeded; protobuf strings must be UTF-8")
	}
}

// TestCodec checks that the server's codec sends an *encodedPerson as its bytes,
// and every other message as protobuf does.
func TestCodec(t *testing.T) {
	c := newCodec()
	if c.Name() != "proto" {
		t.Errorf("Name() = %q, want proto", c.Name())
	}
	alice := people.Seed()[0]
	e, err := encode(alice)
	if err != nil {
		t.Fatal(err)
	}
	sent, err := c.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if got := sent.Materialize(); !bytes.Equal(got, e.Bytes()) {
		t.Errorf("Marshal(*encodedPerson) = %x, want its bytes %x", got, e.Bytes())
	}
	sent.Free()
	if again, _ := c.Marshal(e); !bytes.Equal(again.Materialize(), e.Bytes()) {
		t.Error("an *encodedPerson changed after its buffers were freed")
	}
	// Sending a kept answer is the hot path of both methods: it must not
	// allocate.
	if n := testing.AllocsPerRun(100, func() {
		m, _ := c.Marshal(e)
		m.Free()
	}); n != 0 {
		t.Errorf("Marshal(*encodedPerson) allocates %v times, want 0", n)
	}

	msg := wire.ToProto(alice)
	plain, err := c.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := proto.Marshal(msg)
	if !bytes.Equal(plain.Materialize(), want) {
		t.Errorf("Marshal(*pb.Person) = %x, want %x", plain.Materialize(), want)
	}
	var back pb.Person
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(want)}, &back); err != nil || !proto.Equal(&back, msg) {
		t.Errorf("Unmarshal = %v, %v; want %v", &back, err, msg)
	}
}

// The read cache is the Keeper `routeguide serve` gives the server.
var _ Keeper = (*cache.Store)(nil)

// countingKeeper is a Keeper over a store that keeps nothing and counts
// its reads.
type countingKeeper struct {
	people.Reader
	reads atomic.Int64
}

func (k *countingKeeper) Encoded(ctx context.Context, name string) ([]byte, [8]byte, error) {
	k.reads.Add(1)
	p, err := k.Person(ctx, name)
	if err != nil {
		return nil, [8]byte{}, err
	}
	b, err := wire.AppendPerson(nil, p)
	return b, people.ETagSum(p), err
}

// TestAnswersComeFromTheKeeper checks that GetPerson and GetPeople read
// through Options.Answers when it is set, and only then: a store that
// could keep answers is not used as a Keeper unless the server is told.
func TestAnswersComeFromTheKeeper(t *testing.T) {
	keeper := &countingKeeper{Reader: seedStore()}
	h := startWith(t, seedStore(), Options{Log: slog.New(slog.DiscardHandler), Limits: DefaultLimits(), Answers: keeper})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, name := range []string{"Alice", "Nobody"} {
		if _, err := h.client.GetPerson(ctx, &pb.Name{Name: name}); err != nil {
			t.Fatalf("GetPerson(%s): %v", name, err)
		}
	}
	stream, err := h.client.GetPeople(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&pb.Name{Name: "Bob"}); err != nil {
		t.Fatal(err)
	}
	stream.CloseSend()
	if got, err := stream.Recv(); err != nil || got.GetName() != "Bob" {
		t.Fatalf("GetPeople(Bob) = %v, %v", got, err)
	}
	if n := keeper.reads.Load(); n != 3 {
		t.Errorf("the Keeper saw %d reads, want 3", n)
	}

	c := cache.New(seedStore(), cache.Options{})
	t.Cleanup(func() { c.Close() })
	for !c.Ready() {
		time.Sleep(time.Millisecond) // the seed's two people load at once
	}
	req := &pb.Name{Name: "Alice"}
	for _, tt := range []struct {
		keeper Keeper
		kept   bool
	}{{nil, false}, {c, true}} {
		svc := newService(c, tt.keeper, slog.New(slog.DiscardHandler))
		first, err := svc.getPerson(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := svc.getPerson(ctx, req)
		if kept := unsafe.SliceData(first.Bytes()) == unsafe.SliceData(again.Bytes()); kept != tt.kept {
			t.Errorf("with Keeper %T, the second answer is the first's encoding: %v, want %v", tt.keeper, kept, tt.kept)
		}
	}
}

// TestKeptAnswersCarryETags checks that GetPerson's etag header is the
// person's when the answer comes from the read cache, which keeps each
// person's etag as 8 bytes beside its encoding, after an update as before.
func TestKeptAnswersCarryETags(t *testing.T) {
	store := seedStore()
	c := cache.New(store, cache.Options{})
	t.Cleanup(func() { c.Close() })
	h := startWith(t, c, Options{Log: slog.New(slog.DiscardHandler), Limits: DefaultLimits(), Answers: c})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for !c.Ready() {
		time.Sleep(time.Millisecond) // the seed's two people load at once
	}
	alice := people.Seed()[0]
	check := func(want people.Person) {
		t.Helper()
		var header metadata.MD
		got, err := h.client.GetPerson(ctx, &pb.Name{Name: want.Name}, grpc.Header(&header))
		if err != nil {
			t.Fatal(err)
		}
		if got.GetAge() != want.Age {
			t.Errorf("GetPerson(%s) = %v, want age %d", want.Name, got, want.Age)
		}
		if v := header.Get(etagHeader); len(v) != 1 || v[0] != people.ETag(want) {
			t.Errorf("GetPerson(%s)'s etag header from the cache = %q, want [%q]", want.Name, v, people.ETag(want))
		}
	}
	check(alice)
	updated, _, err := c.Update(ctx, "Alice", people.Update{Fields: people.FieldAge, To: people.Person{Age: alice.Age + 1}})
	if err != nil {
		t.Fatal(err)
	}
	check(updated)
	var header metadata.MD
	if _, err := h.client.GetPerson(ctx, &pb.Name{Name: "Nobody"}, grpc.Header(&header)); err != nil || len(header.Get(etagHeader)) != 0 {
		t.Errorf("GetPerson(Nobody) from the cache: header %v, %v; want no etag for the Not Found answer", header, err)
	}
}

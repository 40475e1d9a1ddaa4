package wire

import (
	"bytes"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	pb "github.com/routeguide/routeguide/internal/gen/routeguidepb"
	"github.com/routeguide/routeguide/internal/people"
)

// TestEncodeIsToProto checks that a person's kept wire form decodes to the
// message ToProto builds, for people with and without optional parts.
func TestEncodeIsToProto(t *testing.T) {
	for _, p := range append(people.Seed(),
		people.Person{Name: "Nobody else"},
		people.Person{Name: "Zoë", Age: 7, Gender: people.GenderFemale, Hobbies: []string{"", "ski"}, Address: people.Address{City: "Łódź"}},
	) {
		e, err := Encode(p)
		if err != nil {
			t.Fatalf("Encode(%+v): %v", p, err)
		}
		var got pb.Person
		if err := proto.Unmarshal(e.Bytes(), &got); err != nil {
			t.Fatalf("Unmarshal(Encode(%+v)): %v", p, err)
		}
		if want := ToProto(p); !proto.Equal(&got, want) {
			t.Errorf("Encode(%+v) decodes to %v, want %v", p, &got, want)
		}
	}
	if _, err := Encode(people.Person{Name: "\xff"}); err == nil {
		t.Error("Encode of a name that is not UTF-8 succeeded; protobuf strings must be UTF-8")
	}
}

// TestCodec checks that the server's codec sends an *Encoded as its bytes,
// and every other message as protobuf does.
func TestCodec(t *testing.T) {
	c := NewCodec()
	if c.Name() != "proto" {
		t.Errorf("Name() = %q, want proto", c.Name())
	}
	alice := people.Seed()[0]
	e, err := Encode(alice)
	if err != nil {
		t.Fatal(err)
	}
	sent, err := c.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if got := sent.Materialize(); !bytes.Equal(got, e.Bytes()) {
		t.Errorf("Marshal(*Encoded) = %x, want its bytes %x", got, e.Bytes())
	}
	sent.Free()
	if again, _ := c.Marshal(e); !bytes.Equal(again.Materialize(), e.Bytes()) {
		t.Error("an *Encoded changed after its buffers were freed")
	}
	// Sending a kept answer is the hot path of both methods: it must not
	// allocate.
	if n := testing.AllocsPerRun(100, func() {
		m, _ := c.Marshal(e)
		m.Free()
	}); n != 0 {
		t.Errorf("Marshal(*Encoded) allocates %v times, want 0", n)
	}

	msg := ToProto(alice)
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

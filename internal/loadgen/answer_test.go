package loadgen

import (
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/wire"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

// TestAnswer checks that bench reads a Person's name and whether anything
// else is set, as isNotFoundPerson does on the whole message, and rejects
// what protobuf would.
func TestAnswer(t *testing.T) {
	alice := wire.ToProto(people.Seed()[0])
	cases := []*pb.Person{
		alice,
		{Name: people.NotFoundName},
		{Name: people.NotFoundName, Age: 3},
		{Name: people.NotFoundName, Hobbies: []string{""}},
		{Name: people.NotFoundName, Address: &pb.Person_Address{}},
		{Age: 1},
		{},
	}
	c := newAnswerCodec()
	var a answer // reused, as bench does
	for _, m := range cases {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		for _, data := range []mem.BufferSlice{
			{mem.SliceBuffer(b)},
			{mem.SliceBuffer(b[:len(b)/2]), mem.SliceBuffer(b[len(b)/2:])},
		} {
			if err := c.Unmarshal(data, &a); err != nil {
				t.Fatalf("Unmarshal(%v): %v", m, err)
			}
			if !a.is(m.GetName()) {
				t.Errorf("%v: name %q, want %q", m, a.name, m.GetName())
			}
			for _, req := range []*pb.Name{{Name: "Zed"}, {Name: people.NotFoundName}} {
				if got, want := a.notFound(req), isNotFoundPerson(m, req); got != want {
					t.Errorf("%v asked as %q: notFound = %v, want %v", m, req.GetName(), got, want)
				}
			}
		}
	}

	b, _ := proto.Marshal(alice)
	for _, bad := range [][]byte{b[:len(b)-1], {0x0a, 0x05, 'A'}, {0x80}} {
		var want pb.Person
		if proto.Unmarshal(bad, &want) == nil {
			t.Fatalf("protobuf accepts %x; the case tests nothing", bad)
		}
		if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(bad)}, &a); err == nil {
			t.Errorf("Unmarshal(%x) = nil, want an error", bad)
		}
	}

	// Anything else is protobuf.
	var whole pb.Person
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &whole); err != nil || !proto.Equal(&whole, alice) {
		t.Errorf("Unmarshal into *pb.Person = %v, %v; want %v", &whole, err, alice)
	}
	data := mem.BufferSlice{mem.SliceBuffer(b)}
	if n := testing.AllocsPerRun(100, func() { _ = c.Unmarshal(data, &a) }); n > 0 {
		t.Errorf("reading an answer allocates %v times, want 0", n)
	}
}

package wire

import (
	"bytes"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	pb "github.com/routeguide/routeguide/internal/gen/routeguidepb"
	"github.com/routeguide/routeguide/internal/people"
)

func TestJSONRoundTrip(t *testing.T) {
	for _, p := range []people.Person{
		people.Seed()[0],
		{Name: "Nobody"},
		{Name: `Quote "me" \ please`, Age: 1, Gender: people.GenderMale, Hobbies: []string{"a", "b"}, Address: people.Address{City: "Zürich"}},
	} {
		line, err := AppendJSON(nil, p)
		if err != nil {
			t.Fatalf("AppendJSON(%+v): %v", p, err)
		}
		got, err := ParseJSON(line)
		if err != nil {
			t.Fatalf("ParseJSON(%s): %v", line, err)
		}
		if got.Name != p.Name || got.Age != p.Age || got.Gender != p.Gender || got.Address != p.Address || !slices.Equal(got.Hobbies, p.Hobbies) {
			t.Errorf("round trip of %+v gave %+v via %s", p, got, line)
		}
	}
	want := `{"name":"Alice","age":30,"gender":"FEMALE","hobbies":["reading","swimming"],"address":{"street":"123 Main St","city":"New York"}}`
	if line, _ := AppendJSON(nil, people.Seed()[0]); string(line) != want {
		t.Errorf("AppendJSON(Alice) = %s, want %s", line, want)
	}
}

func TestParseJSONErrors(t *testing.T) {
	for _, in := range []string{`{"name":"A","shoe":1}`, `not json`, `{"age":"old"}`, `{"gender":"ROBOT"}`} {
		if _, err := ParseJSON([]byte(in)); people.KindOf(err) != people.Invalid {
			t.Errorf("ParseJSON(%s) = %v, want an Invalid error", in, err)
		}
	}
}

func TestCodes(t *testing.T) {
	for k := people.Kind(0); k <= people.OutOfRange; k++ {
		if got := Kind(Code(k)); got != k {
			t.Errorf("Kind(Code(%v)) = %v", k, got)
		}
	}
	if got := Code(people.Kind(200)); got != codes.Internal {
		t.Errorf("Code(unknown kind) = %v, want Internal", got)
	}
	if got := Kind(codes.DataLoss); got != people.Internal {
		t.Errorf("Kind(DataLoss) = %v, want Internal", got)
	}
}

// TestSetProtoReuse reuses one message for people with and without an
// address, hobbies and age: each encodes as ToProto's does.
func TestSetProtoReuse(t *testing.T) {
	var m pb.Person
	var a pb.Person_Address
	for _, p := range []people.Person{
		people.Seed()[0],
		{Name: "Nomad"},
		people.Seed()[1],
		{Name: "Hermit", Age: 80, Hobbies: []string{"silence"}},
	} {
		got, err := proto.Marshal(SetProto(&m, &a, p))
		if err != nil {
			t.Fatal(err)
		}
		want, err := proto.Marshal(ToProto(p))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: reused message encodes as %x, want %x", p.Name, got, want)
		}
	}
}

package wire

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/routeguide/routeguide/internal/people"
	pb "github.com/routeguide/routeguide/routeguidepb"
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

func TestIsNotFound(t *testing.T) {
	for _, tt := range []struct {
		m    *pb.Person
		want bool
	}{
		{&pb.Person{Name: people.NotFoundName}, true},
		{&pb.Person{Name: people.NotFoundName, Hobbies: []string{}}, true},
		{&pb.Person{Name: people.NotFoundName, Age: 3}, false},
		{&pb.Person{Name: people.NotFoundName, Address: &pb.Person_Address{}}, false},
		{&pb.Person{Name: "Not found"}, false},
		{ToProto(people.Seed()[0]), false},
		{nil, false},
	} {
		if got := IsNotFound(tt.m); got != tt.want {
			t.Errorf("IsNotFound(%v) = %v, want %v", tt.m, got, tt.want)
		}
	}
}

// TestChangeTypes checks that each change type is sent as an event type
// that reads back as it, and that the events of a watch's start read as no
// change.
func TestChangeTypes(t *testing.T) {
	for _, c := range []people.ChangeType{people.Added, people.Updated, people.Deleted} {
		typ := ChangeToProto(people.Change{Type: c, Person: people.Person{Name: "A"}}).GetType()
		if got, ok := ChangeTypeOf(typ); !ok || got != c {
			t.Errorf("ChangeTypeOf(%v) = %v, %v; want %v", typ, got, ok, c)
		}
	}
	for _, typ := range []pb.WatchPeopleResponse_Type{
		pb.WatchPeopleResponse_TYPE_UNSPECIFIED, pb.WatchPeopleResponse_TYPE_CURRENT, pb.WatchPeopleResponse_TYPE_SYNCED, 99,
	} {
		if c, ok := ChangeTypeOf(typ); ok {
			t.Errorf("ChangeTypeOf(%v) = %v, want no change", typ, c)
		}
	}
	if got := ChangeToProto(people.Change{Type: 9}).GetType(); got != pb.WatchPeopleResponse_TYPE_UNSPECIFIED {
		t.Errorf("ChangeToProto of an unknown change type: %v, want TYPE_UNSPECIFIED", got)
	}
}

// TestFromStatus checks that a call's status comes back as the domain
// error the server sent, violations and all, with the status still in the
// chain, and that a call's cancellation and deadline read as the context's.
func TestFromStatus(t *testing.T) {
	vs := []people.FieldViolation{{Field: "person.name", Description: "is required"}, {Field: "person.age", Description: "must be at most 150"}}
	sent := WithViolations(status.New(codes.InvalidArgument, "person.name is required (and 1 more)"), vs).Err()
	err := FromStatus(sent)
	var e *people.Error
	if !errors.As(err, &e) || e.Kind != people.Invalid || e.Message != "person.name is required (and 1 more)" || !slices.Equal(e.Violations, vs) {
		t.Errorf("FromStatus(%v) = %#v, want an Invalid error with violations %v", sent, err, vs)
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("status.Code(FromStatus(...)) = %v, want InvalidArgument", status.Code(err))
	}
	if got := Violations(status.New(codes.InvalidArgument, "x")); got != nil {
		t.Errorf("Violations of a status without details = %v, want none", got)
	}

	for code, want := range map[codes.Code]error{codes.Canceled: context.Canceled, codes.DeadlineExceeded: context.DeadlineExceeded} {
		err := FromStatus(status.Error(code, "ended"))
		if !errors.Is(err, want) || status.Code(err) != code {
			t.Errorf("FromStatus(%v) = %v (code %v), want one errors.Is finds %v in, with its code", code, err, status.Code(err), want)
		}
	}
	if got := FromStatus(status.Error(codes.PermissionDenied, "no")); people.KindOf(got) != people.Internal || status.Code(got) != codes.PermissionDenied {
		t.Errorf("FromStatus(PermissionDenied) = %v, want an Internal error keeping its code", got)
	}
	plain := errors.New("plain")
	if FromStatus(plain) != plain || FromStatus(nil) != nil {
		t.Error("FromStatus changed an error without a status, or nil")
	}
}

package grpcserver

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/wire"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

// TestAppendListPageIsProtoMarshal holds appendListPage to proto.Marshal's
// encoding of the ListPeopleResponse it stands for.
func TestAppendListPageIsProtoMarshal(t *testing.T) {
	odd := []people.Person{
		{Name: "Fay"},
		{Name: "Gus \"the bus\"", Age: -60, Gender: 9, Hobbies: []string{"", "chess"}, Address: people.Address{City: "Zürich"}},
		{Name: "Hal", Address: people.Address{Street: "1 Oak St"}},
	}
	for _, tt := range []struct {
		found []people.Person
		next  string
	}{
		{nil, ""},
		{people.Seed(), ""},
		{odd, "opaque-token"},
		{append(people.Seed(), odd...), ""},
	} {
		want := &pb.ListPeopleResponse{NextPageToken: tt.next}
		for _, p := range tt.found {
			want.People = append(want.People, wire.ToProto(p))
			want.Etags = append(want.Etags, people.ETag(p))
		}
		wantB, err := proto.MarshalOptions{Deterministic: true}.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendListPage([]byte("prefix"), tt.found, tt.next)
		if err != nil {
			t.Fatalf("appendListPage(%q): %v", tt.found, err)
		}
		if !bytes.Equal(got, append([]byte("prefix"), wantB...)) {
			t.Errorf("appendListPage(%q, %q)\n = %x\nwant %x", tt.found, tt.next, got[6:], wantB)
		}
	}
	if _, err := appendListPage(nil, []people.Person{{Name: "bad \xff"}}, ""); err == nil {
		t.Error("appendListPage of a name that is not UTF-8 succeeded")
	}
}

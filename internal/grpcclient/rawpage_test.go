package grpcclient

import (
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/routeguide/routeguide/routeguidepb"
)

// TestNextPageToken holds rawPage.nextPageToken to what proto.Unmarshal
// reads as the page token, and to failing where it fails.
func TestNextPageToken(t *testing.T) {
	page := func(token string) []byte {
		b, err := proto.Marshal(&pb.ListPeopleResponse{
			People:        []*pb.Person{{Name: "Alice", Age: 30, Hobbies: []string{"x"}, Address: &pb.Person_Address{City: "Boston"}}, {Name: "Bob"}},
			NextPageToken: token,
			Etags:         []string{"0123456789abcdef", "fedcba9876543210"},
		})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	twice := append(page("first"), protowire.AppendString(protowire.AppendTag(nil, 2, protowire.BytesType), "second")...)
	unknown := protowire.AppendVarint(protowire.AppendTag(page("tok"), 9, protowire.VarintType), 5)
	for _, b := range [][]byte{nil, page(""), page("tok"), page("Zürich token"), twice, unknown} {
		var want pb.ListPeopleResponse
		if err := proto.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		got, err := (&rawPage{b: b}).nextPageToken()
		if err != nil || got != want.GetNextPageToken() {
			t.Errorf("nextPageToken(%x) = %q, %v; want %q", b, got, err, want.GetNextPageToken())
		}
	}
	for _, b := range [][]byte{{0x12}, {0x12, 0x05, 'a'}, {0x0a, 0x80}, {0x80}} {
		if got, err := (&rawPage{b: b}).nextPageToken(); err == nil {
			t.Errorf("nextPageToken(%x) = %q, want an error", b, got)
		}
	}
}

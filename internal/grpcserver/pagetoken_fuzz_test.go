package grpcserver

import (
	"testing"

	"github.com/routeguide/routeguide/internal/people"
)

// FuzzPageToken checks that any token decodes to a name or an Invalid error,
// never a panic, and that encoding round-trips.
func FuzzPageToken(f *testing.F) {
	q := people.Query{City: "Boston"}
	f.Add(encodePageToken(q, "Alice"))
	f.Add("")
	f.Add("%%%")
	f.Add("eyJhIjoiQWxpY2UiLCJmIjoxfQ")
	f.Fuzz(func(t *testing.T, token string) {
		after, err := decodePageToken(q, token)
		if err != nil {
			if people.KindOf(err) != people.Invalid {
				t.Fatalf("decodePageToken(%q) error %v is not Invalid", token, err)
			}
			return
		}
		again, err := decodePageToken(q, encodePageToken(q, after))
		if err != nil || again != after {
			t.Fatalf("round trip of %q gave %q, %v", after, again, err)
		}
	})
}

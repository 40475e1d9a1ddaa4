package memory

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/peopletest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestStore(t *testing.T) {
	peopletest.Run(t, func(t *testing.T, opts peopletest.Options) people.Store {
		s := New(opts.Retain, people.Seed()...)
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestRequestIDsBoundedByCount checks that the store keeps no more request
// ids than its retention of changes, forgetting the oldest first.
func TestRequestIDsBoundedByCount(t *testing.T) {
	s := New(2)
	ctx := context.Background()
	write := func(id string) context.Context {
		w := people.Write{Digest: "d", Expires: time.Now().Add(time.Hour)}
		w.RequestID = id
		return people.WithWrite(ctx, w)
	}
	for i, name := range []string{"A", "B", "C"} {
		if _, err := s.Add(write(fmt.Sprint(i)), people.Person{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.keys.byID) != 2 {
		t.Errorf("the store keeps %d request ids, want 2", len(s.keys.byID))
	}
	if _, err := s.Add(write("0"), people.Person{Name: "A"}); people.KindOf(err) != people.AlreadyExists {
		t.Errorf("the forgotten request again: %v, want ALREADY_EXISTS, made afresh", err)
	}
	if rev, err := s.Add(write("2"), people.Person{Name: "C"}); err != nil || rev != 3 {
		t.Errorf("a kept request again = %d, %v; want its answer, revision 3", rev, err)
	}
}

package memory

import (
	"testing"

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

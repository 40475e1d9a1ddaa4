package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"go.uber.org/goleak"

	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/peopletest"
	"github.com/routeguide/routeguide/internal/postgres/postgrestest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func open(t *testing.T, url string, retain int) *Store {
	t.Helper()
	s, err := Open(context.Background(), url, retain, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	postgrestest.Require(t)
	peopletest.Run(t, func(t *testing.T, opts peopletest.Options) people.Store {
		return open(t, postgrestest.Schema(t), opts.Retain)
	})
}

// TestReplicas checks that stores on one database see each other's writes at
// once, and that a writer wakes another replica's waiters.
func TestReplicas(t *testing.T) {
	url := postgrestest.Schema(t)
	a, b := open(t, url, 0), open(t, url, 0)
	ctx := context.Background()
	woke := make(chan error, 1)
	go func() { woke <- b.WaitChange(ctx, 2) }()
	if _, err := a.Add(ctx, people.Person{Name: "Carol"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Person(ctx, "Carol"); err != nil {
		t.Errorf("replica b: Person(Carol) after a's Add: %v", err)
	}
	if err := <-woke; err != nil {
		t.Errorf("replica b: WaitChange: %v", err)
	}
	changes, err := b.Changes(ctx, 2, 10)
	if err != nil || len(changes) != 1 || changes[0].Person.Name != "Carol" {
		t.Errorf("replica b: Changes(2) = %+v, %v", changes, err)
	}
}

// TestReopenDoesNotReseed checks that migrations run once.
func TestReopenDoesNotReseed(t *testing.T) {
	url := postgrestest.Schema(t)
	ctx := context.Background()
	s, err := Open(ctx, url, 0, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, "Alice"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, url, 0)
	if _, err := s.Person(ctx, "Alice"); people.KindOf(err) != people.NotFound {
		t.Errorf("Person(Alice) after reopening = %v, want NotFound", err)
	}
}

// TestWritesWhateverTheDefaultIsolation checks that concurrent writers get
// gap-free revisions even when the database defaults to REPEATABLE READ.
func TestWritesWhateverTheDefaultIsolation(t *testing.T) {
	url := postgrestest.Schema(t) + "&default_transaction_isolation=repeatable%20read"
	s := open(t, url, 0)
	ctx := context.Background()
	errs := make(chan error, 20)
	for i := range 20 {
		go func() {
			_, err := s.Add(ctx, people.Person{Name: fmt.Sprint("p", i)})
			errs <- err
		}()
	}
	for range 20 {
		if err := <-errs; err != nil {
			t.Errorf("Add: %v", err)
		}
	}
	if rev, err := s.Revision(ctx); err != nil || rev != 22 {
		t.Errorf("Revision = %d, %v; want 22", rev, err)
	}
}

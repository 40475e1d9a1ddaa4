package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/peopletest"
)

// envURL names the variable that points the tests at a PostgreSQL server,
// such as postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const envURL = "ROUTEGUIDE_TEST_POSTGRES"

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// freshSchema creates an empty schema for one test and returns a URL that
// uses it; cleanup drops it. It skips the test when envURL is unset.
func freshSchema(t *testing.T) string {
	t.Helper()
	base := os.Getenv(envURL)
	if base == "" {
		t.Skipf("set %s to a PostgreSQL URL to run the PostgreSQL store tests", envURL)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to %s: %v", envURL, err)
	}
	defer conn.Close(ctx)
	schema := fmt.Sprintf("routeguide_test_%d", rand.Int64())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop schema: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
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
	if os.Getenv(envURL) == "" {
		t.Skipf("set %s to a PostgreSQL URL to run the PostgreSQL store tests", envURL)
	}
	peopletest.Run(t, func(t *testing.T, opts peopletest.Options) people.Store {
		return open(t, freshSchema(t), opts.Retain)
	})
}

// TestReplicas checks that stores on one database see each other's writes at
// once, and that a writer wakes another replica's waiters.
func TestReplicas(t *testing.T) {
	url := freshSchema(t)
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
	url := freshSchema(t)
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

package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"github.com/routeguide/routeguide/internal/groupcommit/groupcommittest"
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

// TestDBErrorKinds checks how database failures reach callers: a database
// that cannot be reached, is shutting down or timed out on its own is
// Unavailable, the caller's own deadline passes through, and other answers
// of the server are Internal.
func TestDBErrorKinds(t *testing.T) {
	live := context.Background()
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want people.Kind
		same bool // the error is returned as it is
	}{
		{"connection refused", live, &pgconn.ConnectError{}, people.Unavailable, false},
		{"connection lost", live, io.ErrUnexpectedEOF, people.Unavailable, false},
		{"terminated by an administrator", live, &pgconn.PgError{Code: "57P01"}, people.Unavailable, false},
		{"starting up", live, &pgconn.PgError{Code: "57P03"}, people.Unavailable, false},
		{"too many connections", live, &pgconn.PgError{Code: "53300"}, people.Unavailable, false},
		{"connection failure", live, &pgconn.PgError{Code: "08006"}, people.Unavailable, false},
		{"pool wait or connect timed out", live, fmt.Errorf("acquire: %w", context.DeadlineExceeded), people.Unavailable, false},
		{"syntax error", live, &pgconn.PgError{Code: "42601"}, people.Internal, false},
		{"caller's deadline", ended, fmt.Errorf("query: %w", context.DeadlineExceeded), people.Internal, true},
		{"caller cancelled", ended, fmt.Errorf("query: %w", context.Canceled), people.Internal, true},
		{"domain error", live, notFound("Carol"), people.NotFound, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := dbError(tt.ctx, "test", tt.err)
			if tt.same {
				if got != tt.err {
					t.Errorf("dbError(%v) = %v, want it unchanged", tt.err, got)
				}
				return
			}
			if k := people.KindOf(got); k != tt.want {
				t.Errorf("dbError(%v) kind = %v, want %v", tt.err, k, tt.want)
			}
			if !errors.Is(got, tt.err) {
				t.Errorf("dbError(%v) = %v, which lost the original error", tt.err, got)
			}
		})
	}
}

// TestConnectionLostMidWrite ends a write's database connection after its
// statements but before COMMIT: the write fails as Unavailable, nothing of
// it is stored, and the store goes on with a new connection.
func TestConnectionLostMidWrite(t *testing.T) {
	url := postgrestest.Schema(t)
	s := open(t, url, 0)
	ctx := context.Background()
	before, err := s.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	killer, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer killer.Close(ctx)
	_, err = s.apply(ctx, "add person", func(ctx context.Context, tx querier, next func() int64) error {
		if _, err := tx.Exec(ctx, "INSERT INTO people (name, age, gender, hobbies, street, city) VALUES ('Lost', 1, 0, '{}', '', '')"); err != nil {
			return err
		}
		if err := record(ctx, tx, next(), people.Added, people.Person{Name: "Lost"}); err != nil {
			return err
		}
		// Wait, up to 5 s, until the backend has gone.
		var ended bool
		if err := killer.QueryRow(ctx, "SELECT pg_terminate_backend($1, 5000)", tx.Conn().PgConn().PID()).Scan(&ended); err != nil || !ended {
			t.Errorf("pg_terminate_backend = %v, %v", ended, err)
		}
		return nil
	})
	if k := people.KindOf(err); k != people.Unavailable {
		t.Fatalf("write whose connection died = %v (kind %v), want Unavailable", err, k)
	}
	if _, err := s.Person(ctx, "Lost"); people.KindOf(err) != people.NotFound {
		t.Errorf("Person(Lost) after the failed write = %v, want NotFound", err)
	}
	if after, err := s.Revision(ctx); err != nil || after != before {
		t.Errorf("Revision after the failed write = %d, %v; want %d", after, err, before)
	}
	if _, err := s.Add(ctx, people.Person{Name: "Found"}); err != nil {
		t.Errorf("Add after the failed write: %v", err)
	}
}

// TestPing checks that a store on a live database answers Ping, and that
// one whose pool cannot connect reports Unavailable.
func TestPing(t *testing.T) {
	s := open(t, postgrestest.Schema(t), 0)
	ctx := context.Background()
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping = %v, want nil", err)
	}
	// The same store, with its pool now pointed at a port nobody listens on.
	cfg := s.pool.Config()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Host, cfg.ConnConfig.Port = "127.0.0.1", uint16(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	cfg.ConnConfig.Fallbacks = nil
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	down := &Store{pool: pool}
	if err := down.Ping(ctx); people.KindOf(err) != people.Unavailable {
		t.Errorf("Ping with the database down = %v (kind %v), want Unavailable", err, people.KindOf(err))
	}
	if _, err := down.Person(ctx, "Alice"); people.KindOf(err) != people.Unavailable {
		t.Errorf("Person with the database down = %v (kind %v), want Unavailable", err, people.KindOf(err))
	}
}

// TestPoolExhausted holds the pool's only connection: a call with no
// deadline of its own fails with Unavailable once acquireTimeout has passed,
// instead of waiting for ever.
func TestPoolExhausted(t *testing.T) {
	s := open(t, postgrestest.Schema(t)+"&pool_max_conns=1", 0)
	ctx := context.Background()
	held, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	if _, err := s.Person(ctx, "Alice"); people.KindOf(err) != people.Unavailable {
		t.Errorf("Person with no connection to be had = %v (kind %v), want Unavailable", err, people.KindOf(err))
	}
}

// TestGroupCommit runs the group-commit behaviour on PostgreSQL.
func TestGroupCommit(t *testing.T) {
	postgrestest.Require(t)
	groupcommittest.Run(t, func(t *testing.T) groupcommittest.Subject {
		url := postgrestest.Schema(t)
		s := open(t, url, 0)
		return groupcommittest.Subject{
			Store:  s,
			Group:  s.group,
			Reopen: func(t *testing.T) people.Store { return open(t, url, 0) },
			FailAfterWriting: func(ctx context.Context, name string) error {
				_, err := s.apply(ctx, "add and fail", func(ctx context.Context, tx querier, next func() int64) error {
					p := people.Person{Name: name}
					if _, err := tx.Exec(ctx, "INSERT INTO people ("+personColumns+") VALUES ($1, $2, $3, $4, $5, $6)", personArgs(p)...); err != nil {
						return err
					}
					if err := record(ctx, tx, next(), people.Added, p); err != nil {
						return err
					}
					return errors.New("failing after writing, as the test asks")
				})
				return err
			},
		}
	})
}

// TestWriteReturnsAtItsDeadline holds the committer with a write in its
// group: the write's caller is answered when its deadline passes, not when
// the group ends, and the write, whose caller gave up before the group ran,
// is not applied.
func TestWriteReturnsAtItsDeadline(t *testing.T) {
	s := open(t, postgrestest.Schema(t), 0)
	// The hold ends by itself after 10 s, so that a write that waits for
	// its group fails the test below rather than hanging it.
	gate := make(chan struct{})
	release := sync.OnceFunc(func() { close(gate) })
	defer release()
	s.group.SetTestHookGroup(func(int) {
		select {
		case <-gate:
		case <-time.After(10 * time.Second):
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.Add(ctx, people.Person{Name: "Late"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Add with its group held = %v, want context.DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Add returned %v after its deadline", took)
	}
	release()
	// A later write commits in a later group, after the held one ended.
	if _, err := s.Add(context.Background(), people.Person{Name: "After"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Person(context.Background(), "Late"); people.KindOf(err) != people.NotFound {
		t.Errorf("Person(Late) = %v, want NotFound: a write whose caller gave up was applied", err)
	}
}

// record appends a change to the log, as the writes under test do.
func record(ctx context.Context, tx querier, rev int64, typ people.ChangeType, p people.Person) error {
	_, err := tx.Exec(ctx, "INSERT INTO changes (revision, type, "+personColumns+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
		append([]any{rev, int16(typ)}, personArgs(p)...)...)
	return err
}

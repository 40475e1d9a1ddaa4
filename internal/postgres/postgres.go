// Package postgres is the people directory on PostgreSQL, for running
// several stateless `routeguide serve` replicas on one database. Replicas
// learn of each other's writes through LISTEN/NOTIFY.
//
// Writes commit in groups: the writes waiting while one transaction commits
// go together into the next, so that concurrent writers on a replica share
// one commit (and one hold of the write lock) instead of queueing for one
// each. A group's additions go in one statement (batch.go); its other
// writes run each in its own savepoint.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/routeguide/routeguide/internal/groupcommit"
	"github.com/routeguide/routeguide/internal/notify"
	"github.com/routeguide/routeguide/internal/people"
)

// DefaultRetain is how many recent changes a Store keeps for watchers that
// resume from a revision: ten of the server's largest import transactions,
// so a watcher that falls a little behind a bulk import can still catch up.
const DefaultRetain = 1_000_000

// The advisory lock keys. writeLock serializes writers so that revisions
// commit in order; migrateLock serializes replicas migrating at start.
const (
	writeLock   = 0x526f757465477569 // "RouteGui"
	migrateLock = writeLock + 1
)

// latestRevision reads the latest revision in the change log.
const latestRevision = "SELECT coalesce(max(revision), 0) FROM changes"

// channel is the NOTIFY channel writers announce new revisions on, as
// "schema:revision".
const channel = "routeguide_changes"

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a directory in a PostgreSQL database, safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	schema string
	retain int
	log    *slog.Logger
	latest notify.Latest
	group  *groupcommit.Committer[*write]

	// imported is the change log of the last import transaction that
	// added its whole batch, kept for Changes (imported.go).
	imported atomic.Pointer[importedChanges]
	// recent is the change log of the last groups of additions, kept
	// for this replica's read cache (Recent).
	recent people.RecentChanges
	// While one of this replica's groups commits (committing), the
	// revisions the listener hears of wait in heldBack, to be announced
	// once the group has kept its changes (see announce).
	commitMu   sync.Mutex
	committing bool
	heldBack   int64

	stopListening context.CancelFunc
	listening     sync.WaitGroup
}

// maxGroup is the most writes one transaction commits together. Each write
// is a savepoint, a subtransaction of its own until the group commits, and
// PostgreSQL keeps 64 of those per transaction in shared memory: beyond
// that, every other session's snapshots fall back to a slower lookup.
const maxGroup = 64

// writeFunc is a write, run in its group's transaction (in a savepoint);
// next hands out the next revision for the change log.
type writeFunc = func(ctx context.Context, tx querier, next func() int64) error

// querier runs statements in a write's transaction: a group's connection
// (*pgxpool.Conn) in the transaction the group began on it, or an
// import's pgx.Tx.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	Conn() *pgx.Conn
}

// write is one write of a group: run, in a savepoint of its own, unless
// it is an addition the group applies with the others (see RunBatch).
type write struct {
	run      writeFunc
	add      *addition // nil unless the write adds a person
	unlogged int64     // revisions run took and gave back, logging no change
}

// pending is a write waiting for its group to commit.
type pending = groupcommit.Write[*write]

var (
	_ people.Store  = (*Store)(nil)
	_ people.Pinger = (*Store)(nil)
)

// connectTimeout bounds a connection attempt when the URL sets no
// connect_timeout. Without it, a database host that drops packets would hold
// each call until its deadline, and the change listener indefinitely; with
// it, calls fail with Unavailable and the listener retries.
const connectTimeout = 5 * time.Second

// Open connects to the database at url, applies any migrations it lacks (a
// new database starts with the seed's Alice and Bob) and starts listening
// for other replicas' changes. It keeps the last retain changes
// (DefaultRetain when retain is 0).
func Open(ctx context.Context, url string, retain int, log *slog.Logger) (*Store, error) {
	if retain <= 0 {
		retain = DefaultRetain
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse URL: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	s := &Store{pool: pool, retain: retain, log: log, recent: people.RecentChanges{Keep: maxGroup}}
	if err := pool.QueryRow(ctx, "SELECT current_schema()").Scan(&s.schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: migrate: %w", err)
	}
	rev, err := s.Revision(ctx)
	if err != nil {
		pool.Close()
		return nil, err
	}
	// Each write transaction drops only the changes its own revisions push
	// out (dropChanges): those a replica keeping more left before this one
	// started go now.
	if _, err := pool.Exec(ctx, "DELETE FROM changes WHERE revision >= (SELECT min(revision) FROM changes) AND revision <= $1", rev-int64(retain)); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: drop old changes: %w", err)
	}
	s.latest.Advance(rev)
	s.group = groupcommit.New(maxGroup, s.beginGroup)

	listenCtx, cancel := context.WithCancel(context.Background())
	s.stopListening = cancel
	s.listening.Add(2)
	go s.listen(listenCtx)
	go s.poll(listenCtx)
	return s, nil
}

// Close stops listening, stops taking writes, waits for the group being
// committed, and closes every connection. A write still waiting either
// commits or fails with Unavailable.
func (s *Store) Close() error {
	s.stopListening()
	s.listening.Wait()
	s.group.Close()
	s.pool.Close()
	return nil
}

// Ping checks that the database answers a trivial query on one of the
// pool's connections, or, when that connection has failed (the database
// may have closed it while it sat idle), on a new connection of its own.
// It fails with Unavailable when the database cannot be reached, or with
// ctx's error when ctx ends first.
func (s *Store) Ping(ctx context.Context) error {
	conn, err := s.acquire(ctx, "ping")
	if err != nil {
		return err
	}
	err = conn.Ping(ctx)
	conn.Release() // the pool drops a connection that failed
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return dbError(ctx, "ping", err)
	}
	fresh, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig) // Config returns a copy
	if err != nil {
		return dbError(ctx, "ping", err)
	}
	defer fresh.Close(context.WithoutCancel(ctx))
	if err := fresh.Ping(ctx); err != nil {
		return dbError(ctx, "ping", err)
	}
	return nil
}

// acquireTimeout bounds the wait for a pooled connection. When every
// connection is stuck on a database that stopped answering, or the pool
// cannot connect, a call fails with Unavailable after this long rather than
// waiting for its deadline, or forever when it has none (a watch, an
// import).
const acquireTimeout = 5 * time.Second

// acquire returns one of the pool's connections for op, which the caller
// releases; an error of kind Unavailable when none becomes available within
// acquireTimeout, or ctx's error when ctx ends first.
func (s *Store) acquire(ctx context.Context, op string) (*pgxpool.Conn, error) {
	actx, cancel := context.WithTimeout(ctx, acquireTimeout)
	defer cancel()
	conn, err := s.pool.Acquire(actx)
	if err != nil {
		return nil, dbError(ctx, op, err)
	}
	return conn, nil
}

// Pool returns the connection pool, for its statistics.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// migrate applies, in order and each in its own transaction, the embedded
// migrations the database has not recorded. Replicas starting together wait
// for each other on an advisory lock.
func (s *Store) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	slices.Sort(names)
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrateLock); err != nil {
		return err
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrateLock)
	if _, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"); err != nil {
		return err
	}
	var version int
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&version); err != nil {
		return err
	}
	for i, name := range names {
		if i+1 <= version {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version) VALUES ($1)", i+1)
			return err
		})
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// listen follows other replicas' writes until ctx ends, reconnecting with
// backoff whenever its connection fails. poll backs it up.
func (s *Store) listen(ctx context.Context) {
	defer s.listening.Done()
	backoff := 100 * time.Millisecond
	for {
		connected, err := s.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if connected {
			backoff = 100 * time.Millisecond
		}
		s.log.Warn("postgres change listener disconnected; reconnecting", "error", err, "retry_in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// pollInterval is how often a replica reads the latest revision itself, in
// case its listener's connection is silently dead or cannot reconnect: a
// watcher then learns of other replicas' writes within about this long.
const pollInterval = time.Second

// poll reads the latest revision every pollInterval until ctx ends.
func (s *Store) poll(ctx context.Context) {
	defer s.listening.Done()
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if rev, err := s.Revision(ctx); err == nil {
			s.latest.Advance(rev)
		}
	}
}

// listenOnce listens on one dedicated connection until it fails. After
// connecting, it reads the latest revision, covering anything announced
// while it was away.
func (s *Store) listenOnce(ctx context.Context) (connected bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return false, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		return false, err
	}
	var rev int64
	if err := conn.QueryRow(ctx, latestRevision).Scan(&rev); err != nil {
		return false, err
	}
	s.latest.Advance(rev)
	prefix := s.schema + ":"
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true, err
		}
		if rest, ok := strings.CutPrefix(n.Payload, prefix); ok {
			if rev, err := strconv.ParseInt(rest, 10, 64); err == nil {
				s.announce(rev)
			}
		}
	}
}

// announce announces rev, which a notification told of, to WaitChange;
// while one of this replica's groups commits, only after it. The
// notification may be the group's own, which comes as soon as COMMIT is
// done, and the cache's follower it would wake would not yet find the
// group's changes kept (Recent) and would read them from the log.
func (s *Store) announce(rev int64) {
	s.commitMu.Lock()
	if s.committing {
		s.heldBack = max(s.heldBack, rev)
		s.commitMu.Unlock()
		return
	}
	s.commitMu.Unlock()
	s.latest.Advance(rev)
}

// holdAnnouncements has announce hold back the revisions it is told of
// until the returned function is called, once the group committing has
// announced its own.
func (s *Store) holdAnnouncements() (release func()) {
	s.commitMu.Lock()
	s.committing = true
	s.commitMu.Unlock()
	return func() {
		s.commitMu.Lock()
		s.committing = false
		rev := s.heldBack
		s.commitMu.Unlock()
		s.latest.Advance(rev)
	}
}

const personColumns = "name, age, gender, hobbies, street, city"

// Person returns the person named name, or an error of kind people.NotFound.
func (s *Store) Person(ctx context.Context, name string) (people.Person, error) {
	conn, err := s.acquire(ctx, "get person")
	if err != nil {
		return people.Person{}, err
	}
	defer conn.Release()
	p, err := scanPerson(conn.QueryRow(ctx, "SELECT "+personColumns+" FROM people WHERE name = $1", name))
	if errors.Is(err, pgx.ErrNoRows) {
		return people.Person{}, notFound(name)
	}
	if err != nil {
		return people.Person{}, dbError(ctx, "get person", err)
	}
	return p, nil
}

// Add stores p; AlreadyExists when the name is taken. Its group usually
// adds p with the group's other additions (RunBatch); the statement below
// is for the additions it leaves to run one by one.
func (s *Store) Add(ctx context.Context, p people.Person) (int64, error) {
	w := people.WriteOf(ctx)
	o, err := s.applyOnce(ctx, "add person", w, &p, func(ctx context.Context, tx querier, next func() int64) (people.Outcome, error) {
		// One statement, one round trip: the person, their hobbies and the
		// change, the last two only if the name was free.
		var added int
		err := tx.QueryRow(ctx, `WITH added AS (
				INSERT INTO people (`+personColumns+`) VALUES ($1, $2, $3, $4, $5, $6)
				ON CONFLICT (name) DO NOTHING RETURNING name),
			hobby AS (
				INSERT INTO hobbies (hobby, name) SELECT DISTINCT unnest($4::text[]), name FROM added),
			logged AS (
				INSERT INTO changes (revision, type, `+personColumns+`, `+originColumns+`)
				SELECT $7, $8, $1, $2, $3, $4, $5, $6, $9, $10, $11, $12 FROM added)
			SELECT count(*) FROM added`, append(append(personArgs(p), next(), int16(people.Added)), originArgs(stamp(w))...)...).Scan(&added)
		if err != nil {
			return people.Outcome{}, err
		}
		if added == 0 {
			return people.Outcome{}, people.Errorf(people.AlreadyExists, "%q already exists", p.Name)
		}
		return people.Outcome{}, nil
	})
	return o.Revision, err
}

// Update applies u to the person named name; NotFound when nobody has it,
// Invalid when the result breaks the rules, Aborted when the Write's etag
// is not the person's.
func (s *Store) Update(ctx context.Context, name string, u people.Update) (people.Person, int64, error) {
	w := people.WriteOf(ctx)
	o, err := s.applyOnce(ctx, "update person", w, nil, func(ctx context.Context, tx querier, next func() int64) (people.Outcome, error) {
		old, err := scanPerson(tx.QueryRow(ctx, "SELECT "+personColumns+" FROM people WHERE name = $1 FOR UPDATE", name))
		if errors.Is(err, pgx.ErrNoRows) {
			return people.Outcome{}, notFound(name)
		}
		if err != nil {
			return people.Outcome{}, err
		}
		if err := w.CheckETag(old); err != nil {
			return people.Outcome{}, err
		}
		updated := u.Apply(old)
		if err := people.Validate(updated); err != nil {
			return people.Outcome{}, err
		}
		if updated.Equal(old) {
			return people.Outcome{Person: &updated}, nil // no change: the write's revision is the latest
		}
		// The row is locked: one statement writes the person, moves their
		// rows in the hobbies index (dropping the hobbies they lost, $13,
		// adding the ones they gained) and logs the change.
		_, err = tx.Exec(ctx, `WITH updated AS (
				UPDATE people SET age = $2, gender = $3, hobbies = $4, street = $5, city = $6 WHERE name = $1),
			lost AS (
				DELETE FROM hobbies WHERE hobby = ANY($13::text[]) AND name = $1 AND hobby <> ALL($4::text[])),
			gained AS (
				INSERT INTO hobbies (hobby, name) SELECT DISTINCT unnest($4::text[]), $1 ON CONFLICT DO NOTHING)
			INSERT INTO changes (revision, type, `+personColumns+`, `+originColumns+`) VALUES ($7, $8, $1, $2, $3, $4, $5, $6, $9, $10, $11, $12)`,
			append(append(append(personArgs(updated), next(), int16(people.Updated)), originArgs(stamp(w))...), hobbies(old.Hobbies))...)
		return people.Outcome{Person: &updated}, err
	})
	if err != nil {
		return people.Person{}, 0, err
	}
	return *o.Person, o.Revision, nil
}

// Delete removes the person named name; NotFound when nobody has it,
// Aborted when the Write's etag is not the person's.
func (s *Store) Delete(ctx context.Context, name string) (int64, error) {
	w := people.WriteOf(ctx)
	o, err := s.applyOnce(ctx, "delete person", w, nil, func(ctx context.Context, tx querier, next func() int64) (people.Outcome, error) {
		if w.IfMatch != "" {
			old, err := scanPerson(tx.QueryRow(ctx, "SELECT "+personColumns+" FROM people WHERE name = $1 FOR UPDATE", name))
			if errors.Is(err, pgx.ErrNoRows) {
				return people.Outcome{}, notFound(name)
			}
			if err != nil {
				return people.Outcome{}, err
			}
			if err := w.CheckETag(old); err != nil {
				return people.Outcome{}, err
			}
		}
		// One statement, one round trip, as in Add; the change logs the
		// name alone, with the other columns empty.
		var deleted int
		err := tx.QueryRow(ctx, `WITH gone AS (
				DELETE FROM people WHERE name = $1 RETURNING name, hobbies),
			unindexed AS (
				DELETE FROM hobbies WHERE hobby = ANY((SELECT hobbies FROM gone)::text[]) AND name = $1),
			logged AS (
				INSERT INTO changes (revision, type, `+personColumns+`, `+originColumns+`)
				SELECT $2, $3, $1, $4, $5, $6, $7, $8, $9, $10, $11, $12 FROM gone)
			SELECT count(*) FROM gone`, append(append([]any{name, next(), int16(people.Deleted)}, personArgs(people.Person{})[1:]...), originArgs(stamp(w))...)...).Scan(&deleted)
		if err != nil {
			return people.Outcome{}, err
		}
		if deleted == 0 {
			return people.Outcome{}, notFound(name)
		}
		return people.Outcome{}, nil
	})
	return o.Revision, err
}

// List returns up to q.Limit people matching q, in name order. Every filter
// is a range of an index, so a page costs the same wherever it starts.
func (s *Store) List(ctx context.Context, q people.Query) ([]people.Person, error) {
	query, args := listQuery(q)
	conn, err := s.acquire(ctx, "list people")
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	rows, err := conn.Query(ctx, query, args...)
	if err != nil {
		return nil, dbError(ctx, "list people", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (people.Person, error) { return scanPerson(row) })
	if err != nil {
		return nil, dbError(ctx, "list people", err)
	}
	return out, nil
}

// listQuery returns the query List runs for q, and its arguments. By hobby
// it walks the hobbies key (hobby, name), bounding and ordering by its name,
// so that no plan sorts the matches; TestListPlans checks each plan.
func listQuery(q people.Query) (string, []any) {
	var (
		b    strings.Builder
		args []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	name := "p.name"
	if q.Hobby != "" {
		name = "h.name"
		b.WriteString("SELECT p.name, p.age, p.gender, p.hobbies, p.street, p.city FROM hobbies h JOIN people p ON p.name = h.name WHERE h.hobby = " + arg(q.Hobby) + " AND h.name > " + arg(q.After))
	} else {
		b.WriteString("SELECT p.name, p.age, p.gender, p.hobbies, p.street, p.city FROM people p WHERE p.name > " + arg(q.After))
	}
	if q.City != "" {
		b.WriteString(" AND p.city = " + arg(q.City))
	}
	if q.NamePrefix != "" {
		b.WriteString(" AND " + name + " >= " + arg(q.NamePrefix))
		if end, ok := people.PrefixEnd(q.NamePrefix); ok {
			b.WriteString(" AND " + name + " < " + arg(end))
		}
	}
	b.WriteString(" ORDER BY " + name + " LIMIT " + arg(q.Limit))
	return b.String(), args
}

// Import adds or replaces every person in batch, in one transaction: in bulk
// (importBulk) when no name appears twice in the batch, else with a
// statement a person, sent in one round trip.
func (s *Store) Import(ctx context.Context, batch []people.Person) (people.ImportResult, error) {
	w := people.WriteOf(ctx)
	if len(batch) == 0 && !w.Keyed() {
		rev, err := s.Revision(ctx)
		return people.ImportResult{Revision: rev}, err
	}
	by := stamp(w)
	origin := originArgs(by)
	var r people.ImportResult
	distinct := distinctNames(batch)
	var prepared newRows
	if distinct {
		prepared = prepareNew(batch)
	}
	replayed := false
	rev, err := s.inTx(ctx, "import people", func(tx pgx.Tx) error {
		replayed = false
		latest := func() (int64, error) {
			var rev int64
			err := tx.QueryRow(ctx, latestRevision).Scan(&rev)
			return rev, err
		}
		o, err := once(ctx, tx, w, latest, func() (people.Outcome, error) {
			var err error
			if distinct {
				err = importBulk(ctx, tx, batch, prepared, by, &r)
			} else {
				err = importIn(ctx, tx, batch, origin, &r)
			}
			if err == nil && r.Added > 0 {
				err = analyzeGrown(ctx, tx)
			}
			return people.Outcome{Import: &r}, err
		})
		if err == nil && o.Import != nil && o.Import != &r {
			r, replayed = *o.Import, true // a repeat: what the first import counted
			r.Revision = o.Revision
		}
		if err == nil {
			err = o.Error()
		}
		return err
	})
	if !replayed {
		r.Revision = rev
		if err == nil && r.Added == int64(len(batch)) {
			s.keepImported(batch, by, rev)
		}
	}
	return r, err
}

// importIn upserts batch's people in tx, counting them in r, and logs the
// changes with the origin's columns.
func importIn(ctx context.Context, tx pgx.Tx, batch []people.Person, origin []any, r *people.ImportResult) error {
	*r = people.ImportResult{}
	var b pgx.Batch
	for _, p := range batch {
		// Upsert the person and log the change in one statement: xmax is
		// 0 for a row this statement inserted. A person equal to the
		// one stored is left alone and returns no row: no change is
		// logged, so the revision is the next one only when there is a
		// change, read from the log (whose latest is at the index's end)
		// rather than handed out beforehand. The hobbies the person had
		// (old, read before the upsert, like every part of the statement)
		// find their rows in the hobbies index.
		b.Queue(`WITH old AS (
			SELECT hobbies FROM people WHERE name = $1),
		up AS (
			INSERT INTO people (`+personColumns+`) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (name) DO UPDATE SET age = excluded.age, gender = excluded.gender,
				hobbies = excluded.hobbies, street = excluded.street, city = excluded.city
			WHERE (people.age, people.gender, people.hobbies, people.street, people.city)
				IS DISTINCT FROM (excluded.age, excluded.gender, excluded.hobbies, excluded.street, excluded.city)
			RETURNING (xmax = 0) AS added),
		logged AS (
			INSERT INTO changes (revision, type, `+personColumns+`, `+originColumns+`)
			SELECT (SELECT coalesce(max(revision), 0) + 1 FROM changes), CASE WHEN added THEN 1 ELSE 2 END, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 FROM up
			RETURNING type),
		unindexed AS (
			DELETE FROM hobbies WHERE hobby = ANY((SELECT hobbies FROM old)::text[]) AND name = $1 AND hobby <> ALL($4::text[]) AND EXISTS (SELECT FROM up)),
		indexed AS (
			INSERT INTO hobbies (hobby, name) SELECT DISTINCT unnest($4::text[]), $1 FROM up
			ON CONFLICT DO NOTHING)
		SELECT coalesce((SELECT type FROM logged), 0)`, append(personArgs(p), origin...)...).QueryRow(func(row pgx.Row) error {
			var typ int16
			if err := row.Scan(&typ); err != nil {
				return err
			}
			switch people.ChangeType(typ) {
			case people.Added:
				r.Added++
			case people.Updated:
				r.Updated++
			default:
				r.Unchanged++
			}
			return nil
		})
	}
	return tx.SendBatch(ctx, &b).Close()
}

// Changes returns up to limit changes after revision after. The latest
// revision and the changes go in one round trip; the oldest revision kept
// is read only when the changes do not follow after (to say which is the
// oldest). min(revision) walks the index from its low end, over the
// entries of every change dropped since the last VACUUM: with autovacuum
// off or behind, a log whose retention drops a change a write would make
// each read of every replica's cache longer with every write.
func (s *Store) Changes(ctx context.Context, after int64, limit int) ([]people.Change, error) {
	conn, err := s.acquire(ctx, "read changes")
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	if out, ok, err := s.importedAfter(ctx, conn, after, limit); ok || err != nil {
		if err != nil {
			return nil, dbError(ctx, "read changes", err)
		}
		return out, nil
	}
	var latest int64
	var out []people.Change
	var b pgx.Batch
	b.Queue(latestRevision).QueryRow(func(row pgx.Row) error { return row.Scan(&latest) })
	b.Queue("SELECT "+changeColumns+" FROM changes WHERE revision > $1 ORDER BY revision LIMIT $2", after, limit).Query(func(rows pgx.Rows) error {
		out, err = pgx.CollectRows(rows, scanChange)
		return err
	})
	if err := conn.SendBatch(ctx, &b).Close(); err != nil {
		return nil, dbError(ctx, "read changes", err)
	}
	if after >= 0 && after <= latest && (len(out) > 0 && out[0].Revision == after+1 || len(out) == 0 && after == latest) {
		return out, nil
	}
	oldest := latest + 1
	var kept *int64
	if err := conn.QueryRow(ctx, "SELECT min(revision) FROM changes").Scan(&kept); err != nil {
		return nil, dbError(ctx, "read changes", err)
	}
	if kept != nil {
		oldest = *kept
	}
	if err := people.CheckResume(after, oldest, latest); err != nil {
		return nil, err
	}
	if err := people.CheckContiguous(after, latest, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Recent returns up to limit changes after revision after from the
// changes of this replica's last groups of additions, kept in memory
// (people.RecentReader), when they hold the change after after. They may
// end before the latest revision this replica knows of: a group's
// notification can arrive before the group's own changes are kept, and
// then the reader, whose WaitChange returns at once, asks again. Other
// replicas may have written since, which only the log tells (see
// cache.Store.applyRecent). The log may also have dropped them meanwhile,
// when other replicas wrote more than its retention: they are still the
// changes that were made.
func (s *Store) Recent(after int64, limit int) ([]people.Change, bool) {
	return s.recent.After(after, s.latest.Get()-int64(s.retain), after+1, limit)
}

// Revision returns the latest revision.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	conn, err := s.acquire(ctx, "read revision")
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	var rev int64
	if err := conn.QueryRow(ctx, latestRevision).Scan(&rev); err != nil {
		return 0, dbError(ctx, "read revision", err)
	}
	return rev, nil
}

// WaitChange blocks until a revision beyond after exists or ctx ends. It
// learns of other replicas' writes through LISTEN/NOTIFY.
func (s *Store) WaitChange(ctx context.Context, after int64) error {
	return s.latest.Wait(ctx, after)
}

// errClosed is what a write gets once the store is closing.
var errClosed = people.Errorf(people.Unavailable, "the directory is closing")

// apply has fn run in the next group of writes and returns the revision
// after it. A write whose ctx ends before its group starts is not applied.
// Once a group has taken it, the write runs to the group's end whatever
// ctx does (a cancelled statement would abort the whole transaction), but
// apply returns ctx's error as soon as ctx ends: like a connection lost
// before COMMIT answered, the caller is told the write failed, and it may
// have been applied.
func (s *Store) apply(ctx context.Context, op string, fn writeFunc) (int64, error) {
	return s.applyWrite(ctx, op, &write{run: fn})
}

// applyWrite is apply for a write that its group may apply with others.
func (s *Store) applyWrite(ctx context.Context, op string, wr *write) (int64, error) {
	w, err := s.group.Submit(ctx, wr, errClosed)
	if err != nil {
		return 0, err
	}
	select {
	case <-w.Done():
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	if w.Err != nil {
		return 0, dbError(ctx, op, w.Err)
	}
	return w.Rev, nil
}

// beginGroup starts a group's transaction (see groupcommit.Tx) on a pooled
// connection it holds, with the write lock, until the group commits or
// rolls back: BEGIN, the lock and the latest revision go in one round
// trip, the revision read after the lock is held (each statement of a
// pipeline takes its own snapshot). Each write run one by one is a
// savepoint, and is undone with the revisions it took.
func (s *Store) beginGroup(ctx context.Context) (groupcommit.Tx[*write], error) {
	actx, cancel := context.WithTimeout(ctx, acquireTimeout)
	conn, err := s.pool.Acquire(actx)
	cancel()
	if err != nil {
		return nil, err
	}
	var rev int64
	var b pgx.Batch
	b.Queue("BEGIN ISOLATION LEVEL READ COMMITTED")
	b.Queue("SELECT pg_advisory_xact_lock($1)", writeLock)
	b.Queue(latestRevision).QueryRow(func(row pgx.Row) error { return row.Scan(&rev) })
	if err := conn.SendBatch(ctx, &b).Close(); err != nil {
		rollbackConn(conn)
		conn.Release()
		return nil, err
	}
	return &groupTx{s: s, ctx: ctx, conn: conn, from: rev, rev: rev}, nil
}

// groupTx is a group's transaction on PostgreSQL, run by hand on its
// connection, so that its statements can share round trips with the
// group's own.
type groupTx struct {
	s        *Store
	ctx      context.Context // the group's
	conn     *pgxpool.Conn
	from     int64 // the latest revision when the group began
	rev      int64 // the latest revision handed out
	before   int64 // rev when the current write began
	released bool  // the last write's savepoint is kept, its RELEASE not yet sent

	// kept are the changes RunBatch logged, as Changes reads them back,
	// for Store.recent once the group commits.
	kept []people.Change
}

// Savepoint marks the next write's start; the previous write's RELEASE
// goes in the same round trip. Every write's savepoint has one name: each
// is released or rolled back before the next.
func (g *groupTx) Savepoint() error {
	sql := "SAVEPOINT w"
	if g.released {
		sql = "RELEASE SAVEPOINT w; SAVEPOINT w"
		g.released = false
	}
	if _, err := g.conn.Exec(g.ctx, sql); err != nil {
		return err
	}
	g.before = g.rev
	return nil
}

func (g *groupTx) Run(w *pending) error {
	w.Fn.unlogged = 0
	if err := w.Fn.run(g.ctx, g.conn, func() int64 { g.rev++; return g.rev }); err != nil {
		return err // RollbackTo gives back every revision the write took
	}
	g.rev -= w.Fn.unlogged
	return nil
}

// Release keeps the write; its RELEASE goes with the next statement (the
// next savepoint's), and COMMIT needs none. Should it fail, the transaction
// failed, and that statement or COMMIT fails too.
func (g *groupTx) Release() (int64, error) {
	g.released = true
	return g.rev, nil
}

func (g *groupTx) RollbackTo() error {
	g.rev = g.before
	_, err := g.conn.Exec(g.ctx, "ROLLBACK TO SAVEPOINT w; RELEASE SAVEPOINT w")
	return err
}

// Commit commits the group, and keeps its changes for Recent when they
// are all RunBatch's, revisions from+1 to rev: the writes run one by one
// come after RunBatch, and a change logged by one of them, unknown here,
// would take a revision beyond RunBatch's.
func (g *groupTx) Commit(rev int64) error {
	kept := g.kept
	if int64(len(kept)) != rev-g.from || len(kept) > 0 && kept[0].Revision != g.from+1 {
		kept = nil
	}
	return g.s.finishGroup(g.ctx, g.conn, g.from, rev, kept)
}

func (g *groupTx) Rollback() {
	rollbackConn(g.conn)
	g.conn.Release()
}

// rollbackConn ends the transaction open on conn, if any, within
// rollbackTimeout; when the connection is gone or the database stopped
// answering, the connection is closed (and the pool drops it) rather than
// waited for.
func rollbackConn(conn *pgxpool.Conn) {
	c := conn.Conn()
	if c.IsClosed() || c.PgConn().TxStatus() == 'I' {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), rollbackTimeout)
	defer cancel()
	if _, err := c.Exec(ctx, "ROLLBACK"); err != nil {
		c.Close(ctx)
	}
}

// rollback ends tx if it is still open, within rollbackTimeout: when the
// connection is gone or the database stopped answering, the connection is
// closed rather than waited for.
func rollback(tx pgx.Tx) {
	ctx, cancel := context.WithTimeout(context.Background(), rollbackTimeout)
	defer cancel()
	tx.Rollback(ctx)
}

// rollbackTimeout bounds a rollback.
const rollbackTimeout = 5 * time.Second

// inTx runs fn in a write transaction of its own and returns the latest
// revision. Imports use it: their batches are groups already, and ctx can
// stop one midway. fn logs its changes with the revisions after the latest;
// a transaction in which fn logged none changed nothing, and is rolled back,
// unless it recorded a request id (people.Write.Keyed).
func (s *Store) inTx(ctx context.Context, op string, fn func(tx pgx.Tx) error) (int64, error) {
	conn, err := s.acquire(ctx, op)
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	tx, latest, err := begin(ctx, conn)
	if err != nil {
		return 0, dbError(ctx, op, err)
	}
	defer rollback(tx)
	if err := fn(tx); err != nil {
		return 0, dbError(ctx, op, err)
	}
	var rev int64
	if err := tx.QueryRow(ctx, latestRevision).Scan(&rev); err != nil {
		return 0, dbError(ctx, op, err)
	}
	// A write with a request id commits even when it changed nothing: its
	// record is the change.
	if rev == latest && !people.WriteOf(ctx).Keyed() {
		return rev, nil
	}
	if err := s.finish(ctx, tx, latest, rev); err != nil {
		return 0, dbError(ctx, op, err)
	}
	return rev, nil
}

// begin starts a write transaction on conn, takes the write lock, so that
// the revisions it hands out commit in order, and returns the latest
// revision. The transaction is READ COMMITTED whatever the database's
// default: each statement after the lock must see what the previous lock
// holder committed.
func begin(ctx context.Context, conn *pgxpool.Conn) (pgx.Tx, int64, error) {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return nil, 0, err
	}
	var latest int64
	if _, err = tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", writeLock); err == nil {
		err = tx.QueryRow(ctx, latestRevision).Scan(&latest)
	}
	if err != nil {
		rollback(tx)
		return nil, 0, err
	}
	return tx, latest, nil
}

// dropChanges drops the changes in a range of revisions ($1, $2]. Each
// write transaction drops the changes its own revisions push out of the
// last s.retain, from the latest revision when it began (from) to its own
// latest (rev), the older ones being gone already: a range of the primary
// key, planned as one however stale the table's statistics are. "Every
// change up to rev-retain" was planned, right after a bulk import that no
// ANALYZE had followed yet, as a scan of the whole log in every
// transaction (the default guess is that a third of the rows match), and a
// million-change log made each group of writes take tens of milliseconds
// reading it; with autovacuum off, the dead rows at the log's start made
// even the index scan longer with every write. TestRetentionPlan checks
// the plan.
const dropChanges = "DELETE FROM changes WHERE revision > $1 AND revision <= $2"

// finish ends a write transaction that began at revision from and whose
// latest revision is rev: it drops the changes older than the last s.retain
// (dropChanges), announces rev to the other
// replicas, commits, and announces rev to WaitChange. An error from any
// statement, or from COMMIT, fails the transaction, even when the
// connection died before COMMIT's answer and it may have been applied: it
// is never reported as done unless COMMIT answered.
func (s *Store) finish(ctx context.Context, tx pgx.Tx, from, rev int64) error {
	if _, err := tx.Exec(ctx, dropChanges, from-int64(s.retain), rev-int64(s.retain)); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, sweepAndNotify, channel, s.schema+":"+strconv.FormatInt(rev, 10), time.Now().UnixMilli()); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	s.latest.Advance(rev)
	return nil
}

// sweepAndNotify deletes up to 1,000 expired request ids, the oldest, and
// announces a revision to the other replicas: one statement, one probe of
// requests_by_expiry when no id has expired. A group records at most
// maxGroup ids, so the sweep keeps up. The ids go by their rows' ctid, a
// plan no statistics change: "every id expired by now", on a large table
// no ANALYZE had seen, was planned as a scan of all the ids in every group
// (the default guess being that a third of them match). TestRetentionPlan
// checks the plan.
const sweepAndNotify = `WITH swept AS (
		DELETE FROM requests WHERE ctid = ANY(ARRAY(SELECT ctid FROM requests WHERE expires <= $3 ORDER BY expires LIMIT 1000)))
	SELECT pg_notify($1, $2)`

// finishGroup is finish for a group's transaction on conn, its three
// statements and COMMIT sent in one round trip: should one fail, the
// database skips those after it, COMMIT included. Once committed, it keeps
// kept, the group's changes when not nil, for Recent, before it announces
// rev.
func (s *Store) finishGroup(ctx context.Context, conn *pgxpool.Conn, from, rev int64, kept []people.Change) error {
	defer s.holdAnnouncements()()
	var b pgx.Batch
	b.Queue(dropChanges, from-int64(s.retain), rev-int64(s.retain))
	b.Queue(sweepAndNotify, channel, s.schema+":"+strconv.FormatInt(rev, 10), time.Now().UnixMilli())
	b.Queue("COMMIT")
	if err := conn.SendBatch(ctx, &b).Close(); err != nil {
		return err
	}
	if conn.Conn().PgConn().TxStatus() != 'I' {
		return errors.New("postgres: COMMIT left the transaction open")
	}
	if kept != nil {
		s.recent.Add(from, kept)
	}
	s.latest.Advance(rev)
	return nil
}

// hobbies returns h as a value for a NOT NULL text[] column.
func hobbies(h []string) []string {
	if h == nil {
		return []string{}
	}
	return h
}

// personArgs returns p's columns in personColumns order.
func personArgs(p people.Person) []any {
	return []any{p.Name, p.Age, int32(p.Gender), hobbies(p.Hobbies), p.Address.Street, p.Address.City}
}

// scanPerson reads a row of personColumns.
func scanPerson(row pgx.Row) (people.Person, error) {
	var p people.Person
	err := row.Scan(&p.Name, &p.Age, &p.Gender, &p.Hobbies, &p.Address.Street, &p.Address.City)
	return p, err
}

func notFound(name string) error {
	return people.Errorf(people.NotFound, "no person named %q", name)
}

// dbError turns a database failure of a call made with ctx into a domain
// error: domain errors pass through, and so do context errors once ctx has
// ended, since the caller gave up; a database that cannot be reached, is
// shutting down, or timed out on its own (a connection attempt, say) is
// Unavailable, and anything else is Internal. The original error is kept for
// the log.
func dbError(ctx context.Context, op string, err error) error {
	var pe *people.Error
	if errors.As(err, &pe) {
		return err
	}
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return err
	}
	return &people.Error{Kind: kindOf(err), Message: op + " failed", Err: fmt.Errorf("postgres: %s: %w", op, err)}
}

// kindOf classifies a database error. The server's answers are Internal,
// except connection failures, shutdown and overload (SQLSTATE classes 08, 53,
// 57); an error that is not the server's answer means no usable connection,
// which is Unavailable too.
func kindOf(err error) people.Kind {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return people.Unavailable
	}
	switch pgErr.Code[:2] {
	case "08", "53", "57":
		return people.Unavailable
	}
	return people.Internal
}

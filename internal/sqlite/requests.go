package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/routeguide/routeguide/internal/people"
)

// A write's request id is recorded in the write's own transaction, so
// that the write and its record are durable together, and a repeat finds
// either both or neither.

// once runs fn, a write in tx, honouring w's request id: a request id
// already recorded answers its outcome (people.Write.Replay) without
// running fn; otherwise fn runs and its outcome, or the failure that
// answers the request (people.Failed), is recorded with the id. The error
// once returns undoes the write's savepoint; a recorded failure is
// returned in the outcome instead, so that its record commits. The
// outcome's Revision is the latest after the write.
func once(ctx context.Context, tx *sql.Tx, w people.Write, fn func() (people.Outcome, error)) (people.Outcome, error) {
	return onceIn(ctx, tx, func(ctx context.Context) (int64, error) { return latestIn(ctx, tx) }, w, fn)
}

// querier runs statements and queries: a *sql.Tx, a *groupTx, or the
// writer itself (*sql.DB, *sql.Conn).
type querier interface {
	execer
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// onceIn is once on q, whose latest revision latest returns.
func onceIn(ctx context.Context, q querier, latest func(context.Context) (int64, error), w people.Write, fn func() (people.Outcome, error)) (people.Outcome, error) {
	if !w.Keyed() {
		o, err := fn()
		return o, err
	}
	now := time.Now().UnixMilli()
	var digest, outcome string
	err := q.QueryRowContext(ctx, selectRequest, w.RequestID, now).Scan(&digest, &outcome)
	switch {
	case err == nil:
		o, err := people.DecodeOutcome(outcome)
		if err != nil {
			return people.Outcome{}, err
		}
		return w.Replay(digest, o)
	case !errors.Is(err, sql.ErrNoRows):
		return people.Outcome{}, err
	}
	o, err := fn()
	if err != nil {
		failed, ok := people.Failed(err)
		if !ok {
			return people.Outcome{}, err
		}
		o = failed
	}
	if o.Revision, err = latest(ctx); err != nil {
		return people.Outcome{}, err
	}
	_, err = q.ExecContext(ctx, insertRequest, w.RequestID, w.Digest, w.Expires.UnixMilli(), people.EncodeOutcome(o))
	return o, err
}

const (
	selectRequest = "SELECT digest, outcome FROM requests WHERE id = ? AND expires > ?"
	insertRequest = `INSERT INTO requests (id, digest, expires, outcome) VALUES (?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET digest = excluded.digest, expires = excluded.expires, outcome = excluded.outcome`
	sweepExpired = "DELETE FROM requests WHERE expires <= ?"
)

// applyOnce is apply for a write that answers an outcome: it runs fn in
// the next group through once. wr is the write as a batch may take it;
// applyOnce sets its run.
func (s *Store) applyOnce(ctx context.Context, op string, wr write, fn func(ctx context.Context, g *groupTx) (people.Outcome, error)) (people.Outcome, error) {
	var out people.Outcome
	w := wr.w
	wr.out = &out
	wr.run = func(ctx context.Context, g *groupTx) error {
		o, err := onceIn(ctx, g, g.latest, w, func() (people.Outcome, error) { return fn(ctx, g) })
		out = o
		return err
	}
	rev, err := s.apply(ctx, op, wr)
	if err != nil {
		return people.Outcome{}, err
	}
	if out.Revision == 0 {
		out.Revision = rev
	}
	return out, out.Error()
}

// sweepRequests deletes the request ids expired by now (Unix
// milliseconds) with st, sweepExpired; finish runs it, where it costs one
// probe of requests_by_expiry when none has.
func sweepRequests(ctx context.Context, tx *sql.Tx, st *sql.Stmt, now int64) error {
	_, err := tx.StmtContext(ctx, st).ExecContext(ctx, now)
	return err
}

// stamp returns the origin a change of w records: w's, made now.
func stamp(w people.Write) people.Origin {
	o := w.Origin
	o.Time = time.Now()
	return o
}

// originArgs returns o's columns in the order of originColumns.
func originArgs(o people.Origin) []any {
	return []any{o.Principal, o.Peer, o.RequestID, o.Time.UnixMilli()}
}

// originColumns are the change log's columns that hold a change's origin.
const originColumns = "principal, peer, request_id, at"

// changeColumns are the columns Changes and History read.
const changeColumns = "revision, type, " + personColumns + ", " + originColumns

// scanChange reads a row of changeColumns.
func scanChange(row scanner) (people.Change, error) {
	var c people.Change
	var hobbies string
	var at int64
	if err := row.Scan(&c.Revision, &c.Type, &c.Person.Name, &c.Person.Age, &c.Person.Gender, &hobbies, &c.Person.Address.Street, &c.Person.Address.City,
		&c.Origin.Principal, &c.Origin.Peer, &c.Origin.RequestID, &at); err != nil {
		return people.Change{}, err
	}
	if at != 0 {
		c.Origin.Time = time.UnixMilli(at)
	}
	var err error
	c.Person.Hobbies, err = decodeHobbies(hobbies)
	return c, err
}

// History returns up to limit changes to the person named name, newest
// first. It walks the change log from its end: history is asked for
// rarely, and an index by name would cost every write.
func (s *Store) History(ctx context.Context, name string, limit int) ([]people.Change, error) {
	rows, err := s.read.QueryContext(ctx, "SELECT "+changeColumns+" FROM changes WHERE name = ? ORDER BY revision DESC LIMIT ?", name, limit)
	if err != nil {
		return nil, s.readError("read history", err)
	}
	defer rows.Close()
	var out []people.Change
	for rows.Next() {
		c, err := scanChange(rows)
		if err != nil {
			return nil, s.readError("read history", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readError("read history", err)
	}
	return out, nil
}

package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/routeguide/routeguide/internal/people"
)

// A write's request id is recorded in the write's own transaction, so
// that the write and its record are durable together, and a repeat finds
// either both or neither. Writers hold the write lock (see begin), so two
// replicas given the same request id at once take turns: the second reads
// what the first recorded.

// once runs fn, a write in tx, honouring w's request id: a request id
// already recorded answers its outcome (people.Write.Replay) without
// running fn; otherwise fn runs and its outcome, or the failure that
// answers the request (people.Failed), is recorded with the id. The error
// once returns undoes the write's savepoint; a recorded failure is
// returned in the outcome instead, so that its record commits. rev returns
// the revision after the write.
func once(ctx context.Context, tx querier, w people.Write, rev func() (int64, error), fn func() (people.Outcome, error)) (people.Outcome, error) {
	if !w.Keyed() {
		return fn()
	}
	var digest, outcome string
	err := tx.QueryRow(ctx, "SELECT digest, outcome FROM requests WHERE id = $1 AND expires > $2", w.RequestID, time.Now().UnixMilli()).Scan(&digest, &outcome)
	switch {
	case err == nil:
		o, err := people.DecodeOutcome(outcome)
		if err != nil {
			return people.Outcome{}, err
		}
		return w.Replay(digest, o)
	case !errors.Is(err, pgx.ErrNoRows):
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
	if o.Revision, err = rev(); err != nil {
		return people.Outcome{}, err
	}
	_, err = tx.Exec(ctx, `INSERT INTO requests (id, digest, expires, outcome) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET digest = excluded.digest, expires = excluded.expires, outcome = excluded.outcome`,
		w.RequestID, w.Digest, w.Expires.UnixMilli(), people.EncodeOutcome(o))
	return o, err
}

// applyOnce is apply for a write that answers an outcome: it runs fn in
// the next group through once. fn's next hands out revisions as apply's
// does. add, when not nil, is the person fn adds: the group may add them
// with its other additions instead of running fn (see RunBatch).
func (s *Store) applyOnce(ctx context.Context, op string, w people.Write, add *people.Person, fn func(ctx context.Context, tx querier, next func() int64) (people.Outcome, error)) (people.Outcome, error) {
	var out people.Outcome
	wr := &write{}
	if add != nil {
		wr.add = &addition{p: *add, w: w, out: &out}
	}
	wr.run = func(ctx context.Context, tx querier, next func() int64) error {
		var first, last int64
		failed := false
		counted := func() int64 {
			last = next()
			if first == 0 {
				first = last
			}
			return last
		}
		// A failure once records keeps the write's savepoint, but fn
		// logged no change: the revisions it took go back to the group
		// (write.unlogged), and the failure answers the latest before
		// them. Kept, they would leave a gap in the log that watchers
		// take for changes no longer kept.
		latest := func() (int64, error) {
			switch {
			case failed && first != 0:
				wr.unlogged = last - first + 1
				return first - 1, nil
			case !failed && last != 0:
				return last, nil
			}
			var rev int64
			err := tx.QueryRow(ctx, latestRevision).Scan(&rev)
			return rev, err
		}
		o, err := once(ctx, tx, w, latest, func() (people.Outcome, error) {
			o, err := fn(ctx, tx, counted)
			failed = err != nil
			return o, err
		})
		out = o
		return err
	}
	rev, err := s.applyWrite(ctx, op, wr)
	if err != nil {
		return people.Outcome{}, err
	}
	if out.Revision == 0 {
		out.Revision = rev
	}
	return out, out.Error()
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
func scanChange(row pgx.CollectableRow) (people.Change, error) {
	var c people.Change
	var typ int16
	var at int64
	err := row.Scan(&c.Revision, &typ, &c.Person.Name, &c.Person.Age, &c.Person.Gender, &c.Person.Hobbies, &c.Person.Address.Street, &c.Person.Address.City,
		&c.Origin.Principal, &c.Origin.Peer, &c.Origin.RequestID, &at)
	c.Type = people.ChangeType(typ)
	if at != 0 {
		c.Origin.Time = time.UnixMilli(at)
	}
	return c, err
}

// History returns up to limit changes to the person named name, newest
// first. It walks the change log from its end: history is asked for
// rarely, and an index by name would cost every write.
func (s *Store) History(ctx context.Context, name string, limit int) ([]people.Change, error) {
	conn, err := s.acquire(ctx, "read history")
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	rows, err := conn.Query(ctx, "SELECT "+changeColumns+" FROM changes WHERE name = $1 ORDER BY revision DESC LIMIT $2", name, limit)
	if err != nil {
		return nil, dbError(ctx, "read history", err)
	}
	out, err := pgx.CollectRows(rows, scanChange)
	if err != nil {
		return nil, dbError(ctx, "read history", err)
	}
	return out, nil
}

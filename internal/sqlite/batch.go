package sqlite

import (
	"context"
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/routeguide/routeguide/internal/groupcommit"
	"github.com/routeguide/routeguide/internal/people"
)

// A group's additions go into the file together: one statement adds every
// person, one their hobbies, one logs their changes and one records their
// request ids, where one by one each took a savepoint, four to six
// statements and a release. Each statement takes its rows as one JSON
// array, so that one prepared statement serves a group of any size.
const (
	batchPeople = "INSERT INTO people (" + personColumns + ")" +
		" SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5 FROM json_each(?) WHERE true" +
		" ON CONFLICT (name) DO NOTHING RETURNING name"
	batchHobbies = "INSERT INTO hobbies (hobby, name) SELECT value->>0, value->>1 FROM json_each(?) WHERE true ON CONFLICT DO NOTHING"
	batchChanges = "INSERT INTO changes (revision, type, " + personColumns + ", " + originColumns + ")" +
		" SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, value->>7," +
		" value->>8, value->>9, value->>10, value->>11 FROM json_each(?)"
	batchRequests = "INSERT INTO requests (id, digest, expires, outcome)" +
		" SELECT value->>0, value->>1, value->>2, value->>3 FROM json_each(?) WHERE true" +
		" ON CONFLICT (id) DO UPDATE SET digest = excluded.digest, expires = excluded.expires, outcome = excluded.outcome"
	batchKnownRequests = "SELECT id FROM requests WHERE id IN (SELECT value FROM json_each(?)) AND expires > ?"
)

// RunBatch adds the group's additions together, in the order they came:
// each added person's change takes the next revision, and an addition
// whose name is taken, already or by an earlier addition of the group,
// fails with AlreadyExists. It leaves to the savepoint path the other
// writes, an addition whose request id was recorded before (the savepoint
// path answers it again) or comes a second time in the group (it then
// finds the first's record), and one with text JSON cannot carry as it is
// (see batchable).
func (g *groupTx) RunBatch(ws []*pending) ([]*pending, error) {
	ctx := context.Background()
	// Each write logs one change at most.
	g.logged = make([]people.Change, 0, len(ws))
	take := make([]bool, len(ws))
	n := 0
	ids := map[string]bool{}
	var keyed []string
	for i, w := range ws {
		if !batchable(w.Fn) {
			continue
		}
		if id := w.Fn.w.RequestID; id != "" {
			if ids[id] {
				continue
			}
			ids[id] = true
			keyed = append(keyed, id)
		}
		take[i] = true
		n++
	}
	now := time.Now()
	if len(keyed) > 0 {
		known, err := g.knownRequests(ctx, keyed, now)
		if err != nil {
			return nil, err
		}
		for i, w := range ws {
			if take[i] && known[w.Fn.w.RequestID] {
				take[i] = false
				n--
			}
		}
	}
	if n == 0 {
		return ws, nil
	}

	// The people, each name once: of two additions of one name, the
	// first is tried and the second fails whatever the first's outcome.
	rows := make([]any, 0, n)
	first := make(map[string]int, n) // name -> index in ws of its first addition
	for i, w := range ws {
		if !take[i] {
			continue
		}
		p := w.Fn.add
		if _, ok := first[p.Name]; ok {
			continue
		}
		first[p.Name] = i
		rows = append(rows, personArgs(*p))
	}
	added, err := g.addPeople(ctx, rows)
	if err != nil {
		return nil, err
	}

	// The outcomes, in order: revisions as the changes are logged.
	type outcome struct {
		rev int64
		err error
	}
	outs := make([]outcome, len(ws))
	var hobbies, changes, requests []any
	at := now.UnixMilli()
	for i, w := range ws {
		if !take[i] {
			continue
		}
		p, wr := w.Fn.add, w.Fn.w
		var o people.Outcome
		if first[p.Name] == i && added[p.Name] {
			g.rev++
			outs[i].rev = g.rev
			for _, h := range p.Hobbies {
				hobbies = append(hobbies, []any{h, p.Name})
			}
			row := make([]any, 0, 12)
			row = append(row, g.rev, int(people.Added))
			row = append(row, personArgs(*p)...)
			row = append(row, wr.Principal, wr.Peer, wr.RequestID, at)
			changes = append(changes, row)
			g.log(people.Added, *p, row[5].(string), people.Origin{Principal: wr.Principal, Peer: wr.Peer, RequestID: wr.RequestID, Time: now})
		} else {
			outs[i].err = taken(p.Name)
			o, _ = people.Failed(outs[i].err)
		}
		if wr.Keyed() {
			o.Revision = g.rev // the latest after the write, as once records
			requests = append(requests, []any{wr.RequestID, wr.Digest, wr.Expires.UnixMilli(), people.EncodeOutcome(o)})
			if outs[i].err != nil {
				// The refusal is recorded: the write is applied, and
				// its caller reads the refusal from out.
				*w.Fn.out = o
				outs[i] = outcome{rev: g.rev}
			}
		}
	}
	for _, step := range []struct {
		query string
		rows  []any
	}{{batchHobbies, hobbies}, {batchChanges, changes}, {batchRequests, requests}} {
		if len(step.rows) == 0 {
			continue
		}
		arg, err := json.Marshal(step.rows)
		if err != nil {
			return nil, err
		}
		if _, err := g.ExecContext(ctx, step.query, string(arg)); err != nil {
			return nil, err
		}
	}

	rest := make([]*pending, 0, len(ws)-n)
	for i, w := range ws {
		switch {
		case !take[i]:
			rest = append(rest, w)
		case outs[i].err != nil:
			w.Err = outs[i].err
		default:
			w.Rev = outs[i].rev
		}
	}
	return rest, nil
}

// addPeople inserts rows, each a person's personArgs, whose names are
// free, and returns the names it added.
func (g *groupTx) addPeople(ctx context.Context, rows []any) (map[string]bool, error) {
	arg, err := json.Marshal(rows)
	if err != nil {
		return nil, err
	}
	rs, err := g.QueryContext(ctx, batchPeople, string(arg))
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	added := make(map[string]bool, len(rows))
	for rs.Next() {
		var name string
		if err := rs.Scan(&name); err != nil {
			return nil, err
		}
		added[name] = true
	}
	return added, rs.Err()
}

// knownRequests returns which of ids are recorded and not yet expired.
func (g *groupTx) knownRequests(ctx context.Context, ids []string, now time.Time) (map[string]bool, error) {
	arg, err := json.Marshal(ids)
	if err != nil {
		return nil, err
	}
	rs, err := g.QueryContext(ctx, batchKnownRequests, string(arg), now.UnixMilli())
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	known := map[string]bool{}
	for rs.Next() {
		var id string
		if err := rs.Scan(&id); err != nil {
			return nil, err
		}
		known[id] = true
	}
	return known, rs.Err()
}

// batchable reports whether a batch may take wr: an addition whose text
// travels through JSON unchanged (encoding/json writes invalid UTF-8 as
// U+FFFD, so an addition with any runs alone, its text bound as it is),
// and, when it has a request id, whose caller reads a refusal from out.
func batchable(wr write) bool {
	p := wr.add
	if p == nil || wr.w.Keyed() && wr.out == nil {
		return false
	}
	texts := []string{p.Name, p.Address.Street, p.Address.City, wr.w.Principal, wr.w.Peer, wr.w.RequestID, wr.w.Digest}
	texts = append(texts, p.Hobbies...)
	for _, s := range texts {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

var _ groupcommit.BatchTx[write] = (*groupTx)(nil)

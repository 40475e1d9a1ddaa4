package postgres

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/routeguide/routeguide/internal/people"
)

// addition is an Add its group may apply together with the group's other
// additions (see RunBatch).
type addition struct {
	p   people.Person
	w   people.Write
	out *people.Outcome // where the write's outcome goes
}

// addPeople adds a group's additions in one statement: the people whose
// names are free, their hobbies and their changes, the changes numbered
// from $11 + 1 in the additions' order. Additions whose request id is
// recorded already ($10, "" for none) change nothing, and come back with
// revision 0, to be answered by once; the others come back with the
// revision of their change, or not at all when their name was taken.
const addPeople = `WITH input AS (
		SELECT * FROM unnest($1::text[], $2::int4[], $3::int4[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])
			WITH ORDINALITY AS i(name, age, gender, hobbies, street, city, principal, peer, request_id, rid, ord)),
	replays AS (
		SELECT i.ord FROM input i JOIN requests r ON r.id = i.rid WHERE i.rid <> '' AND r.expires > $12),
	added AS (
		INSERT INTO people (` + personColumns + `)
		SELECT name, age, gender, hobbies::text[], street, city FROM input WHERE ord NOT IN (SELECT ord FROM replays)
		ON CONFLICT (name) DO NOTHING RETURNING name),
	numbered AS (
		SELECT i.*, $11::bigint + row_number() OVER (ORDER BY i.ord) AS revision
		FROM input i JOIN added a ON a.name = i.name),
	indexed AS (
		INSERT INTO hobbies (hobby, name) SELECT DISTINCT unnest(hobbies::text[]), name FROM numbered),
	logged AS (
		INSERT INTO changes (revision, type, ` + personColumns + `, ` + originColumns + `)
		SELECT revision, 1, name, age, gender, hobbies::text[], street, city, principal, peer, request_id, $13 FROM numbered)
	SELECT ord, revision FROM numbered
	UNION ALL SELECT ord, 0 FROM replays`

// recordRequests records a group's request ids with their outcomes, as
// once does one by one.
const recordRequests = `INSERT INTO requests (id, digest, expires, outcome)
	SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::text[])
	ON CONFLICT (id) DO UPDATE SET digest = excluded.digest, expires = excluded.expires, outcome = excluded.outcome`

// RunBatch adds the group's additions together (groupcommit.BatchTx): one
// statement for the people, their hobbies and their changes, and one more
// for their request ids when any has one, where one by one each addition
// took a savepoint, its statements and a release. It leaves to the
// savepoint path the other writes; an addition of a name another addition
// of the group adds before it, or with a request id another one has, so
// that the later one meets the earlier one's row or record as it would one
// by one; and an addition whose request id is recorded already, for once
// to answer. The additions it takes are numbered in the group's order, as
// one by one, and run before the writes it leaves.
func (g *groupTx) RunBatch(ws []*pending) ([]*pending, error) {
	var (
		taken []*pending
		later = make([]bool, len(ws)) // left to the savepoint path
		names = map[string]bool{}
		ids   = map[string]bool{}
	)
	for i, w := range ws {
		a := w.Fn.add
		switch {
		case a == nil, names[a.p.Name], a.w.Keyed() && ids[a.w.RequestID], !storable(a):
			later[i] = true
			continue
		}
		names[a.p.Name] = true
		if a.w.Keyed() {
			ids[a.w.RequestID] = true
		}
		taken = append(taken, w)
	}
	if len(taken) == 0 {
		return ws, nil
	}
	n := len(taken)
	var (
		name, hobbyLists, street, city, principal, peer, requestID, rid = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		age, gender                                                     = make([]int32, n), make([]int32, n)
	)
	for i, w := range taken {
		a := w.Fn.add
		name[i], age[i], gender[i], hobbyLists[i], street[i], city[i] = a.p.Name, a.p.Age, int32(a.p.Gender), ArrayLiteral(a.p.Hobbies), a.p.Address.Street, a.p.Address.City
		principal[i], peer[i], requestID[i] = a.w.Principal, a.w.Peer, a.w.Origin.RequestID
		if a.w.Keyed() {
			rid[i] = a.w.RequestID
		}
	}
	now := time.Now().UnixMilli()
	rows, err := g.conn.Query(g.ctx, addPeople, name, age, gender, hobbyLists, street, city, principal, peer, requestID, rid, g.rev, now, now)
	if err != nil {
		return nil, err
	}
	revs := make([]int64, n) // by position in taken; -1 for a replay
	var ord, rev int64
	for rows.Next() {
		if err := rows.Scan(&ord, &rev); err != nil {
			rows.Close()
			return nil, err
		}
		if rev == 0 {
			rev = -1
		}
		revs[ord-1] = rev
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// The outcomes, in the group's order: an addition that found its
	// name taken answers the revision of the additions before it.
	var records struct {
		id, digest, outcome []string
		expires             []int64
	}
	latest := g.rev
	for i, w := range taken {
		a := w.Fn.add
		var o people.Outcome
		switch r := revs[i]; {
		case r < 0:
			continue
		case r > 0:
			latest = r
			o = people.Outcome{Revision: r}
			w.Rev = r
			p := a.p
			p.Hobbies = hobbies(p.Hobbies)
			g.kept = append(g.kept, people.Change{Revision: r, Type: people.Added, Person: p,
				Origin: people.Origin{Principal: a.w.Principal, Peer: a.w.Peer, RequestID: a.w.Origin.RequestID, Time: time.UnixMilli(now)}})
		default:
			err := people.Errorf(people.AlreadyExists, "%q already exists", a.p.Name)
			if !a.w.Keyed() {
				w.Err = err
				continue
			}
			o, _ = people.Failed(err)
			o.Revision = latest
			w.Rev = latest // the record commits with the group
		}
		*a.out = o
		if a.w.Keyed() {
			records.id = append(records.id, a.w.RequestID)
			records.digest = append(records.digest, a.w.Digest)
			records.expires = append(records.expires, a.w.Expires.UnixMilli())
			records.outcome = append(records.outcome, people.EncodeOutcome(o))
		}
	}
	g.rev = max(g.rev, latest)
	if len(records.id) > 0 {
		if _, err := g.conn.Exec(g.ctx, recordRequests, records.id, records.digest, records.expires, records.outcome); err != nil {
			return nil, err
		}
	}
	var rest []*pending
	j := 0
	for i, w := range ws {
		if later[i] {
			rest = append(rest, w)
			continue
		}
		if revs[j] < 0 {
			rest = append(rest, w)
		}
		j++
	}
	return rest, nil
}

// storable reports whether every text of a's person and origin can be a
// PostgreSQL text value (valid UTF-8 without NUL): one that cannot would
// fail the whole statement, and so the group, where alone in a savepoint
// it fails just its own write.
func storable(a *addition) bool {
	ok := func(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }
	for _, h := range a.p.Hobbies {
		if !ok(h) {
			return false
		}
	}
	return ok(a.p.Name) && ok(a.p.Address.Street) && ok(a.p.Address.City) &&
		ok(a.w.Principal) && ok(a.w.Peer) && ok(a.w.Origin.RequestID) && ok(a.w.RequestID)
}

// ArrayLiteral returns a's PostgreSQL array literal, each element quoted,
// for a text[] value inside an array of them (arrays of arrays must be
// rectangular, and a person's hobbies are not). bench/engine's statements
// pass hobbies as the store's do.
func ArrayLiteral(a []string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, s := range a {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		for j := 0; j < len(s); j++ {
			if s[j] == '"' || s[j] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(s[j])
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

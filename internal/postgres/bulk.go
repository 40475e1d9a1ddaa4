package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/routeguide/routeguide/internal/people"
)

// distinctNames reports whether no name appears twice in batch.
func distinctNames(batch []people.Person) bool {
	seen := make(map[string]struct{}, len(batch))
	for _, p := range batch {
		if _, ok := seen[p.Name]; ok {
			return false
		}
		seen[p.Name] = struct{}{}
	}
	return true
}

// importStage is where an import's people are copied first: a temporary
// table of the connection, emptied at every commit or rollback. tags are a
// person's hobbies without repeats, for the hobbies index, when hobbies
// repeats one (NULL otherwise).
const importStage = `CREATE TEMPORARY TABLE IF NOT EXISTS import_people (
	ord     INTEGER NOT NULL,
	name    TEXT COLLATE "C" NOT NULL,
	age     INTEGER NOT NULL,
	gender  INTEGER NOT NULL,
	hobbies TEXT[] NOT NULL,
	street  TEXT NOT NULL,
	city    TEXT NOT NULL,
	tags    TEXT[]
) ON COMMIT DELETE ROWS`

// importSettings are the settings of an import's transaction. The planner
// expects the merge to yield millions of rows, and compiled (JIT) every
// batch's plan, which cost about a sixth of a batch of 100,000; with the
// default work_mem its sorts spilled to disk. Nested loops only: the
// planner cannot tell how few staged people are stored already (none, in
// a new directory's import), and would join them by reading all of
// people, or of the hobbies index, for every batch.
const importSettings = `SELECT set_config('jit', 'off', true), set_config('work_mem', '64MB', true),
	set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)`

// importMerge stores the staged people and logs a change for each one
// that changed, in the batch's order, with the revisions after $1 (the
// latest, read under the write lock), made by the origin $2..$5 (the
// arguments of originColumns). Each staged person is looked up once, by
// name (old): one not stored is inserted, with no ON CONFLICT (writers hold
// the write lock), one stored and different is updated, and one equal to
// the stored is left alone and logs nothing. The hobbies index gains the
// changed people's hobbies and loses those the updated ones no longer
// have, found by their old hobbies (the index is keyed by hobby). People
// and hobbies go in in name order, so that each index takes them in runs
// rather than at random pages. It returns how many were added and how
// many updated.
const importMerge = `WITH staged AS MATERIALIZED (
	SELECT i.*, (SELECT p FROM people p WHERE p.name = i.name) AS old FROM import_people i),
changed AS MATERIALIZED (
	SELECT s.*, (s.old).name IS NULL AS added FROM staged s
	WHERE (s.old).name IS NULL OR ((s.old).age, (s.old).gender, (s.old).hobbies, (s.old).street, (s.old).city)
		IS DISTINCT FROM (s.age, s.gender, s.hobbies, s.street, s.city)),
inserted AS (
	INSERT INTO people (` + personColumns + `)
	SELECT name, age, gender, hobbies, street, city FROM changed WHERE added ORDER BY name),
updated AS (
	UPDATE people p SET age = c.age, gender = c.gender, hobbies = c.hobbies, street = c.street, city = c.city
	FROM changed c WHERE NOT c.added AND p.name = c.name),
logged AS (
	INSERT INTO changes (revision, type, ` + personColumns + `, ` + originColumns + `)
	SELECT $1::bigint + row_number() OVER (ORDER BY ord), CASE WHEN added THEN 1 ELSE 2 END,
		name, age, gender, hobbies, street, city, $2::text, $3::text, $4::text, $5::bigint
	FROM changed),
indexed AS (
	INSERT INTO hobbies (hobby, name)
	SELECT unnest(coalesce(c.tags, c.hobbies)) AS hobby, c.name FROM changed c WHERE c.added ORDER BY name, hobby),
reindexed AS (
	INSERT INTO hobbies (hobby, name)
	SELECT unnest(coalesce(c.tags, c.hobbies)), c.name FROM changed c WHERE NOT c.added
	ON CONFLICT DO NOTHING),
unindexed AS (
	DELETE FROM hobbies h USING changed c
	WHERE NOT c.added AND h.hobby = ANY((c.old).hobbies) AND h.name = c.name AND h.hobby <> ALL(c.hobbies))
SELECT count(*) FILTER (WHERE added), count(*) FILTER (WHERE NOT added) FROM changed`

// importBulk imports, in tx, a batch in which no name appears twice,
// counting the people in r: straight into the tables when none of its
// people is stored (importNew, with batch's prepareNew); otherwise it copies the batch into
// importStage (COPY, one stream), then merges it with one statement
// (importMerge); either way it logs the changes as made by o. A statement a person, even sent
// in one round trip, imported about 2,000 people a second at a million.
func importBulk(ctx context.Context, tx pgx.Tx, batch []people.Person, prepared newRows, o people.Origin, r *people.ImportResult) error {
	*r = people.ImportResult{}
	var latest int64
	if err := tx.QueryRow(ctx, latestRevision).Scan(&latest); err != nil {
		return err
	}
	added, err := importNew(ctx, tx, batch, prepared, latest, o)
	if err != nil || added {
		if added {
			r.Added = int64(len(batch))
		}
		return err
	}
	if _, err := tx.Exec(ctx, importSettings); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, importStage); err != nil {
		return err
	}
	_, err = tx.CopyFrom(ctx, pgx.Identifier{"import_people"},
		[]string{"ord", "name", "age", "gender", "hobbies", "street", "city", "tags"},
		pgx.CopyFromSlice(len(batch), func(i int) ([]any, error) {
			p := batch[i]
			return []any{int32(i), p.Name, p.Age, int32(p.Gender), hobbies(p.Hobbies), p.Address.Street, p.Address.City, tags(p.Hobbies)}, nil
		}))
	if err != nil {
		return err
	}
	if err := tx.QueryRow(ctx, importMerge, append([]any{latest}, originArgs(o)...)...).Scan(&r.Added, &r.Updated); err != nil {
		return err
	}
	r.Unchanged = int64(len(batch)) - r.Added - r.Updated
	return nil
}

// tags returns h without repeats, or nil when h repeats none.
func tags(h []string) []string {
	for i := 1; i < len(h); i++ {
		if slices.Contains(h[:i], h[i]) {
			var out []string
			for _, t := range h {
				if !slices.Contains(out, t) {
					out = append(out, t)
				}
			}
			return out
		}
	}
	return nil
}

// analyzeGrown has PostgreSQL gather statistics, in tx, on each table an
// import has grown to more than twice the pages its statistics last
// counted (or that has none), once the table is past 1 MB. An import
// grows a table far faster than writes one at a time, and statistics that
// still describe an empty change log make the planner read it whole to
// drop the oldest changes at every commit: right after importing a million
// people, AddPerson from 64 callers managed under 50 additions a second
// (BenchmarkImport), against hundreds on a new directory. Doubling keeps the cost to a few ANALYZEs
// however large the import; ANALYZE sees the rows of its own transaction.
// Each samples 3,000 rows (a statistics target of 10, for the rest of the
// transaction), not the default 30,000: the planner needs the tables'
// sizes, which the sample gives as well, and the full ANALYZEs had been a
// seventh of the database's CPU in an import of a million people (a
// profile of its backends). Autovacuum gathers the finer statistics
// later.
func analyzeGrown(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT relname FROM pg_class
		WHERE oid IN ('people'::regclass, 'hobbies'::regclass, 'changes'::regclass)
		AND pg_relation_size(oid) >= 1 << 20
		AND (reltuples < 0 OR pg_relation_size(oid) / current_setting('block_size')::bigint > 2 * relpages)`)
	if err != nil {
		return err
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(tables) == 0 {
		return err
	}
	_, err = tx.Exec(ctx, "SET LOCAL default_statistics_target = 10; ANALYZE "+strings.Join(tables, ", "))
	return err
}

// newRows are a batch's people and their hobbies as the data of COPYs
// into people and hobbies, sorted by key, for importNew: the store
// prepares them before its transaction begins, so that the database does
// not wait, idle in the transaction and holding the write lock, while the
// server sorts and encodes them.
type newRows struct {
	people, hobbies io.Reader
}

// prepareNew returns the newRows of batch, in which no name appears twice.
func prepareNew(batch []people.Person) newRows {
	byName := make([]*people.Person, len(batch))
	for i := range batch {
		byName[i] = &batch[i]
	}
	slices.SortFunc(byName, func(a, b *people.Person) int { return strings.Compare(a.Name, b.Name) })
	var rows copyRows
	for _, p := range byName {
		rows.row(6)
		rows.person(p)
	}
	var out newRows
	out.people = rows.reader()

	// The hobbies index's rows, (hobby, name) in key order: the names of
	// each hobby in name order, the hobbies in order.
	byHobby := map[string][]string{}
	for _, p := range byName {
		h := p.Hobbies
		if t := tags(h); t != nil {
			h = t
		}
		for _, h := range h {
			byHobby[h] = append(byHobby[h], p.Name)
		}
	}
	rows = copyRows{}
	for _, h := range slices.Sorted(maps.Keys(byHobby)) {
		for _, name := range byHobby[h] {
			rows.row(2)
			rows.text(h)
			rows.text(name)
		}
	}
	out.hobbies = rows.reader()
	return out
}

// importNew adds batch, in which no name appears twice, in tx, whose
// latest revision is latest, when none of its names is stored, and
// reports whether it did: it copies the people straight into people,
// their hobbies into hobbies (prepared: prepareNew's) and their changes
// into changes (three COPYs), in a savepoint that it rolls back when a
// name is taken. Most imports are of new people, and a COPY into the
// tables costs the database well under half the CPU of staging the batch
// and merging it (BenchmarkImport against BenchmarkCopyFloor): COPY writes
// its rows a page at a time, and no name is looked up before it is
// inserted. The people and their hobbies go in sorted by key, so that
// each index takes them in runs rather than at random pages; the changes
// go in the batch's order, with the revisions after latest, made by
// origin. A batch with a taken name costs the rows copied before the COPY
// met it, sorted first, and is merged instead.
func importNew(ctx context.Context, tx pgx.Tx, batch []people.Person, prepared newRows, latest int64, origin people.Origin) (bool, error) {
	// The changes are encoded while the database takes the people and
	// their hobbies.
	changeRows := make(chan io.Reader, 1)
	go func() {
		var rows copyRows
		at := origin.Time.UnixMilli()
		for i := range batch {
			p := &batch[i]
			rows.row(12)
			rows.int8(latest + int64(i) + 1)
			rows.int2(int16(people.Added))
			rows.person(p)
			rows.text(origin.Principal)
			rows.text(origin.Peer)
			rows.text(origin.RequestID)
			rows.int8(at)
		}
		changeRows <- rows.reader()
	}()

	if _, err := tx.Exec(ctx, "SAVEPOINT import_new"); err != nil {
		return false, err
	}
	conn := tx.Conn().PgConn()
	_, err := conn.CopyFrom(ctx, prepared.people, "COPY people ("+personColumns+") FROM STDIN (FORMAT binary)")
	if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "people_pkey" {
		_, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT import_new; RELEASE SAVEPOINT import_new")
		return false, err
	}
	if err != nil {
		return false, err
	}
	if _, err := conn.CopyFrom(ctx, prepared.hobbies, "COPY hobbies (hobby, name) FROM STDIN (FORMAT binary)"); err != nil {
		return false, err
	}
	if _, err := conn.CopyFrom(ctx, <-changeRows, "COPY changes (revision, type, "+personColumns+", "+originColumns+") FROM STDIN (FORMAT binary)"); err != nil {
		return false, err
	}
	_, err = tx.Exec(ctx, "RELEASE SAVEPOINT import_new")
	return err == nil, err
}

// copyRows is the data of a COPY in PostgreSQL's binary format, built
// row by row: row, then each of its fields in the COPY's column order,
// then reader. pgx's CopyFrom encodes each value through its type map, an
// interface call and an allocation or more a value: two thirds of the
// store's CPU in an import (BenchmarkImport's client-cpu-s), for four
// types whose binary form is a few bytes of header. The data goes in
// chunks, so that none is copied to grow it.
type copyRows struct {
	done [][]byte // full chunks
	b    []byte   // the chunk being filled
}

// copyChunk is the size a chunk is filled to before a row starts another.
const copyChunk = 256 << 10

// copyHeader starts every COPY in the binary format: the signature, no
// flags and no header extension.
const copyHeader = "PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00"

// textOID is the type of a text[] value's elements, which its binary
// form names.
const textOID = 25

func (c *copyRows) row(fields int16) {
	switch {
	case c.b == nil && c.done == nil:
		c.b = append(make([]byte, 0, copyChunk+copyChunk/4), copyHeader...)
	case len(c.b) >= copyChunk:
		c.done = append(c.done, c.b)
		c.b = make([]byte, 0, copyChunk+copyChunk/4)
	}
	c.b = binary.BigEndian.AppendUint16(c.b, uint16(fields))
}

func (c *copyRows) int2(v int16) {
	c.b = binary.BigEndian.AppendUint32(c.b, 2)
	c.b = binary.BigEndian.AppendUint16(c.b, uint16(v))
}

func (c *copyRows) int4(v int32) {
	c.b = binary.BigEndian.AppendUint32(c.b, 4)
	c.b = binary.BigEndian.AppendUint32(c.b, uint32(v))
}

func (c *copyRows) int8(v int64) {
	c.b = binary.BigEndian.AppendUint32(c.b, 8)
	c.b = binary.BigEndian.AppendUint64(c.b, uint64(v))
}

func (c *copyRows) text(s string) {
	c.b = binary.BigEndian.AppendUint32(c.b, uint32(len(s)))
	c.b = append(c.b, s...)
}

// person writes p's fields, the personColumns.
func (c *copyRows) person(p *people.Person) {
	c.text(p.Name)
	c.int4(p.Age)
	c.int4(int32(p.Gender))
	c.textArray(p.Hobbies)
	c.text(p.Address.Street)
	c.text(p.Address.City)
}

// textArray adds a one-dimensional text[] value (no dimensions when a is
// empty), with no NULL elements.
func (c *copyRows) textArray(a []string) {
	size := 12
	if len(a) > 0 {
		size += 8
	}
	for _, s := range a {
		size += 4 + len(s)
	}
	c.b = binary.BigEndian.AppendUint32(c.b, uint32(size))
	dims := uint32(0)
	if len(a) > 0 {
		dims = 1
	}
	c.b = binary.BigEndian.AppendUint32(c.b, dims)
	c.b = binary.BigEndian.AppendUint32(c.b, 0) // no NULLs
	c.b = binary.BigEndian.AppendUint32(c.b, textOID)
	if len(a) > 0 {
		c.b = binary.BigEndian.AppendUint32(c.b, uint32(len(a)))
		c.b = binary.BigEndian.AppendUint32(c.b, 1) // the lower bound
	}
	for _, s := range a {
		c.text(s)
	}
}

// reader returns the COPY's data, its trailer added; the rows may not be
// added to after.
func (c *copyRows) reader() io.Reader {
	if c.b == nil && c.done == nil {
		c.b = append(c.b, copyHeader...)
	}
	c.b = binary.BigEndian.AppendUint16(c.b, 0xffff)
	rs := make([]io.Reader, 0, len(c.done)+1)
	for _, b := range append(c.done, c.b) {
		rs = append(rs, bytes.NewReader(b))
	}
	return io.MultiReader(rs...)
}

package postgres

import (
	"context"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

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
// counting the people in r: it copies the batch into importStage (COPY,
// one stream), then merges it with one statement (importMerge), which logs
// the changes with the origin's columns. A statement a person, even sent
// in one round trip, imported about 2,000 people a second at a million.
func importBulk(ctx context.Context, tx pgx.Tx, batch []people.Person, origin []any, r *people.ImportResult) error {
	*r = people.ImportResult{}
	var latest int64
	if err := tx.QueryRow(ctx, latestRevision).Scan(&latest); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, importSettings); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, importStage); err != nil {
		return err
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"import_people"},
		[]string{"ord", "name", "age", "gender", "hobbies", "street", "city", "tags"},
		pgx.CopyFromSlice(len(batch), func(i int) ([]any, error) {
			p := batch[i]
			return []any{int32(i), p.Name, p.Age, int32(p.Gender), hobbies(p.Hobbies), p.Address.Street, p.Address.City, tags(p.Hobbies)}, nil
		}))
	if err != nil {
		return err
	}
	if err := tx.QueryRow(ctx, importMerge, append([]any{latest}, origin...)...).Scan(&r.Added, &r.Updated); err != nil {
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
// (each a sample of 30,000 rows) however large the import; ANALYZE sees
// the rows of its own transaction.
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
	_, err = tx.Exec(ctx, "ANALYZE "+strings.Join(tables, ", "))
	return err
}

package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/postgres/postgrestest"
)

// TestListPlans checks that every filter of List can walk an index in name
// order, on a directory with statistics: no Sort over the matches (a page
// would cost all of them) and no sequential scan of people. PostgreSQL
// rightly sorts when it expects a few hundred matches (a prefix and
// another filter, here), so every shape is planned with sorting disabled,
// which leaves a Sort only where no index order exists; and a single filter
// of many matches, with the planner's defaults.
func TestListPlans(t *testing.T) {
	s := open(t, postgrestest.Schema(t), 0)
	ctx := context.Background()
	batch := make([]people.Person, 20_000)
	for i := range batch {
		batch[i] = people.Person{
			Name:    fmt.Sprintf("%c%05d", 'A'+i%26, i),
			Hobbies: []string{fmt.Sprintf("hobby%d", i%10), fmt.Sprintf("hobby%d", (i+3)%10)},
			Address: people.Address{City: fmt.Sprintf("City%d", i%10)},
		}
	}
	if _, err := s.Import(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, "ANALYZE people; ANALYZE hobbies"); err != nil {
		t.Fatal(err)
	}
	for _, city := range []string{"", "City3"} {
		for _, hobby := range []string{"", "hobby4"} {
			for _, prefix := range []string{"", "K"} {
				for _, after := range []string{"", "K00500"} {
					q := people.Query{City: city, Hobby: hobby, NamePrefix: prefix, After: after, Limit: 100}
					t.Run(fmt.Sprintf("city=%q hobby=%q prefix=%q after=%q", city, hobby, prefix, after), func(t *testing.T) {
						query, args := listQuery(q)
						single := prefix == "" && (city == "") != (hobby == "")
						tx, err := s.pool.Begin(ctx)
						if err != nil {
							t.Fatal(err)
						}
						defer tx.Rollback(ctx)
						if !single {
							if _, err := tx.Exec(ctx, "SET LOCAL enable_sort = off"); err != nil {
								t.Fatal(err)
							}
						}
						rows, err := tx.Query(ctx, "EXPLAIN "+query, args...)
						if err != nil {
							t.Fatal(err)
						}
						var plan []string
						for rows.Next() {
							var line string
							if err := rows.Scan(&line); err != nil {
								t.Fatal(err)
							}
							plan = append(plan, line)
						}
						if err := rows.Err(); err != nil {
							t.Fatal(err)
						}
						text := strings.Join(plan, "\n")
						if strings.Contains(text, "Sort  (") || strings.Contains(text, "Seq Scan on people") {
							t.Errorf("plan sorts or scans:\n%s\nquery: %s", text, query)
						}
					})
				}
			}
		}
	}
}

// TestRetentionPlan checks that dropping the changes a write transaction
// pushes out of the retained ones walks the change log's key, even on a log
// of many changes that no ANALYZE has seen, as right after a bulk import
// (a scan of the whole log in every group of writes made them ten times
// slower), and that sweeping expired request ids walks requests_by_expiry
// on a large table without statistics.
func TestRetentionPlan(t *testing.T) {
	s := open(t, postgrestest.Schema(t), 0)
	ctx := context.Background()
	if _, err := s.pool.Exec(ctx, "ALTER TABLE changes SET (autovacuum_enabled = false)"); err != nil {
		t.Fatal(err)
	}
	batch := make([]people.Person, 20_000)
	for i := range batch {
		batch[i] = people.Person{Name: fmt.Sprintf("P%05d", i)}
	}
	rev, err := s.Import(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `ALTER TABLE requests SET (autovacuum_enabled = false);
		INSERT INTO requests (id, digest, expires, outcome) SELECT 'id' || g, '', g, '{}' FROM generate_series(1, 20000) g`); err != nil {
		t.Fatal(err)
	}
	const retain = 1_000
	for _, q := range []struct {
		what, sql string
		args      []any
	}{
		{"dropping the oldest changes scans the log", dropChanges, []any{rev.Revision - retain - 64, rev.Revision - retain}},
		{"sweeping expired request ids scans them all", sweepAndNotify, []any{channel, "test", 500}},
	} {
		rows, err := s.pool.Query(ctx, "EXPLAIN "+q.sql, q.args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, line)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if text := strings.Join(plan, "\n"); strings.Contains(text, "Seq Scan") {
			t.Errorf("%s:\n%s", q.what, text)
		}
	}
}

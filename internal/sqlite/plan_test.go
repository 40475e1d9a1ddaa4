package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/routeguide/routeguide/internal/people"
)

// listShapes are the filter combinations ListPeople takes, on a first page
// and on a later one.
func listShapes() map[string]people.Query {
	shapes := map[string]people.Query{}
	for _, city := range []string{"", "Paris"} {
		for _, hobby := range []string{"", "chess"} {
			for _, prefix := range []string{"", "Ka"} {
				for _, after := range []string{"", "Karl"} {
					name := fmt.Sprintf("city=%q hobby=%q prefix=%q after=%q", city, hobby, prefix, after)
					shapes[name] = people.Query{City: city, Hobby: hobby, NamePrefix: prefix, After: after, Limit: 100}
				}
			}
		}
	}
	return shapes
}

// TestListPlans checks that every filter of List walks an index in name
// order: a plan that sorts (a temporary B-tree) costs every match on every
// page, and a scan of the people table costs the whole directory.
func TestListPlans(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "people.db"), 0)
	ctx := context.Background()
	for name, q := range listShapes() {
		t.Run(name, func(t *testing.T) {
			query, args := listQuery(q)
			rows, err := s.read.QueryContext(ctx, "EXPLAIN QUERY PLAN "+query, args...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var plan []string
			for rows.Next() {
				var id, parent, unused int
				var detail string
				if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			for _, step := range plan {
				if strings.Contains(step, "TEMP B-TREE") || strings.HasPrefix(step, "SCAN") {
					t.Errorf("plan sorts or scans:\n%s\nquery: %s", strings.Join(plan, "\n"), query)
					break
				}
			}
			t.Logf("%s", strings.Join(plan, "; "))
		})
	}
}

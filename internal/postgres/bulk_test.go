package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/postgres/postgrestest"
)

func TestTags(t *testing.T) {
	for _, c := range []struct{ in, want []string }{
		{nil, nil},
		{[]string{"chess"}, nil},
		{[]string{"chess", "go"}, nil},
		{[]string{"chess", "chess"}, []string{"chess"}},
		{[]string{"go", "chess", "go", "jazz", "chess"}, []string{"go", "chess", "jazz"}},
	} {
		if got := tags(c.in); !slices.Equal(got, c.want) || (got == nil) != (c.want == nil) {
			t.Errorf("tags(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestImportRepeatedHobbies checks that a person whose hobbies repeat one
// is imported in bulk, added and updated, and listed once under each hobby.
func TestImportRepeatedHobbies(t *testing.T) {
	s := open(t, postgrestest.Schema(t), 0)
	ctx := context.Background()
	hobbyNames := func(hobby string) []string {
		t.Helper()
		page, err := s.List(ctx, people.Query{Hobby: hobby, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, p := range page {
			out = append(out, p.Name)
		}
		return out
	}
	r, err := s.Import(ctx, []people.Person{{Name: "Carol", Hobbies: []string{"chess", "go", "chess"}}, {Name: "Dan", Hobbies: []string{"go"}}})
	if err != nil || r.Added != 2 {
		t.Fatalf("Import = %+v, %v; want 2 added", r, err)
	}
	if got := hobbyNames("chess"); !slices.Equal(got, []string{"Carol"}) {
		t.Errorf("List(hobby chess) = %q, want Carol once", got)
	}
	if got := hobbyNames("go"); !slices.Equal(got, []string{"Carol", "Dan"}) {
		t.Errorf("List(hobby go) = %q, want Carol and Dan", got)
	}
	r, err = s.Import(ctx, []people.Person{{Name: "Carol", Hobbies: []string{"jazz", "go", "jazz", "go"}}, {Name: "Dan", Hobbies: []string{"go"}}})
	if err != nil || r.Updated != 1 || r.Unchanged != 1 {
		t.Fatalf("Import = %+v, %v; want 1 updated, 1 unchanged", r, err)
	}
	for hobby, want := range map[string][]string{"chess": nil, "go": {"Carol", "Dan"}, "jazz": {"Carol"}} {
		if got := hobbyNames(hobby); !slices.Equal(got, want) {
			t.Errorf("List(hobby %s) = %q, want %q", hobby, got, want)
		}
	}
	if got, err := s.Person(ctx, "Carol"); err != nil || !slices.Equal(got.Hobbies, []string{"jazz", "go", "jazz", "go"}) {
		t.Errorf("Person(Carol) = %+v, %v; want the hobbies as imported", got, err)
	}
}

// TestImportAnalyzes checks that a large import leaves the tables it grew
// with statistics, so that dropping the oldest changes at each commit
// walks the change log's index rather than reading the log whole.
func TestImportAnalyzes(t *testing.T) {
	s := open(t, postgrestest.Schema(t), 0)
	ctx := context.Background()
	batch := make([]people.Person, 20_000)
	for i := range batch {
		batch[i] = people.Person{Name: fmt.Sprintf("person-%05d", i), Hobbies: []string{"chess", "go"}, Address: people.Address{Street: "1 Main St", City: "Boston"}}
	}
	if _, err := s.Import(ctx, batch); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"people", "hobbies", "changes"} {
		var tuples float64
		if err := s.pool.QueryRow(ctx, "SELECT reltuples FROM pg_class WHERE oid = $1::regclass", table).Scan(&tuples); err != nil {
			t.Fatal(err)
		}
		if tuples < 10_000 {
			t.Errorf("%s: statistics count %.0f rows after importing 20,000 people", table, tuples)
		}
	}
	var plan []string
	rows, err := s.pool.Query(ctx, "EXPLAIN DELETE FROM changes WHERE revision <= $1", int64(20_002-DefaultRetain))
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var line string
		rows.Scan(&line)
		plan = append(plan, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if text := strings.Join(plan, "\n"); strings.Contains(text, "Seq Scan") {
		t.Errorf("dropping the oldest changes reads the log whole:\n%s", text)
	}
}

package postgres

import (
	"context"
	"fmt"
	"reflect"
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

// TestImportTakenName checks that a batch of new people but one, whose name
// is taken, is merged after its COPY straight into the tables fails: the
// people copied before the taken name are not stored twice, the taken one
// is updated, and the changes follow the batch's order.
func TestImportTakenName(t *testing.T) {
	s := open(t, postgrestest.Schema(t), 0)
	ctx := context.Background()
	person := func(name, hobby string) people.Person {
		return people.Person{Name: name, Age: 7, Hobbies: []string{hobby}, Address: people.Address{Street: "1 Main St", City: "Boston"}}
	}
	first := []people.Person{person("m", "chess")}
	if r, err := s.Import(ctx, first); err != nil || r.Added != 1 {
		t.Fatalf("Import = %+v, %v; want 1 added", r, err)
	}
	// In name order "a" and "k" are copied before the COPY meets "m".
	batch := []people.Person{person("z", "go"), person("m", "go"), person("a", "go"), person("k", "go")}
	r, err := s.Import(ctx, batch)
	if err != nil || r.Added != 3 || r.Updated != 1 {
		t.Fatalf("Import = %+v, %v; want 3 added, 1 updated", r, err)
	}
	var stored, indexed int
	if err := s.pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM people), (SELECT count(*) FROM hobbies WHERE hobby = 'go')").Scan(&stored, &indexed); err != nil {
		t.Fatal(err)
	}
	if stored != 2+4 || indexed != 4 {
		t.Errorf("stored %d people, %d under go; want 6 (with Alice and Bob), 4", stored, indexed)
	}
	changes, err := s.Changes(ctx, r.Revision-4, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range changes {
		got = append(got, fmt.Sprintf("%d %s", c.Type, c.Person.Name))
	}
	want := []string{"1 z", "2 m", "1 a", "1 k"}
	if !slices.Equal(got, want) {
		t.Errorf("changes = %q, want %q", got, want)
	}
}

// TestImportValues checks that what an import copies straight into the
// tables reads back as it went in, people and changes alike, and that the
// changes the store keeps of the import are what the log holds.
func TestImportValues(t *testing.T) {
	s := open(t, postgrestest.Schema(t), 0)
	ctx := context.Background()
	batch := []people.Person{
		{Name: "Zoë «quoted» \"x\"", Age: 2147483647, Gender: people.Gender(2), Hobbies: []string{`{a,b}`, `back\slash`, "NULL", "", "🚲"}, Address: people.Address{Street: "1\t2\n3", City: "Zürich"}},
		{Name: "nobody", Age: 0, Hobbies: nil},
		{Name: "empty", Hobbies: []string{}, Address: people.Address{City: "x"}},
		{Name: "twice", Hobbies: []string{"go", "go"}},
	}
	before, err := s.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Import(ctx, batch)
	if err != nil || r.Added != int64(len(batch)) {
		t.Fatalf("Import = %+v, %v; want %d added", r, err, len(batch))
	}
	for _, p := range batch {
		got, err := s.Person(ctx, p.Name)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equal(p) {
			t.Errorf("Person(%q) = %+v, want %+v", p.Name, got, p)
		}
	}
	if s.imported.Load() == nil {
		t.Fatal("the import's changes are not kept")
	}
	var kept []people.Change
	for after := before; ; {
		page, err := s.Changes(ctx, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		kept = append(kept, page...)
		after = page[len(page)-1].Revision
	}
	if s.imported.Load() != nil {
		t.Error("the import's changes are kept after being read to their end")
	}
	logged, err := s.Changes(ctx, before, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(kept, logged) {
		t.Errorf("kept changes:\n%+v\nlogged:\n%+v", kept, logged)
	}
	if len(logged) != len(batch) || logged[0].Type != people.Added || logged[0].Person.Name != batch[0].Name || logged[len(logged)-1].Revision != r.Revision {
		t.Errorf("logged %+v, want the batch added in order up to revision %d", logged, r.Revision)
	}
}

// TestImportedChangesRetained checks that the changes a store keeps of an
// import answer only while the log still holds them.
func TestImportedChangesRetained(t *testing.T) {
	s := open(t, postgrestest.Schema(t), 3)
	ctx := context.Background()
	before, err := s.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	batch := make([]people.Person, 10)
	for i := range batch {
		batch[i] = people.Person{Name: fmt.Sprintf("p%02d", i)}
	}
	r, err := s.Import(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Changes(ctx, before, 100); people.KindOf(err) != people.OutOfRange {
		t.Errorf("Changes(%d) after the log dropped them: %v, want OutOfRange", before, err)
	}
	got, err := s.Changes(ctx, r.Revision-3, 100)
	if err != nil || len(got) != 3 || got[0].Person.Name != "p07" {
		t.Errorf("Changes(%d) = %+v, %v; want p07 to p09", r.Revision-3, got, err)
	}
}

package sqlite

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/routeguide/routeguide/internal/people"
)

// changesInFile reads the changes after revision after from the file
// itself, as Changes does without the kept import.
func changesInFile(t *testing.T, s *Store, after int64) []people.Change {
	t.Helper()
	rows, err := s.read.Query("SELECT "+changeColumns+" FROM changes WHERE revision > ? ORDER BY revision", after)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []people.Change
	for rows.Next() {
		c, err := scanChange(rows)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestImportedChanges checks that the changes Changes answers from a kept
// import are exactly those in the file, page by page, and that the read
// reaching their end lets them go.
func TestImportedChanges(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "people.db"), 0)
	ctx := people.WithWrite(context.Background(), people.Write{Origin: people.Origin{Principal: "importer", Peer: "10.0.0.1:5", RequestID: ""}})
	before, err := s.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	batch := []people.Person{
		{Name: "Carol", Age: 41, Gender: people.GenderFemale, Hobbies: []string{"chess", "go"}, Address: people.Address{Street: "1 Oak St", City: "Boston"}},
		{Name: "Alice", Age: 31, Hobbies: []string{"reading"}}, // updated
		{Name: "Bob", Age: 25, Gender: people.GenderMale, Hobbies: []string{"gaming", "cycling"}, Address: people.Address{Street: "456 Elm St", City: "Los Angeles"}}, // unchanged
		{Name: "Dave", Hobbies: []string{}},               // empty hobbies
		{Name: "Carol", Age: 42, Hobbies: []string{"go"}}, // the same name again
		{Name: "Eve", Age: 7, Hobbies: []string{`with "quotes"`, "ünïcode"}},
	}
	r, err := s.Import(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if r.Added != 3 || r.Updated != 2 || r.Unchanged != 1 || r.Revision != before+5 {
		t.Fatalf("Import: %+v after revision %d", r, before)
	}
	if s.imported.Load() == nil {
		t.Fatal("the import's changes were not kept")
	}
	want := changesInFile(t, s, before)
	var got []people.Change
	for after := before; ; {
		page, err := s.Changes(ctx, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		after = page[len(page)-1].Revision
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("kept changes:\n%+v\nin the file:\n%+v", got, want)
	}
	if s.imported.Load() != nil {
		t.Error("the kept changes stayed after a read reached their end")
	}
	again, err := s.Changes(ctx, before, 100)
	if err != nil || !reflect.DeepEqual(again, want) {
		t.Errorf("Changes from the file: %+v, %v; want %+v", again, err, want)
	}
}

// TestImportedChangesFailedImport checks that an import that fails keeps
// no changes, so that none is answered that the file does not hold.
func TestImportedChangesFailedImport(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "people.db"), 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Import(ctx, []people.Person{{Name: "Carol"}}); err == nil {
		t.Fatal("Import with a cancelled context succeeded")
	}
	if s.imported.Load() != nil {
		t.Error("a failed import's changes were kept")
	}
}

// TestImportLogAcrossStatements checks that an import whose changes take
// more than one statement of the log (importRows each, the origin bound
// once a statement) logs each change with its person and origin, in the
// batch's order.
func TestImportLogAcrossStatements(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "people.db"), 0)
	origin := people.Origin{Principal: "importer", Peer: "10.0.0.1:5", RequestID: "r-1"}
	ctx := people.WithWrite(context.Background(), people.Write{Origin: origin})
	before, err := s.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	batch := benchPeople(2*importRows + 3)
	if _, err := s.Import(ctx, batch); err != nil {
		t.Fatal(err)
	}
	got := changesInFile(t, s, before)
	if len(got) != len(batch) {
		t.Fatalf("logged %d changes, want %d", len(got), len(batch))
	}
	for i, c := range got {
		if c.Revision != before+int64(i)+1 || c.Type != people.Added || !c.Person.Equal(batch[i]) ||
			c.Origin.Principal != origin.Principal || c.Origin.Peer != origin.Peer || c.Origin.RequestID != origin.RequestID || c.Origin.Time.IsZero() {
			t.Fatalf("change %d: got %+v, want revision %d adding %+v by %+v", i, c, before+int64(i)+1, batch[i], origin)
		}
	}
}

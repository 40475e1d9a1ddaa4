package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/routeguide/routeguide/internal/people"
)

// readChanges reads every change after revision after through Changes,
// limit at a time.
func readChanges(t *testing.T, s *Store, after int64, limit int) []people.Change {
	t.Helper()
	var out []people.Change
	for {
		page, err := s.Changes(context.Background(), after, limit)
		if err != nil {
			t.Fatalf("Changes(%d, %d): %v", after, limit, err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		after = page[len(page)-1].Revision
	}
}

// TestRecentChanges runs groups of every kind of write, failures
// included, and checks that the changes Changes answers from the last
// groups, kept in memory, are exactly those in the file.
func TestRecentChanges(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "people.db"), 0)
	ctx := context.Background()
	start, err := s.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bg := ctx
	from := people.WithWrite(ctx, people.Write{Origin: people.Origin{Principal: "wes", Peer: "10.0.0.1:5"}})
	var fns []func()
	for i := range 6 {
		name := fmt.Sprint("p", i%3)
		fns = append(fns,
			func() {
				s.Add(from, people.Person{Name: name, Age: int32(i), Hobbies: []string{"chess", `with "quotes"`, "ünïcode"}})
			},
			func() { s.Delete(bg, name) },
			func() {
				s.Update(from, name, people.Update{Fields: people.FieldAge | people.FieldHobbies, To: people.Person{Age: 99, Hobbies: []string{}}})
			})
	}
	fns = append(fns,
		func() { s.Add(keyedCtx("a", "add carol"), people.Person{Name: "Carol", Age: 40}) },
		func() { s.Add(keyedCtx("a", "add carol"), people.Person{Name: "Carol", Age: 40}) },
		func() { s.Add(keyedCtx("b", "add alice"), people.Person{Name: "Alice"}) }, // refused, and recorded
		func() {
			s.Add(bg, people.Person{Name: "Odd", Hobbies: []string{"a\xffb"}, Address: people.Address{Street: "a\xffb", City: "nul\x00city"}})
		},
		func() { s.Add(bg, people.Person{Name: "Empty", Hobbies: []string{}}) },
		func() {
			s.Update(people.WithWrite(ctx, people.Write{IfMatch: "0000000000000000"}), "Bob", people.Update{Fields: people.FieldAge, To: people.Person{Age: 1}})
		},
	)
	inOneGroup(t, s, fns...)
	// Groups of one.
	if _, err := s.Add(from, people.Person{Name: "Dave", Hobbies: []string{"go"}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Update(bg, "Dave", people.Update{Fields: people.FieldCity, To: people.Person{Address: people.Address{City: "Oslo"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(keyedCtx("c", "delete dave"), "Dave"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(bg, "Nobody"); people.KindOf(err) != people.NotFound {
		t.Fatalf("Delete(Nobody) = %v, want NotFound", err)
	}

	if _, ok := s.recent.After(start, s.pruned.Load(), s.latest.Get(), 1); !ok {
		t.Fatal("the groups' changes were not kept")
	}
	want := changesInFile(t, s, start)
	if len(want) < 10 {
		t.Fatalf("only %d changes in the file", len(want))
	}
	for _, limit := range []int{1, 3, 1000} {
		if got := readChanges(t, s, start, limit); !reflect.DeepEqual(got, want) {
			t.Errorf("kept changes, %d at a time:\n%+v\nin the file:\n%+v", limit, got, want)
		}
	}
	// Before the kept changes, the file answers.
	if got, want := readChanges(t, s, 0, 5), changesInFile(t, s, 0); !reflect.DeepEqual(got, want) {
		t.Errorf("every change:\n%+v\nin the file:\n%+v", got, want)
	}
}

// TestRecentChangesBound adds people one group at a time, past what is
// kept: the last recentKept changes at least are kept, fewer than twice
// as many, and every change still reads as the file holds it.
func TestRecentChangesBound(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "people.db"), 0)
	ctx := context.Background()
	start, err := s.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2*recentKept + 5 {
		if _, err := s.Add(ctx, people.Person{Name: fmt.Sprint("p", i)}); err != nil {
			t.Fatal(err)
		}
		n := s.recent.Len()
		if n >= 2*recentKept || n < min(i+1, recentKept) {
			t.Fatalf("after %d additions, %d changes kept; want %d to %d", i+1, n, min(i+1, recentKept), 2*recentKept-1)
		}
	}
	if got, want := readChanges(t, s, start, 100), changesInFile(t, s, start); !reflect.DeepEqual(got, want) {
		t.Errorf("changes read differ from the file's")
	}
}

// TestRecentChangesTrimmed checks that kept changes the log no longer
// holds are not answered: resuming before them is OutOfRange, as with
// the file alone.
func TestRecentChangesTrimmed(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "people.db"), 2)
	ctx := context.Background()
	start, err := s.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var rev int64
	for i := range 5 {
		if rev, err = s.Add(ctx, people.Person{Name: fmt.Sprint("p", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Changes(ctx, start, 10); people.KindOf(err) != people.OutOfRange {
		t.Errorf("Changes(%d) after the log was trimmed = %v, want OutOfRange", start, err)
	}
	got, err := s.Changes(ctx, rev-1, 10)
	if err != nil || len(got) != 1 || got[0].Revision != rev {
		t.Errorf("Changes(%d) = %+v, %v; want the last change", rev-1, got, err)
	}
}

// TestRecentChangesAfterImport checks that a group after an import keeps
// its changes afresh, and that every change reads as the file holds it.
func TestRecentChangesAfterImport(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "people.db"), 0)
	ctx := context.Background()
	carol, err := s.Add(ctx, people.Person{Name: "Carol"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(ctx, []people.Person{{Name: "Dave"}, {Name: "Erin"}}); err != nil {
		t.Fatal(err)
	}
	// Carol's change is kept, the import's are not: a read from before
	// hers goes on into the import's.
	if got, err := s.Changes(ctx, carol-1, 2); err != nil || len(got) != 2 || got[0].Person.Name != "Carol" || got[1].Person.Name != "Dave" {
		t.Errorf("Changes(%d, 2) after an import = %+v, %v; want Carol's and Dave's", carol-1, got, err)
	}
	rev, err := s.Add(ctx, people.Person{Name: "Frank"})
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := s.recent.After(rev-1, s.pruned.Load(), s.latest.Get(), 10); !ok || len(got) != 1 || got[0].Person.Name != "Frank" {
		t.Errorf("kept after the import: %+v, %v; want Frank's change", got, ok)
	}
	if _, ok := s.recent.After(rev-2, s.pruned.Load(), s.latest.Get(), 10); ok {
		t.Error("the kept changes span the import's, which they do not hold")
	}
	if got, want := readChanges(t, s, 0, 2), changesInFile(t, s, 0); !reflect.DeepEqual(got, want) {
		t.Errorf("every change:\n%+v\nin the file:\n%+v", got, want)
	}
}

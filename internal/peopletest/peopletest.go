// Package peopletest is the one semantics suite every people.Store runs, so
// that the memory, SQLite and PostgreSQL directories behave the same.
package peopletest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/routeguide/routeguide/internal/people"
)

// Options configures a store for one test.
type Options struct {
	// Retain is how many recent changes the store keeps.
	Retain int
}

// Factory returns a new, empty-but-seeded store (holding the seed's Alice and
// Bob as revisions 1 and 2) configured by opts. It registers its own cleanup.
type Factory func(t *testing.T, opts Options) people.Store

// Run runs the whole suite against stores made by newStore.
func Run(t *testing.T, newStore Factory) {
	tests := []struct {
		name string
		test func(t *testing.T, newStore Factory)
	}{
		{"Seed", testSeed},
		{"Add", testAdd},
		{"Update", testUpdate},
		{"UpdateUnchanged", testUpdateUnchanged},
		{"Delete", testDelete},
		{"List", testList},
		{"ListPages", testListPages},
		{"Import", testImport},
		{"ImportUnchanged", testImportUnchanged},
		{"Changes", testChanges},
		{"Retention", testRetention},
		{"WaitChange", testWaitChange},
		{"ConcurrentWrites", testConcurrentWrites},
		{"ConcurrentSameName", testConcurrentSameName},
		{"ETags", testETags},
		{"ETagRace", testETagRace},
		{"RequestIDs", testRequestIDs},
		{"RequestIDRace", testRequestIDRace},
		{"RequestIDExpiry", testRequestIDExpiry},
		{"Origin", testOrigin},
		{"ImportOrigin", testImportOrigin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.test(t, newStore) })
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// equal compares people, treating nil and empty hobbies alike.
func equal(a, b people.Person) bool {
	return a.Name == b.Name && a.Age == b.Age && a.Gender == b.Gender &&
		a.Address == b.Address && slices.Equal(a.Hobbies, b.Hobbies)
}

func wantKind(t *testing.T, what string, err error, kind people.Kind) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want %v", what, kind)
		return
	}
	if got := people.KindOf(err); got != kind {
		t.Errorf("%s: error %q of kind %v, want %v", what, err, got, kind)
	}
}

func mustGet(t *testing.T, s people.Store, name string) people.Person {
	t.Helper()
	p, err := s.Person(ctx(t), name)
	if err != nil {
		t.Fatalf("Person(%q): %v", name, err)
	}
	return p
}

func mustAdd(t *testing.T, s people.Store, p people.Person) int64 {
	t.Helper()
	rev, err := s.Add(ctx(t), p)
	if err != nil {
		t.Fatalf("Add(%q): %v", p.Name, err)
	}
	return rev
}

func names(ps []people.Person) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name
	}
	return out
}

var carol = people.Person{
	Name: "Carol", Age: 41, Gender: people.GenderFemale,
	Hobbies: []string{"chess"},
	Address: people.Address{Street: "1 Oak St", City: "Boston"},
}

func testSeed(t *testing.T, newStore Factory) {
	s := newStore(t, Options{})
	for _, want := range people.Seed() {
		if got := mustGet(t, s, want.Name); !equal(got, want) {
			t.Errorf("Person(%q) = %+v, want %+v", want.Name, got, want)
		}
	}
	_, err := s.Person(ctx(t), "Charlie")
	wantKind(t, "Person(Charlie)", err, people.NotFound)
	_, err = s.Person(ctx(t), "alice")
	wantKind(t, "Person(alice)", err, people.NotFound)
	rev, err := s.Revision(ctx(t))
	if err != nil || rev != 2 {
		t.Errorf("Revision = %d, %v; want 2 (the seed's two people)", rev, err)
	}
}

func testAdd(t *testing.T, newStore Factory) {
	s := newStore(t, Options{})
	rev := mustAdd(t, s, carol)
	if rev != 3 {
		t.Errorf("Add revision = %d, want 3", rev)
	}
	if got := mustGet(t, s, "Carol"); !equal(got, carol) {
		t.Errorf("Person(Carol) = %+v, want %+v", got, carol)
	}
	_, err := s.Add(ctx(t), people.Person{Name: "Carol", Age: 1})
	wantKind(t, "Add(Carol) again", err, people.AlreadyExists)
	if got := mustGet(t, s, "Carol"); !equal(got, carol) {
		t.Errorf("after a refused Add, Person(Carol) = %+v, want %+v", got, carol)
	}

	// Names are stored exactly, in any script, and hobbies keep their order.
	odd := people.Person{Name: "Zoë 李 😀", Hobbies: []string{"z", "a", "m"}}
	mustAdd(t, s, odd)
	if got := mustGet(t, s, odd.Name); !equal(got, odd) {
		t.Errorf("Person(%q) = %+v, want %+v", odd.Name, got, odd)
	}
	// Returned values are copies.
	got := mustGet(t, s, odd.Name)
	got.Hobbies[0] = "changed"
	if again := mustGet(t, s, odd.Name); again.Hobbies[0] != "z" {
		t.Errorf("changing a returned person changed the store: %v", again.Hobbies)
	}
}

func alice() people.Person { return people.Seed()[0] }

func testUpdate(t *testing.T, newStore Factory) {
	changed := people.Person{
		Age: 31, Gender: people.GenderMale, Hobbies: []string{"rowing"},
		Address: people.Address{Street: "9 New St", City: "Austin"},
	}
	with := func(change func(p *people.Person)) people.Person {
		p := alice()
		change(&p)
		return p
	}
	tests := []struct {
		name   string
		fields people.Field
		want   people.Person
	}{
		{"age", people.FieldAge, with(func(p *people.Person) { p.Age = 31 })},
		{"gender", people.FieldGender, with(func(p *people.Person) { p.Gender = people.GenderMale })},
		{"hobbies", people.FieldHobbies, with(func(p *people.Person) { p.Hobbies = []string{"rowing"} })},
		{"street", people.FieldStreet, with(func(p *people.Person) { p.Address.Street = "9 New St" })},
		{"city", people.FieldCity, with(func(p *people.Person) { p.Address.City = "Austin" })},
		{"all", people.AllFields, with(func(p *people.Person) { *p = changed; p.Name = "Alice" })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t, Options{})
			got, rev, err := s.Update(ctx(t), "Alice", people.Update{Fields: tt.fields, To: changed})
			if err != nil {
				t.Fatalf("Update: %v", err)
			}
			if rev != 3 {
				t.Errorf("Update revision = %d, want 3", rev)
			}
			if !equal(got, tt.want) {
				t.Errorf("Update returned %+v, want %+v", got, tt.want)
			}
			if stored := mustGet(t, s, "Alice"); !equal(stored, tt.want) {
				t.Errorf("after Update, Person(Alice) = %+v, want %+v", stored, tt.want)
			}
			if bob := mustGet(t, s, "Bob"); !equal(bob, people.Seed()[1]) {
				t.Errorf("Update of Alice changed Bob: %+v", bob)
			}
		})
	}

	t.Run("clear hobbies", func(t *testing.T) {
		s := newStore(t, Options{})
		got, _, err := s.Update(ctx(t), "Alice", people.Update{Fields: people.FieldHobbies})
		if err != nil || len(got.Hobbies) != 0 {
			t.Fatalf("Update = %+v, %v; want no hobbies", got, err)
		}
		page, err := s.List(ctx(t), people.Query{Hobby: "reading", Limit: 10})
		if err != nil || len(page) != 0 {
			t.Errorf("List(hobby reading) after clearing = %v, %v; want nobody", names(page), err)
		}
	})
	t.Run("hobby index follows", func(t *testing.T) {
		// Alice reads and swims; she keeps swimming, stops reading, starts
		// rowing.
		s := newStore(t, Options{})
		_, _, err := s.Update(ctx(t), "Alice", people.Update{Fields: people.FieldHobbies, To: people.Person{Hobbies: []string{"swimming", "rowing", "rowing"}}})
		if err != nil {
			t.Fatalf("Update: %v", err)
		}
		for hobby, want := range map[string][]string{"reading": nil, "swimming": {"Alice"}, "rowing": {"Alice"}} {
			page, err := s.List(ctx(t), people.Query{Hobby: hobby, Limit: 10})
			if err != nil || !slices.Equal(names(page), want) {
				t.Errorf("List(hobby %s) after the update = %v, %v; want %v", hobby, names(page), err, want)
			}
		}
	})
	t.Run("missing", func(t *testing.T) {
		s := newStore(t, Options{})
		_, _, err := s.Update(ctx(t), "Charlie", people.Update{Fields: people.FieldAge, To: people.Person{Age: 3}})
		wantKind(t, "Update(Charlie)", err, people.NotFound)
	})
	t.Run("invalid result", func(t *testing.T) {
		s := newStore(t, Options{})
		_, _, err := s.Update(ctx(t), "Alice", people.Update{Fields: people.FieldAge, To: people.Person{Age: 151}})
		wantKind(t, "Update(Alice, age 151)", err, people.Invalid)
		if got := mustGet(t, s, "Alice"); !equal(got, alice()) {
			t.Errorf("a refused Update changed Alice: %+v", got)
		}
	})
}

// wantNothingRecorded checks that s is still at revision rev, with no
// change after it (so no watcher hears of one).
func wantNothingRecorded(t *testing.T, s people.Store, what string, rev int64) {
	t.Helper()
	if got, err := s.Revision(ctx(t)); err != nil || got != rev {
		t.Errorf("Revision after %s = %d, %v; want %d", what, got, err, rev)
	}
	if cs, err := s.Changes(ctx(t), rev, 10); err != nil || len(cs) != 0 {
		t.Errorf("Changes after %s = %+v, %v; want none", what, cs, err)
	}
}

// testUpdateUnchanged checks that an update that changes nothing answers
// with the stored person and the latest revision, and records nothing.
func testUpdateUnchanged(t *testing.T, newStore Factory) {
	a := alice()
	tests := []struct {
		name string
		u    people.Update
	}{
		{"no field", people.Update{To: people.Person{Age: 77, Address: people.Address{City: "Austin"}}}},
		{"age as stored", people.Update{Fields: people.FieldAge, To: people.Person{Age: a.Age}}},
		{"hobbies as stored", people.Update{Fields: people.FieldHobbies, To: people.Person{Hobbies: a.Hobbies}}},
		{"every field as stored", people.Update{Fields: people.AllFields, To: a}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t, Options{})
			got, rev, err := s.Update(ctx(t), "Alice", tt.u)
			if err != nil {
				t.Fatalf("Update: %v", err)
			}
			if rev != 2 {
				t.Errorf("Update revision = %d, want the latest, 2", rev)
			}
			if !equal(got, a) {
				t.Errorf("Update returned %+v, want %+v", got, a)
			}
			wantNothingRecorded(t, s, "an update that changes nothing", 2)
			// The next change takes the next revision: none was skipped.
			if _, rev, err := s.Update(ctx(t), "Alice", people.Update{Fields: people.FieldAge, To: people.Person{Age: 31}}); err != nil || rev != 3 {
				t.Errorf("a later Update = revision %d, %v; want 3", rev, err)
			}
		})
	}
}

func testDelete(t *testing.T, newStore Factory) {
	s := newStore(t, Options{})
	rev, err := s.Delete(ctx(t), "Alice")
	if err != nil || rev != 3 {
		t.Fatalf("Delete(Alice) = %d, %v; want 3, nil", rev, err)
	}
	_, err = s.Person(ctx(t), "Alice")
	wantKind(t, "Person(Alice) after Delete", err, people.NotFound)
	_, err = s.Delete(ctx(t), "Alice")
	wantKind(t, "Delete(Alice) again", err, people.NotFound)
	page, err := s.List(ctx(t), people.Query{Hobby: "reading", Limit: 10})
	if err != nil || len(page) != 0 {
		t.Errorf("List(hobby reading) after Delete = %v, %v; want nobody", names(page), err)
	}
	mustAdd(t, s, people.Person{Name: "Alice", Age: 7})
	if got := mustGet(t, s, "Alice"); got.Age != 7 || len(got.Hobbies) != 0 {
		t.Errorf("Alice added again = %+v, want age 7 and no hobbies", got)
	}
}

// directory is the people testList and testListPages work on.
func directory() []people.Person {
	return []people.Person{
		{Name: "Alice", Hobbies: []string{"reading", "swimming"}, Address: people.Address{City: "New York"}},
		{Name: "Bob", Hobbies: []string{"gaming", "cycling"}, Address: people.Address{City: "Los Angeles"}},
		{Name: "Alfred", Hobbies: []string{"reading"}, Address: people.Address{City: "Boston"}},
		{Name: "Al", Hobbies: []string{"chess", "reading"}, Address: people.Address{City: "New York"}},
		{Name: "alice", Hobbies: []string{"swimming"}, Address: people.Address{City: "new york"}},
		{Name: "Émile", Hobbies: []string{"reading"}, Address: people.Address{City: "Paris"}},
		{Name: "Zed", Address: people.Address{City: "New York"}},
		{Name: "Bo", Hobbies: []string{"Reading"}},
	}
}

func testList(t *testing.T, newStore Factory) {
	s := newStore(t, Options{})
	if _, err := s.Import(ctx(t), directory()); err != nil {
		t.Fatalf("Import: %v", err)
	}
	tests := []struct {
		name string
		q    people.Query
		want []string
	}{
		// Byte order: upper case before lower case, accents last.
		{"all", people.Query{}, []string{"Al", "Alfred", "Alice", "Bo", "Bob", "Zed", "alice", "Émile"}},
		{"limit", people.Query{Limit: 3}, []string{"Al", "Alfred", "Alice"}},
		{"after", people.Query{After: "Alice"}, []string{"Bo", "Bob", "Zed", "alice", "Émile"}},
		{"after a missing name", people.Query{After: "Ali"}, []string{"Alice", "Bo", "Bob", "Zed", "alice", "Émile"}},
		{"city", people.Query{City: "New York"}, []string{"Al", "Alice", "Zed"}},
		{"city is exact", people.Query{City: "new york"}, []string{"alice"}},
		{"hobby", people.Query{Hobby: "reading"}, []string{"Al", "Alfred", "Alice", "Émile"}},
		{"hobby is exact", people.Query{Hobby: "Reading"}, []string{"Bo"}},
		{"prefix", people.Query{NamePrefix: "Al"}, []string{"Al", "Alfred", "Alice"}},
		{"prefix is exact", people.Query{NamePrefix: "al"}, []string{"alice"}},
		{"prefix non-ASCII", people.Query{NamePrefix: "É"}, []string{"Émile"}},
		{"prefix after", people.Query{NamePrefix: "Al", After: "Alfred"}, []string{"Alice"}},
		{"prefix after its range", people.Query{NamePrefix: "Al", After: "B"}, nil},
		{"city and hobby", people.Query{City: "New York", Hobby: "reading"}, []string{"Al", "Alice"}},
		{"all filters", people.Query{City: "New York", Hobby: "reading", NamePrefix: "Ali"}, []string{"Alice"}},
		{"hobby and after", people.Query{Hobby: "reading", After: "Alfred", Limit: 1}, []string{"Alice"}},
		{"no match", people.Query{City: "Nowhere"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.q.Limit == 0 {
				tt.q.Limit = 100
			}
			got, err := s.List(ctx(t), tt.q)
			if err != nil {
				t.Fatalf("List(%+v): %v", tt.q, err)
			}
			if !slices.Equal(names(got), tt.want) {
				t.Errorf("List(%+v) = %q, want %q", tt.q, names(got), tt.want)
			}
		})
	}
	// List returns whole people.
	got, err := s.List(ctx(t), people.Query{NamePrefix: "Bob", Limit: 1})
	if err != nil || len(got) != 1 || !equal(got[0], directory()[1]) {
		t.Errorf("List(prefix Bob) = %+v, %v; want %+v", got, err, directory()[1])
	}
}

func testListPages(t *testing.T, newStore Factory) {
	s := newStore(t, Options{})
	var batch []people.Person
	for i := range 250 {
		batch = append(batch, people.Person{Name: fmt.Sprintf("p%03d", (i*7)%250), Hobbies: []string{fmt.Sprint("h", i%3)}})
	}
	if _, err := s.Import(ctx(t), batch); err != nil {
		t.Fatalf("Import: %v", err)
	}
	for _, q := range []people.Query{{NamePrefix: "p"}, {Hobby: "h1"}} {
		var all []string
		q.Limit = 16
		for {
			page, err := s.List(ctx(t), q)
			if err != nil {
				t.Fatalf("List(%+v): %v", q, err)
			}
			all = append(all, names(page)...)
			if len(page) < q.Limit {
				break
			}
			q.After = page[len(page)-1].Name
		}
		want := 250
		if q.Hobby != "" {
			want = 83
		}
		if len(all) != want || !slices.IsSorted(all) || len(slices.Compact(slices.Clone(all))) != want {
			t.Errorf("paging %+v: %d names, sorted %v; want %d distinct, sorted", q, len(all), slices.IsSorted(all), want)
		}
	}
}

func testImport(t *testing.T, newStore Factory) {
	s := newStore(t, Options{})
	newAlice := people.Person{Name: "Alice", Age: 99, Hobbies: []string{"judo"}}
	r, err := s.Import(ctx(t), []people.Person{carol, newAlice, {Name: "Dan"}})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if want := (people.ImportResult{Added: 2, Updated: 1, Revision: 5}); r != want {
		t.Errorf("Import = %+v, want %+v", r, want)
	}
	for _, want := range []people.Person{carol, newAlice, {Name: "Dan"}, people.Seed()[1]} {
		if got := mustGet(t, s, want.Name); !equal(got, want) {
			t.Errorf("Person(%q) = %+v, want %+v", want.Name, got, want)
		}
	}
	// The import replaced Alice's hobbies, not merged them.
	page, err := s.List(ctx(t), people.Query{Hobby: "reading", Limit: 10})
	if err != nil || len(page) != 0 {
		t.Errorf("List(hobby reading) = %v, %v; want nobody", names(page), err)
	}
	// Of two entries for one name in a batch, the later wins.
	r, err = s.Import(ctx(t), []people.Person{{Name: "Zoe", Age: 1}, {Name: "Amy"}, {Name: "Zoe", Age: 2}})
	if err != nil || r.Added != 2 || r.Updated != 1 || r.Revision != 8 {
		t.Errorf("Import with a repeated name = %+v, %v; want 2 added, 1 updated, revision 8", r, err)
	}
	if got := mustGet(t, s, "Zoe"); got.Age != 2 {
		t.Errorf("Person(Zoe) = %+v, want the later entry, age 2", got)
	}
	if cs, err := s.Changes(ctx(t), 5, 10); err != nil || len(cs) != 3 || cs[0].Person.Name != "Zoe" || cs[1].Person.Name != "Amy" || cs[2].Type != people.Updated {
		t.Errorf("Changes of the import = %+v, %v; want Zoe added, Amy added, Zoe updated, in batch order", cs, err)
	}
	// An empty import changes nothing.
	r, err = s.Import(ctx(t), nil)
	if err != nil || r.Added+r.Updated != 0 {
		t.Errorf("empty Import = %+v, %v", r, err)
	}
	if rev, _ := s.Revision(ctx(t)); rev != 8 {
		t.Errorf("Revision after an empty import = %d, want 8", rev)
	}
}

// testImportUnchanged checks that importing people equal to the stored
// ones counts them unchanged and records nothing, while the others in the
// batch are recorded with revisions that follow on without a gap.
func testImportUnchanged(t *testing.T, newStore Factory) {
	s := newStore(t, Options{})
	r, err := s.Import(ctx(t), people.Seed())
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if want := (people.ImportResult{Unchanged: 2, Revision: 2}); r != want {
		t.Errorf("Import of the stored people = %+v, want %+v", r, want)
	}
	wantNothingRecorded(t, s, "importing the stored people", 2)

	older := alice()
	older.Age++
	r, err = s.Import(ctx(t), []people.Person{people.Seed()[1], carol, older, alice()})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if want := (people.ImportResult{Added: 1, Updated: 2, Unchanged: 1, Revision: 5}); r != want {
		t.Errorf("Import = %+v, want %+v", r, want)
	}
	cs, err := s.Changes(ctx(t), 2, 10)
	if err != nil || len(cs) != 3 {
		t.Fatalf("Changes of the import = %+v, %v; want 3", cs, err)
	}
	for i, want := range []struct {
		rev  int64
		typ  people.ChangeType
		name string
		age  int32
	}{{3, people.Added, "Carol", carol.Age}, {4, people.Updated, "Alice", older.Age}, {5, people.Updated, "Alice", alice().Age}} {
		if c := cs[i]; c.Revision != want.rev || c.Type != want.typ || c.Person.Name != want.name || c.Person.Age != want.age {
			t.Errorf("change %d = %+v, want revision %d, %v %s aged %d", i, c, want.rev, want.typ, want.name, want.age)
		}
	}
	if got := mustGet(t, s, "Alice"); !equal(got, alice()) {
		t.Errorf("Person(Alice) = %+v, want %+v", got, alice())
	}
	page, err := s.List(ctx(t), people.Query{Hobby: "reading", Limit: 10})
	if err != nil || !slices.Equal(names(page), []string{"Alice"}) {
		t.Errorf("List(hobby reading) = %v, %v; want Alice", names(page), err)
	}
}

func testChanges(t *testing.T, newStore Factory) {
	s := newStore(t, Options{})
	mustAdd(t, s, carol)                                                                                   // 3
	s.Update(ctx(t), "Carol", people.Update{Fields: people.FieldAge, To: people.Person{Age: 42}})          // 4
	s.Delete(ctx(t), "Bob")                                                                                // 5
	s.Import(ctx(t), []people.Person{{Name: "Dan"}, {Name: "Carol", Age: 43, Hobbies: []string{"chess"}}}) // 6, 7

	got, err := s.Changes(ctx(t), 0, 100)
	if err != nil {
		t.Fatalf("Changes(0): %v", err)
	}
	want := []people.Change{
		{Revision: 1, Type: people.Added, Person: people.Seed()[0]},
		{Revision: 2, Type: people.Added, Person: people.Seed()[1]},
		{Revision: 3, Type: people.Added, Person: carol},
		{Revision: 4, Type: people.Updated, Person: func() people.Person { c := carol; c.Age = 42; return c }()},
		{Revision: 5, Type: people.Deleted, Person: people.Person{Name: "Bob"}},
		{Revision: 6, Type: people.Added, Person: people.Person{Name: "Dan"}},
		{Revision: 7, Type: people.Updated, Person: people.Person{Name: "Carol", Age: 43, Hobbies: []string{"chess"}}},
	}
	if len(got) != len(want) {
		t.Fatalf("Changes(0) = %d changes, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].Revision != want[i].Revision || got[i].Type != want[i].Type || !equal(got[i].Person, want[i].Person) {
			t.Errorf("change %d = %+v, want %+v", i, got[i], want[i])
		}
	}

	if got, err := s.Changes(ctx(t), 4, 2); err != nil || len(got) != 2 || got[0].Revision != 5 || got[1].Revision != 6 {
		t.Errorf("Changes(4, limit 2) = %+v, %v; want revisions 5 and 6", got, err)
	}
	if got, err := s.Changes(ctx(t), 7, 10); err != nil || len(got) != 0 {
		t.Errorf("Changes(latest) = %+v, %v; want none", got, err)
	}
	_, err = s.Changes(ctx(t), 8, 10)
	wantKind(t, "Changes(beyond the latest)", err, people.OutOfRange)
	// Failed writes record nothing.
	s.Add(ctx(t), carol)
	s.Delete(ctx(t), "Nobody")
	if rev, _ := s.Revision(ctx(t)); rev != 7 {
		t.Errorf("Revision after failed writes = %d, want 7", rev)
	}
}

func testRetention(t *testing.T, newStore Factory) {
	s := newStore(t, Options{Retain: 3})
	for i := range 5 {
		mustAdd(t, s, people.Person{Name: fmt.Sprint("n", i)}) // 3..7
	}
	got, err := s.Changes(ctx(t), 4, 10)
	if err != nil || len(got) != 3 || got[0].Revision != 5 {
		t.Errorf("Changes(4) with 3 kept = %+v, %v; want revisions 5 to 7", got, err)
	}
	_, err = s.Changes(ctx(t), 3, 10)
	wantKind(t, "Changes(3) with revisions 5 to 7 kept", err, people.OutOfRange)
	_, err = s.Changes(ctx(t), 0, 10)
	wantKind(t, "Changes(0) with revisions 5 to 7 kept", err, people.OutOfRange)
}

func testWaitChange(t *testing.T, newStore Factory) {
	s := newStore(t, Options{})
	// Already past: returns at once.
	if err := s.WaitChange(ctx(t), 1); err != nil {
		t.Errorf("WaitChange(1) with revision 2: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.WaitChange(ctx(t), 2) }()
	time.Sleep(20 * time.Millisecond)
	mustAdd(t, s, carol)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("WaitChange(2): %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("WaitChange(2) still waiting after a write")
	}

	c, cancel := context.WithCancel(context.Background())
	go func() { done <- s.WaitChange(c, 3) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("WaitChange with a cancelled context = %v, want context.Canceled", err)
	}
}

func testConcurrentWrites(t *testing.T, newStore Factory) {
	s := newStore(t, Options{})
	const writers, each = 4, 10
	var wg sync.WaitGroup
	revs := make(chan int64, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				rev, err := s.Add(ctx(t), people.Person{Name: fmt.Sprintf("w%d-%d", w, i)})
				if err != nil {
					t.Errorf("Add: %v", err)
					return
				}
				revs <- rev
			}
		}()
	}
	wg.Wait()
	close(revs)
	seen := map[int64]bool{}
	for r := range revs {
		if seen[r] {
			t.Errorf("revision %d given to two writes", r)
		}
		seen[r] = true
	}
	page, err := s.List(ctx(t), people.Query{NamePrefix: "w", Limit: 100})
	if err != nil || len(page) != writers*each {
		t.Errorf("List(prefix w) = %d people, %v; want %d", len(page), err, writers*each)
	}
	changes, err := s.Changes(ctx(t), 2, 100)
	if err != nil || len(changes) != writers*each {
		t.Fatalf("Changes(2) = %d, %v; want %d", len(changes), err, writers*each)
	}
	for i, c := range changes {
		if c.Revision != int64(3+i) {
			t.Errorf("change %d has revision %d, want %d: revisions must have no gaps", i, c.Revision, 3+i)
		}
	}
}

// testConcurrentSameName has many callers add one name at once, unkeyed
// and then each with one request id: a store that commits concurrent
// writes together must still let exactly one addition win, answer every
// other AlreadyExists (or, with the request id, the first's answer), and
// log one change.
func testConcurrentSameName(t *testing.T, newStore Factory) {
	s := newStore(t, Options{})
	const callers = 16
	for _, keyedAdd := range []bool{false, true} {
		name := fmt.Sprint("same-", keyedAdd)
		before, err := s.Revision(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		revs := make([]int64, callers)
		errs := make([]error, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() {
				c := ctx(t)
				if keyedAdd {
					c = keyed(t, "6f1c2d1e-0000-4000-8000-00000000ffff", "add same")
				}
				revs[i], errs[i] = s.Add(c, people.Person{Name: name, Age: int32(i)})
			})
		}
		wg.Wait()
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
				if keyedAdd && revs[i] != before+1 {
					t.Errorf("keyed Add(%s) answered revision %d, want the first's, %d", name, revs[i], before+1)
				}
			case keyedAdd || people.KindOf(err) != people.AlreadyExists:
				t.Errorf("Add(%s) = %v", name, err)
			}
		}
		if want := map[bool]int{false: 1, true: callers}[keyedAdd]; won != want {
			t.Errorf("%d of %d Add(%s) succeeded, want %d", won, callers, name, want)
		}
		wantChanges(t, s, "Add of one name by many", before, 1)
	}
}

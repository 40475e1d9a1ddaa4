package peopletest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/routeguide/routeguide/internal/people"
)

// keyed returns a context whose write carries request id id, sent with a
// request whose digest is digest, kept for an hour.
func keyed(t *testing.T, id, digest string) context.Context {
	w := people.Write{Digest: digest, Expires: time.Now().Add(time.Hour)}
	w.RequestID = id
	w.Principal = "tester"
	return people.WithWrite(ctx(t), w)
}

// ifMatch returns a context whose write is conditional on etag.
func ifMatch(t *testing.T, etag string) context.Context {
	return people.WithWrite(ctx(t), people.Write{IfMatch: etag})
}

// wantChanges checks that the changes after revision after are exactly n.
func wantChanges(t *testing.T, s people.Store, what string, after int64, n int) {
	t.Helper()
	cs, err := s.Changes(ctx(t), after, 100)
	if err != nil || len(cs) != n {
		t.Errorf("Changes after %s = %d changes, %v; want %d", what, len(cs), err, n)
	}
}

// testETags checks that an update or delete with an etag is made only
// while the etag is the person's, and that a refused one records nothing.
func testETags(t *testing.T, newStore Factory) {
	s := newStore(t, Options{})
	a := mustGet(t, s, "Alice")
	read := people.ETag(a)
	older := people.Update{Fields: people.FieldAge, To: people.Person{Age: 31}}

	p, rev, err := s.Update(ifMatch(t, read), "Alice", older)
	if err != nil || p.Age != 31 || rev != 3 {
		t.Fatalf("Update with the current etag = %+v, %d, %v; want age 31 at revision 3", p, rev, err)
	}
	if people.ETag(p) == read {
		t.Errorf("the etag did not change with the update")
	}
	_, _, err = s.Update(ifMatch(t, read), "Alice", people.Update{Fields: people.FieldAge, To: people.Person{Age: 99}})
	wantKind(t, "Update with a stale etag", err, people.Aborted)
	_, err = s.Delete(ifMatch(t, read), "Alice")
	wantKind(t, "Delete with a stale etag", err, people.Aborted)
	wantNothingRecorded(t, s, "writes with a stale etag", 3)
	if got := mustGet(t, s, "Alice"); got.Age != 31 {
		t.Errorf("Alice's age after refused writes = %d, want 31", got.Age)
	}
	_, err = s.Delete(ifMatch(t, "nonsense"), "Nobody")
	wantKind(t, "Delete of nobody with an etag", err, people.NotFound)

	rev, err = s.Delete(ifMatch(t, people.ETag(p)), "Alice")
	if err != nil || rev != 4 {
		t.Errorf("Delete with the current etag = %d, %v; want revision 4", rev, err)
	}
}

// testETagRace has writers update one person at once, each against the
// state it read: every update that succeeds was made against the state
// it read (no update is lost), and the others are refused with Aborted.
func testETagRace(t *testing.T, newStore Factory) {
	s := newStore(t, Options{})
	const writers, rounds = 4, 5
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
	)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				p, err := s.Person(ctx(t), "Bob")
				if err != nil {
					t.Errorf("Person(Bob): %v", err)
					return
				}
				_, _, err = s.Update(ifMatch(t, people.ETag(p)), "Bob", people.Update{Fields: people.FieldAge, To: people.Person{Age: p.Age + 1}})
				switch people.KindOf(err) {
				case people.Aborted:
				default:
					if err != nil {
						t.Errorf("Update: %v", err)
						return
					}
					mu.Lock()
					wins++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	got := mustGet(t, s, "Bob")
	if int(got.Age) != 25+wins {
		t.Errorf("Bob's age = %d after %d acknowledged increments from 25: an update was lost", got.Age, wins)
	}
	if wins == 0 {
		t.Errorf("no update succeeded")
	}
	wantChanges(t, s, "the race", 2, wins)
}

// testRequestIDs checks that a write repeated with its request id answers
// what it first answered, changes nothing more, and that the id with
// another request is refused.
func testRequestIDs(t *testing.T, newStore Factory) {
	s := newStore(t, Options{})
	const id = "6f1c2d1e-0000-4000-8000-000000000001"

	rev, err := s.Add(keyed(t, id, "add carol"), carol)
	if err != nil || rev != 3 {
		t.Fatalf("Add = %d, %v; want revision 3", rev, err)
	}
	mustAdd(t, s, people.Person{Name: "Dave"}) // revision 4: the repeat must still answer 3
	rev, err = s.Add(keyed(t, id, "add carol"), carol)
	if err != nil || rev != 3 {
		t.Errorf("the same Add again = %d, %v; want the first answer, revision 3", rev, err)
	}
	wantChanges(t, s, "the repeated Add", 2, 2)

	_, err = s.Add(keyed(t, id, "add someone else"), people.Person{Name: "Erin"})
	wantKind(t, "the request id with another request", err, people.Invalid)
	var e *people.Error
	if errors.As(err, &e) && (len(e.Violations) != 1 || e.Violations[0].Field != "request_id") {
		t.Errorf("violations = %+v, want one naming request_id", e.Violations)
	}
	if _, err := s.Person(ctx(t), "Erin"); people.KindOf(err) != people.NotFound {
		t.Errorf("Erin was stored by a refused request: %v", err)
	}

	// A refusal is an answer too: the repeat meets it again, even once
	// the name is free.
	const taken = "6f1c2d1e-0000-4000-8000-000000000002"
	_, err = s.Add(keyed(t, taken, "add carol again"), carol)
	wantKind(t, "Add of a taken name", err, people.AlreadyExists)
	if _, err := s.Delete(ctx(t), "Carol"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Add(keyed(t, taken, "add carol again"), carol)
	wantKind(t, "the refused Add again, the name free", err, people.AlreadyExists)

	// An update and a delete answer their first answer too.
	const upd, del = "6f1c2d1e-0000-4000-8000-000000000003", "6f1c2d1e-0000-4000-8000-000000000004"
	u := people.Update{Fields: people.FieldAge, To: people.Person{Age: 40}}
	p1, rev1, err := s.Update(keyed(t, upd, "age 40"), "Alice", u)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Update(ctx(t), "Alice", people.Update{Fields: people.FieldAge, To: people.Person{Age: 41}}); err != nil {
		t.Fatal(err)
	}
	p2, rev2, err := s.Update(keyed(t, upd, "age 40"), "Alice", u)
	if err != nil || rev2 != rev1 || !equal(p2, p1) {
		t.Errorf("the same Update again = %+v, %d, %v; want %+v, %d", p2, rev2, err, p1, rev1)
	}
	if got := mustGet(t, s, "Alice"); got.Age != 41 {
		t.Errorf("Alice's age = %d after the repeated Update; want 41, the later write's", got.Age)
	}
	rev1, err = s.Delete(keyed(t, del, "delete dave"), "Dave")
	if err != nil {
		t.Fatal(err)
	}
	latest, _ := s.Revision(ctx(t))
	rev2, err = s.Delete(keyed(t, del, "delete dave"), "Dave")
	if err != nil || rev2 != rev1 {
		t.Errorf("the same Delete again = %d, %v; want revision %d, not NOT_FOUND", rev2, err, rev1)
	}
	wantNothingRecorded(t, s, "the repeated Delete", latest)

	// An import's batch, likewise.
	const imp = "6f1c2d1e-0000-4000-8000-000000000005"
	batch := []people.Person{{Name: "Finn", Age: 3}, {Name: "Gwen", Age: 4}}
	r1, err := s.Import(keyed(t, imp, "import"), batch)
	if err != nil || r1.Added != 2 {
		t.Fatalf("Import = %+v, %v; want 2 added", r1, err)
	}
	latest, _ = s.Revision(ctx(t))
	r2, err := s.Import(keyed(t, imp, "import"), batch)
	if err != nil || r2 != r1 {
		t.Errorf("the same Import again = %+v, %v; want %+v", r2, err, r1)
	}
	wantNothingRecorded(t, s, "the repeated Import", latest)

	// An import that changed nothing is an answer too: once Finn changes,
	// its repeat still counts him unchanged, and leaves him as he is.
	const same = "6f1c2d1e-0000-4000-8000-000000000006"
	r1, err = s.Import(keyed(t, same, "import finn"), batch[:1])
	if err != nil || r1.Unchanged != 1 {
		t.Fatalf("Import of Finn as stored = %+v, %v; want 1 unchanged", r1, err)
	}
	if _, _, err := s.Update(ctx(t), "Finn", people.Update{Fields: people.FieldAge, To: people.Person{Age: 9}}); err != nil {
		t.Fatal(err)
	}
	if r2, err := s.Import(keyed(t, same, "import finn"), batch[:1]); err != nil || r2.Unchanged != 1 || r2.Updated != 0 {
		t.Errorf("the unchanged Import again = %+v, %v; want its first answer, 1 unchanged", r2, err)
	}
	if got := mustGet(t, s, "Finn"); got.Age != 9 {
		t.Errorf("Finn's age = %d after the repeated Import; want 9", got.Age)
	}
}

// testRequestIDRace sends one request with one request id from many
// writers at once: one write is made, and every writer gets its answer.
func testRequestIDRace(t *testing.T, newStore Factory) {
	s := newStore(t, Options{})
	const id, writers = "6f1c2d1e-0000-4000-8000-000000000010", 8
	revs := make([]int64, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rev, err := s.Add(keyed(t, id, "add carol"), carol)
			if err != nil {
				t.Errorf("Add: %v", err)
			}
			revs[i] = rev
		}()
	}
	wg.Wait()
	for i, rev := range revs {
		if rev != 3 {
			t.Errorf("writer %d got revision %d, want 3", i, rev)
		}
	}
	wantChanges(t, s, "the raced Add", 2, 1)
}

// testRequestIDExpiry checks that a request id is forgotten once it
// expires: the write is then made, or refused, afresh.
func testRequestIDExpiry(t *testing.T, newStore Factory) {
	s := newStore(t, Options{})
	const id = "6f1c2d1e-0000-4000-8000-000000000020"
	w := people.Write{Digest: "add carol", Expires: time.Now().Add(50 * time.Millisecond)}
	w.RequestID = id
	if _, err := s.Add(people.WithWrite(ctx(t), w), carol); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	mustAdd(t, s, people.Person{Name: "Dave"}) // a commit, which sweeps expired ids
	w.Expires = time.Now().Add(time.Hour)
	_, err := s.Add(people.WithWrite(ctx(t), w), carol)
	wantKind(t, "the Add again after its request id expired", err, people.AlreadyExists)
}

// testOrigin checks that each change records its origin, and that
// History lists a person's changes newest first.
func testOrigin(t *testing.T, newStore Factory) {
	s := newStore(t, Options{})
	w := people.Write{Origin: people.Origin{Principal: "ops", Peer: "10.0.0.7:4242", RequestID: "6f1c2d1e-0000-4000-8000-000000000030"},
		Digest: "d", Expires: time.Now().Add(time.Hour)}
	before := time.Now().Add(-time.Second)
	if _, _, err := s.Update(people.WithWrite(ctx(t), w), "Alice", people.Update{Fields: people.FieldAge, To: people.Person{Age: 33}}); err != nil {
		t.Fatal(err)
	}
	w.Principal, w.RequestID = "local", ""
	if _, err := s.Delete(people.WithWrite(ctx(t), w), "Alice"); err != nil {
		t.Fatal(err)
	}
	cs, err := s.Changes(ctx(t), 2, 10)
	if err != nil || len(cs) != 2 {
		t.Fatalf("Changes(2) = %+v, %v; want 2", cs, err)
	}
	got := cs[0].Origin
	if got.Principal != "ops" || got.Peer != "10.0.0.7:4242" || got.RequestID != "6f1c2d1e-0000-4000-8000-000000000030" {
		t.Errorf("the update's origin = %+v, want principal ops, its peer and request id", got)
	}
	if got.Time.Before(before) || got.Time.After(time.Now().Add(time.Second)) {
		t.Errorf("the update's time = %v, want about now", got.Time)
	}
	hist, err := s.History(ctx(t), "Alice", 10)
	if err != nil {
		t.Fatal(err)
	}
	var summary []string
	for _, c := range hist {
		summary = append(summary, fmt.Sprintf("%d %v %s", c.Revision, c.Type, c.Origin.Principal))
	}
	want := []string{"4 deleted local", "3 updated ops", "1 added "}
	if fmt.Sprint(summary) != fmt.Sprint(want) {
		t.Errorf("History(Alice) = %q, want %q", summary, want)
	}
	if hist, err := s.History(ctx(t), "Alice", 1); err != nil || len(hist) != 1 || hist[0].Revision != 4 {
		t.Errorf("History(Alice, 1) = %+v, %v; want the newest change only", hist, err)
	}
	if hist, err := s.History(ctx(t), "Nobody", 10); err != nil || len(hist) != 0 {
		t.Errorf("History(Nobody) = %+v, %v; want none", hist, err)
	}
}

// testImportOrigin checks that every change an import logs records the
// import's origin: a batch of more people than one statement of a bulk
// import writes, a batch that names someone twice, and a batch that
// updates some, adds some and leaves some as they are.
func testImportOrigin(t *testing.T, newStore Factory) {
	s := newStore(t, Options{})
	w := people.Write{Origin: people.Origin{Principal: "importer", Peer: "10.0.0.8:4343", RequestID: "6f1c2d1e-0000-4000-8000-000000000031"},
		Digest: "d", Expires: time.Now().Add(time.Hour)}
	var batch []people.Person
	for i := range 600 {
		batch = append(batch, people.Person{Name: fmt.Sprintf("Person %03d", i), Age: int32(i % 90), Hobbies: []string{"chess"}})
	}
	latest, err := s.Revision(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, after int64, n int, w people.Write) int64 {
		t.Helper()
		cs, err := s.Changes(ctx(t), after, 1000)
		if err != nil || len(cs) != n {
			t.Fatalf("%s: Changes(%d) = %d changes, %v; want %d", what, after, len(cs), err, n)
		}
		for _, c := range cs {
			if c.Origin.Principal != w.Principal || c.Origin.Peer != w.Peer || c.Origin.RequestID != w.RequestID || c.Origin.Time.IsZero() {
				t.Fatalf("%s: change %d (%s) has origin %+v, want %+v", what, c.Revision, c.Person.Name, c.Origin, w.Origin)
			}
		}
		return cs[len(cs)-1].Revision
	}
	if r, err := s.Import(people.WithWrite(ctx(t), w), batch); err != nil || r.Added != 600 {
		t.Fatalf("Import of 600 = %+v, %v; want 600 added", r, err)
	}
	latest = check("600 new people", latest, 600, w)

	w.RequestID = "6f1c2d1e-0000-4000-8000-000000000032"
	twice := []people.Person{{Name: "Person 000", Age: 50}, {Name: "Newcomer", Age: 5}, {Name: "Person 000", Age: 51}}
	if r, err := s.Import(people.WithWrite(ctx(t), w), twice); err != nil || r.Added != 1 || r.Updated != 2 {
		t.Fatalf("Import naming Person 000 twice = %+v, %v; want 1 added, 2 updated", r, err)
	}
	latest = check("a batch naming someone twice", latest, 3, w)

	w.Principal, w.RequestID = "local", ""
	mixed := append(batch[2:300:300], people.Person{Name: "Person 001", Age: 77}, people.Person{Name: "Another", Age: 6})
	if r, err := s.Import(people.WithWrite(ctx(t), w), mixed); err != nil || r.Added != 1 || r.Updated != 1 || r.Unchanged != 298 {
		t.Fatalf("Import of 300 = %+v, %v; want 1 added, 1 updated, 298 unchanged", r, err)
	}
	check("a batch of some unchanged", latest, 2, w)
}

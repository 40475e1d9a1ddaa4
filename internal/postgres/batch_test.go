package postgres

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/postgres/postgrestest"
)

// keyedWrite returns a context whose write carries request id id.
func keyedWrite(id string) context.Context {
	w := people.Write{Digest: "digest-" + id, Expires: time.Now().Add(time.Hour)}
	w.RequestID, w.Principal, w.Peer = id, "tester", "10.0.0.1:1234"
	return people.WithWrite(context.Background(), w)
}

// TestBatchedAdditions holds the committer while additions gather into one
// group, with the cases the group's one statement must get right: three
// additions of one name (exactly one wins), two with one request id (both
// answered the first's outcome), a keyed one of a taken name (its failure
// recorded and replayed), a keyed one replaying an earlier group's, hobbies
// that need quoting, and writes run one by one after them. The changes
// must follow each other with no gap, each with its origin, and another
// replica must answer the request ids as this one did.
func TestBatchedAdditions(t *testing.T) {
	url := postgrestest.Schema(t)
	s, other := open(t, url, 0), open(t, url, 0)
	ctx := context.Background()
	earlier, err := s.Add(keyedWrite("early"), people.Person{Name: "Early"})
	if err != nil {
		t.Fatal(err)
	}

	entered, gate := make(chan struct{}), make(chan struct{})
	var sizes []int
	s.group.SetTestHookGroup(func(n int) {
		sizes = append(sizes, n)
		if len(sizes) == 1 {
			close(entered)
			<-gate
		}
	})
	defer s.group.SetTestHookGroup(nil)
	first := make(chan error, 1)
	go func() { _, err := s.Add(ctx, people.Person{Name: "First"}); first <- err }()
	<-entered

	type call struct {
		what string
		ctx  context.Context
		p    people.Person
		del  bool
	}
	calls := []call{
		{what: "dup", ctx: ctx, p: people.Person{Name: "Dup", Age: 1}},
		{what: "dup", ctx: ctx, p: people.Person{Name: "Dup", Age: 2}},
		{what: "dup", ctx: ctx, p: people.Person{Name: "Dup", Age: 3}},
		{what: "k1", ctx: keyedWrite("k1"), p: people.Person{Name: "Keyed", Hobbies: []string{`a "quoted", {braced} \ hobby`, "chess"}}},
		{what: "k1", ctx: keyedWrite("k1"), p: people.Person{Name: "Keyed", Hobbies: []string{`a "quoted", {braced} \ hobby`, "chess"}}},
		{what: "taken", ctx: keyedWrite("k2"), p: people.Person{Name: "Alice"}},
		{what: "early", ctx: keyedWrite("early"), p: people.Person{Name: "Early"}},
		{what: "plain", ctx: ctx, p: people.Person{Name: "Plain", Hobbies: []string{}, Address: people.Address{Street: "1 Main St", City: "Boston"}}},
		{what: "delete", ctx: ctx, p: people.Person{Name: "Bob"}, del: true},
	}
	type result struct {
		call
		rev int64
		err error
	}
	results := make([]result, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Go(func() {
			var rev int64
			var err error
			if c.del {
				rev, err = s.Delete(c.ctx, c.p.Name)
			} else {
				rev, err = s.Add(c.ctx, c.p)
			}
			results[i] = result{c, rev, err}
		})
		waitFor(t, func() bool { return s.group.Waiting() == int64(i+1) })
	}
	close(gate)
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if len(sizes) != 2 || sizes[1] != len(calls) {
		t.Fatalf("groups of %v, want [1 %d]", sizes, len(calls))
	}

	dups, k1 := 0, map[int64]bool{}
	for _, r := range results {
		switch r.what {
		case "dup":
			if r.err == nil {
				dups++
			} else if people.KindOf(r.err) != people.AlreadyExists {
				t.Errorf("Add(Dup) = %v, want AlreadyExists", r.err)
			}
		case "k1":
			if r.err != nil {
				t.Errorf("Add(Keyed) with request id k1: %v", r.err)
			}
			k1[r.rev] = true
		case "taken":
			if people.KindOf(r.err) != people.AlreadyExists {
				t.Errorf("keyed Add(Alice) = %d, %v; want AlreadyExists", r.rev, r.err)
			}
		case "early":
			if r.err != nil || r.rev != earlier {
				t.Errorf("repeated Add(Early) = %d, %v; want the first's %d", r.rev, r.err, earlier)
			}
		default:
			if r.err != nil {
				t.Errorf("%s %s: %v", r.what, r.p.Name, r.err)
			}
		}
	}
	if dups != 1 {
		t.Errorf("%d additions of Dup succeeded, want 1", dups)
	}
	if len(k1) != 1 {
		t.Errorf("the two additions with request id k1 answered revisions %v, want one", k1)
	}

	// Dup, Keyed, Plain, and Bob's deletion: four changes, one revision
	// each, after First's.
	firstRev := earlier + 1
	cs, err := other.Changes(ctx, firstRev, 100)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for i, c := range cs {
		if c.Revision != firstRev+int64(i)+1 {
			t.Errorf("change %d has revision %d, want %d", i, c.Revision, firstRev+int64(i)+1)
		}
		seen[c.Person.Name]++
		if c.Origin.Time.IsZero() {
			t.Errorf("change %d (%s) has no time", c.Revision, c.Person.Name)
		}
		if c.Person.Name == "Keyed" && (c.Origin.Principal != "tester" || c.Origin.Peer != "10.0.0.1:1234" || c.Origin.RequestID != "k1") {
			t.Errorf("Keyed's change has origin %+v", c.Origin)
		}
	}
	if len(cs) != 4 || seen["Dup"] != 1 || seen["Keyed"] != 1 || seen["Plain"] != 1 || seen["Bob"] != 1 {
		t.Errorf("changes after First: %+v", cs)
	}
	if rev, err := other.Revision(ctx); err != nil || rev != firstRev+4 {
		t.Errorf("Revision = %d, %v; want %d", rev, err, firstRev+4)
	}
	keyed, err := other.Person(ctx, "Keyed")
	if err != nil || len(keyed.Hobbies) != 2 || keyed.Hobbies[0] != calls[3].p.Hobbies[0] {
		t.Errorf("Person(Keyed) = %+v, %v", keyed, err)
	}
	if got, err := other.List(ctx, people.Query{Hobby: calls[3].p.Hobbies[0], Limit: 10}); err != nil || len(got) != 1 {
		t.Errorf("List by Keyed's quoted hobby = %+v, %v", got, err)
	}
	if p, err := other.Person(ctx, "Plain"); err != nil || p.Address.City != "Boston" || len(p.Hobbies) != 0 {
		t.Errorf("Person(Plain) = %+v, %v", p, err)
	}

	// The other replica answers the request ids as this one did.
	for _, k := range []string{"k1", "k2"} {
		name := map[string]string{"k1": "Keyed", "k2": "Alice"}[k]
		rev, err := other.Add(keyedWrite(k), people.Person{Name: name})
		switch k {
		case "k1":
			if err != nil || !k1[rev] {
				t.Errorf("repeated Add(Keyed) on another replica = %d, %v; want %v", rev, err, k1)
			}
		case "k2":
			if people.KindOf(err) != people.AlreadyExists {
				t.Errorf("repeated keyed Add(Alice) on another replica = %v, want AlreadyExists", err)
			}
		}
	}
	if rev, err := other.Revision(ctx); err != nil || rev != firstRev+4 {
		t.Errorf("Revision after the repeats = %d, %v; want %d", rev, err, firstRev+4)
	}
}

// TestBatchLeavesUnstorableText checks that an addition whose text
// PostgreSQL cannot store fails alone, not its whole group.
func TestBatchLeavesUnstorableText(t *testing.T) {
	s := open(t, postgrestest.Schema(t), 0)
	ctx := context.Background()
	errs := make([]error, 3)
	var fns []func()
	for i, name := range []string{"Good1", "Bad\x00Name", "Good2"} {
		fns = append(fns, func() { _, errs[i] = s.Add(ctx, people.Person{Name: name}) })
	}
	inOneGroup(t, s, fns...)
	if errs[0] != nil || errs[2] != nil || errs[1] == nil {
		t.Errorf("Add(Good1, Bad, Good2) = %v", errs)
	}
	for _, name := range []string{"Good1", "Good2"} {
		if _, err := s.Person(ctx, name); err != nil {
			t.Errorf("Person(%s): %v", name, err)
		}
	}
}

// waitFor waits up to 10 s for ok.
func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal(fmt.Errorf("gave up waiting"))
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRecordedFailureTakesNoRevision checks that a keyed write that fails
// in its savepoint, its failure recorded, gives back the revision it took:
// the next write of the group gets the one after the latest change, and
// the failure answers the latest revision, not one nobody logged.
func TestRecordedFailureTakesNoRevision(t *testing.T) {
	s := open(t, postgrestest.Schema(t), 0)
	ctx := context.Background()
	var failedRev, updatedRev int64
	var failed, updated error
	firstRev := inOneGroup(t, s,
		func() { failedRev, failed = s.Delete(keyedWrite("gone"), "Nobody") },
		func() {
			_, updatedRev, updated = s.Update(ctx, "Alice", people.Update{Fields: people.FieldAge, To: people.Person{Age: 31}})
		})
	if people.KindOf(failed) != people.NotFound || updated != nil {
		t.Fatalf("keyed Delete(Nobody) = %d, %v; Update(Alice) = %d, %v", failedRev, failed, updatedRev, updated)
	}
	if updatedRev != firstRev+1 {
		t.Errorf("Update(Alice) got revision %d, want %d, the one after First's", updatedRev, firstRev+1)
	}
	if cs, err := s.Changes(ctx, firstRev, 10); err != nil || len(cs) != 1 || cs[0].Revision != firstRev+1 {
		t.Errorf("Changes after First = %+v, %v", cs, err)
	}
	if failedRev != firstRev {
		t.Errorf("keyed Delete(Nobody) answered revision %d, want %d, the latest before it", failedRev, firstRev)
	}
	if rev, err := s.Delete(keyedWrite("gone"), "Nobody"); people.KindOf(err) != people.NotFound || rev != firstRev {
		t.Errorf("repeated keyed Delete(Nobody) = %d, %v", rev, err)
	}
}

// TestRecentChanges gathers one group of additions (a name added twice,
// request ids, a taken name, hobbies that need quoting, none at all) and
// checks that the changes Recent answers from memory are exactly those
// the log holds; then that a group with a write run on its own (a
// deletion) keeps nothing, so that Recent answers only up to it and then
// sends its reader to the log.
func TestRecentChanges(t *testing.T) {
	url := postgrestest.Schema(t)
	s, other := open(t, url, 0), open(t, url, 0)
	ctx := context.Background()
	from := people.WithWrite(ctx, people.Write{Origin: people.Origin{Principal: "wes", Peer: "10.0.0.1:5"}})
	start := inOneGroup(t, s,
		func() {
			s.Add(from, people.Person{Name: "Dup", Age: 1, Hobbies: []string{`a "quoted", {braced} \ hobby`, "ünïcode"}})
		},
		func() { s.Add(from, people.Person{Name: "Dup", Age: 2}) },
		func() {
			s.Add(keyedWrite("k1"), people.Person{Name: "Keyed", Address: people.Address{Street: "1 Main St", City: "Boston"}})
		},
		func() {
			s.Add(keyedWrite("k1"), people.Person{Name: "Keyed", Address: people.Address{Street: "1 Main St", City: "Boston"}})
		},
		func() { s.Add(keyedWrite("k2"), people.Person{Name: "Alice"}) }, // refused, and recorded
		func() { s.Add(ctx, people.Person{Name: "Empty", Hobbies: []string{}}) },
	)
	rev, err := s.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want, err := other.Changes(ctx, start, 100)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(want)) != rev-start || len(want) != 3 {
		t.Fatalf("the group logged %+v, want Dup, Keyed and Empty", want)
	}
	for _, limit := range []int{1, 2, 100} {
		var got []people.Change
		for after := start; after < rev; {
			page, ok := s.Recent(after, limit)
			if !ok || len(page) == 0 {
				t.Fatalf("Recent(%d, %d) = %v, %v; want the group's changes", after, limit, page, ok)
			}
			got = append(got, page...)
			after = page[len(page)-1].Revision
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Recent, %d at a time:\n%+v\nthe log:\n%+v", limit, got, want)
		}
	}
	if page, ok := s.Recent(rev, 100); ok {
		t.Errorf("Recent(latest) = %v, true; want the log read", page)
	}

	held := inOneGroup(t, s,
		func() { s.Add(ctx, people.Person{Name: "Frank"}) },
		func() { s.Delete(ctx, "Bob") },
	)
	// The holder's change follows the kept ones; the next group's are
	// unknown to memory, which answers no further.
	if page, ok := s.Recent(held, 100); ok {
		t.Errorf("after a group with a deletion, Recent = %v, true; want the log read", page)
	}
	got, ok := s.Recent(start, 100)
	if want, err := other.Changes(ctx, start, len(got)); !ok || err != nil || !reflect.DeepEqual(got, want) || got[len(got)-1].Revision != held {
		t.Errorf("Recent(%d) = %+v, %v; the log has %+v, %v", start, got, ok, want, err)
	}
}

// inOneGroup holds the committer, with a group of one addition, while fns
// start, each in a goroutine of its own, so that they run in the next
// group, and waits for them. It returns the revision of the addition that
// held the committer.
func inOneGroup(t *testing.T, s *Store, fns ...func()) int64 {
	t.Helper()
	entered, gate := make(chan struct{}), make(chan struct{})
	holding := false
	s.group.SetTestHookGroup(func(int) {
		if !holding {
			holding = true
			close(entered)
			<-gate
		}
	})
	defer s.group.SetTestHookGroup(nil)
	ctx := context.Background()
	first := make(chan error, 1)
	var held int64
	go func() {
		var err error
		held, err = s.Add(ctx, people.Person{Name: fmt.Sprint("holder-", time.Now().UnixNano())})
		first <- err
	}()
	<-entered
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Go(fn)
		waitFor(t, func() bool { return s.group.Waiting() == int64(i+1) })
	}
	close(gate)
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	return held
}

// TestAnnouncementsWaitForTheCommit checks that a revision the listener
// hears of while one of the replica's groups commits is announced only
// once the group is done, and then at once.
func TestAnnouncementsWaitForTheCommit(t *testing.T) {
	var s Store
	s.announce(3)
	release := s.holdAnnouncements()
	s.announce(7)
	s.announce(5)
	if got := s.latest.Get(); got != 3 {
		t.Fatalf("latest during the commit = %d, want 3", got)
	}
	release()
	if got := s.latest.Get(); got != 7 {
		t.Fatalf("latest after the commit = %d, want 7", got)
	}
	s.announce(8)
	if got := s.latest.Get(); got != 8 {
		t.Fatalf("latest after an announcement = %d, want 8", got)
	}
}

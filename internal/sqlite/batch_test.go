package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/routeguide/routeguide/internal/people"
)

// holdGroups holds s's committer with a first write alone in its group
// until the returned release is called, so that the writes started
// meanwhile go together into the next group. sizes has every group's
// size once the writes have returned.
func holdGroups(t *testing.T, s *Store) (release func(), sizes func() []int) {
	t.Helper()
	entered, gate := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var got []int
	s.group.SetTestHookGroup(func(n int) {
		mu.Lock()
		got = append(got, n)
		first := len(got) == 1
		mu.Unlock()
		if first {
			close(entered)
			<-gate
		}
	})
	go s.Add(context.Background(), people.Person{Name: "First"})
	<-entered
	var once sync.Once
	return func() { once.Do(func() { close(gate) }) }, func() []int {
		mu.Lock()
		defer mu.Unlock()
		return append([]int(nil), got...)
	}
}

// inOneGroup runs each of fns in a goroutine of its own, all in one
// group in the order given, and waits for them. Each starts once the one
// before it waits for the held committer: writes blocked on its channel
// are taken in the order they came, so the group's order is fns's.
func inOneGroup(t *testing.T, s *Store, fns ...func()) {
	t.Helper()
	release, sizes := holdGroups(t, s)
	var wg sync.WaitGroup
	deadline := time.Now().Add(10 * time.Second)
	for i, fn := range fns {
		wg.Go(fn)
		for s.group.Waiting() != int64(i+1) {
			if time.Now().After(deadline) {
				t.Fatalf("%d writes wait, want %d", s.group.Waiting(), i+1)
			}
			time.Sleep(time.Millisecond)
		}
		// Waiting counts a write just before it blocks on the channel;
		// give it the moment to get there before the next one starts.
		time.Sleep(2 * time.Millisecond)
	}
	release()
	wg.Wait()
	if got := sizes(); len(got) != 2 || got[1] != len(fns) {
		t.Fatalf("group sizes %v, want [1 %d]", got, len(fns))
	}
}

type result struct {
	rev int64
	err error
}

// TestBatchSameName adds one name three times in one group, among other
// additions: exactly the first of them is added, the others are refused,
// and the change log holds one change for each person added, in
// revisions with no gap.
func TestBatchSameName(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "people.db"), 0)
	rs := make([]result, 5)
	adds := []people.Person{
		{Name: "Zed", Age: 1, Hobbies: []string{"chess"}},
		{Name: "Yan", Age: 2, Hobbies: []string{"go"}},
		{Name: "Zed", Age: 3, Hobbies: []string{"judo"}},
		{Name: "Alice", Age: 4}, // the seed's: taken before the group
		{Name: "Zed", Age: 5},
	}
	var fns []func()
	for i, p := range adds {
		fns = append(fns, func() {
			rs[i].rev, rs[i].err = s.Add(context.Background(), p)
		})
	}
	inOneGroup(t, s, fns...)
	won := -1
	for i, r := range rs {
		switch {
		case adds[i].Name == "Yan":
			if r.err != nil {
				t.Errorf("Add(Yan) = %v", r.err)
			}
		case r.err == nil && adds[i].Name == "Zed" && won < 0:
			won = i
		case people.KindOf(r.err) != people.AlreadyExists:
			t.Errorf("Add(%s, age %d) = %d, %v; want AlreadyExists", adds[i].Name, adds[i].Age, r.rev, r.err)
		}
	}
	if won < 0 {
		t.Fatalf("no Add(Zed) succeeded: %+v", rs)
	}
	got, err := s.Person(context.Background(), "Zed")
	if err != nil || !got.Equal(adds[won]) {
		t.Errorf("Zed = %+v, %v; want the winner's %+v", got, err, adds[won])
	}
	for _, h := range []string{"judo", "chess"} {
		page, err := s.List(context.Background(), people.Query{Hobby: h, Limit: 10})
		want := 0
		if len(adds[won].Hobbies) > 0 && adds[won].Hobbies[0] == h {
			want = 1
		}
		if err != nil || len(page) != want {
			t.Errorf("List(hobby %s) = %v, %v; want %d people", h, page, err, want)
		}
	}
	// First (3), then Zed and Yan.
	changes, err := s.Changes(context.Background(), 3, 10)
	if err != nil || len(changes) != 2 {
		t.Fatalf("Changes(3) = %+v, %v; want Zed's and Yan's", changes, err)
	}
	for i, c := range changes {
		if c.Revision != int64(4+i) || c.Type != people.Added {
			t.Errorf("change %d = revision %d, type %v; want revision %d, added", i, c.Revision, c.Type, 4+i)
		}
		want := map[string]int64{"Zed": rs[won].rev, "Yan": rs[1].rev}[c.Person.Name]
		if want != c.Revision {
			t.Errorf("%s's change has revision %d, its Add answered %d", c.Person.Name, c.Revision, want)
		}
	}
}

func keyedCtx(id, digest string) context.Context {
	w := people.Write{Digest: digest, Expires: time.Now().Add(time.Hour)}
	w.RequestID, w.Principal, w.Peer = id, "tester", "10.0.0.1:1234"
	return people.WithWrite(context.Background(), w)
}

// TestBatchRequestIDs repeats keyed additions within one group and across
// groups: a repeat answers what the first answered, a refusal included,
// and logs nothing; a request id reused for another request is refused.
func TestBatchRequestIDs(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "people.db"), 0)
	carol := people.Person{Name: "Carol", Age: 40}
	rs := make([]result, 5)
	inOneGroup(t, s,
		func() { rs[0].rev, rs[0].err = s.Add(keyedCtx("a", "add carol"), carol) },
		func() { rs[1].rev, rs[1].err = s.Add(keyedCtx("a", "add carol"), carol) },
		func() { rs[2].rev, rs[2].err = s.Add(keyedCtx("b", "add alice"), people.Person{Name: "Alice"}) },
		func() { rs[3].rev, rs[3].err = s.Add(keyedCtx("a", "add dave"), people.Person{Name: "Dave"}) },
		func() { rs[4].rev, rs[4].err = s.Add(context.Background(), people.Person{Name: "Erin"}) },
	)
	if rs[0].err != nil || rs[1] != rs[0] {
		t.Errorf("Add(Carol) twice with one request id = %+v and %+v; want one success answered twice", rs[0], rs[1])
	}
	if people.KindOf(rs[2].err) != people.AlreadyExists {
		t.Errorf("keyed Add(Alice) = %+v, want AlreadyExists", rs[2])
	}
	if people.KindOf(rs[3].err) != people.Invalid {
		t.Errorf("Add(Dave) with Carol's request id = %+v, want Invalid", rs[3])
	}
	if _, err := s.Person(context.Background(), "Dave"); people.KindOf(err) != people.NotFound {
		t.Errorf("Dave was added by a refused request: %v", err)
	}
	changes, err := s.Changes(context.Background(), 3, 10)
	if err != nil || len(changes) != 2 {
		t.Fatalf("Changes(3) = %+v, %v; want Carol's and Erin's", changes, err)
	}
	for _, c := range changes {
		if c.Person.Name == "Carol" && (c.Revision != rs[0].rev || c.Origin.RequestID != "a" || c.Origin.Principal != "tester" ||
			c.Origin.Peer != "10.0.0.1:1234" || c.Origin.Time.IsZero()) {
			t.Errorf("Carol's change = %+v; want revision %d, request id a, tester at 10.0.0.1:1234, a time", c, rs[0].rev)
		}
	}

	// In later groups, the answers are the same, the refusal included
	// once Alice's name is free.
	if _, err := s.Delete(context.Background(), "Alice"); err != nil {
		t.Fatal(err)
	}
	rev, err := s.Revision(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var again [2]result
	inOneGroup(t, s,
		func() { again[0].rev, again[0].err = s.Add(keyedCtx("a", "add carol"), carol) },
		func() { again[1].rev, again[1].err = s.Add(keyedCtx("b", "add alice"), people.Person{Name: "Alice"}) },
	)
	if again[0] != rs[0] {
		t.Errorf("Add(Carol) repeated later = %+v, want %+v", again[0], rs[0])
	}
	if people.KindOf(again[1].err) != people.AlreadyExists {
		t.Errorf("refused Add(Alice) repeated, the name free = %+v, want AlreadyExists", again[1])
	}
	// Nothing is logged since (First is taken: holdGroups' addition is
	// refused too).
	if after, _ := s.Revision(context.Background()); after != rev {
		t.Errorf("revision %d after the repeats, want %d", after, rev)
	}
}

// TestBatchMixed runs additions with updates and deletes of the same
// names in one group: every write gets an outcome that some order of the
// group explains, and the log's changes, in revision order, replay to the
// directory the store holds.
func TestBatchMixed(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "people.db"), 0)
	var fns []func()
	for i := range 6 {
		name := fmt.Sprint("p", i%3)
		fns = append(fns,
			func() { s.Add(context.Background(), people.Person{Name: name, Age: int32(i)}) },
			func() { s.Delete(context.Background(), name) },
			func() {
				s.Update(context.Background(), name, people.Update{Fields: people.FieldAge, To: people.Person{Age: 99}})
			})
	}
	inOneGroup(t, s, fns...)
	changes, err := s.Changes(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	replayed := map[string]people.Person{}
	for i, c := range changes {
		if c.Revision != int64(i+1) {
			t.Fatalf("change %d has revision %d: the log has a gap", i, c.Revision)
		}
		switch c.Type {
		case people.Deleted:
			delete(replayed, c.Person.Name)
		default:
			replayed[c.Person.Name] = c.Person
		}
	}
	all, err := s.List(context.Background(), people.Query{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(replayed) {
		t.Errorf("the store holds %d people, its log replays to %d", len(all), len(replayed))
	}
	for _, p := range all {
		if r, ok := replayed[p.Name]; !ok || !r.Equal(p) {
			t.Errorf("%s is %+v, its log replays to %+v", p.Name, p, r)
		}
	}
}

// TestBatchText adds a person whose text JSON would not carry as it is
// (invalid UTF-8) in a group with others: it is stored byte for byte.
func TestBatchText(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "people.db"), 0)
	odd := people.Person{Name: "Odd", Address: people.Address{Street: "a\xffb", City: "nul\x00city"}}
	var err error
	inOneGroup(t, s,
		func() { _, err = s.Add(context.Background(), odd) },
		func() {
			s.Add(context.Background(), people.Person{Name: "Even", Address: people.Address{City: "x\x00y"}})
		},
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []people.Person{odd, {Name: "Even", Address: people.Address{City: "x\x00y"}}} {
		if got, err := s.Person(context.Background(), want.Name); err != nil || !got.Equal(want) {
			t.Errorf("Person(%s) = %+v, %v; want %+v", want.Name, got, err, want)
		}
	}
}

// TestRecordedFailureTakesNoRevision checks that a keyed write that fails
// in its savepoint, its failure recorded, takes no revision: the next
// write of the group gets the one after the latest change (the log has no
// gap), and the failure answers the latest revision.
func TestRecordedFailureTakesNoRevision(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "people.db"), 0)
	ctx := context.Background()
	release, _ := holdGroups(t, s)
	defer release()
	waiting := func(n int64) {
		deadline := time.Now().Add(10 * time.Second)
		for s.group.Waiting() != n {
			if time.Now().After(deadline) {
				t.Fatalf("%d writes wait, want %d", s.group.Waiting(), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	var failedRev, updatedRev int64
	var failed, updated error
	var wg sync.WaitGroup
	wg.Go(func() { failedRev, failed = s.Delete(keyedCtx("gone", "digest-gone"), "Nobody") })
	waiting(1)
	wg.Go(func() {
		_, updatedRev, updated = s.Update(ctx, "Alice", people.Update{Fields: people.FieldAge, To: people.Person{Age: 31}})
	})
	waiting(2)
	release()
	wg.Wait()
	if people.KindOf(failed) != people.NotFound || updated != nil {
		t.Fatalf("keyed Delete(Nobody) = %d, %v; Update(Alice) = %d, %v", failedRev, failed, updatedRev, updated)
	}
	firstRev := updatedRev - 1
	cs, err := s.Changes(ctx, firstRev-1, 10)
	if err != nil || len(cs) != 2 || cs[0].Person.Name != "First" || cs[1].Revision != updatedRev || cs[1].Person.Name != "Alice" {
		t.Errorf("Changes around Update(Alice) at %d = %+v, %v; want First's then Alice's, with no gap", updatedRev, cs, err)
	}
	if failedRev != firstRev {
		t.Errorf("keyed Delete(Nobody) answered revision %d, want %d, the latest before it", failedRev, firstRev)
	}
	if rev, err := s.Delete(keyedCtx("gone", "digest-gone"), "Nobody"); people.KindOf(err) != people.NotFound || rev != firstRev {
		t.Errorf("repeated keyed Delete(Nobody) = %d, %v, want %d, NotFound", rev, err, firstRev)
	}
}

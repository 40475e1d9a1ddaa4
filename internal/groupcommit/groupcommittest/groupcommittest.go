// Package groupcommittest is the behaviour every store that commits writes
// in groups (internal/groupcommit) must show, run against the real store:
// writes waiting while a group commits go together into the next one, a
// write failing in a group fails alone, a write whose caller gave up before
// its group ran is not applied, and closing the store tells a waiting
// write the truth.
package groupcommittest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/routeguide/routeguide/internal/people"
)

// Hooks is the store's committer, as the tests hold it.
type Hooks interface {
	Waiting() int64
	SetTestHookGroup(f func(size int))
}

// Subject is a store under test.
type Subject struct {
	// Store holds the seed's people; it is closed when the test ends, and
	// closing it earlier as well must be safe.
	Store people.Store
	Group Hooks // Store's committer
	// Reopen opens Store's directory again, closed when the test ends.
	Reopen func(t *testing.T) people.Store
	// FailAfterWriting runs a write in Store's next group that adds a
	// person named name, logs the change (taking a revision), and then
	// fails with an error of its own.
	FailAfterWriting func(ctx context.Context, name string) error
}

// Open opens a new Subject for t.
type Open func(t *testing.T) Subject

// Run runs every test on stores from open.
func Run(t *testing.T, open Open) {
	t.Run("GroupCommit", func(t *testing.T) { testGroupCommit(t, open) })
	t.Run("SkipsAbandonedWrites", func(t *testing.T) { testSkipsAbandonedWrites(t, open) })
	t.Run("CloseWithWritesWaiting", func(t *testing.T) { testCloseWithWritesWaiting(t, open) })
}

// outcome is what an Add returned.
type outcome struct {
	rev int64
	err error
}

// holdFirstGroup adds a person named First to s and holds s's committer
// with that write alone in its group, until release is called. It returns
// once the committer is held. first receives the write's outcome; sizes
// records every group's size, for the caller to read once the writes it
// started have returned.
func holdFirstGroup(s people.Store, g Hooks) (release func(), sizes *[]int, first <-chan outcome) {
	entered := make(chan struct{})
	gate := make(chan struct{})
	var got []int
	g.SetTestHookGroup(func(n int) {
		got = append(got, n)
		if len(got) == 1 {
			close(entered)
			<-gate
		}
	})
	out := make(chan outcome, 1)
	go func() {
		rev, err := s.Add(context.Background(), people.Person{Name: "First"})
		out <- outcome{rev, err}
	}()
	<-entered
	var once sync.Once
	return func() { once.Do(func() { close(gate) }) }, &got, out
}

// waitForWaiting waits until n writes wait for the committer.
func waitForWaiting(t *testing.T, g Hooks, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for g.Waiting() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d writes wait for the committer, want %d", g.Waiting(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// testGroupCommit checks that the writes waiting while a group commits go
// together into the next group, that a write failing inside a group fails
// alone (with what it wrote and the revisions it took), and that every
// write that succeeds gets its own revision, logged with what it wrote, the
// revisions following each other with no gap.
func testGroupCommit(t *testing.T, open Open) {
	ctx := context.Background()
	subject := open(t)
	s, g := subject.Store, subject.Group
	release, sizes, firstAdd := holdFirstGroup(s, g)
	defer release()

	type result struct {
		name string
		outcome
	}
	const added, taken, missing, failing = 30, 5, 5, 5
	const group = added + taken + missing + failing
	results := make(chan result, group)
	var wg sync.WaitGroup
	// The failing writes queue first, so that writes after them in the
	// group show whether the revisions they took were given back.
	for i := range failing {
		wg.Go(func() {
			name := fmt.Sprintf("Failing%d", i)
			results <- result{name, outcome{0, subject.FailAfterWriting(ctx, name)}}
		})
	}
	waitForWaiting(t, g, failing)
	for i := range added {
		wg.Go(func() {
			name := fmt.Sprintf("P%02d", i)
			rev, err := s.Add(ctx, people.Person{Name: name, Age: int32(i), Hobbies: []string{"chess"}})
			results <- result{name, outcome{rev, err}}
		})
	}
	for range taken {
		wg.Go(func() {
			rev, err := s.Add(ctx, people.Person{Name: "Alice"})
			results <- result{"Alice", outcome{rev, err}}
		})
	}
	for i := range missing {
		wg.Go(func() {
			name := fmt.Sprintf("Nobody%d", i)
			_, rev, err := s.Update(ctx, name, people.Update{Fields: people.FieldAge, To: people.Person{Age: 1}})
			results <- result{name, outcome{rev, err}}
		})
	}
	waitForWaiting(t, g, group)
	release()
	wg.Wait()
	close(results)
	firstAdded := <-firstAdd
	if firstAdded.err != nil {
		t.Fatalf("Add(First): %v", firstAdded.err)
	}
	first := firstAdded.rev

	revs := map[int64]string{}
	for r := range results {
		switch r.name {
		case "Alice":
			if people.KindOf(r.err) != people.AlreadyExists {
				t.Errorf("Add(Alice) = %d, %v; want AlreadyExists", r.rev, r.err)
			}
		default:
			if strings.HasPrefix(r.name, "Failing") {
				if r.err == nil {
					t.Errorf("%s: a write that fails returned no error", r.name)
				}
				if _, err := s.Person(ctx, r.name); people.KindOf(err) != people.NotFound {
					t.Errorf("Person(%s) = %v, want NotFound: a failed write was kept", r.name, err)
				}
				continue
			}
			if strings.HasPrefix(r.name, "Nobody") {
				if people.KindOf(r.err) != people.NotFound {
					t.Errorf("Update(%s) = %d, %v; want NotFound", r.name, r.rev, r.err)
				}
				continue
			}
			if r.err != nil {
				t.Errorf("Add(%s): %v", r.name, r.err)
				continue
			}
			if r.rev <= first {
				t.Errorf("Add(%s) = revision %d, not after the first group's %d", r.name, r.rev, first)
			}
			if other, ok := revs[r.rev]; ok {
				t.Errorf("Add(%s) and Add(%s) both got revision %d", r.name, other, r.rev)
			}
			revs[r.rev] = r.name
		}
	}
	if got := *sizes; len(got) != 2 || got[0] != 1 || got[1] != group {
		t.Errorf("groups of %v, want [1 %d]", got, group)
	}

	changes, err := s.Changes(ctx, first, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != added {
		t.Fatalf("%d changes after the first group, want %d: %+v", len(changes), added, changes)
	}
	for _, c := range changes {
		if revs[c.Revision] != c.Person.Name || c.Type != people.Added {
			t.Errorf("change %d is %v %q; the write that got it added %q", c.Revision, c.Type, c.Person.Name, revs[c.Revision])
		}
	}
	for _, name := range revs {
		if p, err := s.Person(ctx, name); err != nil || p.Hobbies[0] != "chess" {
			t.Errorf("Person(%s) = %+v, %v", name, p, err)
		}
	}
	hobbyists, err := s.List(ctx, people.Query{Hobby: "chess", Limit: 100})
	if err != nil || len(hobbyists) != added {
		t.Errorf("List(hobby chess) = %d people, %v; want %d", len(hobbyists), err, added)
	}
	if rev, err := s.Revision(ctx); err != nil || rev != first+added {
		t.Errorf("Revision = %d, %v; want %d", rev, err, first+added)
	}
}

// testSkipsAbandonedWrites checks that a write whose caller gives up after
// a group took it, but before the group ran, is not applied, while the
// group's other writes are.
func testSkipsAbandonedWrites(t *testing.T, open Open) {
	ctx := context.Background()
	subject := open(t)
	s, g := subject.Store, subject.Group
	release, _, firstAdd := holdFirstGroup(s, g)
	defer release()

	cctx, cancel := context.WithCancel(ctx)
	abandoned, kept := make(chan error, 1), make(chan error, 1)
	go func() {
		_, err := s.Add(cctx, people.Person{Name: "Abandoned"})
		abandoned <- err
	}()
	go func() {
		_, err := s.Add(ctx, people.Person{Name: "Kept"})
		kept <- err
	}()
	waitForWaiting(t, g, 2)
	// Hold the next group, which takes both writes, until the first has
	// been abandoned.
	taken, gate := make(chan struct{}), make(chan struct{})
	g.SetTestHookGroup(func(int) {
		close(taken)
		<-gate
	})
	release()
	if a := <-firstAdd; a.err != nil {
		t.Fatalf("Add(First): %v", a.err)
	}
	<-taken
	cancel()
	close(gate)
	if err := <-abandoned; !errors.Is(err, context.Canceled) {
		t.Errorf("Add with a cancelled context = %v, want context.Canceled", err)
	}
	if err := <-kept; err != nil {
		t.Fatalf("Add(Kept): %v", err)
	}
	if _, err := s.Person(ctx, "Kept"); err != nil {
		t.Errorf("Person(Kept): %v", err)
	}
	if _, err := s.Person(ctx, "Abandoned"); people.KindOf(err) != people.NotFound {
		t.Errorf("Person(Abandoned) = %v, want NotFound: a write whose caller gave up was applied", err)
	}
}

// testCloseWithWritesWaiting checks that closing the store while a write
// waits tells that write the truth: it either committed (and is in the file)
// or failed with Unavailable (and is not).
func testCloseWithWritesWaiting(t *testing.T, open Open) {
	ctx := context.Background()
	subject := open(t)
	s, g := subject.Store, subject.Group
	release, _, firstAdd := holdFirstGroup(s, g)
	waiting := make(chan error, 1)
	go func() {
		_, err := s.Add(ctx, people.Person{Name: "Waiting"})
		waiting <- err
	}()
	waitForWaiting(t, g, 1)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	release()
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if a := <-firstAdd; a.err != nil {
		t.Fatalf("Add(First): %v", a.err)
	}
	err := <-waiting
	if err != nil && people.KindOf(err) != people.Unavailable {
		t.Fatalf("Add while closing = %v, want success or Unavailable", err)
	}

	s = subject.Reopen(t)
	_, gerr := s.Person(ctx, "Waiting")
	if err == nil && gerr != nil {
		t.Errorf("Add(Waiting) succeeded but after reopening Person = %v", gerr)
	}
	if err != nil && people.KindOf(gerr) != people.NotFound {
		t.Errorf("Add(Waiting) failed (%v) but after reopening Person = %v", err, gerr)
	}
	if _, err := s.Person(ctx, "First"); err != nil {
		t.Errorf("Person(First) after reopening: %v", err)
	}
}

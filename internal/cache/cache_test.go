package cache

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"go.uber.org/goleak"

	"github.com/routeguide/routeguide/internal/memory"
	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/peopletest"
	"github.com/routeguide/routeguide/internal/postgres"
	"github.com/routeguide/routeguide/internal/postgres/postgrestest"
	"github.com/routeguide/routeguide/internal/sqlite"
	"github.com/routeguide/routeguide/internal/syncbuf"
	"github.com/routeguide/routeguide/internal/wire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// owned is a cache that closes its store too, as the suite expects.
type owned struct {
	*Store
	under people.Store
}

func (o owned) Close() error {
	o.Store.Close()
	return o.under.Close()
}

// newCache puts a cache in front of s, waits until it answers from memory,
// and stops it when the test ends.
func newCache(t *testing.T, s people.Store, opts Options) *Store {
	t.Helper()
	c := New(s, opts)
	t.Cleanup(func() { c.Close() })
	waitReady(t, c)
	return c
}

func waitReady(t *testing.T, c *Store) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !c.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("the cache did not become ready within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSuiteMemory(t *testing.T) {
	peopletest.Run(t, func(t *testing.T, opts peopletest.Options) people.Store {
		under := memory.New(opts.Retain, people.Seed()...)
		c := New(under, Options{})
		waitReady(t, c)
		o := owned{c, under}
		t.Cleanup(func() { o.Close() })
		return o
	})
}

func TestSuiteSQLite(t *testing.T) {
	peopletest.Run(t, func(t *testing.T, opts peopletest.Options) people.Store {
		under, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "people.db"), opts.Retain)
		if err != nil {
			t.Fatal(err)
		}
		c := New(under, Options{})
		waitReady(t, c)
		o := owned{c, under}
		t.Cleanup(func() { o.Close() })
		return o
	})
}

func TestSuitePostgres(t *testing.T) {
	postgrestest.Require(t)
	peopletest.Run(t, func(t *testing.T, opts peopletest.Options) people.Store {
		under, err := postgres.Open(context.Background(), postgrestest.Schema(t), opts.Retain, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		c := New(under, Options{Shared: true})
		waitReady(t, c)
		o := owned{c, under}
		t.Cleanup(func() { o.Close() })
		return o
	})
}

// counting counts the reads that reach the store, and can be made to fail
// them as a database outage would.
type counting struct {
	people.Store
	reads atomic.Int64
	down  atomic.Bool
	held  atomic.Bool // Changes waits while held
}

func (s *counting) Person(ctx context.Context, name string) (people.Person, error) {
	s.reads.Add(1)
	if s.down.Load() {
		return people.Person{}, people.Errorf(people.Unavailable, "store down")
	}
	return s.Store.Person(ctx, name)
}

func (s *counting) Changes(ctx context.Context, after int64, limit int) ([]people.Change, error) {
	for s.held.Load() {
		time.Sleep(time.Millisecond)
	}
	if s.down.Load() {
		return nil, people.Errorf(people.Unavailable, "store down")
	}
	return s.Store.Changes(ctx, after, limit)
}

func TestReadsComeFromMemory(t *testing.T) {
	under := &counting{Store: memory.New(0, people.Seed()...)}
	c := newCache(t, under, Options{})
	ctx := context.Background()
	for range 100 {
		if _, err := c.Person(ctx, "Alice"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Person(ctx, "Nobody"); people.KindOf(err) != people.NotFound {
			t.Fatalf("Person(Nobody): %v, want NotFound", err)
		}
		if p, err := decoded(c.Encoded(ctx, "Alice")); err != nil || p.Name != "Alice" {
			t.Fatalf("Encoded(Alice): %v, %v", p, err)
		}
	}
	if n := under.reads.Load(); n != 0 {
		t.Errorf("%d reads reached the store, want 0", n)
	}
}

func TestWritesAreReadAtOnce(t *testing.T) {
	under := &counting{Store: memory.New(0, people.Seed()...)}
	c := newCache(t, under, Options{})
	ctx := context.Background()
	for i := range 150 {
		p := people.Person{Name: "Carol", Age: int32(i)}
		if i == 0 {
			if _, err := c.Add(ctx, p); err != nil {
				t.Fatal(err)
			}
		} else if _, _, err := c.Update(ctx, "Carol", people.Update{Fields: people.FieldAge, To: p}); err != nil {
			t.Fatal(err)
		}
		got, err := c.Person(ctx, "Carol")
		if err != nil || got.Age != int32(i) {
			t.Fatalf("after writing age %d: got %+v, %v", i, got, err)
		}
	}
	if _, err := c.Delete(ctx, "Carol"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Person(ctx, "Carol"); people.KindOf(err) != people.NotFound {
		t.Fatalf("after delete: %v, want NotFound", err)
	}
	r, err := c.Import(ctx, []people.Person{{Name: "Dave"}, {Name: "Alice", Age: 99}})
	if err != nil || r.Added != 1 || r.Updated != 1 {
		t.Fatalf("Import: %+v, %v", r, err)
	}
	if got, err := c.Person(ctx, "Alice"); err != nil || got.Age != 99 {
		t.Fatalf("after import: %+v, %v", got, err)
	}
	if n := under.reads.Load(); n != 0 {
		t.Errorf("%d reads reached the store, want 0", n)
	}
}

// TestOtherWriters stands for replicas sharing a database: writes made to
// the store directly, as another replica's would be, reach the cache through
// the change feed, and a name not yet in memory is looked up in the store.
func TestOtherWriters(t *testing.T) {
	under := memory.New(0, people.Seed()...)
	c := newCache(t, under, Options{Shared: true})
	ctx := context.Background()

	if _, err := under.Add(ctx, people.Person{Name: "Erin", Age: 5}); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Person(ctx, "Erin"); err != nil || got.Age != 5 {
		t.Fatalf("a person just added elsewhere: %+v, %v", got, err)
	}
	if _, _, err := under.Update(ctx, "Alice", people.Update{Fields: people.FieldAge, To: people.Person{Age: 77}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the update made elsewhere is seen", func() bool {
		p, err := c.Person(ctx, "Alice")
		return err == nil && p.Age == 77
	})
	if _, err := under.Delete(ctx, "Bob"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deletion made elsewhere is seen", func() bool {
		_, err := c.Person(ctx, "Bob")
		return people.KindOf(err) == people.NotFound
	})
}

// TestStaleSharedCacheReadsThrough checks that a shared cache that cannot
// confirm it is current stops answering from memory: the caller gets what
// the store says (here Unavailable), and memory answers again once the store
// is back.
func TestStaleSharedCacheReadsThrough(t *testing.T) {
	under := &counting{Store: memory.New(0, people.Seed()...)}
	c := newCache(t, under, Options{Shared: true, MaxStale: 200 * time.Millisecond})
	ctx := context.Background()
	under.down.Store(true)
	eventually(t, "reads report the outage", func() bool {
		_, err := c.Person(ctx, "Alice")
		return people.KindOf(err) == people.Unavailable
	})
	under.down.Store(false)
	eventually(t, "the cache answers again", func() bool {
		return c.Ready()
	})
	if _, err := c.Person(ctx, "Alice"); err != nil {
		t.Fatal(err)
	}
}

// TestReloadAfterFallingBehind makes the change log drop changes the cache
// has not applied, which a replica cut off for long would meet: the cache
// loads the directory again and ends up current.
func TestReloadAfterFallingBehind(t *testing.T) {
	under := &counting{Store: memory.New(3, people.Seed()...)}
	c := newCache(t, under, Options{Shared: true, MaxStale: time.Hour})
	ctx := context.Background()
	under.held.Store(true) // the follower stalls
	for i := range 10 {
		if _, err := under.Store.Add(ctx, people.Person{Name: "P" + string(rune('a'+i))}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := under.Store.Changes(ctx, 2, 10); people.KindOf(err) != people.OutOfRange {
		t.Fatalf("the log still holds the changes the cache needs: %v", err)
	}
	under.held.Store(false)
	eventually(t, "the cache reloads", func() bool {
		return c.Ready() && c.Len() == 12
	})
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestReplicasOnPostgres runs two caches over one PostgreSQL schema, as two
// replicas would: each sees the other's writes.
func TestReplicasOnPostgres(t *testing.T) {
	postgrestest.Require(t)
	url := postgrestest.Schema(t)
	ctx := context.Background()
	open := func() *Store {
		s, err := postgres.Open(ctx, url, 0, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return newCache(t, s, Options{Shared: true})
	}
	a, b := open(), open()
	if _, err := a.Add(ctx, people.Person{Name: "Carol", Age: 1}); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Person(ctx, "Carol"); err != nil || got.Age != 1 {
		t.Fatalf("b reads a's new person: %+v, %v", got, err)
	}
	if _, _, err := b.Update(ctx, "Carol", people.Update{Fields: people.FieldAge, To: people.Person{Age: 2}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a sees b's update", func() bool {
		p, err := a.Person(ctx, "Carol")
		return err == nil && p.Age == 2
	})
	if _, err := a.Delete(ctx, "Carol"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b sees a's deletion", func() bool {
		_, err := b.Person(ctx, "Carol")
		return people.KindOf(err) == people.NotFound
	})
}

// decoded decodes what Encoded returned, and checks the etag beside it.
func decoded(enc []byte, etag [8]byte, err error) (people.Person, error) {
	if err != nil {
		return people.Person{}, err
	}
	p, err := wire.DecodePerson(enc)
	if err == nil && etag != people.ETagSum(p) {
		err = fmt.Errorf("the etag %x is not %+v's", etag, p)
	}
	return p, err
}

// TestEncodedFollowsVersions checks that Encoded answers each person's
// latest version, in the wire form GetPerson sends, and that the same
// version is answered with the same kept bytes, not a new encoding.
func TestEncodedFollowsVersions(t *testing.T) {
	c := newCache(t, memory.New(0, people.Seed()...), Options{})
	ctx := context.Background()
	read := func(name string, want people.Person) []byte {
		t.Helper()
		enc, etag, err := c.Encoded(ctx, name)
		if err != nil {
			t.Fatalf("Encoded(%s): %v", name, err)
		}
		if etag != people.ETagSum(want) {
			t.Fatalf("Encoded(%s) etag = %x, want %x", name, etag, people.ETagSum(want))
		}
		if wantEnc, _ := wire.AppendPerson(nil, want); !bytes.Equal(enc, wantEnc) {
			t.Fatalf("Encoded(%s) = %x, want the encoding of %+v, %x", name, enc, want, wantEnc)
		}
		return enc
	}
	alice := people.Seed()[0]
	first := read("Alice", alice)
	if again := read("Alice", alice); unsafe.SliceData(again) != unsafe.SliceData(first) {
		t.Error("a second read of the same version made a new encoding")
	}
	if _, _, err := c.Update(ctx, "Alice", people.Update{Fields: people.FieldAge, To: people.Person{Age: 31}}); err != nil {
		t.Fatal(err)
	}
	alice.Age = 31
	read("Alice", alice)
	if p, err := c.Person(ctx, "Alice"); err != nil || !p.Equal(alice) {
		t.Fatalf("Person(Alice) = %+v, %v; want %+v", p, err, alice)
	}
	if _, err := c.Delete(ctx, "Bob"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Encoded(ctx, "Bob"); people.KindOf(err) != people.NotFound {
		t.Fatalf("Encoded(Bob) after deleting him: %v, want NotFound", err)
	}
	bob := people.Person{Name: "Bob", Age: 52}
	if _, err := c.Add(ctx, bob); err != nil {
		t.Fatal(err)
	}
	read("Bob", bob)
}

// ghostly is a store whose lookups find Ghost, whom List never returns:
// a person a shared cache reads from the store.
type ghostly struct{ people.Store }

func (g ghostly) Person(ctx context.Context, name string) (people.Person, error) {
	if name == "Ghost" {
		return people.Person{Name: name, Age: 9}, nil
	}
	return g.Store.Person(ctx, name)
}

// TestEncodedFromStore checks that a person a shared cache reads from the
// store, since memory lacks the name, is encoded from the store's answer.
func TestEncodedFromStore(t *testing.T) {
	c := newCache(t, ghostly{memory.New(0, people.Seed()...)}, Options{Shared: true})
	p, err := decoded(c.Encoded(context.Background(), "Ghost"))
	if want := (people.Person{Name: "Ghost", Age: 9}); err != nil || !p.Equal(want) {
		t.Fatalf("Encoded(Ghost) decodes to %+v, %v; want %+v", p, err, want)
	}
}

// TestLoadIsLogged checks that the cache says when it has loaded the
// directory, and how much of it, so an operator knows when reads stop
// going to the store.
func TestLoadIsLogged(t *testing.T) {
	var logs syncbuf.Buffer
	newCache(t, memory.New(0, people.Seed()...), Options{Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if got := logs.String(); !strings.Contains(got, `level=INFO msg="read cache loaded" people=2 revision=2 took=`) {
		t.Errorf("log after loading:\n%s\nwant a line saying the cache loaded 2 people at revision 2", got)
	}
}

// flaky is a store whose Changes fails while fail is above zero, counting
// down, and which counts the directory loads (first pages of a List) and
// the reads of its change log.
type flaky struct {
	people.Store
	fail    atomic.Int64
	failErr error
	loads   atomic.Int64
	changes atomic.Int64
}

func (s *flaky) List(ctx context.Context, q people.Query) ([]people.Person, error) {
	if q.After == "" && q.Limit == loadPage {
		s.loads.Add(1)
	}
	return s.Store.List(ctx, q)
}

func (s *flaky) Changes(ctx context.Context, after int64, limit int) ([]people.Change, error) {
	s.changes.Add(1)
	if s.fail.Add(-1) >= 0 {
		return nil, s.failErr
	}
	return s.Store.Changes(ctx, after, limit)
}

// TestFollowRetriesWithoutReloading fails the cache's read of the change
// log once, then twice: the cache resumes from the last change it applied,
// without loading the directory again, and holds every write.
func TestFollowRetriesWithoutReloading(t *testing.T) {
	for _, shared := range []bool{false, true} {
		t.Run(fmt.Sprintf("shared=%v", shared), func(t *testing.T) {
			under := &flaky{Store: memory.New(0, people.Seed()...), failErr: people.Errorf(people.Unavailable, "store down for a moment")}
			c := newCache(t, under, Options{Shared: shared, MaxStale: time.Hour})
			ctx := context.Background()
			for i, failures := range []int64{1, 2} {
				under.fail.Store(failures)
				name := fmt.Sprintf("Person %d", i)
				if _, err := c.Add(ctx, people.Person{Name: name}); err != nil {
					t.Fatal(err)
				}
				eventually(t, "the cache catches up", func() bool {
					return c.Ready() && c.Len() == 3+i
				})
				if p, err := c.Person(ctx, name); err != nil || p.Name != name {
					t.Errorf("Person(%q) = %+v, %v", name, p, err)
				}
			}
			if got := under.loads.Load(); got != 1 {
				t.Errorf("the directory was loaded %d times, want once", got)
			}
		})
	}
}

// TestFollowStopsOnDamage has the store report its data damaged: the cache
// stops reading it instead of loading it again and again, and reads go to
// the store.
func TestFollowStopsOnDamage(t *testing.T) {
	under := &flaky{Store: memory.New(0, people.Seed()...), failErr: fmt.Errorf("read changes: %w", people.ErrDamaged)}
	logs := &syncbuf.Buffer{}
	c := newCache(t, under, Options{Log: slog.New(slog.NewTextHandler(logs, nil))})
	under.fail.Store(1 << 30)
	if _, err := c.Add(context.Background(), people.Person{Name: "Carol"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the cache stops answering from memory", func() bool { return !c.Ready() })
	reads := under.changes.Load()
	time.Sleep(time.Second) // ten first retries' worth
	if got := under.changes.Load(); got != reads {
		t.Errorf("the cache read the damaged store's log %d more times", got-reads)
	}
	if got := under.loads.Load(); got != 1 {
		t.Errorf("the directory was loaded %d times, want once", got)
	}
	if n := strings.Count(logs.String(), "level=ERROR"); n != 1 {
		t.Errorf("%d errors logged, want 1 about the damage:\n%s", n, logs.String())
	}
	if p, err := c.Person(context.Background(), "Carol"); err != nil || p.Name != "Carol" {
		t.Errorf("Person(Carol) from the store = %+v, %v", p, err)
	}
}

// remembering is a store that keeps its own last changes in memory
// (people.RecentReader), as the PostgreSQL store does: here Recent answers
// what the log holds, whether or not the log can be read (down), and
// counts the log's reads and Recent's answers.
type remembering struct {
	people.Store
	down           atomic.Bool
	logReads, kept atomic.Int64
}

func (s *remembering) Changes(ctx context.Context, after int64, limit int) ([]people.Change, error) {
	s.logReads.Add(1)
	if s.down.Load() {
		return nil, people.Errorf(people.Unavailable, "store down")
	}
	return s.Store.Changes(ctx, after, limit)
}

func (s *remembering) Recent(after int64, limit int) ([]people.Change, bool) {
	changes, err := s.Store.Changes(context.Background(), after, limit)
	if err != nil || len(changes) == 0 {
		return nil, false
	}
	s.kept.Add(1)
	return changes, true
}

// TestRecentChangesSpareTheLog checks that a cache over a store that
// keeps its last changes takes them from memory, not the log, and still
// holds every write.
func TestRecentChangesSpareTheLog(t *testing.T) {
	under := &remembering{Store: memory.New(0, people.Seed()...)}
	c := newCache(t, under, Options{Shared: true})
	ctx := context.Background()
	before := under.logReads.Load()
	const n = 50
	for i := range n {
		if _, err := c.Add(ctx, people.Person{Name: fmt.Sprint("p", i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		if _, err := c.Person(ctx, fmt.Sprint("p", i)); err != nil {
			t.Fatal(err)
		}
	}
	// A shared cache still reads the log about every refreshInterval.
	if reads := under.logReads.Load() - before; reads > n/5 || under.kept.Load() == 0 {
		t.Errorf("%d writes: %d reads of the log, %d answers from memory", n, reads, under.kept.Load())
	}
}

// TestRecentChangesDoNotConfirm cuts a shared cache off from the log
// while its store's memory keeps answering its own writes: the memory
// cannot show that no other replica wrote, so the cache must stop
// answering from memory once MaxStale has passed, as it does when the
// store is down.
func TestRecentChangesDoNotConfirm(t *testing.T) {
	under := &remembering{Store: memory.New(0, people.Seed()...)}
	c := newCache(t, under, Options{Shared: true, MaxStale: 300 * time.Millisecond})
	ctx := context.Background()
	under.down.Store(true)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			c.Add(ctx, people.Person{Name: fmt.Sprint("w", i)})
		}
	}()
	defer func() { close(stop); <-done }()
	eventually(t, "the cache stops answering from memory", func() bool { return !c.Ready() })
	if under.kept.Load() == 0 {
		t.Error("the store's memory was never asked")
	}
}

package cache

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/routeguide/routeguide/internal/memory"
	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/peopletest"
	"github.com/routeguide/routeguide/internal/postgres"
	"github.com/routeguide/routeguide/internal/postgres/postgrestest"
	"github.com/routeguide/routeguide/internal/sqlite"
)

// testBound is small enough that the suites' directories overflow it.
const testBound = 16 << 10

func TestBoundedSuiteMemory(t *testing.T) {
	peopletest.Run(t, func(t *testing.T, opts peopletest.Options) people.Store {
		under := memory.New(opts.Retain, people.Seed()...)
		c := New(under, Options{MaxBytes: testBound})
		waitReady(t, c)
		o := owned{c, under}
		t.Cleanup(func() { o.Close() })
		return o
	})
}

func TestBoundedSuiteSQLite(t *testing.T) {
	peopletest.Run(t, func(t *testing.T, opts peopletest.Options) people.Store {
		under, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "people.db"), opts.Retain)
		if err != nil {
			t.Fatal(err)
		}
		c := New(under, Options{MaxBytes: testBound})
		waitReady(t, c)
		o := owned{c, under}
		t.Cleanup(func() { o.Close() })
		return o
	})
}

func TestBoundedSuitePostgres(t *testing.T) {
	postgrestest.Require(t)
	peopletest.Run(t, func(t *testing.T, opts peopletest.Options) people.Store {
		under, err := postgres.Open(context.Background(), postgrestest.Schema(t), opts.Retain, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		c := New(under, Options{Shared: true, MaxBytes: testBound})
		waitReady(t, c)
		o := owned{c, under}
		t.Cleanup(func() { o.Close() })
		return o
	})
}

// many returns n people with distinct names, each some 100 bytes encoded.
func many(n int) []people.Person {
	out := make([]people.Person, n)
	for i := range out {
		out[i] = people.Person{
			Name:    fmt.Sprintf("Person %07d", i),
			Age:     int32(i % 100),
			Hobbies: []string{"chess", "rowing"},
			Address: people.Address{Street: fmt.Sprintf("%d Long Street", i), City: "Springfield"},
		}
	}
	return out
}

// TestBoundedStaysWithinBound reads 20,000 distinct people, some 2 MB of
// them, through a cache bounded to 64 KiB: its tables never hold more than
// the bound, and each answer is the person asked for.
func TestBoundedStaysWithinBound(t *testing.T) {
	ctx := context.Background()
	under := memory.New(0)
	all := many(20_000)
	if _, err := under.Import(ctx, all); err != nil {
		t.Fatal(err)
	}
	const bound = 64 << 10
	c := newCache(t, under, Options{MaxBytes: bound})
	var most int64
	for i, want := range all {
		p, err := c.Person(ctx, want.Name)
		if err != nil || !p.Equal(want) {
			t.Fatalf("Person(%q) = %+v, %v; want %+v", want.Name, p, err, want)
		}
		s, _ := c.Stats()
		if s.Bytes > bound {
			t.Fatalf("after %d people the tables hold %d bytes, beyond the bound of %d", i+1, s.Bytes, bound)
		}
		most = max(most, s.Bytes)
	}
	s, ok := c.Stats()
	if !ok || s.Misses != int64(len(all)) || s.Hits != 0 || s.Evicted == 0 || s.MaxBytes != bound {
		t.Errorf("Stats = %+v, %v; want %d misses, no hits, evictions, the bound", s, ok, len(all))
	}
	// The bound is used, not merely respected: at least a quarter of it
	// holds people.
	if most < bound/2 || s.People*100 < bound/4 {
		t.Errorf("at most %d bytes held, %d people at the end: the bound of %d is not used", most, s.People, bound)
	}
	if c.Len() != s.People {
		t.Errorf("Len = %d, Stats.People = %d", c.Len(), s.People)
	}
}

// TestBoundedHitAfterMiss checks that a person read once is answered from
// memory after, also once a newer generation has replaced theirs.
func TestBoundedHitAfterMiss(t *testing.T) {
	ctx := context.Background()
	under := &counting{Store: memory.New(0, people.Seed()...)}
	const bound = 64 << 10
	c := newCache(t, under, Options{MaxBytes: bound})
	alice := people.Seed()[0]
	for i := range 3 {
		p, err := decoded(c.Encoded(ctx, "Alice"))
		if err != nil || !p.Equal(alice) {
			t.Fatalf("read %d: Encoded(Alice) = %+v, %v", i, p, err)
		}
	}
	if n := under.reads.Load(); n != 1 {
		t.Errorf("%d reads reached the store, want 1", n)
	}
	if s, _ := c.Stats(); s.Hits != 2 || s.Misses != 1 {
		t.Errorf("Stats = %+v, want 2 hits, 1 miss", s)
	}

	// Fill the current generation until Alice's becomes the previous one.
	if _, err := under.Import(ctx, many(2000)); err != nil {
		t.Fatal(err)
	}
	c.mu.RLock()
	first := c.bounded.cur
	c.mu.RUnlock()
	for i, p := range many(2000) {
		if _, err := c.Person(ctx, p.Name); err != nil {
			t.Fatal(err)
		}
		c.mu.RLock()
		turned := c.bounded.cur != first
		c.mu.RUnlock()
		if turned {
			break
		}
		if i == 1999 {
			t.Fatal("2000 people did not fill half of 64 KiB")
		}
	}
	reads := under.reads.Load()
	if p, err := c.Person(ctx, "Alice"); err != nil || !p.Equal(alice) {
		t.Fatalf("Person(Alice) from the previous generation = %+v, %v", p, err)
	}
	c.mu.RLock()
	_, current, ok := c.bounded.get("Alice")
	c.mu.RUnlock()
	if !ok || !current {
		t.Errorf("Alice, read from the previous generation, is not in the current one (held %v)", ok)
	}
	if n := under.reads.Load() - reads; n != 0 {
		t.Errorf("%d reads reached the store for Alice, held in the previous generation", n)
	}
}

// TestBoundedNotFoundNotKept checks that a name the store lacks is asked of
// the store each time: a person added there later is found.
func TestBoundedNotFoundNotKept(t *testing.T) {
	for _, shared := range []bool{false, true} {
		t.Run(fmt.Sprintf("shared=%v", shared), func(t *testing.T) {
			ctx := context.Background()
			under := &counting{Store: memory.New(0, people.Seed()...)}
			c := newCache(t, under, Options{Shared: shared, MaxBytes: testBound})
			for range 3 {
				if _, err := c.Person(ctx, "Nobody"); people.KindOf(err) != people.NotFound {
					t.Fatalf("Person(Nobody) = %v, want NotFound", err)
				}
			}
			if n := under.reads.Load(); n != 3 {
				t.Errorf("%d reads reached the store, want 3", n)
			}
			if c.Len() != 0 {
				t.Errorf("the cache holds %d people after looking up nobody", c.Len())
			}
			if _, err := under.Store.Add(ctx, people.Person{Name: "Nobody", Age: 3}); err != nil {
				t.Fatal(err)
			}
			if p, err := c.Person(ctx, "Nobody"); err != nil || p.Age != 3 {
				t.Fatalf("Person(Nobody) once added = %+v, %v", p, err)
			}
		})
	}
}

// TestBoundedWrites checks that writes through the cache are read at once,
// whether the person was held or not.
func TestBoundedWrites(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, memory.New(0, people.Seed()...), Options{MaxBytes: testBound})
	for i := range 50 {
		p := people.Person{Name: "Carol", Age: int32(i)}
		if i == 0 {
			if _, err := c.Add(ctx, p); err != nil {
				t.Fatal(err)
			}
		} else if _, _, err := c.Update(ctx, "Carol", people.Update{Fields: people.FieldAge, To: p}); err != nil {
			t.Fatal(err)
		}
		if got, err := c.Person(ctx, "Carol"); err != nil || got.Age != int32(i) {
			t.Fatalf("after writing age %d: got %+v, %v", i, got, err)
		}
	}
	if _, err := c.Delete(ctx, "Carol"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Person(ctx, "Carol"); people.KindOf(err) != people.NotFound {
		t.Fatalf("after delete: %v, want NotFound", err)
	}
	if _, err := c.Person(ctx, "Alice"); err != nil { // held from here on
		t.Fatal(err)
	}
	r, err := c.Import(ctx, []people.Person{{Name: "Dave"}, {Name: "Alice", Age: 99}})
	if err != nil || r.Added != 1 || r.Updated != 1 {
		t.Fatalf("Import: %+v, %v", r, err)
	}
	if got, err := c.Person(ctx, "Alice"); err != nil || got.Age != 99 {
		t.Fatalf("after import: %+v, %v", got, err)
	}
}

// TestBoundedOtherWriters has another writer (another replica, on a shared
// database) change people the cache holds: the follower replaces or removes
// them in memory, without reading the store again.
func TestBoundedOtherWriters(t *testing.T) {
	ctx := context.Background()
	under := &counting{Store: memory.New(0, people.Seed()...)}
	c := newCache(t, under, Options{Shared: true, MaxBytes: testBound})
	for _, name := range []string{"Alice", "Bob"} {
		if _, err := c.Person(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	reads := under.reads.Load()
	if _, _, err := under.Store.Update(ctx, "Alice", people.Update{Fields: people.FieldAge, To: people.Person{Age: 77}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the update made elsewhere is seen", func() bool {
		p, err := c.Person(ctx, "Alice")
		return err == nil && p.Age == 77
	})
	if _, err := under.Store.Delete(ctx, "Bob"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deletion made elsewhere is seen", func() bool {
		c.mu.RLock()
		_, _, held := c.bounded.get("Bob")
		c.mu.RUnlock()
		return !held
	})
	if n := under.reads.Load() - reads; n != 0 {
		t.Errorf("%d reads reached the store for people held", n)
	}
	if _, err := c.Person(ctx, "Bob"); people.KindOf(err) != people.NotFound {
		t.Fatalf("Person(Bob) after his deletion elsewhere: %v, want NotFound", err)
	}
}

// TestBoundedReadThroughRace lands a change to a person between the
// cache's read of them from the store and its keeping of the answer, as
// another writer's may: the answer read before the change must not be kept.
func TestBoundedReadThroughRace(t *testing.T) {
	ctx := context.Background()
	t.Run("applied before the answer is kept", func(t *testing.T) {
		under := memory.New(0, people.Seed()...)
		c := newCache(t, under, Options{Shared: true, MaxBytes: testBound})
		c.afterRead = func(name string) {
			c.afterRead = nil // only this once
			_, rev, err := under.Update(ctx, name, people.Update{Fields: people.FieldAge, To: people.Person{Age: 50}})
			if err != nil {
				t.Error(err)
				return
			}
			c.applied.Wait(ctx, rev-1)
		}
		if p, err := c.Person(ctx, "Alice"); err != nil || p.Age != 30 {
			t.Fatalf("Person(Alice) as read before the change = %+v, %v", p, err)
		}
		if p, err := c.Person(ctx, "Alice"); err != nil || p.Age != 50 {
			t.Fatalf("Person(Alice) after the change = %+v, %v; want age 50", p, err)
		}
	})
	t.Run("applied after the answer is kept", func(t *testing.T) {
		under := &counting{Store: memory.New(0, people.Seed()...)}
		c := newCache(t, under, Options{Shared: true, MaxBytes: testBound, MaxStale: 1 << 62})
		var rev int64
		c.afterRead = func(name string) {
			c.afterRead = nil
			under.held.Store(true) // the follower reads no change until released
			var err error
			if _, rev, err = under.Store.Update(ctx, name, people.Update{Fields: people.FieldAge, To: people.Person{Age: 50}}); err != nil {
				t.Error(err)
			}
		}
		if p, err := c.Person(ctx, "Alice"); err != nil || p.Age != 30 {
			t.Fatalf("Person(Alice) as read before the change = %+v, %v", p, err)
		}
		under.held.Store(false)
		c.applied.Wait(ctx, rev-1)
		if p, err := c.Person(ctx, "Alice"); err != nil || p.Age != 50 {
			t.Fatalf("Person(Alice) after the change = %+v, %v; want age 50", p, err)
		}
		if n := under.reads.Load(); n != 1 {
			t.Errorf("%d reads reached the store, want 1: the follower replaces the person held", n)
		}
	})
}

// TestBoundedStartsWithoutLoading checks that a bounded cache reads no
// page of the directory to become ready.
func TestBoundedStartsWithoutLoading(t *testing.T) {
	under := &flaky{Store: memory.New(0, people.Seed()...)}
	c := newCache(t, under, Options{MaxBytes: testBound})
	if n := under.loads.Load(); n != 0 {
		t.Errorf("the directory was loaded %d times, want never", n)
	}
	if p, err := c.Person(context.Background(), "Bob"); err != nil || p.Name != "Bob" {
		t.Errorf("Person(Bob) = %+v, %v", p, err)
	}
}

// TestBoundedRestartAfterFallingBehind makes the change log drop changes
// the cache has not applied: it forgets the people it held, whose changes
// it can no longer know, and reads them again.
func TestBoundedRestartAfterFallingBehind(t *testing.T) {
	ctx := context.Background()
	under := &counting{Store: memory.New(3, people.Seed()...)}
	c := newCache(t, under, Options{Shared: true, MaxStale: 1 << 62, MaxBytes: testBound})
	if _, err := c.Person(ctx, "Alice"); err != nil {
		t.Fatal(err)
	}
	under.held.Store(true)
	if _, _, err := under.Store.Update(ctx, "Alice", people.Update{Fields: people.FieldAge, To: people.Person{Age: 61}}); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := under.Store.Add(ctx, people.Person{Name: fmt.Sprintf("P%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	under.held.Store(false)
	eventually(t, "the cache restarts and reads Alice anew", func() bool {
		p, err := c.Person(ctx, "Alice")
		return err == nil && p.Age == 61
	})
	if s, _ := c.Stats(); s.Evicted == 0 {
		t.Errorf("Stats = %+v: the restart dropped nobody", s)
	}
}

// TestBoundedReplicasOnPostgres runs two bounded caches over one PostgreSQL
// schema, as two replicas would: each sees the other's writes to people
// it holds.
func TestBoundedReplicasOnPostgres(t *testing.T) {
	postgrestest.Require(t)
	url := postgrestest.Schema(t)
	ctx := context.Background()
	open := func() *Store {
		s, err := postgres.Open(ctx, url, 0, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return newCache(t, s, Options{Shared: true, MaxBytes: testBound})
	}
	a, b := open(), open()
	if _, err := a.Add(ctx, people.Person{Name: "Carol", Age: 1}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Store{a, b} {
		if got, err := c.Person(ctx, "Carol"); err != nil || got.Age != 1 {
			t.Fatalf("Carol read: %+v, %v", got, err)
		}
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

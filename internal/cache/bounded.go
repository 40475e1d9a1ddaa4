package cache

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/routeguide/routeguide/internal/people"
)

// A bounded cache (Options.MaxBytes) holds only the people read lately, in
// at most MaxBytes of tables, instead of the whole directory: a directory
// larger than a replica's memory can then be served, each read that misses
// going to the store. It loads nothing at start: it is ready once it knows
// the store's revision, and follows the change log from there.
//
// The people are kept in two generations, each a table (see table): a
// lookup reads the current one, then the previous one, and a person found
// only in the previous one is copied into the current one. When the current
// one would pass half the bound, the previous one is dropped, with every
// person no lookup asked for since it was current, and the current one
// becomes the previous one. That approximates least recently used without
// any bookkeeping on a hit, and a dropped generation is freed whole.
//
// The follower applies each change to the people held (a new version
// replaces the one held, a deletion removes it) and ignores the others,
// which a later read will get from the store.
//
// A name the store does not hold is not remembered: its next lookup reads
// the store again.

// generations is a bounded cache's tables. The cache's mu guards
// everything but the counters.
type generations struct {
	max      int64 // the bound on the bytes of both tables
	cur, old *table
	// rev is the revision the tables reflect: the last change applied, or
	// the revision the cache started or restarted from. A read of the store
	// keeps its answer only if rev has not moved meanwhile (see readThrough).
	rev int64

	hits, misses, evicted atomic.Int64
}

// minBoundedChunk is the least chunk a bounded cache's table allocates.
const minBoundedChunk = 4 << 10

func newGenerations(maxBytes int64) *generations {
	g := &generations{max: maxBytes}
	g.cur, g.old = g.newTable(), g.newTable()
	return g
}

// newTable returns an empty table whose chunks are a sixteenth of a
// generation's half of the bound (4 KiB to chunkSize), so that a
// generation's last chunk, partly filled, costs the bound little.
func (g *generations) newTable() *table {
	t := newTable()
	t.chunk = int(min(max(g.max/2/16, minBoundedChunk), chunkSize))
	t.minCompact = int64(t.chunk)
	return t
}

// bytes returns the memory a table holds: its slots and its chunks,
// whether filled or not.
func (t *table) bytes() int64 {
	n := int64(len(t.slots)) * 8
	for _, c := range t.chunks {
		n += int64(cap(c))
	}
	return n
}

// bytes returns the memory the tables hold.
func (g *generations) bytes() int64 { return g.cur.bytes() + g.old.bytes() }

// get returns the encoding held for name, and whether it was found in the
// current generation.
func (g *generations) get(name string) (enc []byte, current, ok bool) {
	if enc, ok := g.cur.get(name); ok {
		return enc, true, true
	}
	enc, ok = g.old.get(name)
	return enc, false, ok
}

// put adds or replaces name in the current generation, first making it
// the previous one when the entry would take it past half the bound; the
// previous generation's copy, if any, is removed.
func (g *generations) put(name string, enc []byte) {
	if g.cur.n > 0 && g.cur.bytes()+g.growth(len(name), len(enc)) > g.max/2 {
		g.evicted.Add(int64(g.old.n))
		g.old, g.cur = g.cur, g.newTable()
	}
	g.cur.put(name, enc)
	g.old.remove(name)
}

// growth returns how many bytes the current generation would allocate to
// take a new entry: a chunk when the last has no room for it, and the
// slots again when they would double.
func (g *generations) growth(name, enc int) int64 {
	t := g.cur
	size := entrySize(name, enc)
	var n int64
	if last := len(t.chunks) - 1; last < 0 || int64(cap(t.chunks[last])-len(t.chunks[last])) < size {
		n += max(int64(t.chunk), size)
	}
	if (t.n+1)*4 > len(t.slots)*3 {
		n += int64(len(t.slots)) * 8
	}
	return n
}

// reset drops every person held: the cache restarts from rev.
func (g *generations) reset(rev int64) {
	g.evicted.Add(int64(g.cur.n + g.old.n))
	g.cur, g.old = g.newTable(), g.newTable()
	g.rev = rev
}

// Stats describes a bounded cache.
type Stats struct {
	// Hits and Misses count the lookups answered from memory and those
	// that read the store, since the cache started.
	Hits, Misses int64
	// Evicted counts the people dropped to keep within the bound, or on a
	// restart after falling behind the change log.
	Evicted int64
	// People and Bytes are what the cache holds now: the people, and the
	// bytes of its tables.
	People int
	Bytes  int64
	// MaxBytes is the bound.
	MaxBytes int64
}

// Stats describes the cache when it is bounded; ok is false when it holds
// the whole directory.
func (c *Store) Stats() (s Stats, ok bool) {
	g := c.bounded
	if g == nil {
		return Stats{}, false
	}
	c.mu.RLock()
	s.People, s.Bytes = g.cur.n+g.old.n, g.bytes()
	c.mu.RUnlock()
	s.Hits, s.Misses, s.Evicted, s.MaxBytes = g.hits.Load(), g.misses.Load(), g.evicted.Load(), g.max
	return s, true
}

// startBounded is load for a bounded cache: it forgets every person held
// and follows the change log from the store's current revision.
func (c *Store) startBounded(ctx context.Context) error {
	c.setReady(false)
	asOf := time.Now()
	start, err := c.Store.Revision(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.bounded.reset(start)
	c.mu.Unlock()
	c.applied.Advance(start)
	c.confirmed.Store(asOf.UnixNano())
	c.opts.Log.Info("read cache started, bounded", "max_bytes", c.bounded.max, "revision", c.applied.Get())
	c.setReady(true)
	return nil
}

// lookupBounded is lookup for a bounded cache: from memory when the person
// is held, else from the store.
func (c *Store) lookupBounded(ctx context.Context, name string) ([]byte, people.Person, error) {
	if !c.Ready() {
		p, err := c.Store.Person(ctx, name)
		return nil, p, err
	}
	g := c.bounded
	c.mu.RLock()
	enc, current, ok := g.get(name)
	rev := g.rev
	c.mu.RUnlock()
	if !ok {
		g.misses.Add(1)
		return c.readThrough(ctx, name, rev)
	}
	g.hits.Add(1)
	if !current {
		c.mu.Lock()
		// Copied as held now: a change may have replaced enc since.
		if now, current, ok := g.get(name); ok && !current {
			g.put(name, now)
		}
		c.mu.Unlock()
	}
	return enc, people.Person{}, nil
}

// readThrough reads the person named name from the store and keeps them,
// unless a change was applied since rev, the revision the tables reflected
// when the lookup missed.
//
// That never keeps a stale person. The store's answer reflects at least
// every change up to rev, since the follower had read those changes before
// the lookup began. A later change to the name is applied, under mu, either
// before the insertion below, which then finds rev moved and keeps nothing,
// or after it, when the follower finds the name held and replaces it. Only
// when no change was applied in between is the answer kept, and then any
// change the answer lacks is still to be applied, to the person held.
func (c *Store) readThrough(ctx context.Context, name string, rev int64) ([]byte, people.Person, error) {
	p, err := c.Store.Person(ctx, name)
	if err != nil {
		return nil, p, err // NotFound among them: absence is not kept
	}
	if c.afterRead != nil {
		c.afterRead(name)
	}
	kept, err := encode(nil, p)
	if err != nil {
		return nil, p, nil // Encoded reports it
	}
	g := c.bounded
	c.mu.Lock()
	if g.rev == rev {
		g.put(name, kept)
	}
	c.mu.Unlock()
	return kept, people.Person{}, nil
}

// applyBounded is apply's locked part for a bounded cache: each change
// replaces or removes a person held, and advances the tables' revision.
// buf holds the changes' encodings, each ending at ends[i].
func (c *Store) applyBounded(changes []people.Change, buf []byte, ends []int) {
	g := c.bounded
	start := 0
	for i, ch := range changes {
		name := ch.Person.Name
		if ch.Type == people.Deleted {
			g.cur.remove(name)
			g.old.remove(name)
		} else if _, _, held := g.get(name); held {
			g.put(name, buf[start:ends[i]])
		}
		start = ends[i]
	}
	g.rev = changes[len(changes)-1].Revision
}

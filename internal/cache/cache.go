// Package cache keeps the whole directory in memory in front of a store, so
// that reads (GetPerson, GetPeople) never wait for the database.
//
// A Store loads every person once, in the background, then follows the
// store's change log. With Options.Snapshot set, it starts instead from the
// snapshot an earlier run left, when that is the store's own past, and the
// changes logged since (see snapshot.go). Until it has caught up, reads go to the store. Writes
// go to the store and return once the cache has applied them, so a client
// reads its own writes on the replica that took them.
//
// With Shared set (PostgreSQL, where other replicas write to the same
// database), a name missing from memory is looked up in the database, since
// another replica may have just added it; an update or deletion made on
// another replica is seen here as soon as its notification arrives. Memory
// answers only while the cache has confirmed it is current within MaxStale:
// a replica that cannot reach its database stops answering from memory and
// reports what the database reports (UNAVAILABLE), instead of serving an
// ever older directory.
//
// With Options.MaxBytes set, the cache holds only the people read lately,
// within that bound, and reads the others from the store (see bounded.go):
// for a directory larger than a replica's memory.
package cache

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/routeguide/routeguide/internal/notify"
	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/wire"
)

// Options configures a Store.
type Options struct {
	// Shared says other processes write to the same store.
	Shared bool
	// MaxStale is how long, with Shared set, memory keeps answering after
	// the cache last confirmed it was current. Zero means DefaultMaxStale.
	MaxStale time.Duration
	// Log receives the cache's failures and a line each time it has loaded
	// the directory. Nil discards them.
	Log *slog.Logger
	// Snapshot, when set, names a file where the cache keeps a snapshot of
	// the directory (see snapshot.go): written on Close, after each full
	// load and every SnapshotEvery, and read at start instead of every
	// person when it is the store's own past. For a store that only this
	// process writes to, where the change log tells every change since.
	Snapshot string
	// SnapshotEvery is how often the snapshot is written again when the
	// directory has changed; zero writes it only on Close and after a full
	// load.
	SnapshotEvery time.Duration
	// MaxBytes, when positive, bounds the memory of the people held: the
	// cache then holds those read lately, not the whole directory (see
	// bounded.go).
	MaxBytes int64
}

// DefaultMaxStale bounds how out of date a shared replica's answers from
// memory may be when it loses its database. The follower confirms it is
// current at least every refreshInterval, so a healthy replica is never near
// it.
const DefaultMaxStale = 3 * time.Second

// refreshInterval is how often a shared cache reads the change log even when
// no notification arrives: notifications can be lost with their connection.
const refreshInterval = time.Second

// loadPage and changesPage bound one read of the store.
const (
	loadPage    = 10_000
	changesPage = 10_000
)

var _ people.Pinger = (*Store)(nil)

// Store is a people.Store whose reads are answered from memory. Close stops
// following the store but does not close it: that is its owner's business.
//
// Each person is held once, as its wire encoding (wire.AppendPerson): what
// GetPerson sends as it is, and what Person decodes, kept in a table
// without pointers (see table), after the 8 bytes of the person's etag
// (people.ETagSum), which GetPerson sends in its header.
type Store struct {
	people.Store
	opts Options

	mu     sync.RWMutex
	people *table // guarded by mu
	// rev is the latest revision whose change the table holds, guarded by
	// mu; exact says the table is exactly the store at rev, which it is
	// not while a load replays the changes made during its read.
	rev   int64
	exact bool

	snapMu  sync.Mutex    // one snapshot written at a time
	saved   int64         // guarded by snapMu: the revision of the last snapshot written
	saveNow chan struct{} // asks the snapshot writer for a snapshot
	saver   sync.WaitGroup

	ready     atomic.Bool // loaded and caught up; set through setReady
	liveMu    sync.Mutex
	live      context.Context // guarded by liveMu; ends when ready turns false
	endLive   context.CancelFunc
	confirmed atomic.Int64  // unix nanoseconds when the cache was last known current
	applied   notify.Latest // the revision the map reflects

	// bounded holds the people instead of people when Options.MaxBytes is
	// set; guarded by mu.
	bounded *generations
	// afterRead, when set (by tests), runs between a bounded cache's read
	// of the store and its keeping of the answer.
	afterRead func(name string)

	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a cache in front of store and starts loading it.
func New(store people.Store, opts Options) *Store {
	if opts.MaxStale <= 0 {
		opts.MaxStale = DefaultMaxStale
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if opts.MaxBytes > 0 {
		opts.Snapshot = "" // a bounded cache holds a part, and never loads the whole
	}
	c := &Store{Store: store, opts: opts, cancel: cancel, done: make(chan struct{}), saveNow: make(chan struct{}, 1)}
	if opts.MaxBytes > 0 {
		c.bounded = newGenerations(opts.MaxBytes)
	}
	go c.follow(ctx)
	if opts.Snapshot != "" {
		c.saver.Add(1)
		go c.snapshots(ctx)
	}
	return c
}

// Close stops following the store and, with Options.Snapshot set, writes
// the snapshot. The store stays open.
func (c *Store) Close() error {
	c.cancel()
	<-c.done
	c.saver.Wait()
	if c.opts.Snapshot != "" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := c.saveSnapshot(ctx); err != nil {
			// Not the caller's failure: the next start loads every person.
			c.opts.Log.Warn("cannot write the read cache's snapshot", "path", c.opts.Snapshot, "error", err)
		}
		cancel()
	}
	c.setReady(false)
	return nil
}

// snapshots writes the snapshot when asked and every
// Options.SnapshotEvery, until ctx ends.
func (c *Store) snapshots(ctx context.Context) {
	defer c.saver.Done()
	var tick <-chan time.Time
	if c.opts.SnapshotEvery > 0 {
		t := time.NewTicker(c.opts.SnapshotEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case <-c.saveNow:
		}
		if err := c.saveSnapshot(ctx); err != nil && ctx.Err() == nil {
			c.opts.Log.Warn("cannot write the read cache's snapshot", "path", c.opts.Snapshot, "error", err)
		}
	}
}

// Ping asks the store whether it is reachable, when it can tell (see
// people.Pinger); otherwise it reports nothing wrong.
func (c *Store) Ping(ctx context.Context) error {
	if p, ok := c.Store.(people.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

// Ready reports whether reads are being answered from memory.
func (c *Store) Ready() bool {
	if !c.ready.Load() {
		return false
	}
	return !c.opts.Shared || time.Since(time.Unix(0, c.confirmed.Load())) < c.opts.MaxStale
}

// Len returns how many people the cache holds.
func (c *Store) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.bounded != nil {
		return c.bounded.cur.n + c.bounded.old.n
	}
	if c.people == nil {
		return 0
	}
	return c.people.n
}

// Person returns the person named name from memory when the cache is ready,
// and from the store otherwise.
func (c *Store) Person(ctx context.Context, name string) (people.Person, error) {
	kept, p, err := c.lookup(ctx, name)
	if err != nil || kept == nil {
		return p, err
	}
	p, err = wire.DecodePerson(kept[etagSize:])
	if err != nil {
		return people.Person{}, fmt.Errorf("%w: the read cache holds %q in a form it cannot read: %v", people.ErrDamaged, name, err)
	}
	return p, nil
}

// Encoded returns the wire encoding of the person named name
// (wire.AppendPerson), as GetPerson answers it, and the person's etag
// (people.ETagSum): the ones the cache holds when it is ready, or else
// ones made from the store's answer. The caller must not modify the
// encoding. A failed lookup returns Person's error.
func (c *Store) Encoded(ctx context.Context, name string) ([]byte, [8]byte, error) {
	kept, p, err := c.lookup(ctx, name)
	if err != nil {
		return nil, [8]byte{}, err
	}
	if kept != nil {
		return kept[etagSize:], [8]byte(kept), nil
	}
	b, err := wire.AppendPerson(nil, p)
	if err != nil {
		return nil, [8]byte{}, fmt.Errorf("encode %q: %w", name, err)
	}
	return b, people.ETagSum(p), nil
}

// etagSize is the bytes of the etag (people.ETagSum) before each kept
// encoding.
const etagSize = 8

// lookup returns what the cache keeps of the person named name (encode)
// from memory, or the person from the store until the cache is ready (and,
// with Shared set, for a name memory lacks).
func (c *Store) lookup(ctx context.Context, name string) ([]byte, people.Person, error) {
	if c.bounded != nil {
		return c.lookupBounded(ctx, name)
	}
	if !c.Ready() {
		p, err := c.Store.Person(ctx, name)
		return nil, p, err
	}
	c.mu.RLock()
	enc, ok := c.people.get(name)
	c.mu.RUnlock()
	if ok {
		return enc, people.Person{}, nil
	}
	if c.opts.Shared {
		p, err := c.Store.Person(ctx, name)
		return nil, p, err
	}
	return nil, people.Person{}, people.Errorf(people.NotFound, "no person named %q", name)
}

// Add stores p and waits until the cache holds it.
func (c *Store) Add(ctx context.Context, p people.Person) (int64, error) {
	rev, err := c.Store.Add(ctx, p)
	if err == nil {
		c.await(ctx, rev)
	}
	return rev, err
}

// Update changes the person named name and waits until the cache holds the
// result.
func (c *Store) Update(ctx context.Context, name string, u people.Update) (people.Person, int64, error) {
	p, rev, err := c.Store.Update(ctx, name, u)
	if err == nil {
		c.await(ctx, rev)
	}
	return p, rev, err
}

// Delete removes the person named name and waits until the cache has too.
func (c *Store) Delete(ctx context.Context, name string) (int64, error) {
	rev, err := c.Store.Delete(ctx, name)
	if err == nil {
		c.await(ctx, rev)
	}
	return rev, err
}

// Import stores batch and waits until the cache holds it.
func (c *Store) Import(ctx context.Context, batch []people.Person) (people.ImportResult, error) {
	r, err := c.Store.Import(ctx, batch)
	if err == nil {
		c.await(ctx, r.Revision)
	}
	return r, err
}

// await waits until the cache reflects rev, so that the writer's next read
// sees its write. The write is durable already, so a caller whose context
// ends first still gets its success; until the cache catches up, reads of
// that name may be older.
func (c *Store) await(ctx context.Context, rev int64) {
	if !c.ready.Load() {
		return // reads go to the store until the cache is ready
	}
	if c.applied.Get() >= rev {
		// As a rule under load: the follower, woken by the commit
		// before the writers, has applied the group already.
		return
	}
	// Should the follower fail meanwhile, reads go to the store, and
	// the write need not wait for the follower any longer.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(c.liveContext(), cancel)()
	c.applied.Wait(ctx, rev-1) // returns once the applied revision is rev or more
}

// setReady records whether reads are answered from memory. Turning false,
// it ends the context liveContext returned, releasing the writers waiting
// in await.
func (c *Store) setReady(ready bool) {
	c.liveMu.Lock()
	defer c.liveMu.Unlock()
	c.ready.Store(ready)
	switch {
	case ready && (c.live == nil || c.live.Err() != nil):
		c.live, c.endLive = context.WithCancel(context.Background())
	case !ready && c.endLive != nil:
		c.endLive()
	}
}

// liveContext returns a context that ends when the cache stops being
// ready, or has ended when the cache is not ready.
func (c *Store) liveContext() context.Context {
	c.liveMu.Lock()
	defer c.liveMu.Unlock()
	if c.live == nil || !c.ready.Load() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return ctx
	}
	return c.live
}

// follow loads the directory and applies the change log until ctx ends.
// When reading the log fails, it resumes from the last change it applied,
// with backoff, and reads go to the store meanwhile; it loads the whole
// directory again only when the log no longer holds the changes it needs.
// When the store reports its data damaged, it stops: reading again would
// only meet the damage again, every time.
func (c *Store) follow(ctx context.Context) {
	defer close(c.done)
	backoff := 100 * time.Millisecond
	loaded := false
	fromSnapshot := c.opts.Snapshot != "" // at start only
	for ctx.Err() == nil {
		var err error
		if !loaded && fromSnapshot {
			fromSnapshot = false
			err = c.loadSnapshot(ctx)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				c.opts.Log.Info("no read cache snapshot; loading every person", "path", c.opts.Snapshot)
			case errors.Is(err, errNotUsable):
				c.opts.Log.Warn("read cache snapshot not used; loading every person", "path", c.opts.Snapshot, "error", err)
			}
			if errors.Is(err, errNotUsable) {
				err = c.load(ctx)
			}
			loaded = err == nil
		} else if !loaded {
			err = c.load(ctx)
			loaded = err == nil
		} else if err = c.resume(ctx); err == nil {
			c.opts.Log.Info("read cache following the change log again", "revision", c.applied.Get())
		}
		if err == nil {
			backoff = 100 * time.Millisecond
			err = c.track(ctx)
		}
		if ctx.Err() != nil {
			return
		}
		c.setReady(false) // until caught up again, reads go to the store
		switch {
		case errors.Is(err, people.ErrDamaged):
			c.opts.Log.Error("the store's data is damaged; the cache stops reading it and reads go to the store", "error", err)
			return
		case people.KindOf(err) == people.OutOfRange:
			c.opts.Log.Warn("cache fell behind the change log; reloading", "error", err)
			loaded = false
			backoff = 100 * time.Millisecond
			continue
		}
		c.opts.Log.Warn("cache cannot read the store; reads go to the store", "error", err, "retry_in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// resume applies the changes made since the cache last read the log, and
// marks the cache ready again.
func (c *Store) resume(ctx context.Context) error {
	if _, err := c.catchUp(ctx); err != nil {
		return err
	}
	c.setReady(true)
	return nil
}

// load reads every person, then applies the changes made while it read, and
// marks the cache ready.
func (c *Store) load(ctx context.Context) error {
	if c.bounded != nil {
		return c.startBounded(ctx)
	}
	c.setReady(false)
	began := time.Now()
	start, err := c.Store.Revision(ctx)
	if err != nil {
		return err
	}
	all, err := c.readAll(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.people, c.rev, c.exact = all, start, false
	c.mu.Unlock()
	// The pages may hold writes made after start, and replaying older
	// changes over them briefly regresses those people; the cache becomes
	// ready only once it has replayed everything up to a revision read after
	// the last page, by when the latest change to each name has won.
	end, err := c.Store.Revision(ctx)
	if err != nil {
		return err
	}
	c.applied.Advance(start) // revisions only grow, so a reload never goes back
	for c.applied.Get() < end {
		if _, err := c.catchUp(ctx); err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.exact = true
	c.mu.Unlock()
	c.opts.Log.Info("read cache loaded", "people", c.Len(), "revision", c.applied.Get(), "took", time.Since(began).Round(time.Millisecond))
	c.setReady(true)
	select {
	case c.saveNow <- struct{}{}: // a snapshot, so that the next start need not do this again
	default:
	}
	return nil
}

// readAll reads every person into a new table. One goroutine reads pages
// from the store while this one encodes and files the previous page: on
// two cores, a million people from SQLite loaded in some two thirds of the
// time the two steps took in turn.
func (c *Store) readAll(ctx context.Context) (*table, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pages := make(chan []people.Person, 2)
	var readErr error
	go func() {
		defer close(pages)
		q := people.Query{Limit: loadPage}
		for {
			page, err := c.Store.List(ctx, q)
			if err != nil {
				readErr = err
				return
			}
			select {
			case pages <- page:
			case <-ctx.Done():
				readErr = ctx.Err()
				return
			}
			if len(page) < q.Limit {
				return
			}
			q.After = page[len(page)-1].Name
		}
	}()
	all := newTable()
	var buf []byte
	var err error
	for page := range pages {
		for _, p := range page {
			if buf, err = encode(buf[:0], p); err != nil {
				cancel()
				for range pages { // let the reader end
				}
				return nil, err
			}
			all.put(p.Name, buf)
		}
	}
	// pages is closed: the reader has ended, and readErr is set.
	if readErr != nil {
		return nil, readErr
	}
	return all, nil
}

// encode appends what the cache keeps of p to buf: its etag
// (people.ETagSum), then its wire encoding. A person who cannot be encoded
// is damage in the store: validation lets none through.
func encode(buf []byte, p people.Person) ([]byte, error) {
	etag := people.ETagSum(p)
	buf, err := wire.AppendPerson(append(buf, etag[:]...), p)
	if err != nil {
		return buf, fmt.Errorf("%w: %q cannot be encoded: %v", people.ErrDamaged, p.Name, err)
	}
	return buf, nil
}

// track applies changes as the store announces them, and with Shared set
// reads the change log every refreshInterval regardless, until ctx ends or
// reading fails.
func (c *Store) track(ctx context.Context) error {
	for {
		wait := ctx
		var cancel context.CancelFunc = func() {}
		if c.opts.Shared {
			wait, cancel = context.WithTimeout(ctx, refreshInterval)
		}
		err := c.Store.WaitChange(wait, c.applied.Get())
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		if ok, err := c.applyRecent(); err != nil {
			return err
		} else if ok {
			continue
		}
		if _, err := c.catchUp(ctx); err != nil {
			return err
		}
	}
}

// applyRecent applies the changes after the cache's revision that the
// store holds in memory (people.RecentReader), the changes of its own last
// writes, which the cache would otherwise read back from the log after
// every group, and reports whether it applied any. The store's memory
// cannot show that no other replica wrote since, so it never confirms the
// cache current: with Shared set it is used only within refreshInterval of
// the last confirmation, and then the log is read (catchUp), however busy
// this replica's own writers keep it.
func (c *Store) applyRecent() (bool, error) {
	r, ok := c.Store.(people.RecentReader)
	if !ok || c.opts.Shared && time.Since(time.Unix(0, c.confirmed.Load())) >= refreshInterval {
		return false, nil
	}
	applied := false
	for {
		changes, ok := r.Recent(c.applied.Get(), changesPage)
		if !ok || len(changes) == 0 {
			return applied, nil
		}
		if err := c.apply(changes); err != nil {
			return applied, err
		}
		applied = true
	}
}

// catchUp applies the changes after the cache's revision until it has
// applied every change that existed when it started, and records when it
// last knew itself current. It returns how many it applied.
func (c *Store) catchUp(ctx context.Context) (int, error) {
	n := 0
	for {
		asOf := time.Now()
		changes, err := c.Store.Changes(ctx, c.applied.Get(), changesPage)
		if err != nil {
			return n, err
		}
		if err := c.apply(changes); err != nil {
			return n, err
		}
		n += len(changes)
		if len(changes) < changesPage {
			c.confirmed.Store(asOf.UnixNano())
			return n, nil
		}
	}
}

// apply makes the table reflect changes, in order, and advances the
// applied revision, waking writers waiting for it. The changes are encoded
// before the table is locked, so readers wait only for the table's
// updates.
func (c *Store) apply(changes []people.Change) error {
	if len(changes) == 0 {
		return nil
	}
	var buf []byte
	ends := make([]int, len(changes)) // where each change's encoding ends in buf
	for i, ch := range changes {
		if ch.Type != people.Deleted {
			var err error
			if buf, err = encode(buf, ch.Person); err != nil {
				return err
			}
		}
		ends[i] = len(buf)
	}
	c.mu.Lock()
	if c.bounded != nil {
		c.applyBounded(changes, buf, ends)
		c.mu.Unlock()
		c.applied.Advance(changes[len(changes)-1].Revision)
		return nil
	}
	start := 0
	for i, ch := range changes {
		if ch.Type == people.Deleted {
			c.people.remove(ch.Person.Name)
		} else {
			c.people.put(ch.Person.Name, buf[start:ends[i]])
		}
		start = ends[i]
	}
	c.rev = changes[len(changes)-1].Revision
	c.mu.Unlock()
	c.applied.Advance(changes[len(changes)-1].Revision)
	return nil
}

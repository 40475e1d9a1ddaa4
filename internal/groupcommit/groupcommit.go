// Package groupcommit commits concurrent writes in groups. One goroutine
// takes a write, then every other write already waiting (up to a limit),
// and hands them to the store to run in one transaction: while a group
// commits, the next one gathers, so concurrent writers share commits and
// flushes to disk instead of queueing for one each.
//
// The protocol a group runs by is this package's: one transaction for the
// group, each write in a savepoint of its own, one commit. A store whose
// Tx is also a BatchTx first applies what it can of the group together
// (every addition in one multi-row statement, say), and the rest go one by
// one. What a write is,
// and the statements that begin, mark, undo and commit, are the store's: it
// supplies them as a Tx.
package groupcommit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Write is one caller's write. Once its group has run, it holds Rev or Err.
type Write[F any] struct {
	Ctx  context.Context // the caller's
	Fn   F               // what to run, in the store's terms
	Rev  int64           // the revision after the write, once done
	Err  error           // why the write failed, once done
	done chan struct{}
}

// Done is closed once the write's group has finished, committed or not.
func (w *Write[F]) Done() <-chan struct{} { return w.done }

// Tx is one group's transaction, in a store's terms. For each write whose
// caller is still waiting, the committer calls Savepoint, then Run, then
// Release when Run succeeded or RollbackTo when it failed; once every write
// has run, Commit when any write was applied; and Rollback last, always
// (after a successful Commit it must do nothing). An error from any method
// but Run means the transaction is lost.
type Tx[F any] interface {
	// Savepoint marks where the next write starts.
	Savepoint() error
	// Run runs w's write in the savepoint. Its error is the write's own.
	Run(w *Write[F]) error
	// Release keeps the write since the savepoint, and returns the
	// revision after it.
	Release() (rev int64, err error)
	// RollbackTo undoes the write since the savepoint, and only it.
	RollbackTo() error
	// Commit commits the transaction, whose latest revision is rev.
	Commit(rev int64) error
	// Rollback ends the transaction if it is still open.
	Rollback()
}

// BatchTx is a Tx that can apply several writes of a group at once, with
// fewer statements than a savepoint, a run and a release each: for
// example, every addition of the group in one multi-row statement. The
// committer hands it the group's writes whose callers still wait, before
// any of them runs one by one.
type BatchTx[F any] interface {
	Tx[F]
	// RunBatch applies those of ws it takes together and returns the
	// rest, in their order, for the committer to run one by one in
	// savepoints. Of each write it takes it sets either Rev, the revision
	// after the write (the write is applied and commits with the group),
	// or Err, the write's own failure (nothing of it is applied). An
	// error means the transaction is lost: no write of the group happened.
	RunBatch(ws []*Write[F]) (rest []*Write[F], err error)
}

// Begin starts the transaction for a group. ctx ends when every caller of
// the group has gone (none waits for the outcome) and, when every caller
// has a deadline, at the latest of them; no one caller's cancellation
// reaches it, since an interrupted statement would lose the whole group.
type Begin[F any] func(ctx context.Context) (Tx[F], error)

// Committer gathers writes into groups and runs each group in one
// transaction from begin, one group at a time, until Close.
type Committer[F any] struct {
	max     int
	begin   Begin[F]
	writes  chan *Write[F] // to the committer; unbuffered
	waiting atomic.Int64   // writes submitted and not yet taken into a group
	closing chan struct{}  // closed by Close
	stopped chan struct{}  // closed when the committer has returned
	once    sync.Once

	testHookGroup func(size int) // see SetTestHookGroup

	stats stats // see Stats
}

// New starts a committer that runs groups of up to max writes, each group
// in a transaction from begin.
func New[F any](max int, begin Begin[F]) *Committer[F] {
	c := &Committer[F]{max: max, begin: begin,
		writes: make(chan *Write[F]), closing: make(chan struct{}), stopped: make(chan struct{})}
	go c.loop()
	return c
}

// Submit hands fn to the next group and returns the write, to wait on its
// Done. It fails with ctx's error when ctx ends before a group takes the
// write, and with closed once Close has begun.
func (c *Committer[F]) Submit(ctx context.Context, fn F, closed error) (*Write[F], error) {
	w := &Write[F]{Ctx: ctx, Fn: fn, done: make(chan struct{})}
	c.waiting.Add(1)
	select {
	case c.writes <- w:
		return w, nil
	case <-ctx.Done():
		c.waiting.Add(-1)
		return nil, ctx.Err()
	case <-c.closing:
		c.waiting.Add(-1)
		return nil, closed
	}
}

// Waiting returns how many writes wait to be taken into a group.
func (c *Committer[F]) Waiting() int64 { return c.waiting.Load() }

// SetTestHookGroup has f called with each group's size before the group
// commits, for tests to hold the committer. Set it while no write is
// pending.
func (c *Committer[F]) SetTestHookGroup(f func(size int)) { c.testHookGroup = f }

// Close stops taking writes and waits for the group being committed. A
// write submitted afterwards fails; one already waiting may still be taken
// into a last group, or fail.
func (c *Committer[F]) Close() {
	c.once.Do(func() {
		close(c.closing)
		<-c.stopped
	})
}

// loop commits groups until Close: it waits for one write, takes every
// other write already waiting (up to max), and commits them together.
func (c *Committer[F]) loop() {
	defer close(c.stopped)
	group := make([]*Write[F], 0, c.max)
	for {
		select {
		case w := <-c.writes:
			group = append(group[:0], w)
		case <-c.closing:
			return
		}
	more:
		for len(group) < c.max {
			select {
			case w := <-c.writes:
				group = append(group, w)
			default:
				break more
			}
		}
		c.waiting.Add(-int64(len(group)))
		if c.testHookGroup != nil {
			c.testHookGroup(len(group))
		}
		start := time.Now()
		c.commit(group)
		c.stats.observe(len(group), time.Since(start))
		for _, w := range group {
			close(w.done)
		}
		clear(group)
	}
}

// commit runs group in one transaction and commits it once, so the group
// shares one commit (and one fsync). Each write runs in its own savepoint:
// a write that fails (a name already taken, say) is undone alone and the
// others go on. A write whose caller gave up before the group began is
// skipped. Should the transaction itself fail, every write of the group
// fails: none is acknowledged unless the commit succeeded.
func (c *Committer[F]) commit(group []*Write[F]) {
	ctx, cancel := groupContext(group)
	defer cancel()
	var applied []*Write[F]
	// lost fails every write the transaction applied and every write from
	// live[from:] on that has no outcome yet: none of them happened.
	var live []*Write[F]
	lost := func(from int, err error) {
		for _, w := range applied {
			w.Rev, w.Err = 0, err
		}
		for _, w := range live[from:] {
			if w.Err == nil {
				w.Err = err
			}
		}
	}
	tx, err := c.begin(ctx)
	if err != nil {
		for _, w := range group {
			if w.Err == nil {
				w.Err = err
			}
		}
		return
	}
	defer tx.Rollback()
	var rev int64
	live = make([]*Write[F], 0, len(group)) // the writes whose callers wait
	for _, w := range group {
		if err := w.Ctx.Err(); err != nil {
			w.Err = err
			continue
		}
		live = append(live, w)
	}
	if b, ok := tx.(BatchTx[F]); ok && len(live) > 0 {
		rest, err := b.RunBatch(live)
		if err != nil {
			for _, w := range live {
				w.Rev, w.Err = 0, err
			}
			return
		}
		// rest is a subsequence of live: walk both.
		j := 0
		for _, w := range live {
			if j < len(rest) && rest[j] == w {
				j++
				continue
			}
			switch {
			case w.Err != nil:
			case w.Rev == 0:
				w.Err = errNoOutcome
			default:
				rev = max(rev, w.Rev)
				applied = append(applied, w)
			}
		}
		if j != len(rest) {
			for _, w := range live {
				w.Rev, w.Err = 0, errNoOutcome
			}
			return
		}
		live = rest
	}
	for i, w := range live {
		if err := tx.Savepoint(); err != nil {
			lost(i, err)
			return
		}
		if err := tx.Run(w); err != nil {
			w.Err = err
			// Some failures (a full disk, an I/O error) end the whole
			// transaction, and the savepoint with it: then every write
			// so far is lost, this one having its own error already.
			if err := tx.RollbackTo(); err != nil {
				lost(i+1, err)
				return
			}
			continue
		}
		r, err := tx.Release()
		if err != nil {
			lost(i, err)
			return
		}
		rev, w.Rev = r, r
		applied = append(applied, w)
	}
	if len(applied) == 0 {
		return
	}
	if err := tx.Commit(rev); err != nil {
		lost(len(live), err)
	}
}

// errNoOutcome is what a write gets when a BatchTx took it and gave it
// neither a revision nor an error, or returned a rest that is not a
// subsequence of the writes it got: a store's bug, never acknowledged.
var errNoOutcome = errors.New("groupcommit: the batch left a write without an outcome")

// groupContext returns the context a group's transaction runs with (see
// Begin).
func groupContext[F any](group []*Write[F]) (context.Context, context.CancelFunc) {
	var last time.Time
	for _, w := range group {
		d, ok := w.Ctx.Deadline()
		if !ok {
			last = time.Time{}
			break
		}
		if d.After(last) {
			last = d
		}
	}
	var ctx context.Context
	var cancel context.CancelFunc
	if last.IsZero() {
		ctx, cancel = context.WithCancel(context.Background())
	} else {
		ctx, cancel = context.WithDeadline(context.Background(), last)
	}
	var left atomic.Int64 // callers still waiting
	left.Store(int64(len(group)))
	stops := make([]func() bool, 0, len(group))
	for _, w := range group {
		stops = append(stops, context.AfterFunc(w.Ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		}))
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

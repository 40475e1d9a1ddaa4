// Package groupcommit commits concurrent writes in groups. One goroutine
// takes a write, then every other write already waiting (up to a limit),
// and hands them to the store to run in one transaction: while a group
// commits, the next one gathers, so concurrent writers share commits and
// flushes to disk instead of queueing for one each.
//
// What a write is, and how a group runs, is the store's: a Committer only
// gathers writes and tells each caller its outcome.
package groupcommit

import (
	"context"
	"sync"
	"sync/atomic"
)

// Write is one caller's write. The store's commit function sets Rev or Err
// for each write of its group.
type Write[F any] struct {
	Ctx  context.Context // the caller's
	Fn   F               // what to run, in the store's terms
	Rev  int64           // the revision after the write, once done
	Err  error           // why the write failed, once done
	done chan struct{}
}

// Done is closed once the write's group has finished, committed or not.
func (w *Write[F]) Done() <-chan struct{} { return w.done }

// Committer gathers writes into groups and runs each group through commit,
// one group at a time, until Close.
type Committer[F any] struct {
	max     int
	commit  func(group []*Write[F])
	writes  chan *Write[F] // to the committer; unbuffered
	waiting atomic.Int64   // writes submitted and not yet taken into a group
	closing chan struct{}  // closed by Close
	stopped chan struct{}  // closed when the committer has returned
	once    sync.Once

	testHookGroup func(size int) // see SetTestHookGroup
}

// New starts a committer that runs groups of up to max writes through
// commit. commit must set each write's Rev or Err; the committer then
// closes the writes' Done channels.
func New[F any](max int, commit func(group []*Write[F])) *Committer[F] {
	c := &Committer[F]{max: max, commit: commit,
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
		c.commit(group)
		for _, w := range group {
			close(w.done)
		}
		clear(group)
	}
}

// Fail records that a group's transaction is lost, with err: every write
// in applied (which the transaction had applied) fails, and so does every
// write in rest that has no outcome yet.
func Fail[F any](applied, rest []*Write[F], err error) {
	for _, w := range applied {
		w.Rev, w.Err = 0, err
	}
	for _, w := range rest {
		if w.Err == nil {
			w.Err = err
		}
	}
}

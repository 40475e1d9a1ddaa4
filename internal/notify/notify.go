// Package notify lets goroutines wait for the directory's revision to move
// past a point, without polling.
package notify

import (
	"context"
	"sync"
)

// Latest holds the latest revision and wakes its waiters when it advances.
// The zero value is ready to use.
type Latest struct {
	mu  sync.Mutex
	rev int64         // guarded by mu
	ch  chan struct{} // guarded by mu; closed and replaced when rev advances
}

// Advance records rev as the latest revision if it is newer, and wakes every
// waiter.
func (l *Latest) Advance(rev int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if rev <= l.rev {
		return
	}
	l.rev = rev
	if l.ch != nil {
		close(l.ch)
		l.ch = nil
	}
}

// Get returns the latest revision.
func (l *Latest) Get() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rev
}

// Wait blocks until the latest revision is beyond after, or ctx ends, in
// which case it returns ctx's error.
func (l *Latest) Wait(ctx context.Context, after int64) error {
	l.mu.Lock()
	if l.rev > after {
		l.mu.Unlock()
		return nil
	}
	if l.ch == nil {
		l.ch = make(chan struct{})
	}
	ch := l.ch
	l.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

package people

import "sync"

// RecentChanges keeps the changes a store's own groups of writes committed
// last, in memory, exactly as the store's Changes would read them back, so
// that this process's readers (its read cache, as a rule, which reads each
// group back as soon as it commits) need not read the log for them. A
// store adds a group's changes once the group has committed and before it
// announces the group's revision, so that the reader it wakes finds them.
// The zero value keeps nothing; set Keep.
type RecentChanges struct {
	// Keep is how many changes it holds at least, once as many were
	// added; it holds fewer than a group more, so that a reader one group
	// behind usually still finds its changes.
	Keep int

	mu     sync.Mutex // guards the fields below
	groups [][]Change // oldest first; none is modified once added
	n      int        // the changes in groups
}

// Add keeps the changes a group committed, revisions first+1 on, which
// nobody may modify afterwards. When they do not follow the ones kept
// (another write came between), they replace them.
func (r *RecentChanges) Add(first int64, changes []Change) {
	if len(changes) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == 0 || r.end() != first {
		r.reset()
	}
	r.groups = append(r.groups, changes)
	r.n += len(changes)
	for r.n-len(r.groups[0]) >= r.Keep {
		r.n -= len(r.groups[0])
		r.groups[0] = nil
		r.groups = r.groups[1:]
	}
}

// Len returns how many changes are kept.
func (r *RecentChanges) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

func (r *RecentChanges) reset() {
	clear(r.groups)
	r.groups, r.n = r.groups[:0], 0
}

// end returns the revision of the last change kept.
func (r *RecentChanges) end() int64 {
	last := r.groups[len(r.groups)-1]
	return last[len(last)-1].Revision
}

// After returns up to limit of the kept changes after revision after, as
// the log would: when they hold the change after after, which is newer
// than pruned (the log holds no change at or before pruned), and either
// limit changes or every change up to latest, the latest revision the
// store knows of. ok is false otherwise, and the log must be read.
func (r *RecentChanges) After(after, pruned, latest int64, limit int) (out []Change, ok bool) {
	if after < pruned || limit <= 0 {
		return nil, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == 0 {
		return nil, false
	}
	end := r.end()
	if after < end-int64(r.n) || after >= end || end < min(latest, after+int64(limit)) {
		return nil, false
	}
	out = make([]Change, 0, min(int64(limit), end-after))
	for _, g := range r.groups {
		if len(out) == limit {
			break
		}
		if g[len(g)-1].Revision <= after {
			continue
		}
		from := max(0, int(after+1-g[0].Revision))
		out = append(out, g[from:min(len(g), from+limit-len(out))]...)
	}
	return out, true
}

// RecentReader is a store that keeps its own last changes in memory
// (RecentChanges) and lets this process's readers have them without
// reading the log.
type RecentReader interface {
	// Recent returns up to limit changes after revision after, exactly as
	// Changes would, when the store holds the change after after in
	// memory; ok is false otherwise. An answer from memory does not show
	// that no newer change exists: it may end before the latest revision,
	// and the store may not yet know of changes other processes made.
	Recent(after int64, limit int) (changes []Change, ok bool)
}

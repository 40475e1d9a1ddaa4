package sqlite

import (
	"slices"
	"sync"
	"time"

	"github.com/routeguide/routeguide/internal/people"
)

// After each group of writes commits, the read cache reads the group's
// changes back from the log (as every watcher does): two queries and a
// row decoded per change, a tenth of the server's CPU under a load of
// concurrent additions. So the Store keeps the changes of its last groups
// in memory, exactly as Changes would read them back, and Changes answers
// from them when they hold the change asked for. As with an import's
// changes (imported.go), one process serves one file, so no change can
// reach the file other than through this Store; a group's changes are
// kept only once it has committed, and before its revision is announced
// to WaitChange, so that the reader it wakes finds them.

// recentKept is how many changes recentChanges holds at least, once as
// many were committed: a full group's. It holds at most twice as many, so
// a reader one group behind usually still finds its changes. At
// people.MaxPersonBytes each, with their origins, that is some 6 MiB at
// worst; a few hundred KiB for people as they usually are.
const recentKept = maxGroup

// recentChanges are the changes of the groups committed last, revisions
// first+1 to first+len(changes), without a gap.
type recentChanges struct {
	mu      sync.Mutex // guards the fields below
	first   int64
	changes []people.Change
}

// add keeps the changes a group committed, revisions first+1 on. When
// they do not follow the ones kept (an import came between), they replace
// them.
func (r *recentChanges) add(first int64, changes []people.Change) {
	if len(changes) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.changes) == 0 || first != r.first+int64(len(r.changes)) {
		r.first, r.changes = first, nil
	}
	r.changes = append(r.changes, changes...)
	if len(r.changes) > 2*recentKept {
		// Only the last recentKept stay, in a new array: the slice is
		// copied once per recentKept changes or more, and the array
		// dropped holds none of the people let go.
		drop := len(r.changes) - recentKept
		kept := make([]people.Change, recentKept, 2*recentKept)
		copy(kept, r.changes[drop:])
		r.first += int64(drop)
		r.changes = kept
	}
}

// after returns up to limit of the kept changes after revision after, as
// the log would: when they hold the change after after, which is newer
// than pruned (the log holds no change at or before pruned), and either
// limit changes or every change up to latest, the latest revision
// announced. ok is false otherwise, and the log must be read.
func (r *recentChanges) after(after, pruned, latest int64, limit int) (out []people.Change, ok bool) {
	if after < pruned || limit <= 0 {
		return nil, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	end := r.first + int64(len(r.changes))
	if after < r.first || after >= end || end < min(latest, after+int64(limit)) {
		return nil, false
	}
	from := int(after - r.first)
	to := min(len(r.changes), from+limit)
	return slices.Clone(r.changes[from:to]), true
}

// reset forgets every kept change.
func (r *recentChanges) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.first, r.changes = 0, nil
}

// asRead returns the change a group logs, as scanChange reads it back:
// hobbies as decodeHobbies reads hobbies, the column personArgs wrote them
// to, and the origin's time to the millisecond in local time.
func asRead(rev int64, typ people.ChangeType, p people.Person, hobbies string, origin people.Origin) (people.Change, error) {
	var err error
	if p.Hobbies, err = decodeHobbies(hobbies); err != nil {
		return people.Change{}, err
	}
	if ms := origin.Time.UnixMilli(); ms != 0 {
		origin.Time = time.UnixMilli(ms)
	} else {
		origin.Time = time.Time{}
	}
	return people.Change{Revision: rev, Type: typ, Person: p, Origin: origin}, nil
}

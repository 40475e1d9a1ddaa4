package sqlite

import (
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
// many were committed: a full group's. It holds fewer than maxGroup more,
// so a reader one group behind usually still finds its changes. At
// people.MaxPersonBytes each, with their origins, that is some 6 MiB at
// worst; a few hundred KiB for people as they usually are.
const recentKept = maxGroup

// recentChanges are the changes of the groups committed last, each
// group's as it logged them, their revisions following one another
// without a gap.
type recentChanges struct {
	mu     sync.Mutex        // guards the fields below
	groups [][]people.Change // oldest first; none is modified once added
	n      int               // the changes in groups
}

// add keeps the changes a group committed, revisions first+1 on, which
// nobody may modify afterwards. When they do not follow the ones kept (an
// import came between), they replace them.
func (r *recentChanges) add(first int64, changes []people.Change) {
	if len(changes) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == 0 || r.end() != first {
		clear(r.groups)
		r.groups, r.n = r.groups[:0], 0
	}
	r.groups = append(r.groups, changes)
	r.n += len(changes)
	for r.n-len(r.groups[0]) >= recentKept {
		r.n -= len(r.groups[0])
		r.groups[0] = nil
		r.groups = r.groups[1:]
	}
}

// end returns the revision of the last change kept.
func (r *recentChanges) end() int64 {
	last := r.groups[len(r.groups)-1]
	return last[len(last)-1].Revision
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
	if r.n == 0 {
		return nil, false
	}
	end := r.end()
	if after < end-int64(r.n) || after >= end || end < min(latest, after+int64(limit)) {
		return nil, false
	}
	out = make([]people.Change, 0, min(int64(limit), end-after))
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

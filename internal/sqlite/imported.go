package sqlite

import (
	"slices"
	"time"

	"github.com/routeguide/routeguide/internal/people"
)

// An import logs a change for nearly every person it stores, and the read
// cache then reads each of them back from the log (as every watcher
// does), decoding rows it had just written: a fifth of the server's CPU
// in an import of a million people. So the Store keeps the changes of its
// last import transaction in memory, exactly as Changes would read them
// back, and Changes answers from them; the first read that reaches their
// end (the cache's, as a rule) lets them go, and any later read of them
// goes to the file. One process serves one file, so no change can reach
// the file other than through this Store.

// importedChanges are the changes of one committed import, revisions
// first+1 to first+len(changes).
type importedChanges struct {
	first   int64
	changes []people.Change
}

// keepImported keeps the changes an import committed: types[i] says what
// batch[i]'s change is (0 for none), origin who made them, and before and
// rev are the latest revisions before and after them. When the revisions
// between are not exactly the import's changes, it keeps none.
func (s *Store) keepImported(batch []people.Person, types []people.ChangeType, origin people.Origin, before, rev int64) {
	n := 0
	for _, t := range types {
		if t != 0 {
			n++
		}
	}
	if n == 0 || rev-before != int64(n) {
		return
	}
	// What scanChange reads back: the time to the millisecond, in local
	// time, and no hobbies as nil.
	if ms := origin.Time.UnixMilli(); ms != 0 {
		origin.Time = time.UnixMilli(ms)
	} else {
		origin.Time = time.Time{}
	}
	changes := make([]people.Change, 0, n)
	for i, p := range batch {
		if types[i] == 0 {
			continue
		}
		if len(p.Hobbies) == 0 {
			p.Hobbies = nil
		}
		changes = append(changes, people.Change{Revision: before + int64(len(changes)) + 1, Type: types[i], Person: p, Origin: origin})
	}
	s.imported.Store(&importedChanges{first: before, changes: changes})
}

// importedAfter returns up to limit of the kept import's changes after
// revision after and no later than latest, when it holds the change after
// after. The read that returns its last change lets it go.
func (s *Store) importedAfter(after, latest int64, limit int) ([]people.Change, bool) {
	im := s.imported.Load()
	if im == nil || after < im.first || after >= im.first+int64(len(im.changes)) || limit <= 0 {
		return nil, false
	}
	from := int(after - im.first)
	to := min(len(im.changes), from+limit, int(latest-im.first))
	if to <= from {
		return nil, false
	}
	if to == len(im.changes) {
		s.imported.CompareAndSwap(im, nil)
	}
	return slices.Clone(im.changes[from:to]), true
}

package postgres

import (
	"context"
	"slices"
	"time"

	"github.com/routeguide/routeguide/internal/people"
)

// An import of new people logs a change for each of them, and the read
// cache then reads each back from the log (as every watcher does), the
// database sending and the server decoding rows it had just written. So
// the Store keeps the changes of its last import transaction that added
// every person of its batch, exactly as Changes would read them back, and
// Changes answers this replica's readers from them once one point lookup
// has found the first change asked for still in the log (retention drops
// the oldest changes first, so the later ones are there too). The first
// read that reaches their end (the cache's, as a rule) lets them go; any
// later read of them goes to the database. The import held the write
// lock, so the revisions it logged are its own changes and no other
// replica's; other replicas read them from the log.

// importedChanges are the changes of one committed import, revisions
// first+1 to first+len(changes).
type importedChanges struct {
	first   int64
	changes []people.Change
}

// keepImported keeps the changes of an import that added each person of
// batch, made by origin, as the revisions up to rev.
func (s *Store) keepImported(batch []people.Person, origin people.Origin, rev int64) {
	if len(batch) == 0 {
		return
	}
	// What scanChange reads back: the time to the millisecond, in local
	// time.
	if ms := origin.Time.UnixMilli(); ms != 0 {
		origin.Time = time.UnixMilli(ms)
	} else {
		origin.Time = time.Time{}
	}
	first := rev - int64(len(batch))
	changes := make([]people.Change, len(batch))
	for i, p := range batch {
		p.Hobbies = hobbies(p.Hobbies)
		changes[i] = people.Change{Revision: first + int64(i) + 1, Type: people.Added, Person: p, Origin: origin}
	}
	s.imported.Store(&importedChanges{first: first, changes: changes})
}

// importedAfter returns up to limit of the kept import's changes after
// revision after, when it holds the change after after and the log still
// does; ok is false when the log must be read. The read that returns its
// last change lets it go.
func (s *Store) importedAfter(ctx context.Context, q querier, after int64, limit int) (out []people.Change, ok bool, err error) {
	im := s.imported.Load()
	if im == nil || after < im.first || after >= im.first+int64(len(im.changes)) || limit <= 0 {
		return nil, false, nil
	}
	var kept bool
	if err := q.QueryRow(ctx, "SELECT EXISTS (SELECT FROM changes WHERE revision = $1)", after+1).Scan(&kept); err != nil || !kept {
		return nil, false, err
	}
	from := int(after - im.first)
	to := min(len(im.changes), from+limit)
	if to == len(im.changes) {
		s.imported.CompareAndSwap(im, nil)
	}
	return slices.Clone(im.changes[from:to]), true, nil
}

// Package memory is a people directory held in process memory. It keeps
// nothing across restarts; `routeguide serve --store memory` uses it.
package memory

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/routeguide/routeguide/internal/notify"
	"github.com/routeguide/routeguide/internal/people"
)

// DefaultRetain is how many recent changes a Store keeps for watchers that
// resume from a revision.
const DefaultRetain = 100_000

// Store is an in-memory directory, safe for concurrent use.
type Store struct {
	retain int
	latest notify.Latest

	mu      sync.RWMutex
	byName  map[string]people.Person // guarded by mu; values are never mutated in place
	names   []string                 // guarded by mu; every key of byName, sorted
	byCity  index                    // guarded by mu; names by city
	byHobby index                    // guarded by mu; names by hobby
	changes []people.Change          // guarded by mu; the last retain changes, oldest first (see record)
	rev     int64                    // guarded by mu; the latest revision
	keys    requests                 // guarded by mu; the request ids of recent writes
}

var _ people.Store = (*Store)(nil)

// New returns a Store that keeps the last retain changes (DefaultRetain when
// retain is 0) and holds the given people, each added as a change.
func New(retain int, initial ...people.Person) *Store {
	if retain <= 0 {
		retain = DefaultRetain
	}
	s := &Store{retain: retain, byName: make(map[string]people.Person, len(initial)), byCity: index{}, byHobby: index{}}
	for _, p := range initial {
		s.put(p, people.Origin{})
	}
	s.latest.Advance(s.rev)
	return s
}

// Person returns the person named name, or an error of kind people.NotFound.
func (s *Store) Person(_ context.Context, name string) (people.Person, error) {
	s.mu.RLock()
	p, ok := s.byName[name]
	s.mu.RUnlock()
	if !ok {
		return people.Person{}, notFound(name)
	}
	return clone(p), nil
}

// Add stores p; AlreadyExists when the name is taken.
func (s *Store) Add(ctx context.Context, p people.Person) (int64, error) {
	w := people.WriteOf(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.once(w, func() (people.Outcome, error) {
		if _, ok := s.byName[p.Name]; ok {
			return people.Outcome{}, people.Errorf(people.AlreadyExists, "%q already exists", p.Name)
		}
		s.put(p, w.Origin)
		return people.Outcome{Revision: s.rev}, nil
	})
	s.latest.Advance(s.rev)
	return o.Revision, err
}

// Update applies u to the person named name; NotFound when nobody has it,
// Invalid when the result breaks the rules, Aborted when the Write's etag
// is not the person's.
func (s *Store) Update(ctx context.Context, name string, u people.Update) (people.Person, int64, error) {
	w := people.WriteOf(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.once(w, func() (people.Outcome, error) {
		old, ok := s.byName[name]
		if !ok {
			return people.Outcome{}, notFound(name)
		}
		if err := w.CheckETag(old); err != nil {
			return people.Outcome{}, err
		}
		p := u.Apply(old)
		if err := people.Validate(p); err != nil {
			return people.Outcome{}, err
		}
		if !p.Equal(old) {
			s.put(p, w.Origin)
		}
		p = clone(s.byName[name])
		return people.Outcome{Revision: s.rev, Person: &p}, nil
	})
	s.latest.Advance(s.rev)
	if err != nil {
		return people.Person{}, 0, err
	}
	return clone(*o.Person), o.Revision, nil
}

// Delete removes the person named name; NotFound when nobody has it,
// Aborted when the Write's etag is not the person's.
func (s *Store) Delete(ctx context.Context, name string) (int64, error) {
	w := people.WriteOf(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.once(w, func() (people.Outcome, error) {
		old, ok := s.byName[name]
		if !ok {
			return people.Outcome{}, notFound(name)
		}
		if err := w.CheckETag(old); err != nil {
			return people.Outcome{}, err
		}
		delete(s.byName, name)
		s.reindex(map[string]*people.Person{name: &old})
		i, _ := slices.BinarySearch(s.names, name)
		s.names = slices.Delete(s.names, i, i+1)
		s.record(people.Deleted, people.Person{Name: name}, w.Origin)
		return people.Outcome{Revision: s.rev}, nil
	})
	s.latest.Advance(s.rev)
	return o.Revision, err
}

// List returns up to q.Limit people matching q, in name order. It walks
// the names of q's hobby or city, or everyone's, from where the page
// starts.
func (s *Store) List(_ context.Context, q people.Query) ([]people.Person, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := s.candidates(q)
	start := max(q.After, q.NamePrefix)
	i := sort.SearchStrings(names, start)
	var out []people.Person
	for ; i < len(names) && len(out) < q.Limit; i++ {
		name := names[i]
		if len(name) < len(q.NamePrefix) || name[:len(q.NamePrefix)] != q.NamePrefix {
			break // past the prefix's range
		}
		if p := s.byName[name]; q.Matches(p) {
			out = append(out, clone(p))
		}
	}
	return out, nil
}

// Import adds or replaces every person in batch.
func (s *Store) Import(ctx context.Context, batch []people.Person) (people.ImportResult, error) {
	w := people.WriteOf(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.once(w, func() (people.Outcome, error) {
		r := s.importLocked(batch, w.Origin)
		return people.Outcome{Revision: r.Revision, Import: &r}, nil
	})
	s.latest.Advance(s.rev)
	if err != nil {
		return people.ImportResult{}, err
	}
	return *o.Import, nil
}

// importLocked adds or replaces every person in batch. s.mu must be held
// for writing.
func (s *Store) importLocked(batch []people.Person, origin people.Origin) people.ImportResult {
	var r people.ImportResult
	var added []string
	before := make(map[string]*people.Person) // each name's version before the batch
	for _, p := range batch {
		p = clone(p)
		if _, seen := before[p.Name]; !seen {
			if old, ok := s.byName[p.Name]; ok {
				before[p.Name] = &old
			} else {
				before[p.Name] = nil
			}
		}
		typ := people.Updated
		if old, ok := s.byName[p.Name]; !ok {
			typ = people.Added
			added = append(added, p.Name)
			r.Added++
		} else if old.Equal(p) {
			r.Unchanged++
			continue
		} else {
			r.Updated++
		}
		s.byName[p.Name] = p
		s.record(typ, p, origin)
	}
	// One sort for the whole batch rather than an insertion per person,
	// which would cost a copy of the names each time.
	s.names = append(s.names, added...)
	slices.Sort(s.names)
	s.reindex(before)
	r.Revision = s.rev
	return r
}

// Changes returns up to limit changes after revision after.
func (s *Store) Changes(_ context.Context, after int64, limit int) ([]people.Change, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := people.CheckResume(after, s.oldestLocked(), s.rev); err != nil {
		return nil, err
	}
	i := sort.Search(len(s.changes), func(i int) bool { return s.changes[i].Revision > after })
	n := min(limit, len(s.changes)-i)
	out := make([]people.Change, n)
	for j := range out {
		c := s.changes[i+j]
		c.Person = clone(c.Person)
		out[j] = c
	}
	return out, nil
}

// History returns up to limit changes to the person named name, newest
// first.
func (s *Store) History(_ context.Context, name string, limit int) ([]people.Change, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []people.Change
	for i := len(s.changes) - 1; i >= 0 && len(out) < limit; i-- {
		if c := s.changes[i]; c.Person.Name == name {
			c.Person = clone(c.Person)
			out = append(out, c)
		}
	}
	return out, nil
}

// Revision returns the latest revision.
func (s *Store) Revision(context.Context) (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.rev, nil
}

// WaitChange blocks until a revision beyond after exists or ctx ends.
func (s *Store) WaitChange(ctx context.Context, after int64) error {
	return s.latest.Wait(ctx, after)
}

// Close does nothing; the Store needs no cleanup.
func (s *Store) Close() error { return nil }

// put stores p and records the change, returning its type. s.mu must be
// held for writing.
func (s *Store) put(p people.Person, origin people.Origin) people.ChangeType {
	p = clone(p)
	typ := people.Updated
	var old *people.Person
	if o, ok := s.byName[p.Name]; ok {
		old = &o
	} else {
		typ = people.Added
		i, _ := slices.BinarySearch(s.names, p.Name)
		s.names = slices.Insert(s.names, i, p.Name)
	}
	s.byName[p.Name] = p
	s.reindex(map[string]*people.Person{p.Name: old})
	s.record(typ, p, origin)
	return typ
}

// record appends a change with the next revision, discarding the oldest
// beyond the retention. s.mu must be held for writing.
func (s *Store) record(typ people.ChangeType, p people.Person, origin people.Origin) {
	s.rev++
	if origin != (people.Origin{}) {
		origin.Time = time.Now()
	}
	s.changes = append(s.changes, people.Change{Revision: s.rev, Type: typ, Person: p, Origin: origin})
	if len(s.changes) > s.retain {
		// Reslicing drops the oldest in constant time; once the dropped
		// part of the backing array is as large as the kept part, the kept
		// part moves to a new array, so the cost per change stays constant
		// and the memory bounded.
		s.changes = s.changes[len(s.changes)-s.retain:]
		if cap(s.changes) >= 2*s.retain+1024 {
			s.changes = slices.Clone(s.changes)
		}
	}
}

// oldestLocked returns the oldest revision still kept, or the next one when
// none is. s.mu must be held.
func (s *Store) oldestLocked() int64 {
	if len(s.changes) == 0 {
		return s.rev + 1
	}
	return s.changes[0].Revision
}

func notFound(name string) error {
	return people.Errorf(people.NotFound, "no person named %q", name)
}

// clone copies p so that callers never share the store's hobby slices.
func clone(p people.Person) people.Person {
	p.Hobbies = slices.Clone(p.Hobbies)
	return p
}

// Package memory is a people directory held in process memory. It keeps
// nothing across restarts.
package memory

import (
	"context"
	"slices"
	"sync"

	"github.com/routeguide/routeguide/internal/people"
)

// Store is an in-memory directory, safe for concurrent use.
type Store struct {
	mu     sync.RWMutex
	byName map[string]people.Person // guarded by mu; values are never mutated in place
}

var _ people.Reader = (*Store)(nil)

// New returns a Store holding the given people. A later person replaces an
// earlier one of the same name.
func New(initial ...people.Person) *Store {
	s := &Store{byName: make(map[string]people.Person, len(initial))}
	for _, p := range initial {
		s.byName[p.Name] = clone(p)
	}
	return s
}

// Person returns the person named name, or an error of kind people.NotFound.
func (s *Store) Person(_ context.Context, name string) (people.Person, error) {
	s.mu.RLock()
	p, ok := s.byName[name]
	s.mu.RUnlock()
	if !ok {
		return people.Person{}, people.Errorf(people.NotFound, "no person named %q", name)
	}
	return clone(p), nil
}

// clone copies p so that callers never share the store's hobby slices.
func clone(p people.Person) people.Person {
	p.Hobbies = slices.Clone(p.Hobbies)
	return p
}

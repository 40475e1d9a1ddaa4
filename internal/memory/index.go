package memory

import (
	"slices"

	"github.com/routeguide/routeguide/internal/people"
)

// index holds, for each value of a field (a city, a hobby), the names of
// the people with that value, sorted, so that a filtered List walks only
// the people it may return instead of every person.
type index map[string][]string

// move is one person's change in an index: it leaves the keys old and joins
// the keys new.
type move struct {
	name     string
	old, new []string
}

// update applies moves. One move costs an insertion and a removal in the
// keys' lists; many (an import) cost one pass and one sort per key touched
// rather than one copy of a list per person.
func (ix index) update(moves []move) {
	if len(moves) == 1 {
		m := moves[0]
		for _, k := range m.old {
			if s := ix[k]; len(s) > 0 {
				if i, ok := slices.BinarySearch(s, m.name); ok {
					ix.set(k, slices.Delete(s, i, i+1))
				}
			}
		}
		for _, k := range m.new {
			s := ix[k]
			if i, ok := slices.BinarySearch(s, m.name); !ok {
				ix[k] = slices.Insert(s, i, m.name)
			}
		}
		return
	}
	drop := map[string]map[string]bool{}
	add := map[string][]string{}
	for _, m := range moves {
		for _, k := range m.old {
			if drop[k] == nil {
				drop[k] = map[string]bool{}
			}
			drop[k][m.name] = true
		}
		for _, k := range m.new {
			add[k] = append(add[k], m.name)
		}
	}
	for k, names := range drop {
		ix.set(k, slices.DeleteFunc(ix[k], func(n string) bool { return names[n] }))
	}
	for k, names := range add {
		s := append(ix[k], names...)
		slices.Sort(s)
		ix.set(k, slices.Compact(s))
	}
}

// set stores the list of key k, dropping the key when the list is empty.
func (ix index) set(k string, s []string) {
	if len(s) == 0 {
		delete(ix, k)
		return
	}
	ix[k] = s
}

// cityKeys and hobbyKeys return the keys p has in each index; none for nil.
func cityKeys(p *people.Person) []string {
	if p == nil {
		return nil
	}
	return []string{p.Address.City}
}

func hobbyKeys(p *people.Person) []string {
	if p == nil {
		return nil
	}
	return p.Hobbies
}

// reindex moves each person named in before from the index keys of its
// version in before (nil: it did not exist) to those of its version now in
// byName (none when it is gone). s.mu must be held for writing.
func (s *Store) reindex(before map[string]*people.Person) {
	cities := make([]move, 0, len(before))
	hobbies := make([]move, 0, len(before))
	for name, old := range before {
		var now *people.Person
		if p, ok := s.byName[name]; ok {
			now = &p
		}
		cities = append(cities, move{name, cityKeys(old), cityKeys(now)})
		hobbies = append(hobbies, move{name, hobbyKeys(old), hobbyKeys(now)})
	}
	s.byCity.update(cities)
	s.byHobby.update(hobbies)
}

// candidates returns the sorted names List walks for q: the people of its
// hobby, else of its city, else everyone.
func (s *Store) candidates(q people.Query) []string {
	switch {
	case q.Hobby != "":
		return s.byHobby[q.Hobby]
	case q.City != "":
		return s.byCity[q.City]
	}
	return s.names
}

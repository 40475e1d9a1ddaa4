package memory

import (
	"time"

	"github.com/routeguide/routeguide/internal/people"
)

// requests holds the request ids of recent writes, with what each write
// answered, until they expire.
type requests struct {
	byID  map[string]request
	order []string // ids in the order recorded, for sweeping
}

type request struct {
	digest  string
	expires time.Time
	outcome people.Outcome
}

// once runs fn, a write, unless w's request id was recorded: then it
// answers what that write answered (see people.Write.Replay). A write with
// a request id has its outcome recorded, failures that answer the request
// (people.Failed) included. s.mu must be held for writing: the write and
// its record are one step.
func (s *Store) once(w people.Write, fn func() (people.Outcome, error)) (people.Outcome, error) {
	if !w.Keyed() {
		return fn()
	}
	now := time.Now()
	s.keys.sweep(now)
	if r, ok := s.keys.byID[w.RequestID]; ok && now.Before(r.expires) {
		o, err := w.Replay(r.digest, r.outcome)
		if err != nil {
			return people.Outcome{}, err
		}
		return o, o.Error()
	}
	o, err := fn()
	if err != nil {
		failed, ok := people.Failed(err)
		if !ok {
			return o, err
		}
		o = failed
	}
	if s.keys.byID == nil {
		s.keys.byID = make(map[string]request)
	}
	if _, ok := s.keys.byID[w.RequestID]; !ok {
		s.keys.order = append(s.keys.order, w.RequestID)
	}
	s.keys.byID[w.RequestID] = request{digest: w.Digest, expires: w.Expires, outcome: o}
	// Memory is bounded by count as well as by time: the store keeps as
	// many request ids as changes (each holds at most one person), and
	// forgets the oldest first; a retry of a forgotten write is made, or
	// refused, afresh.
	for len(s.keys.order) > s.retain {
		delete(s.keys.byID, s.keys.order[0])
		s.keys.order = s.keys.order[1:]
	}
	return o, err
}

// sweep forgets the requests recorded first, for as long as they have
// expired. Each write's expiry is its time plus the server's retention, so
// the order recorded is about the order of expiry; a request that outlives
// an older one waits for it, which costs memory, never correctness: a
// lookup checks the expiry itself.
func (r *requests) sweep(now time.Time) {
	n := 0
	for _, id := range r.order {
		if q, ok := r.byID[id]; ok && now.Before(q.expires) {
			break
		}
		delete(r.byID, id)
		n++
	}
	if n > 0 {
		r.order = r.order[n:]
		if len(r.order) == 0 {
			r.order = nil
		}
	}
}

package people

import (
	"context"
	"slices"
)

// Reader looks people up. Implementations are safe for concurrent use.
//
// Person returns the person with exactly the given name, or an error of kind
// NotFound when nobody has it; other failures carry their own kind.
type Reader interface {
	Person(ctx context.Context, name string) (Person, error)
}

// Store is a whole directory: every storage engine implements it, and
// peopletest holds the suite that defines its semantics. Every write is
// durable when it returns without error, and is recorded as a Change with
// the next revision. Implementations are safe for concurrent use.
//
// Each write honours the Write its context carries (WriteOf): an Update or
// Delete whose IfMatch is not the person's etag fails with Aborted, checked
// in the write's transaction; the change records the Origin; and a write
// with a request id records it, with its outcome, in the same transaction,
// answering a repeat of it with that outcome (Write.Replay) until it
// expires.
type Store interface {
	Reader

	// Add stores p, which must be valid and normalized, and returns the
	// change's revision. It fails with AlreadyExists when the name is taken.
	Add(ctx context.Context, p Person) (int64, error)
	// Update applies u to the person named name and returns the result and
	// the change's revision. It fails with NotFound when nobody has the name.
	// The result is validated before it is stored. An update that changes
	// nothing (no field, or every field to its stored value) records
	// nothing: it returns the stored person and the latest revision.
	Update(ctx context.Context, name string, u Update) (Person, int64, error)
	// Delete removes the person named name and returns the change's
	// revision. It fails with NotFound when nobody has the name.
	Delete(ctx context.Context, name string) (int64, error)
	// List returns up to q.Limit people matching q, ordered by name (byte
	// order), with names after q.After.
	List(ctx context.Context, q Query) ([]Person, error)
	// Import adds or replaces each person, which must be valid and
	// normalized, in one transaction: all are stored or none. A person
	// equal to the one stored is counted unchanged and records nothing.
	Import(ctx context.Context, batch []Person) (ImportResult, error)
	// Changes returns up to limit changes with revisions after after, in
	// revision order. It fails with OutOfRange when changes after after have
	// been discarded, or when after is beyond the latest revision.
	Changes(ctx context.Context, after int64, limit int) ([]Change, error)
	// History returns up to limit of the changes to the person named name
	// still in the change log, newest first; none when there are none.
	History(ctx context.Context, name string, limit int) ([]Change, error)
	// Revision returns the latest revision.
	Revision(ctx context.Context) (int64, error)
	// WaitChange blocks until the latest revision is beyond after, or ctx
	// ends (returning its error). It may return early; callers re-check.
	WaitChange(ctx context.Context, after int64) error
	// Close releases the store's resources.
	Close() error
}

// Pinger is implemented by a store that can lose its connection to a
// database, so that a server can tell whether the store is reachable.
//
// Ping returns nil when the store can answer now, and an error (of kind
// Unavailable when the database cannot be reached) when it cannot, or when
// ctx ends first.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Field is one part of a person that an Update may change.
type Field uint8

// The fields an Update may change. The name is the key and never changes.
const (
	FieldAge Field = 1 << iota
	FieldGender
	FieldHobbies
	FieldStreet
	FieldCity
)

// AllFields names every field an Update may change.
const AllFields = FieldAge | FieldGender | FieldHobbies | FieldStreet | FieldCity

// Update changes the Fields of a person to their values in To.
type Update struct {
	Fields Field
	To     Person
}

// Apply returns p with u's fields changed. p is not modified.
func (u Update) Apply(p Person) Person {
	if u.Fields&FieldAge != 0 {
		p.Age = u.To.Age
	}
	if u.Fields&FieldGender != 0 {
		p.Gender = u.To.Gender
	}
	if u.Fields&FieldHobbies != 0 {
		p.Hobbies = slices.Clone(u.To.Hobbies)
	}
	if u.Fields&FieldStreet != 0 {
		p.Address.Street = u.To.Address.Street
	}
	if u.Fields&FieldCity != 0 {
		p.Address.City = u.To.Address.City
	}
	return p
}

// Query selects people for List. Empty filters match everyone.
type Query struct {
	City       string // exactly this city
	Hobby      string // has exactly this hobby
	NamePrefix string // name starts with this
	After      string // name sorts after this, for the next page
	Limit      int    // at most this many; must be positive
}

// Matches reports whether p passes q's filters (City, Hobby, NamePrefix and
// After).
func (q Query) Matches(p Person) bool {
	return (q.City == "" || p.Address.City == q.City) &&
		(q.Hobby == "" || slices.Contains(p.Hobbies, q.Hobby)) &&
		len(p.Name) >= len(q.NamePrefix) && p.Name[:len(q.NamePrefix)] == q.NamePrefix &&
		p.Name > q.After
}

// ChangeType says what a change did.
type ChangeType uint8

// The change types.
const (
	Added ChangeType = iota + 1
	Updated
	Deleted
)

// String returns "added", "updated" or "deleted".
func (t ChangeType) String() string {
	switch t {
	case Added:
		return "added"
	case Updated:
		return "updated"
	case Deleted:
		return "deleted"
	}
	return "change"
}

// Change is one write to the directory. For a deletion, Person holds only
// the name.
type Change struct {
	Revision int64
	Type     ChangeType
	Person   Person
	Origin   Origin // who made the change, from where, with which request id
}

// ImportResult counts what an Import did.
type ImportResult struct {
	Added, Updated, Unchanged int64
	Revision                  int64 // the revision of the import's last change
}

// CheckResume returns the error Changes reports for resuming after revision
// after, when the oldest change still kept has revision oldest (latest+1
// when none is kept) and the latest is latest; nil when resuming is possible.
func CheckResume(after, oldest, latest int64) error {
	switch {
	case after < 0:
		return Errorf(Invalid, "revision %d is negative", after)
	case after > latest:
		return Errorf(OutOfRange, "revision %d is beyond the latest, %d", after, latest)
	case after+1 < oldest:
		return Errorf(OutOfRange, "changes after revision %d are no longer kept (the oldest kept is %d); start again with the current people", after, oldest)
	}
	return nil
}

// PrefixEnd returns the least string greater than every string that starts
// with prefix, for a range scan name >= prefix AND name < end in byte order.
// ok is false when there is no such bound (an empty prefix, or one made only
// of U+10FFFF). The result is valid UTF-8.
func PrefixEnd(prefix string) (end string, ok bool) {
	runes := []rune(prefix)
	for i := len(runes) - 1; i >= 0; i-- {
		r := runes[i] + 1
		if r == 0xD800 { // skip the surrogates, which UTF-8 cannot hold
			r = 0xE000
		}
		if r <= 0x10FFFF {
			runes[i] = r
			return string(runes[:i+1]), true
		}
	}
	return "", false
}

// CheckContiguous returns the error Changes reports when the changes it read
// after revision after do not start right after it: the log was trimmed
// between reading its bounds and reading the changes. latest is the latest
// revision read with the bounds. It returns nil when nothing was skipped.
func CheckContiguous(after, latest int64, changes []Change) error {
	if (len(changes) > 0 && changes[0].Revision != after+1) || (len(changes) == 0 && after < latest) {
		return Errorf(OutOfRange, "changes after revision %d are no longer kept; start again with the current people", after)
	}
	return nil
}

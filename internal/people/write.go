package people

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Origin says where a change came from: it is recorded with the change in
// the change log, and watchers and `routeguide history` show it.
type Origin struct {
	Principal string    // who: a token's name, a certificate's subject, or "local"
	Peer      string    // the caller's address
	RequestID string    // the write's request id; "" when it carried none
	Time      time.Time // when the store made the change; zero in changes older than the audit trail
}

// Write is what a store learns about a write beyond its arguments: where it
// comes from, the etag it is conditional on, and its request id. The gRPC
// service attaches one to each write's context (WithWrite); a write
// without one is unconditional, has no request id, and records an empty
// origin.
type Write struct {
	Origin
	// IfMatch, when not empty, is the etag (ETag) the person must still
	// have when the write's transaction reads it: an Update or a Delete of
	// a person whose etag differs fails with Aborted and changes nothing.
	IfMatch string
	// Digest identifies the request the request id came with (the method,
	// the caller and the request's content). With Origin.RequestID set, the
	// store records the id, the digest and the write's outcome in the
	// write's own transaction; a later write with the same id and digest,
	// until Expires, answers that outcome and changes nothing, and one with
	// another digest fails with Invalid, naming request_id.
	Digest string
	// Expires is when the store may forget the request id.
	Expires time.Time
}

// Keyed reports whether w carries a request id the store must record.
func (w Write) Keyed() bool { return w.RequestID != "" }

type writeKey struct{}

// WithWrite returns ctx carrying w, for the store the write reaches.
func WithWrite(ctx context.Context, w Write) context.Context {
	return context.WithValue(ctx, writeKey{}, w)
}

// WriteOf returns the Write ctx carries, or the zero Write.
func WriteOf(ctx context.Context) Write {
	w, _ := ctx.Value(writeKey{}).(Write)
	return w
}

// ETag returns p's etag: a digest of every field, so that it changes with
// every change to the person (an update that changes nothing is no change,
// and keeps it). Equal people have equal etags: a person deleted and added
// again with the same values has the etag it had, and a write conditional
// on it is made against the same state it read.
func ETag(p Person) string {
	sum := ETagSum(p)
	return ETagString(sum)
}

// ETagSum returns p's etag as the 8 bytes its text (ETag) spells in hex:
// what a holder of many people keeps, where the text would cost 16 bytes
// and a string header each.
func ETagSum(p Person) [8]byte {
	h := sha256.New()
	var n [8]byte
	str := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	str(p.Name)
	binary.BigEndian.PutUint64(n[:], uint64(uint32(p.Age))<<32|uint64(uint32(p.Gender)))
	h.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(len(p.Hobbies)))
	h.Write(n[:])
	for _, hb := range p.Hobbies {
		str(hb)
	}
	str(p.Address.Street)
	str(p.Address.City)
	var sum [sha256.Size]byte
	return [8]byte(h.Sum(sum[:0]))
}

// ETagString returns the etag whose 8 bytes are sum (ETagSum): ETag's text.
func ETagString(sum [8]byte) string {
	return hex.EncodeToString(sum[:])
}

// CheckETag returns nil when w carries no etag or p's etag is w's, and an
// Aborted error naming the person otherwise.
func (w Write) CheckETag(p Person) error {
	if w.IfMatch == "" || w.IfMatch == ETag(p) {
		return nil
	}
	return Errorf(Aborted, "%q changed since it was read (etag %s, now %s); read it again and retry", p.Name, w.IfMatch, ETag(p))
}

// Outcome is a write's answer as recorded with its request id, to be
// answered again to a retry.
type Outcome struct {
	Revision int64         `json:"revision,omitempty"`
	Person   *Person       `json:"person,omitempty"` // an Update's result
	Import   *ImportResult `json:"import,omitempty"` // an Import's counts
	Err      *Error        `json:"error,omitempty"`  // the write's error, when it failed
}

// Failed returns the outcome of a write that failed with err, and whether
// the failure is an answer to record: a refusal of the request as it was
// (invalid, not found, taken, aborted), which a retry would meet again.
// A failure of the directory itself (unavailable, internal) is not: the
// retry should get another chance.
func Failed(err error) (Outcome, bool) {
	var e *Error
	if !errors.As(err, &e) {
		return Outcome{}, false
	}
	switch e.Kind {
	case Invalid, NotFound, AlreadyExists, Aborted:
		return Outcome{Err: &Error{Kind: e.Kind, Message: e.Message, Violations: e.Violations}}, true
	}
	return Outcome{}, false
}

// Error returns the outcome's error, or nil when the write succeeded.
func (o Outcome) Error() error {
	if o.Err == nil {
		return nil
	}
	return o.Err
}

// MarshalJSON and UnmarshalJSON let an Error travel in an Outcome: only its
// kind, message and violations, never the underlying error.
func (e *Error) MarshalJSON() ([]byte, error) {
	return json.Marshal(errorJSON{Kind: e.Kind, Message: e.Message, Violations: e.Violations})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (e *Error) UnmarshalJSON(b []byte) error {
	var j errorJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*e = Error{Kind: j.Kind, Message: j.Message, Violations: j.Violations}
	return nil
}

type errorJSON struct {
	Kind       Kind             `json:"kind"`
	Message    string           `json:"message"`
	Violations []FieldViolation `json:"violations,omitempty"`
}

// EncodeOutcome returns o as stores record it.
func EncodeOutcome(o Outcome) string {
	b, err := json.Marshal(o)
	if err != nil {
		panic(fmt.Sprintf("encode outcome: %v", err)) // plain values always encode
	}
	return string(b)
}

// DecodeOutcome reads what EncodeOutcome wrote.
func DecodeOutcome(s string) (Outcome, error) {
	var o Outcome
	if err := json.Unmarshal([]byte(s), &o); err != nil {
		return Outcome{}, fmt.Errorf("decode the outcome of a request: %w", err)
	}
	return o, nil
}

// Replay returns the outcome recorded for w's request id, which came with
// digest, as the answer to w: the outcome itself when w is the same
// request, and an Invalid error naming request_id when it is another.
func (w Write) Replay(digest string, o Outcome) (Outcome, error) {
	if digest != w.Digest {
		return Outcome{}, &Error{
			Kind:       Invalid,
			Message:    fmt.Sprintf("request_id %q was already used for another request; use a new request_id for a new request", w.RequestID),
			Violations: []FieldViolation{{Field: "request_id", Description: "was already used for another request"}},
		}
	}
	return o, nil
}

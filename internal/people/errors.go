package people

import (
	"errors"
	"fmt"
)

// Kind classifies an error so that every layer can react to it the same way;
// the gRPC layer maps each kind to a status code with one table. Kinds are
// only ever appended, never renumbered.
type Kind uint8

// The error kinds.
const (
	Internal      Kind = iota // a fault of RouteGuide itself; details are logged, not shown
	Invalid                   // the caller's input is malformed
	NotFound                  // nobody has that name
	AlreadyExists             // the name is taken
	Unavailable               // a dependency is down; retrying later may succeed
	OutOfRange                // a revision the directory no longer keeps, or has not reached
	Aborted                   // the person changed since the caller read it: its etag no longer matches
)

var kindNames = [...]string{
	Internal:      "internal error",
	Invalid:       "invalid argument",
	NotFound:      "not found",
	AlreadyExists: "already exists",
	Unavailable:   "unavailable",
	OutOfRange:    "out of range",
	Aborted:       "aborted",
}

// String returns a short human name for k.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ErrDamaged is in the chain of a store's errors when its data is damaged
// (a database file that no longer parses). Retrying does not mend it:
// readers stop retrying, and health reports NOT_SERVING.
var ErrDamaged = errors.New("the store's data is damaged")

// Error is the directory's error: a kind, a message safe to show the caller,
// the fields at fault for an Invalid error, and optionally the underlying
// error, which is for logs only.
type Error struct {
	Kind       Kind
	Message    string
	Violations []FieldViolation
	Err        error
}

// Errorf returns an *Error of kind k with a formatted message.
func Errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// Error returns the message, followed by the underlying error when there is
// one.
func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = e.Kind.String()
	}
	if e.Err != nil {
		return msg + ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the underlying error, or nil.
func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the kind of the first *Error in err's chain, or Internal when
// there is none: an error nobody classified is a fault of ours.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// MessageOf returns the caller-safe message of the first *Error in err's
// chain, or "" when there is none or its kind is Internal.
func MessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Kind != Internal {
		if e.Message != "" {
			return e.Message
		}
		return e.Kind.String()
	}
	return ""
}

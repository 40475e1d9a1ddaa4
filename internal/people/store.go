package people

import "context"

// Reader looks people up. Implementations are safe for concurrent use.
//
// Person returns the person with exactly the given name, or an error of kind
// NotFound when nobody has it; other failures carry their own kind.
type Reader interface {
	Person(ctx context.Context, name string) (Person, error)
}

package wire

import (
	"google.golang.org/grpc/codes"

	"github.com/routeguide/routeguide/internal/people"
)

// codeOf maps each error kind to the status code that carries it across the
// wire. It is the one table both the server and the client read.
var codeOf = [...]codes.Code{
	people.Internal:      codes.Internal,
	people.Invalid:       codes.InvalidArgument,
	people.NotFound:      codes.NotFound,
	people.AlreadyExists: codes.AlreadyExists,
	people.Unavailable:   codes.Unavailable,
	people.OutOfRange:    codes.OutOfRange,
}

// Code returns the status code for errors of kind k; Internal for a kind the
// table does not know.
func Code(k people.Kind) codes.Code {
	if int(k) < len(codeOf) {
		return codeOf[k]
	}
	return codes.Internal
}

// Kind returns the error kind a status code carries back: the kind Code maps
// to c, or Internal when none does.
func Kind(c codes.Code) people.Kind {
	for k, code := range codeOf {
		if code == c {
			return people.Kind(k)
		}
	}
	return people.Internal
}

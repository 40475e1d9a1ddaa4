package wire

import (
	"context"
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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
	people.Aborted:       codes.Aborted,
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

// WithViolations returns st carrying vs as a google.rpc.BadRequest detail,
// each violation a field violation; st itself when vs is empty or the
// detail cannot be attached. Violations reads them back.
func WithViolations(st *status.Status, vs []people.FieldViolation) *status.Status {
	if len(vs) == 0 {
		return st
	}
	br := &errdetails.BadRequest{FieldViolations: make([]*errdetails.BadRequest_FieldViolation, len(vs))}
	for i, v := range vs {
		br.FieldViolations[i] = &errdetails.BadRequest_FieldViolation{Field: v.Field, Description: v.Description}
	}
	withDetail, err := st.WithDetails(br)
	if err != nil {
		return st
	}
	return withDetail
}

// Violations returns the field violations of st's google.rpc.BadRequest
// details, in order; nil when it has none.
func Violations(st *status.Status) []people.FieldViolation {
	var vs []people.FieldViolation
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				vs = append(vs, people.FieldViolation{Field: v.GetField(), Description: v.GetDescription()})
			}
		}
	}
	return vs
}

// FromStatus returns the domain error that a failed call's status error
// carries: a *people.Error of the kind its code maps to (Internal for a
// code no kind has), with the status's message and field violations, and
// err in its chain so that status.Code still finds the code. A status of
// CANCELLED or DEADLINE_EXCEEDED becomes an error in which errors.Is finds
// context.Canceled or context.DeadlineExceeded, as for a context that
// ended. It returns nil for nil, and an error that carries no status as it
// is.
func FromStatus(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.Canceled:
		return endedCall{ctx: context.Canceled, call: err, st: st}
	case codes.DeadlineExceeded:
		return endedCall{ctx: context.DeadlineExceeded, call: err, st: st}
	}
	return &people.Error{Kind: Kind(st.Code()), Message: st.Message(), Violations: Violations(st), Err: err}
}

// endedCall is a call that failed because its context, or the server's
// side of it, ended: call's status, in which errors.Is also finds ctx's
// error.
type endedCall struct {
	ctx, call error
	st        *status.Status
}

func (e endedCall) Error() string              { return e.call.Error() }
func (e endedCall) Unwrap() []error            { return []error{e.call, e.ctx} }
func (e endedCall) GRPCStatus() *status.Status { return e.st }

package grpcserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/wire"
)

// statusError returns the status error a caller sees for err. A context error
// becomes CANCELED or DEADLINE_EXCEEDED. Internal and Unavailable errors get a
// generic message, since their details (SQL, hosts, paths) are not the
// caller's business; the details go to log. Invalid errors carry a
// google.rpc.BadRequest detail naming each field at fault.
func statusError(ctx context.Context, log *slog.Logger, method string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.FromContextError(err).Err()
	}
	code := wire.Code(people.KindOf(err))
	switch code {
	case codes.Internal:
		log.LogAttrs(ctx, slog.LevelError, "request failed", slog.String("method", method), slog.String("error", err.Error()))
		return status.Error(code, "internal error")
	case codes.Unavailable:
		log.LogAttrs(ctx, slog.LevelWarn, "request failed", slog.String("method", method), slog.String("error", err.Error()))
		return status.Error(code, "service unavailable; retry later")
	}
	var e *people.Error
	if !errors.As(err, &e) || len(e.Violations) == 0 {
		return status.Error(code, people.MessageOf(err))
	}
	first := e.Violations[0]
	msg := first.Field + " " + first.Description
	if n := len(e.Violations) - 1; n > 0 {
		msg += fmt.Sprintf(" (and %d more)", n)
	}
	return wire.WithViolations(status.New(code, msg), e.Violations).Err()
}

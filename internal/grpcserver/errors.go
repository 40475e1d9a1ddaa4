package grpcserver

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/wire"
)

// statusError returns the status error a caller sees for err. A context error
// becomes CANCELED or DEADLINE_EXCEEDED. Internal and Unavailable errors get a
// generic message, since their details (SQL, hosts, paths) are not the
// caller's business; the details go to log.
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
	return status.Error(code, people.MessageOf(err))
}

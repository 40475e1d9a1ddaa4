package grpcserver

import (
	"context"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errDraining ends open streams when the server shuts down, so that their
// clients reconnect to a server that is staying up.
var errDraining = status.Error(codes.Unavailable, "server is shutting down; retry")

// drainStreams gives every streaming RPC a context that is cancelled, with
// errDraining as its cause, when the server starts to drain. GracefulStop
// waits for every open RPC, and streams such as GetPeople or a health Watch
// can stay open indefinitely; without this a shutdown would always wait out
// its full timeout.
func drainStreams(drain context.Context) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, cancel := context.WithCancelCause(ss.Context())
		defer cancel(nil)
		stop := context.AfterFunc(drain, func() { cancel(errDraining) })
		defer stop()
		return handler(srv, &drainingStream{ServerStream: ss, ctx: ctx})
	}
}

// drainingStream is a ServerStream whose context also ends on drain.
type drainingStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *drainingStream) Context() context.Context { return s.ctx }

// contextStatus returns the status for an RPC whose context has ended:
// UNAVAILABLE when the server is draining, else CANCELED or
// DEADLINE_EXCEEDED.
func contextStatus(ctx context.Context) error {
	if cause := context.Cause(ctx); errors.Is(cause, errDraining) {
		return errDraining
	}
	return status.FromContextError(ctx.Err()).Err()
}

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
// errDraining as its cause, when the server starts to drain, and makes a
// stream that fails because of it end with UNAVAILABLE. GracefulStop waits
// for every open RPC, and streams such as GetPeople, WatchPeople or a health
// Watch can wait indefinitely for their next event; without this a shutdown
// would always wait out its full timeout. A handler blocked in a send to a
// client that does not read, or in a receive the context cannot interrupt,
// is only cut off when the shutdown timeout ends.
func drainStreams(drain context.Context) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, cancel := context.WithCancelCause(ss.Context())
		defer cancel(nil)
		stop := context.AfterFunc(drain, func() { cancel(errDraining) })
		defer stop()
		err := handler(srv, &contextStream{ServerStream: ss, ctx: ctx})
		if err != nil && errors.Is(context.Cause(ctx), errDraining) {
			return errDraining
		}
		return err
	}
}

package grpcserver

import (
	"context"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// logCalls returns interceptors that log every call at debug level, and at
// info level a failed call or a unary call slower than slow. go-grpc-
// middleware's logging interceptor picks a level by code alone; this one
// also needs the duration, and is small.
func logCalls(log *slog.Logger, slow time.Duration) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	unary := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		ctx = context.WithValue(ctx, principalKey{}, new(Principal))
		resp, err := handler(ctx, req)
		d := time.Since(start)
		code := status.Code(err)
		level := slog.LevelDebug
		if code != codes.OK || d >= slow {
			level = slog.LevelInfo
		}
		logCall(ctx, log, level, info.FullMethod, code, d)
		return resp, err
	}
	stream := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		ctx := context.WithValue(ss.Context(), principalKey{}, new(Principal))
		ss = &contextStream{ServerStream: ss, ctx: ctx}
		err := handler(srv, ss)
		code := status.Code(err)
		// Streams live as long as their clients want, and a client ending
		// one (CANCELED) is how a watch normally stops.
		level := slog.LevelDebug
		if code != codes.OK && code != codes.Canceled {
			level = slog.LevelInfo
		}
		logCall(ss.Context(), log, level, info.FullMethod, code, time.Since(start))
		return err
	}
	return unary, stream
}

func logCall(ctx context.Context, log *slog.Logger, level slog.Level, method string, code codes.Code, d time.Duration) {
	if !log.Enabled(ctx, level) {
		return
	}
	addr := "unknown"
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		addr = p.Addr.String()
	}
	who := "-"
	if p, ok := principalOf(ctx); ok {
		who = p.Name
	}
	log.LogAttrs(ctx, level, "rpc",
		slog.String("method", method),
		slog.String("code", code.String()),
		slog.Duration("duration", d),
		slog.String("peer", addr),
		slog.String("principal", who),
	)
}

// contextStream is a ServerStream with another context.
type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *contextStream) Context() context.Context { return s.ctx }

// recoverPanics returns interceptors that turn a handler's panic into
// INTERNAL, with no detail for the caller, and log it with its stack; the
// server goes on serving.
func recoverPanics(log *slog.Logger) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	handle := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		log.ErrorContext(ctx, "handler panicked", "panic", p, "stack", string(debug.Stack()))
		return status.Error(codes.Internal, "internal error")
	})
	return recovery.UnaryServerInterceptor(handle), recovery.StreamServerInterceptor(handle)
}

package grpcserver

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	pb "github.com/routeguide/routeguide/routeguidepb"
)

// calls is what the server does around every call, in this order: refuse
// a caller that may not make it (before any handler runs), end a stream
// when the server drains, turn a handler's panic into INTERNAL, and log the
// call with its code, duration and principal. It is one interceptor rather
// than a chain of four because every link of a chain costs each call a
// closure, and this is the hot path.
type calls struct {
	log   *slog.Logger
	slow  time.Duration   // a successful unary call this slow is logged at info
	auth  *Auth           // nil: local callers write, others read
	drain context.Context // ends when the server starts to drain

	failures *failureLog  // limits the info lines of failed calls
	watchers atomic.Int64 // WatchPeople streams open past authorization
}

// The info lines of failed calls are limited per method and code: the
// first failuresBurst failures of each failuresInterval are logged one by
// one, and the rest counted and logged as one summary line when the
// interval ends, so that a flood of failing calls (a client without
// credentials retrying in a loop, say) cannot fill the disk. Every call is
// still logged at debug level.
const (
	failuresBurst    = 10
	failuresInterval = 10 * time.Second
)

// watchMethod is the method whose open streams the watchers gauge counts.
const watchMethod = pb.RouteGuide_WatchPeople_FullMethodName

// unary intercepts unary calls: it logs every call at debug level, and at
// info level a failed one or one slower than slow.
func (c *calls) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	principal, err := c.auth.check(ctx, info.FullMethod)
	var resp any
	if err == nil {
		hctx := ctx
		if writeMethod(info.FullMethod) {
			hctx = context.WithValue(ctx, principalKey{}, principal)
		}
		resp, err = c.invoke(hctx, req, handler)
	}
	d := time.Since(start)
	code := status.Code(err)
	level := slog.LevelDebug
	switch {
	case code != codes.OK:
		level = c.failures.level(info.FullMethod, code)
	case d >= c.slow:
		level = slog.LevelInfo
	}
	c.logCall(ctx, level, info.FullMethod, code, d, principal)
	return resp, err
}

// invoke runs a unary handler, turning its panic into INTERNAL.
func (c *calls) invoke(ctx context.Context, req any, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if p := recover(); p != nil {
			resp, err = nil, c.panicked(ctx, p)
		}
	}()
	return handler(ctx, req)
}

// stream intercepts streaming calls. Streams live as long as their clients
// want, and a client ending one (CANCELED) is how a watch normally stops, so
// only other failures are logged at info level.
func (c *calls) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	principal, err := c.auth.check(ss.Context(), info.FullMethod)
	if err == nil {
		if info.FullMethod == watchMethod {
			c.watchers.Add(1)
		}
		if writeMethod(info.FullMethod) {
			ss = &contextStream{ServerStream: ss, ctx: context.WithValue(ss.Context(), principalKey{}, principal)}
		}
		err = c.serveStream(srv, ss, handler)
		if info.FullMethod == watchMethod {
			c.watchers.Add(-1)
		}
	}
	code := status.Code(err)
	level := slog.LevelDebug
	if code != codes.OK && code != codes.Canceled {
		level = c.failures.level(info.FullMethod, code)
	}
	c.logCall(ss.Context(), level, info.FullMethod, code, time.Since(start), principal)
	return err
}

// serveStream runs a stream handler with a context that is cancelled, with
// errDraining as its cause, when the server starts to drain, and makes a
// stream that fails because of it end with UNAVAILABLE. GracefulStop waits
// for every open RPC, and streams such as GetPeople, WatchPeople or a health
// Watch can wait indefinitely for their next event; without this a shutdown
// would always wait out its full timeout. A handler blocked in a send to a
// client that does not read, or in a receive the context cannot interrupt,
// is only cut off when the shutdown timeout ends. A panic becomes INTERNAL.
func (c *calls) serveStream(srv any, ss grpc.ServerStream, handler grpc.StreamHandler) (err error) {
	ctx, cancel := context.WithCancelCause(ss.Context())
	defer cancel(nil)
	stop := context.AfterFunc(c.drain, func() { cancel(errDraining) })
	defer stop()
	defer func() {
		if p := recover(); p != nil {
			err = c.panicked(ctx, p)
		}
	}()
	err = handler(srv, &contextStream{ServerStream: ss, ctx: ctx})
	if err != nil && errors.Is(context.Cause(ctx), errDraining) {
		return errDraining
	}
	return err
}

// panicked logs a handler's panic with its stack and returns what the caller
// gets: INTERNAL, with no detail. The server goes on serving.
func (c *calls) panicked(ctx context.Context, p any) error {
	c.log.ErrorContext(ctx, "handler panicked", "panic", p, "stack", string(debug.Stack()))
	return status.Error(codes.Internal, "internal error")
}

func (c *calls) logCall(ctx context.Context, level slog.Level, method string, code codes.Code, d time.Duration, principal Principal) {
	if !c.log.Enabled(ctx, level) {
		return
	}
	addr := "unknown"
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		addr = p.Addr.String()
	}
	who := principal.Name
	if who == "" {
		who = "-"
	}
	c.log.LogAttrs(ctx, level, "rpc",
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

// failureLog decides the level of each failed call's line: info for the
// first failuresBurst of a method and code in an interval, debug for the
// rest, which it counts and summarises at info when the interval ends.
type failureLog struct {
	log      *slog.Logger
	burst    int
	interval time.Duration

	mu     sync.Mutex                   // guards the fields below
	counts map[failureKey]*failureCount // this interval's failures
	timer  *time.Timer                  // ends the interval; nil between intervals
	closed bool                         // set by close: no further intervals
}

type failureKey struct {
	method string
	code   codes.Code
}

type failureCount struct{ logged, suppressed int }

func newFailureLog(log *slog.Logger, burst int, interval time.Duration) *failureLog {
	return &failureLog{log: log, burst: burst, interval: interval, counts: map[failureKey]*failureCount{}}
}

// level returns the level to log a failed call of method with code at.
// An interval begins with the first failure after the last one ended.
func (f *failureLog) level(method string, code codes.Code) slog.Level {
	k := failureKey{method, code}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return slog.LevelInfo
	}
	n := f.counts[k]
	if n == nil {
		n = &failureCount{}
		f.counts[k] = n
	}
	if f.timer == nil {
		f.timer = time.AfterFunc(f.interval, f.flush)
	}
	if n.logged < f.burst {
		n.logged++
		return slog.LevelInfo
	}
	n.suppressed++
	return slog.LevelDebug
}

// flush ends the interval: it logs, per method and code, how many failed
// calls were not logged at info, and starts counting afresh.
func (f *failureLog) flush() {
	f.mu.Lock()
	counts := f.counts
	f.counts = map[failureKey]*failureCount{}
	f.timer = nil
	f.mu.Unlock()
	for k, n := range counts {
		if n.suppressed == 0 {
			continue
		}
		f.log.LogAttrs(context.Background(), slog.LevelInfo, "rpc failures not logged one by one",
			slog.String("method", k.method),
			slog.String("code", k.code.String()),
			slog.Int("suppressed", n.suppressed),
			slog.Int("logged", n.logged),
			slog.Duration("interval", f.interval),
		)
	}
}

// close logs the summary of the current interval at once, and ends the
// limiting: a server that stops does not leave counts unsaid or a timer
// behind. Failures after close are each logged at info.
func (f *failureLog) close() {
	f.mu.Lock()
	f.closed = true
	if f.timer != nil {
		f.timer.Stop()
	}
	f.mu.Unlock()
	f.flush()
}

// Watchers returns how many WatchPeople streams are open.
func (s *Server) Watchers() int64 { return s.calls.watchers.Load() }

// Package grpcserver serves the RouteGuide service on grpc-go, with the
// standard health and reflection services, bounded resource limits and a
// graceful shutdown.
package grpcserver

import (
	"cmp"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/stats"

	"github.com/routeguide/routeguide/internal/people"
)

// ServiceName is the full name of the RouteGuide service, also the name its
// health status is reported under.
const ServiceName = "RouteGuide"

// Limits bounds what one client can make the server hold. grpc-go's own
// defaults leave most of these unbounded.
type Limits struct {
	// MaxConcurrentStreams caps the RPCs one connection may have open at
	// once. grpc-go's default is unlimited.
	MaxConcurrentStreams uint32
	// MaxRecvMsgSize caps one received message, in bytes. A larger one is
	// refused with RESOURCE_EXHAUSTED.
	MaxRecvMsgSize int
	// MaxSendMsgSize caps one sent message, in bytes. grpc-go's default is
	// unlimited.
	MaxSendMsgSize int
	// MaxHeaderListSize caps the request headers, in bytes. grpc-go's
	// default is 16 MiB.
	MaxHeaderListSize uint32
	// ConnectionTimeout bounds a new connection's handshake.
	ConnectionTimeout time.Duration
	// KeepaliveMinTime is the shortest interval between client pings the
	// server tolerates; a client pinging more often is disconnected.
	KeepaliveMinTime time.Duration
	// KeepaliveTime is how long a connection may be silent before the server
	// pings it, and KeepaliveTimeout how long it then waits for the answer
	// before closing it. Together they find clients that vanished without
	// closing their streams.
	KeepaliveTime    time.Duration
	KeepaliveTimeout time.Duration
	// MaxConnectionIdle is how long a connection may stay without an open
	// call before the server closes it with GOAWAY, so that clients that
	// connect and go quiet do not hold a file descriptor each forever. A
	// well-behaved client reconnects on its next call. grpc-go's default is
	// never.
	MaxConnectionIdle time.Duration
	// MaxConnectionAge is how long a connection may live before the server
	// asks its client, with GOAWAY, to open a new one for new calls (grpc-go
	// spreads it by ±10%). The client resolves its target again and
	// balances afresh, so a replica started since gets its share of calls
	// within about this long. grpc-go's default is never.
	MaxConnectionAge time.Duration
	// MaxConnectionAgeGrace is how long the calls open on a connection past
	// its MaxConnectionAge may go on; then the connection closes and a call
	// still open, such as a long WatchPeople, ends with UNAVAILABLE (a
	// watcher resumes from the last revision it received, after_revision).
	// Zero, the default, is grpc-go's never: open calls run to their end
	// and the connection closes after the last, so a watch is not cut
	// every few minutes (a client that resumes, as `routeguide watch`
	// and the client package do, would reconnect at no loss, but others
	// may not). Unary calls move to the new connection at once either way.
	MaxConnectionAgeGrace time.Duration

	// Watches (WatchPeople). A watch past MaxWatchersPerConn open on its
	// connection, or past MaxWatchers open on the server, is refused with
	// RESOURCE_EXHAUSTED. WatchPageBytes bounds, in bytes, the people a
	// watch reads from the store at a time, and so what it holds while its
	// client is slow to read. A watch whose client has accepted nothing for
	// WatchStallTimeout, with the watch waiting to send, is ended with
	// RESOURCE_EXHAUSTED (see WatchPeople). Zero means the default.
	MaxWatchersPerConn int
	MaxWatchers        int
	WatchPageBytes     int
	WatchStallTimeout  time.Duration
}

// DefaultLimits returns the limits `routeguide serve` runs with. A Person
// within the domain's limits is a few KiB, so the message caps leave ample
// room for batches while keeping one client from pinning hundreds of MiB.
func DefaultLimits() Limits {
	return Limits{
		MaxConcurrentStreams: 256,
		MaxRecvMsgSize:       4 << 20,
		MaxSendMsgSize:       16 << 20,
		MaxHeaderListSize:    32 << 10,
		ConnectionTimeout:    10 * time.Second,
		KeepaliveMinTime:     10 * time.Second,
		KeepaliveTime:        time.Minute,
		KeepaliveTimeout:     20 * time.Second,
		MaxConnectionIdle:    5 * time.Minute,
		MaxConnectionAge:     5 * time.Minute,

		MaxWatchersPerConn: 64,
		MaxWatchers:        4096,
		WatchPageBytes:     128 << 10,
		WatchStallTimeout:  30 * time.Second,
	}
}

// serverOptions returns the grpc-go options that enforce l.
func (l Limits) serverOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxConcurrentStreams(l.MaxConcurrentStreams),
		grpc.MaxRecvMsgSize(l.MaxRecvMsgSize),
		grpc.MaxSendMsgSize(l.MaxSendMsgSize),
		grpc.MaxHeaderListSize(l.MaxHeaderListSize),
		grpc.ConnectionTimeout(l.ConnectionTimeout),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             l.KeepaliveMinTime,
			PermitWithoutStream: true,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:                  l.KeepaliveTime,
			Timeout:               l.KeepaliveTimeout,
			MaxConnectionIdle:     l.MaxConnectionIdle,
			MaxConnectionAge:      l.MaxConnectionAge,
			MaxConnectionAgeGrace: l.MaxConnectionAgeGrace,
		}),
	}
}

// DefaultStreamWorkers returns how many goroutines run calls by default.
// A new goroutine per call, grpc-go's default, grows its stack afresh for
// every call, a share of a unary call's server CPU that profiles of
// bench/compare.sh's GetPerson runs show (README, Performance); a worker's
// stack is grown once. Calls arrive in bursts as the
// transport reads them off a connection, each needing a worker waiting at
// that moment, and a write holds its worker until its group commits: so
// there are enough for the calls of a few busy connections and for dozens
// of writers per core waiting on their commits (bench/scale's write mode
// runs 64 on two cores; with a quarter as many workers, half its calls
// ran on new goroutines, growing their stacks). An idle worker costs its
// small stack.
func DefaultStreamWorkers() int {
	return 64 * runtime.GOMAXPROCS(0)
}

// Metrics counts calls; telemetry.ServerMetrics is the implementation
// `routeguide serve` uses.
type Metrics interface {
	UnaryServerInterceptor() grpc.UnaryServerInterceptor
	StreamServerInterceptor() grpc.StreamServerInterceptor
	// InitializeMetrics is called once the services are registered.
	InitializeMetrics(server interface {
		GetServiceInfo() map[string]grpc.ServiceInfo
	})
}

// Server is a RouteGuide gRPC server.
type Server struct {
	grpc       *grpc.Server
	healthOnly *grpc.Server // health alone, for probes; see ServeHealth
	health     *health.Server
	drain      context.CancelFunc // ends every open stream's context
	drainOnce  sync.Once          // Drain's work, once
	calls      *calls

	stopChecking context.CancelFunc // ends checkStore; nil when nothing is checked
	checked      chan struct{}      // closed when checkStore has returned
}

// Options configures a Server beyond its store.
type Options struct {
	// Log receives the server's own lines and, per Slow, one per call.
	Log *slog.Logger
	// Limits bounds what one client can make the server hold.
	Limits Limits
	// Slow is the duration past which a successful unary call is logged at
	// info level rather than debug.
	Slow time.Duration
	// Metrics, when not nil, counts calls, codes and latencies.
	Metrics Metrics
	// StatsHandler, when not nil, sees every call; tracing uses it.
	StatsHandler stats.Handler
	// Auth decides who callers are; nil means no tokens or client
	// certificates: local callers write, others read.
	Auth *Auth
	// TLS, when not nil, serves TLS instead of plaintext.
	TLS *tls.Config
	// StreamWorkers is how many goroutines the server keeps to run calls
	// on; 0 means DefaultStreamWorkers, and a negative number none. A call
	// that finds no worker waiting runs on a goroutine of its own.
	StreamWorkers int
	// StoreCheck is how often health asks a store that implements
	// people.Pinger whether it is reachable; 0 means every second.
	StoreCheck time.Duration
	// Answers, when not nil, is where GetPerson and GetPeople read: the
	// read cache in front of the store, which keeps each person's encoded
	// answer until the person changes (see Keeper). Nil: they read the
	// store and encode every answer.
	Answers Keeper
	// IdempotencyRetention is how long a write's request id is kept, so
	// that a retry within it is answered what the write answered; 0 means
	// DefaultIdempotencyRetention.
	IdempotencyRetention time.Duration
}

// New returns a Server that answers from store, and from o.Answers when
// set. It serves nothing until Serve is called, and never closes store.
// When store implements people.Pinger, health follows whether the store is
// reachable from then until Shutdown.
func New(store people.Store, o Options) *Server {
	drainCtx, drain := context.WithCancel(context.Background())
	c := &calls{log: o.Log, slow: o.Slow, auth: o.Auth, drain: drainCtx,
		failures: newFailureLog(o.Log, failuresBurst, failuresInterval)}
	var unary []grpc.UnaryServerInterceptor
	var stream []grpc.StreamServerInterceptor
	// Metrics outermost: they see the code a panic became, and a drained
	// stream's UNAVAILABLE.
	if o.Metrics != nil {
		unary = append(unary, o.Metrics.UnaryServerInterceptor())
		stream = append(stream, o.Metrics.StreamServerInterceptor())
	}
	unary = append(unary, c.unary)
	stream = append(stream, c.stream)
	opts := append(o.Limits.serverOptions(),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
		// Protobuf, and answers the service encoded ahead sent as they are.
		grpc.ForceServerCodecV2(newCodec()))
	if n := cmp.Or(o.StreamWorkers, DefaultStreamWorkers()); n > 0 {
		opts = append(opts, grpc.NumStreamWorkers(uint32(n)))
	}
	if o.StatsHandler != nil {
		opts = append(opts, grpc.StatsHandler(o.StatsHandler))
	}
	if o.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(o.TLS)))
	}
	hs := health.NewServer()
	s := &Server{
		grpc:       grpc.NewServer(opts...),
		healthOnly: newHealthOnly(hs, o.Limits),
		health:     hs,
		drain:      drain,
		calls:      c,
	}
	svc := newService(store, o.Answers, o.Log)
	svc.retention = cmp.Or(o.IdempotencyRetention, DefaultIdempotencyRetention)
	svc.setLimits(o.Limits)
	s.grpc.RegisterService(routeGuideService(), svc)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.health.SetServingStatus(ServiceName, healthpb.HealthCheckResponse_SERVING)
	// Only health.Shutdown changes this one; setServing leaves it alone.
	s.health.SetServingStatus(LivenessService, healthpb.HealthCheckResponse_SERVING)
	if o.Metrics != nil {
		o.Metrics.InitializeMetrics(s.grpc)
	}
	if p, ok := store.(people.Pinger); ok {
		ctx, cancel := context.WithCancel(context.Background())
		s.stopChecking, s.checked = cancel, make(chan struct{})
		go s.checkStore(ctx, p, cmp.Or(o.StoreCheck, time.Second), o.Log)
	}
	return s
}

// checkStore pings the store every interval until ctx ends, and reports it
// through health: NOT_SERVING for "" and ServiceName while the store cannot
// be reached, so that load balancers send callers to a replica that can
// answer, and SERVING again once it can. It logs each change of state, not
// each failed ping. A ping that has not answered within the interval, or a
// second when the interval is shorter, counts as failed.
//
// One failed ping is not an outage: a pooled connection the database
// closed fails once, and the pool then drops it. So a failed ping is tried
// again at once, and health turns NOT_SERVING only when that fails too.
func (s *Server) checkStore(ctx context.Context, store people.Pinger, interval time.Duration, log *slog.Logger) {
	defer close(s.checked)
	t := time.NewTicker(interval)
	defer t.Stop()
	ping := func() error {
		pingCtx, cancel := context.WithTimeout(ctx, max(interval, time.Second))
		defer cancel()
		return store.Ping(pingCtx)
	}
	reachable := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := ping()
		if err != nil && reachable && ctx.Err() == nil {
			err = ping() // a failure that persists, not one dead connection
		}
		if ctx.Err() != nil {
			return // Shutdown has begun; health stays NOT_SERVING
		}
		switch {
		case err != nil && reachable:
			reachable = false
			log.Warn("store unreachable; health reports NOT_SERVING until it answers again", "error", err)
			s.setServing(healthpb.HealthCheckResponse_NOT_SERVING)
		case err == nil && !reachable:
			reachable = true
			log.Info("store reachable again; health reports SERVING")
			s.setServing(healthpb.HealthCheckResponse_SERVING)
		}
	}
}

// setServing sets the health of "" and ServiceName. After Shutdown began,
// the health server ignores it.
func (s *Server) setServing(st healthpb.HealthCheckResponse_ServingStatus) {
	s.health.SetServingStatus("", st)
	s.health.SetServingStatus(ServiceName, st)
}

// Serve accepts connections on every listener until Shutdown. It returns nil
// after Shutdown, or the first listener's failure otherwise; the caller then
// still calls Shutdown.
func (s *Server) Serve(listeners ...net.Listener) error {
	return serveAll(s.grpc, listeners)
}

// ServeHTTP serves one gRPC call arriving over net/http, through the same
// interceptors, limits on messages, auth and drain as the calls of Serve;
// the HTTP listener's protocols (Connect, gRPC-Web, REST) reach the service
// this way. The peer is r.RemoteAddr, and the TLS state r.TLS.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.grpc.ServeHTTP(w, r)
}

// Services returns the full names of the services the server registers.
func (s *Server) Services() []string {
	names := make([]string, 0, 3)
	for name := range s.grpc.GetServiceInfo() {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Drain begins the shutdown: health reports NOT_SERVING, the store is no
// longer checked, and open streams end with UNAVAILABLE, while unary calls
// go on. Shutdown drains too; calling Drain first lets the HTTP listener
// finish its calls before Shutdown stops grpc-go, which would cut the calls
// it serves through ServeHTTP. Drain may be called more than once.
func (s *Server) Drain() {
	s.drainOnce.Do(func() {
		s.health.Shutdown()
		if s.stopChecking != nil {
			s.stopChecking()
			<-s.checked
		}
		s.drain()
	})
}

// Shutdown stops the server gracefully: health reports NOT_SERVING, open
// streams end with UNAVAILABLE, in-flight unary calls finish, and new
// connections are refused. When ctx ends first, the remaining calls are cut
// off. The health-only listeners (ServeHealth) keep answering NOT_SERVING
// until the main listeners have stopped, so probes see the drain. Shutdown
// reports whether the stop was graceful.
func (s *Server) Shutdown(ctx context.Context) (graceful bool) {
	defer s.calls.failures.close() // after the last call, to count it
	s.Drain()
	defer s.healthOnly.Stop() // its Watch streams would hold GracefulStop
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		s.grpc.Stop()
		<-done
		return false
	}
}

package grpcserver

import (
	"errors"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// LivenessService is the health service name that reports SERVING for as
// long as the process serves, whatever the store's state, and NOT_SERVING
// once Shutdown has begun. Liveness probes ask for it: "" and ServiceName
// turn NOT_SERVING while the store is unreachable, and a liveness probe on
// those would restart every replica during a database outage.
const LivenessService = "liveness"

// newHealthOnly returns a gRPC server with hs as its only service: no
// RouteGuide, no reflection, no interceptors (probes every few seconds
// would crowd the call log and the metrics). The limits still bound what a
// client can make it hold.
func newHealthOnly(hs *health.Server, l Limits) *grpc.Server {
	g := grpc.NewServer(l.serverOptions()...)
	healthpb.RegisterHealthServer(g, hs)
	return g
}

// ServeHealth serves only the health service (grpc.health.v1) on every
// listener until Shutdown, with the statuses the main listeners report plus
// LivenessService. It serves nothing else, which is why it may serve
// plaintext on any address: Kubernetes' gRPC probes send neither TLS nor
// credentials. Like Serve, it returns nil after Shutdown or the first
// listener's failure; the caller then still calls Shutdown.
func (s *Server) ServeHealth(listeners ...net.Listener) error {
	return serveAll(s.healthOnly, listeners)
}

// serveAll runs g on every listener until it stops, and returns the first
// failure other than the stop itself, stopping g when one listener fails so
// that the others return too.
func serveAll(g *grpc.Server, listeners []net.Listener) error {
	errc := make(chan error, len(listeners))
	for _, l := range listeners {
		go func() { errc <- g.Serve(l) }()
	}
	var first error
	for range listeners {
		if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) && first == nil {
			first = err
			g.Stop()
		}
	}
	return first
}

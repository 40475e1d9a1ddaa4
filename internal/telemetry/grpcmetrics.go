package telemetry

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ServerMetrics counts a gRPC server's calls per method: calls started,
// calls handled by code, messages received and sent, and a handling-time
// histogram. Its metric names, help texts and labels are those of
// go-grpc-middleware's Prometheus provider (a test holds them equal), so
// dashboards and alerts written for that provider work unchanged.
//
// The provider finds each call's series by hashing its label values, five
// times per call, a share of the server's CPU per unary call that profiles
// of bench/compare.sh's `--metrics-addr` runs show (README, Performance). ServerMetrics finds every method's series once, in
// InitializeMetrics, so that a call costs one map lookup and a few atomic
// additions.
type ServerMetrics struct {
	started, handled, received, sent *prometheus.CounterVec
	seconds                          *prometheus.HistogramVec

	methods map[string]*methodMetrics // by full method name; read-only once initialized
}

// methodMetrics are one method's series.
type methodMetrics struct {
	started, received, sent prometheus.Counter
	handled                 [codes.Unauthenticated + 1]prometheus.Counter // by code
	seconds                 prometheus.Observer
}

var _ prometheus.Collector = (*ServerMetrics)(nil)

// handlingBuckets are the bounds of grpc_server_handling_seconds: doubling
// from 50µs to 13s. A call answered from memory takes well under a
// millisecond (BenchmarkGetPerson in internal/grpcserver), which the provider's
// default buckets, starting at 5ms, could not tell apart from any other
// fast call; a write waits for a commit and fsync, and a stream lasts as
// long as its client wants, so the range reaches seconds.
var handlingBuckets = prometheus.ExponentialBuckets(50e-6, 2, 19)

// NewServerMetrics returns metrics for a server; call InitializeMetrics
// once its services are registered, and register it with a registry.
func NewServerMetrics() *ServerMetrics {
	labels := []string{"grpc_type", "grpc_service", "grpc_method"}
	return &ServerMetrics{
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_started_total",
			Help: "Total number of RPCs started on the server.",
		}, labels),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_handled_total",
			Help: "Total number of RPCs completed on the server, regardless of success or failure.",
		}, append(labels, "grpc_code")),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_msg_received_total",
			Help: "Total number of RPC stream messages received on the server.",
		}, labels),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_msg_sent_total",
			Help: "Total number of gRPC stream messages sent by the server.",
		}, labels),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "grpc_server_handling_seconds",
			Help:    "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
			Buckets: handlingBuckets,
		}, labels),
		methods: map[string]*methodMetrics{},
	}
}

// InitializeMetrics creates the series of every method server serves, with
// zero values, so that they are exported before the first call.
func (m *ServerMetrics) InitializeMetrics(server interface {
	GetServiceInfo() map[string]grpc.ServiceInfo
}) {
	for service, info := range server.GetServiceInfo() {
		for _, method := range info.Methods {
			m.methods["/"+service+"/"+method.Name] = m.series(methodType(method), service, method.Name)
		}
	}
}

func methodType(m grpc.MethodInfo) string {
	switch {
	case m.IsClientStream && m.IsServerStream:
		return "bidi_stream"
	case m.IsClientStream:
		return "client_stream"
	case m.IsServerStream:
		return "server_stream"
	}
	return "unary"
}

// method returns fullMethod's series, creating them for a method that
// InitializeMetrics did not see (grpc-go answers unknown methods before any
// interceptor, so only a service registered later gets here).
func (m *ServerMetrics) method(fullMethod string) *methodMetrics {
	if mm := m.methods[fullMethod]; mm != nil {
		return mm
	}
	service, name, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	return m.series("unknown", service, name)
}

// series finds (creating them as needed) one method's series.
func (m *ServerMetrics) series(typ, service, method string) *methodMetrics {
	values := []string{typ, service, method}
	mm := &methodMetrics{
		started:  m.started.WithLabelValues(values...),
		received: m.received.WithLabelValues(values...),
		sent:     m.sent.WithLabelValues(values...),
		seconds:  m.seconds.WithLabelValues(values...),
	}
	for c := range mm.handled {
		mm.handled[c] = m.handled.WithLabelValues(append(values, codes.Code(c).String())...)
	}
	return mm
}

// done counts a finished call.
func (mm *methodMetrics) done(err error, d time.Duration) {
	c := code(err)
	if int(c) < len(mm.handled) {
		mm.handled[c].Inc()
	}
	mm.seconds.Observe(d.Seconds())
}

// code is the status code err stands for, as the caller sees it.
func code(err error) codes.Code {
	if s, ok := status.FromError(err); ok {
		return s.Code()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.FromContextError(err).Code()
	}
	return codes.Unknown
}

// UnaryServerInterceptor counts unary calls.
func (m *ServerMetrics) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		mm := m.method(info.FullMethod)
		start := time.Now()
		mm.started.Inc()
		mm.received.Inc()
		resp, err := handler(ctx, req)
		if err == nil {
			mm.sent.Inc()
		}
		mm.done(err, time.Since(start))
		return resp, err
	}
}

// StreamServerInterceptor counts streaming calls and their messages.
func (m *ServerMetrics) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		mm := m.method(info.FullMethod)
		start := time.Now()
		mm.started.Inc()
		err := handler(srv, &countingStream{ServerStream: ss, m: mm})
		mm.done(err, time.Since(start))
		return err
	}
}

// countingStream counts the messages a stream receives and sends.
type countingStream struct {
	grpc.ServerStream
	m *methodMetrics
}

func (s *countingStream) SendMsg(msg any) error {
	err := s.ServerStream.SendMsg(msg)
	if err == nil {
		s.m.sent.Inc()
	}
	return err
}

func (s *countingStream) RecvMsg(msg any) error {
	err := s.ServerStream.RecvMsg(msg)
	if err == nil {
		s.m.received.Inc()
	}
	return err
}

// Describe sends the descriptions of every metric.
func (m *ServerMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.started.Describe(ch)
	m.handled.Describe(ch)
	m.received.Describe(ch)
	m.sent.Describe(ch)
	m.seconds.Describe(ch)
}

// Collect sends every series.
func (m *ServerMetrics) Collect(ch chan<- prometheus.Metric) {
	m.started.Collect(ch)
	m.handled.Collect(ch)
	m.received.Collect(ch)
	m.sent.Collect(ch)
	m.seconds.Collect(ch)
}

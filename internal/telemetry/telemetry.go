// Package telemetry gives operators their signals: Prometheus metrics (and
// pprof, on request) over HTTP, and OpenTelemetry traces exported by OTLP.
package telemetry

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/pprof"
	"runtime"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"google.golang.org/grpc/stats"
)

// Registry returns a registry of the Go runtime's and the process's metrics
// and the given collectors.
func Registry(cs ...prometheus.Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(cs...)
	return reg
}

// SQLCollectors returns the connection pool statistics of database/sql pools,
// labelled by name.
func SQLCollectors(dbs map[string]*sql.DB) []prometheus.Collector {
	var cs []prometheus.Collector
	for name, db := range dbs {
		cs = append(cs, collectors.NewDBStatsCollector(db, name))
	}
	return cs
}

// defaultMemProfileRate is the runtime's own sampling rate of allocations
// for heap profiles.
var defaultMemProfileRate = runtime.MemProfileRate

// HeapProfiling turns the runtime's sampling of allocations for heap
// profiles on (at its default rate) or off. A server serves its heap profile
// only with --pprof; without it, sampling fills a profile nobody can read,
// and the profiler's table of allocation sites costs anonymous memory under
// load (bench/compare.sh reports it; README, Performance). It is meant to be called once, as the server starts.
func HeapProfiling(on bool) {
	if on {
		runtime.MemProfileRate = defaultMemProfileRate
	} else {
		runtime.MemProfileRate = 0
	}
}

// Handler serves /metrics from reg and, with withPprof, the runtime profiles
// under /debug/pprof/.
func Handler(reg *prometheus.Registry, withPprof bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// poolCollector exports a pgx pool's statistics.
type poolCollector struct {
	pool                              *pgxpool.Pool
	total, idle, acquired, max, waits *prometheus.Desc
}

// PoolCollector returns a collector of pool's connection statistics.
func PoolCollector(pool *pgxpool.Pool) prometheus.Collector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("routeguide_postgres_pool_"+name, help, nil, nil)
	}
	return &poolCollector{
		pool:     pool,
		total:    desc("connections", "Connections open in the PostgreSQL pool."),
		idle:     desc("idle_connections", "Idle connections in the PostgreSQL pool."),
		acquired: desc("acquired_connections", "Connections in use from the PostgreSQL pool."),
		max:      desc("max_connections", "The most connections the PostgreSQL pool opens."),
		waits:    desc("empty_acquires_total", "Acquires that waited because the PostgreSQL pool was empty."),
	}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.total, c.idle, c.acquired, c.max, c.waits} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.pool.Stat()
	ch <- prometheus.MustNewConstMetric(c.total, prometheus.GaugeValue, float64(st.TotalConns()))
	ch <- prometheus.MustNewConstMetric(c.idle, prometheus.GaugeValue, float64(st.IdleConns()))
	ch <- prometheus.MustNewConstMetric(c.acquired, prometheus.GaugeValue, float64(st.AcquiredConns()))
	ch <- prometheus.MustNewConstMetric(c.max, prometheus.GaugeValue, float64(st.MaxConns()))
	ch <- prometheus.MustNewConstMetric(c.waits, prometheus.CounterValue, float64(st.EmptyAcquireCount()))
}

// Tracing starts exporting traces by OTLP when OTEL_EXPORTER_OTLP_ENDPOINT
// or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (the exporter reads the
// standard OTEL_* variables), and returns the gRPC stats handler that traces
// every call and a function that flushes and stops the export. With neither
// variable set, tracing is off: the handler is nil and stop does nothing.
func Tracing(ctx context.Context, getenv func(string) string, version string) (stats.Handler, func(context.Context) error, error) {
	off := func(context.Context) error { return nil }
	if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return nil, off, nil
	}
	exp, err := otlptracegrpc.New(ctx)
	if err != nil {
		return nil, off, fmt.Errorf("start trace export: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		semconv.ServiceName("routeguide"), semconv.ServiceVersion(version)))
	if err != nil {
		return nil, off, fmt.Errorf("describe the service for traces: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	// Passed explicitly rather than set globally, so nothing else in the
	// process changes behaviour.
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	h := otelgrpc.NewServerHandler(otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(prop))
	return h, tp.Shutdown, nil
}

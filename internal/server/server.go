// Package server assembles and runs the RouteGuide server from one Config:
// it chooses the store and the read cache, sets up telemetry (metrics,
// profiles, traces), binds the listeners, serves, and shuts everything down.
// It checks and loads everything the configuration names before it acquires
// anything, and releases what it acquired on every path.
package server

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/stats"

	"github.com/routeguide/routeguide/internal/grpcserver"
	"github.com/routeguide/routeguide/internal/httpserver"
	"github.com/routeguide/routeguide/internal/telemetry"
	"github.com/routeguide/routeguide/internal/webui"
)

// DefaultAddr is the seed's port, on loopback only: plaintext does not face
// the network unless the operator asks for it.
const DefaultAddr = "localhost:50051"

// DefaultHTTPAddr is the HTTP listener's address, on loopback only, so that
// `routeguide serve` can be opened in a browser on the same machine.
const DefaultHTTPAddr = "localhost:8080"

// Config is everything the server runs with.
type Config struct {
	// Addr is the host:port to listen on; a host name listens on each of
	// its addresses.
	Addr string
	// Store is a SQLite file path, "memory", a postgres:// URL or a
	// PostgreSQL keyword/value string.
	Store string
	// HTTPAddr, when not empty, is the host:port of the HTTP listener:
	// Connect, gRPC-Web, gRPC, REST, the watch feed and the page, under the
	// same rules as Addr (see internal/httpserver).
	HTTPAddr string
	// AllowedHosts are host names the HTTP listener answers to besides IP
	// literals, localhost, HTTPAddr's host and the TLS certificate's names:
	// a request naming any other Host is refused (DNS rebinding).
	AllowedHosts []string
	// CORSOrigins are the origins whose pages may call the HTTP listener
	// from a browser; none when empty.
	CORSOrigins []string
	// TrustedProxies are the addresses or CIDR networks of reverse proxies
	// whose X-Forwarded-For names the HTTP listener's client.
	TrustedProxies []string
	// MetricsAddr, when not empty, is the host:port metrics are served on.
	MetricsAddr string
	// HealthAddr, when not empty, is the host:port of a second listener
	// that serves only grpc.health.v1, in plaintext whatever the main
	// listener serves, for probes that send no TLS and no credentials
	// (Kubernetes'). See grpcserver.Server.ServeHealth.
	HealthAddr string
	// Pprof adds the runtime profiles beside the metrics.
	Pprof bool
	// TLSCert and TLSKey, when set, serve TLS; ClientCA then requires
	// client certificates it signed.
	TLSCert, TLSKey, ClientCA string
	// Tokens, when set, is the file of bearer tokens.
	Tokens string
	// Insecure allows plaintext, and profiles, on a non-loopback address;
	// the caller enforces it, and the server warns.
	Insecure bool
	// Slow is how long a successful call takes before it is logged at info.
	Slow time.Duration
	// ShutdownTimeout is how long in-flight calls may run after ctx ends.
	ShutdownTimeout time.Duration
	// MaxConnections caps the client connections open at once; 0 means
	// DefaultMaxConnections.
	MaxConnections int
	// IdempotencyRetention is how long a write's request id is kept, so
	// that a retry within it is answered what the write answered.
	IdempotencyRetention time.Duration
	// CacheMaxBytes, when positive, bounds the read cache's memory: it then
	// holds the people read lately, not the whole directory (see
	// cache.Options.MaxBytes).
	CacheMaxBytes int64
	// Limits bounds what one client can make the server hold.
	Limits grpcserver.Limits
	// Version is the version the start line and traces report.
	Version string
	// Getenv reads the environment, for tracing's OTEL_* variables; nil
	// means an empty environment.
	Getenv func(string) string
}

// DefaultConfig returns the configuration `routeguide serve` starts from.
func DefaultConfig() Config {
	return Config{
		Addr:                 DefaultAddr,
		HTTPAddr:             DefaultHTTPAddr,
		Store:                "routeguide.db",
		Slow:                 time.Second,
		ShutdownTimeout:      10 * time.Second,
		MaxConnections:       DefaultMaxConnections,
		IdempotencyRetention: grpcserver.DefaultIdempotencyRetention,
		Limits:               grpcserver.DefaultLimits(),
		Version:              "devel",
	}
}

// tracingFunc starts tracing; telemetry.Tracing is the one Run uses.
type tracingFunc func(ctx context.Context, getenv func(string) string, version string) (stats.Handler, func(context.Context) error, error)

// Run serves until ctx ends, then shuts down gracefully within
// cfg.ShutdownTimeout. It fails before binding a port or opening the store
// when a file the configuration names cannot be loaded, and releases
// everything it acquired when a later step fails. It returns nil after a
// stop asked for by ctx.
func Run(ctx context.Context, log *slog.Logger, cfg Config) error {
	return run(ctx, log, cfg, telemetry.Tracing)
}

// loaded is what the configuration's files and values hold, loaded before
// anything is acquired.
type loaded struct {
	tls     *tls.Config
	tokens  []grpcserver.Token
	store   storeSpec
	proxies []netip.Prefix
}

// load reads and checks every file and value cfg names, acquiring nothing.
func load(cfg Config) (loaded, error) {
	var l loaded
	var err error
	if cfg.ShutdownTimeout <= 0 {
		return l, fmt.Errorf("shutdown timeout %v: must be positive", cfg.ShutdownTimeout)
	}
	if cfg.MaxConnections < 0 {
		return l, fmt.Errorf("max connections %d: must not be negative", cfg.MaxConnections)
	}
	if cfg.IdempotencyRetention < 0 {
		return l, fmt.Errorf("idempotency retention %v: must not be negative", cfg.IdempotencyRetention)
	}
	if cfg.CacheMaxBytes < 0 {
		return l, fmt.Errorf("cache bound %d bytes: must not be negative", cfg.CacheMaxBytes)
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return l, fmt.Errorf("listen on %q: %w", cfg.Addr, err)
	}
	if _, _, err := net.SplitHostPort(cfg.HTTPAddr); cfg.HTTPAddr != "" && err != nil {
		return l, fmt.Errorf("http: listen on %q: %w", cfg.HTTPAddr, err)
	}
	if err := httpserver.Origins(cfg.CORSOrigins); err != nil {
		return l, err
	}
	if l.proxies, err = parseProxies(cfg.TrustedProxies); err != nil {
		return l, err
	}
	if _, _, err := net.SplitHostPort(cfg.MetricsAddr); cfg.MetricsAddr != "" && err != nil {
		return l, fmt.Errorf("metrics: listen on %q: %w", cfg.MetricsAddr, err)
	}
	if _, _, err := net.SplitHostPort(cfg.HealthAddr); cfg.HealthAddr != "" && err != nil {
		return l, fmt.Errorf("health: listen on %q: %w", cfg.HealthAddr, err)
	}
	if cfg.Pprof && cfg.MetricsAddr == "" {
		return l, errors.New("pprof: the profiles are served beside the metrics, and there is no metrics address")
	}
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		if l.tls, err = grpcserver.ServerTLS(cfg.TLSCert, cfg.TLSKey, cfg.ClientCA); err != nil {
			return l, err
		}
	} else if cfg.ClientCA != "" {
		return l, errors.New("tls: a client CA needs a certificate and key to serve TLS with")
	}
	if cfg.Tokens != "" {
		if l.tokens, err = grpcserver.LoadTokens(cfg.Tokens); err != nil {
			return l, err
		}
	}
	if l.store, err = parseStore(cfg.Store); err != nil {
		return l, err
	}
	return l, nil
}

// cleanup is what has been acquired, released in reverse order.
type cleanup []func()

func (c *cleanup) push(f func()) { *c = append(*c, f) }

func (c cleanup) run() {
	for _, f := range slices.Backward(c) {
		f()
	}
}

func run(ctx context.Context, log *slog.Logger, cfg Config, tracing tracingFunc) error {
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	maxConns := cmp.Or(cfg.MaxConnections, DefaultMaxConnections)

	// Everything the configuration names is loaded first: a mistake in it
	// must leave no store file created and no port bound.
	l, err := load(cfg)
	if err != nil {
		return err
	}

	var release cleanup
	defer func() { release.run() }() // the stack as it is on return

	fileLimit, err := raiseFileLimit()
	if err != nil {
		log.Warn("could not raise the open files limit", "limit", fileLimit, "error", err)
	}
	if fileLimit > 0 && fileLimit < uint64(maxConns)+reservedFiles {
		log.Warn("the open files limit is below the connection limit; connections past it fail (raise ulimit -n, or lower --max-connections)",
			"file_limit", fileLimit, "max_connections", maxConns)
	}
	telemetry.HeapProfiling(cfg.Pprof)

	listeners, err := grpcserver.Listen(ctx, log, cfg.Addr)
	if err != nil {
		return err
	}
	release.push(func() {
		for _, l := range listeners {
			l.Close()
		}
	})
	addrs := make([]string, len(listeners))
	for i, l := range listeners {
		addrs[i] = l.Addr().String()
	}
	var httpListeners []net.Listener
	var httpAddrs []string
	if cfg.HTTPAddr != "" {
		if httpListeners, err = grpcserver.Listen(ctx, log, cfg.HTTPAddr); err != nil {
			return fmt.Errorf("http: %w", err)
		}
		release.push(func() {
			for _, l := range httpListeners {
				l.Close()
			}
		})
		for _, l := range httpListeners {
			httpAddrs = append(httpAddrs, l.Addr().String())
		}
	}
	// Both listeners share one connection limit: --max-connections is
	// what the process holds, whatever protocol its clients speak.
	limited := limitListeners(append(listeners, httpListeners...), maxConns, log)
	listeners, httpListeners = limited[:len(listeners)], limited[len(listeners):]

	var metricsListener net.Listener
	if cfg.MetricsAddr != "" {
		if metricsListener, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		release.push(func() { metricsListener.Close() })
	}

	var healthListener net.Listener
	if cfg.HealthAddr != "" {
		if healthListener, err = net.Listen("tcp", cfg.HealthAddr); err != nil {
			return fmt.Errorf("health: %w", err)
		}
		release.push(func() { healthListener.Close() })
		// Probes need a connection or two; the cap keeps a client that
		// opens many from holding the server's open files.
		healthListener = limitListeners([]net.Listener{healthListener}, maxHealthConnections, log)[0]
	}

	tracer, stopTracing, err := tracing(ctx, getenv, cfg.Version)
	if err != nil {
		return err
	}
	release.push(func() {
		if err := stopTracing(context.WithoutCancel(ctx)); err != nil {
			log.Warn("flushing traces", "error", err)
		}
	})

	store, err := openBackend(ctx, log, l.store, cfg.CacheMaxBytes)
	if err != nil {
		return err
	}
	release.push(func() {
		if err := store.close(); err != nil {
			log.Warn("closing the store", "error", err)
		}
	})

	opts := grpcserver.Options{
		Log:          log,
		Limits:       cfg.Limits,
		Slow:         cfg.Slow,
		StatsHandler: tracer,
		TLS:          l.tls,
		Auth:         grpcserver.NewAuth(l.tokens, cfg.ClientCA != ""),
		Answers:      store.answers,

		IdempotencyRetention: cfg.IdempotencyRetention,
	}
	if cfg.Insecure && l.tls == nil && !grpcserver.Loopback(ctx, cfg.Addr) {
		log.Warn("serving plaintext on a non-loopback address (--insecure): traffic and tokens can be read on the network", "addr", cfg.Addr)
	}
	var m *telemetry.ServerMetrics
	if metricsListener != nil {
		m = telemetry.NewServerMetrics()
		opts.Metrics = m
	}
	if cfg.Insecure && l.tls == nil && cfg.HTTPAddr != "" && !grpcserver.Loopback(ctx, cfg.HTTPAddr) {
		log.Warn("serving plaintext HTTP on a non-loopback address (--insecure): traffic and tokens can be read on the network", "http_addr", cfg.HTTPAddr)
	}
	srv := grpcserver.New(store.dir, opts)
	var web *httpserver.Server
	if len(httpListeners) > 0 {
		doc, err := httpserver.OpenAPI()
		if err != nil {
			srv.Shutdown(ctx)
			return err
		}
		web, err = httpserver.New(srv, httpserver.Options{
			Log:            log,
			Limits:         cfg.Limits,
			TLS:            l.tls,
			Hosts:          httpHosts(cfg, l.tls),
			CORSOrigins:    cfg.CORSOrigins,
			TrustedProxies: l.proxies,
			Page:           webui.Handler(),
			OpenAPI:        doc,
		})
		if err != nil {
			srv.Shutdown(ctx)
			return err
		}
	}
	if metricsListener != nil {
		cs := []prometheus.Collector{m, telemetry.DirectoryCollector(store.dir, srv.Watchers)}
		release.push(serveMetrics(ctx, log, cfg, metricsListener, append(cs, store.collectors...)))
	}
	served := make(chan error, 3)
	serving := 1 // how many of the Serve calls have not returned
	go func() { served <- srv.Serve(listeners...) }()
	if web != nil {
		serving++
		go func() { served <- web.Serve(httpListeners...) }()
	}
	healthAddr := ""
	if healthListener != nil {
		serving++
		healthAddr = healthListener.Addr().String()
		go func() { served <- srv.ServeHealth(healthListener) }()
	}
	log.Info("serving RouteGuide",
		"addr", strings.Join(addrs, ","),
		"http_addr", strings.Join(httpAddrs, ","),
		"version", cfg.Version,
		"store", store.name,
		"metrics_addr", cfg.MetricsAddr,
		"health_addr", healthAddr,
		"tracing", tracer != nil,
		"tls", l.tls != nil,
		"mtls", cfg.ClientCA != "",
		"tokens", len(l.tokens),
		"shutdown_timeout", cfg.ShutdownTimeout,
		"idempotency_retention", cfg.IdempotencyRetention,
		"cache_max_bytes", cfg.CacheMaxBytes,
		"max_connections", maxConns,
		"max_connection_idle", cfg.Limits.MaxConnectionIdle,
		"max_connection_age", cfg.Limits.MaxConnectionAge,
		"max_connection_age_grace", graceString(cfg.Limits.MaxConnectionAgeGrace),
		"file_limit", fileLimit,
		"max_concurrent_streams", cfg.Limits.MaxConcurrentStreams,
		"max_recv_msg_size", cfg.Limits.MaxRecvMsgSize,
		"max_watchers_per_conn", cfg.Limits.MaxWatchersPerConn,
		"max_watchers", cfg.Limits.MaxWatchers,
		"watch_page_bytes", cfg.Limits.WatchPageBytes,
		"watch_stall_timeout", cfg.Limits.WatchStallTimeout,
	)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
		serving--
	}
	start := time.Now()
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	// The HTTP listener's calls run inside grpc-go, whose stop would cut
	// them: drain first (streams end, health says NOT_SERVING), let the
	// HTTP requests finish, then stop grpc-go.
	graceful := true
	if web != nil {
		srv.Drain()
		graceful = web.Shutdown(stopCtx)
	}
	graceful = srv.Shutdown(stopCtx) && graceful
	for ; serving > 0; serving-- {
		if err := <-served; serveErr == nil {
			serveErr = err
		}
	}
	log.Info("stopped RouteGuide", "graceful", graceful, "took", time.Since(start).Round(time.Millisecond))
	if serveErr != nil {
		return fmt.Errorf("serve: %w", serveErr)
	}
	return nil
}

// maxHealthConnections caps the connections open at once to the health-only
// listener, apart from --max-connections.
const maxHealthConnections = 64

// reservedFiles is the open files the server needs besides its client
// connections: the store's, the metrics listener's, the log's.
const reservedFiles = 64

// serveMetrics serves the metrics of cs (and profiles, with cfg.Pprof) on
// l until the returned stop is called. A metrics address off loopback is
// allowed, since Prometheus scrapes from other hosts, and said at start.
func serveMetrics(ctx context.Context, log *slog.Logger, cfg Config, l net.Listener, cs []prometheus.Collector) (stop func()) {
	hs := &http.Server{Handler: telemetry.Handler(telemetry.Registry(cs...), cfg.Pprof), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(l)
	log.Info("serving metrics", "addr", l.Addr().String(), "pprof", cfg.Pprof)
	if !grpcserver.Loopback(ctx, cfg.MetricsAddr) {
		what := "metrics"
		if cfg.Pprof {
			what = "metrics and profiles (--insecure)"
		}
		log.Warn("serving "+what+" on a non-loopback address: anyone who can reach it can read them", "addr", cfg.MetricsAddr)
	}
	return func() { hs.Close() }
}

// httpHosts returns the host names the HTTP listener answers to besides IP
// literals and localhost: its address's host, the TLS certificate's DNS
// names, and cfg.AllowedHosts.
func httpHosts(cfg Config, tc *tls.Config) []string {
	var hosts []string
	if h, _, err := net.SplitHostPort(cfg.HTTPAddr); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	if tc != nil {
		for _, c := range tc.Certificates {
			if c.Leaf != nil {
				hosts = append(hosts, c.Leaf.DNSNames...)
			}
		}
	}
	return append(hosts, cfg.AllowedHosts...)
}

// parseProxies parses each --trusted-proxy value, an IP address or a CIDR
// network.
func parseProxies(vals []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range vals {
		if a, err := netip.ParseAddr(v); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: want an IP address or a CIDR network such as 10.0.0.0/8", v)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// graceString names a connection-age grace for the start line: zero is
// grpc-go's never, not no time at all.
func graceString(d time.Duration) string {
	if d == 0 {
		return "never"
	}
	return d.String()
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/routeguide/routeguide/internal/cache"
	"github.com/routeguide/routeguide/internal/grpcserver"
	"github.com/routeguide/routeguide/internal/memory"
	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/postgres"
	"github.com/routeguide/routeguide/internal/sqlite"
	"github.com/routeguide/routeguide/internal/telemetry"
)

// defaultAddr is the seed's port, on loopback only: plaintext does not face
// the network unless the operator asks for it.
const defaultAddr = "localhost:50051"

// serveConfig is everything `routeguide serve` runs with.
type serveConfig struct {
	Addr            string
	Store           string
	MetricsAddr     string
	Pprof           bool
	TLSCert         string
	TLSKey          string
	ClientCA        string
	Tokens          string
	Insecure        bool
	Slow            time.Duration
	ShutdownTimeout time.Duration
	LogFormat       string
	LogLevel        string
	Limits          grpcserver.Limits
}

func serveCommand(e *env) *cobra.Command {
	cfg := serveConfig{
		Addr:            defaultAddr,
		Store:           "routeguide.db",
		ShutdownTimeout: 10 * time.Second,
		LogFormat:       "text",
		LogLevel:        "info",
		Slow:            time.Second,
		Limits:          grpcserver.DefaultLimits(),
	}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the RouteGuide server",
		Long: `Run the RouteGuide server until SIGINT or SIGTERM.

On a signal the server reports NOT_SERVING to health checks, ends open
streams with UNAVAILABLE, lets in-flight calls finish for up to
--shutdown-timeout, then stops and exits 0.`,
		Args: noArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			err := bindEnv(cmd.Flags(), e.getenv, map[string]string{
				"addr":             "ROUTEGUIDE_ADDR",
				"store":            "ROUTEGUIDE_STORE",
				"shutdown-timeout": "ROUTEGUIDE_SHUTDOWN_TIMEOUT",
				"log-format":       "ROUTEGUIDE_LOG_FORMAT",
				"log-level":        "ROUTEGUIDE_LOG_LEVEL",
				"metrics-addr":     "ROUTEGUIDE_METRICS_ADDR",
			})
			if err != nil {
				return err
			}
			if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
				return usageError{errors.New("--tls-cert and --tls-key go together")}
			}
			if cfg.ClientCA != "" && cfg.TLSCert == "" {
				return usageError{errors.New("--client-ca needs --tls-cert and --tls-key: client certificates are checked in the TLS handshake")}
			}
			if cfg.TLSCert == "" && !cfg.Insecure && !loopback(cmd.Context(), cfg.Addr) {
				return usageError{fmt.Errorf("--addr %s is not a loopback address, and plaintext must not face the network: serve TLS with --tls-cert and --tls-key, or pass --insecure to serve plaintext anyway", cfg.Addr)}
			}
			if cfg.Pprof && cfg.MetricsAddr == "" {
				return usageError{errors.New("--pprof needs --metrics-addr: the profiles are served beside the metrics")}
			}
			if cfg.MetricsAddr != "" {
				if err := checkAddr("--metrics-addr", cfg.MetricsAddr); err != nil {
					return err
				}
			}
			if err := checkAddr("--addr", cfg.Addr); err != nil {
				return err
			}
			if cfg.ShutdownTimeout <= 0 {
				return usageError{fmt.Errorf("--shutdown-timeout %v: must be positive", cfg.ShutdownTimeout)}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(e.stderr, cfg.LogFormat, cfg.LogLevel)
			if err != nil {
				return usageError{err}
			}
			return fail(serve(cmd.Context(), log, e.getenv, cfg))
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Addr, "addr", cfg.Addr, "host:port to listen on; a host name listens on each of its addresses"+envHelp("ROUTEGUIDE_ADDR"))
	f.StringVar(&cfg.Store, "store", cfg.Store, "where people are kept: a SQLite file path, \"memory\" (kept nowhere), or a postgres:// URL"+envHelp("ROUTEGUIDE_STORE"))
	f.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "how long in-flight calls may run after a stop signal"+envHelp("ROUTEGUIDE_SHUTDOWN_TIMEOUT"))
	f.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "log format: text or json"+envHelp("ROUTEGUIDE_LOG_FORMAT"))
	f.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "host:port to serve Prometheus metrics on, at /metrics; off when empty"+envHelp("ROUTEGUIDE_METRICS_ADDR"))
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate to serve TLS with (TLS 1.2 or later)")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	f.StringVar(&cfg.ClientCA, "client-ca", "", "PEM CA certificates; clients must present a certificate they signed (mTLS)")
	f.StringVar(&cfg.Tokens, "tokens", "", "file of bearer tokens, one \"TOKEN NAME ROLE\" a line, ROLE reader or writer")
	f.BoolVar(&cfg.Insecure, "insecure", false, "serve plaintext on a non-loopback address")
	f.BoolVar(&cfg.Pprof, "pprof", false, "also serve runtime profiles at /debug/pprof/ on the metrics address")
	f.DurationVar(&cfg.Slow, "slow", cfg.Slow, "log a successful call at info level when it takes this long; every call is logged at debug")
	f.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "least severe level logged: debug, info, warn or error"+envHelp("ROUTEGUIDE_LOG_LEVEL"))
	return cmd
}

// serve runs the server until ctx ends, then shuts it down.
func serve(ctx context.Context, log *slog.Logger, getenv func(string) string, cfg serveConfig) error {
	telemetry.HeapProfiling(cfg.Pprof)
	listeners, err := grpcserver.Listen(ctx, log, cfg.Addr)
	if err != nil {
		return err
	}
	addrs := make([]string, len(listeners))
	for i, l := range listeners {
		addrs[i] = l.Addr().String()
	}

	store, storeName, err := openStore(ctx, log, cfg.Store)
	if err != nil {
		for _, l := range listeners {
			l.Close()
		}
		return err
	}
	defer store.Close()
	directory := people.Store(store)
	if _, inMemory := store.(*memory.Store); !inMemory {
		// Reads are answered from memory, kept current by the change log;
		// on PostgreSQL other replicas write too.
		_, shared := store.(*postgres.Store)
		c := cache.New(store, cache.Options{Shared: shared, Log: log})
		defer c.Close()
		directory = c
	}

	tracer, stopTracing, err := telemetry.Tracing(ctx, getenv, version())
	if err != nil {
		return err
	}
	defer stopTracing(context.WithoutCancel(ctx))
	opts := grpcserver.Options{Log: log, Limits: cfg.Limits, Slow: cfg.Slow, StatsHandler: tracer}
	if cfg.TLSCert != "" {
		if opts.TLS, err = grpcserver.ServerTLS(cfg.TLSCert, cfg.TLSKey, cfg.ClientCA); err != nil {
			return err
		}
	}
	var tokens []grpcserver.Token
	if cfg.Tokens != "" {
		if tokens, err = grpcserver.LoadTokens(cfg.Tokens); err != nil {
			return err
		}
	}
	opts.Auth = grpcserver.NewAuth(tokens, cfg.ClientCA != "")
	if cfg.Insecure && cfg.TLSCert == "" && !loopback(ctx, cfg.Addr) {
		log.Warn("serving plaintext on a non-loopback address (--insecure): traffic and tokens can be read on the network", "addr", cfg.Addr)
	}
	var grpcMetrics *telemetry.ServerMetrics
	if cfg.MetricsAddr != "" {
		grpcMetrics = telemetry.NewServerMetrics()
		opts.Metrics = grpcMetrics
	}
	srv := grpcserver.New(directory, opts)
	if cfg.MetricsAddr != "" {
		stop, err := serveMetrics(log, cfg, grpcMetrics, store)
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return err
		}
		defer stop()
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(listeners...) }()
	log.Info("serving RouteGuide",
		"addr", strings.Join(addrs, ","),
		"version", version(),
		"store", storeName,
		"metrics_addr", cfg.MetricsAddr,
		"tracing", tracer != nil,
		"tls", cfg.TLSCert != "",
		"mtls", cfg.ClientCA != "",
		"tokens", len(tokens),
		"shutdown_timeout", cfg.ShutdownTimeout,
		"max_concurrent_streams", cfg.Limits.MaxConcurrentStreams,
		"max_recv_msg_size", cfg.Limits.MaxRecvMsgSize,
	)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
	}
	start := time.Now()
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	graceful := srv.Shutdown(stopCtx)
	if serveErr == nil {
		serveErr = <-served
	}
	log.Info("stopped RouteGuide", "graceful", graceful, "took", time.Since(start).Round(time.Millisecond))
	if serveErr != nil {
		return fmt.Errorf("serve: %w", serveErr)
	}
	return nil
}

// loopback reports whether addr's host names only loopback addresses. An
// empty host means every interface, which is not loopback; a name that does
// not resolve is not either.
func loopback(ctx context.Context, addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if host == "localhost" {
		return true
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil || len(ips) == 0 {
		return false
	}
	for _, ip := range ips {
		if !ip.IP.IsLoopback() {
			return false
		}
	}
	return true
}

// serveMetrics serves the metrics (and profiles, with --pprof) on
// cfg.MetricsAddr until the returned stop is called.
func serveMetrics(log *slog.Logger, cfg serveConfig, grpcMetrics prometheus.Collector, store people.Store) (stop func(), err error) {
	cs := []prometheus.Collector{grpcMetrics}
	switch s := store.(type) {
	case *sqlite.Store:
		cs = append(cs, telemetry.SQLCollectors(s.DBs())...)
	case *postgres.Store:
		cs = append(cs, telemetry.PoolCollector(s.Pool()))
	}
	l, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	hs := &http.Server{Handler: telemetry.Handler(telemetry.Registry(cs...), cfg.Pprof), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(l)
	log.Info("serving metrics", "addr", l.Addr().String(), "pprof", cfg.Pprof)
	return func() { hs.Close() }, nil
}

// openStore opens the store spec names: "memory", a postgres:// URL, or else
// a SQLite file path. It also returns how to name the store in logs, with any
// password masked.
func openStore(ctx context.Context, log *slog.Logger, spec string) (people.Store, string, error) {
	switch {
	case spec == "memory":
		return memory.New(0, people.Seed()...), "memory", nil
	case strings.HasPrefix(spec, "postgres://") || strings.HasPrefix(spec, "postgresql://"):
		name := "postgres"
		if u, err := url.Parse(spec); err == nil {
			name = u.Redacted()
		}
		s, err := postgres.Open(ctx, spec, 0, log)
		if err != nil {
			return nil, "", fmt.Errorf("open store %s: %w", name, err)
		}
		return s, name, nil
	case spec == "":
		return nil, "", usageError{fmt.Errorf("--store is empty; want a file path, memory or a postgres:// URL")}
	}
	s, err := sqlite.Open(ctx, spec, 0)
	if err != nil {
		return nil, "", fmt.Errorf("open store: %w", err)
	}
	return s, "sqlite:" + spec, nil
}

// newLogger returns a logger writing to w in the given format ("text" or
// "json") at the given level and above.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/routeguide/routeguide/internal/grpcserver"
	"github.com/routeguide/routeguide/internal/httpserver"
	"github.com/routeguide/routeguide/internal/server"
)

func serveCommand(e *env) *cobra.Command {
	cfg := server.DefaultConfig()
	cfg.Version = version()
	logFormat, logLevel := "text", "info"
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
				"addr":                  "ROUTEGUIDE_ADDR",
				"http-addr":             "ROUTEGUIDE_HTTP_ADDR",
				"allowed-host":          "ROUTEGUIDE_ALLOWED_HOSTS",
				"cors-origin":           "ROUTEGUIDE_CORS_ORIGINS",
				"trusted-proxy":         "ROUTEGUIDE_TRUSTED_PROXIES",
				"store":                 "ROUTEGUIDE_STORE",
				"shutdown-timeout":      "ROUTEGUIDE_SHUTDOWN_TIMEOUT",
				"log-format":            "ROUTEGUIDE_LOG_FORMAT",
				"log-level":             "ROUTEGUIDE_LOG_LEVEL",
				"metrics-addr":          "ROUTEGUIDE_METRICS_ADDR",
				"health-addr":           "ROUTEGUIDE_HEALTH_ADDR",
				"pprof":                 "ROUTEGUIDE_PPROF",
				"tls-cert":              "ROUTEGUIDE_TLS_CERT",
				"tls-key":               "ROUTEGUIDE_TLS_KEY",
				"client-ca":             "ROUTEGUIDE_CLIENT_CA",
				"tokens":                "ROUTEGUIDE_TOKENS",
				"insecure":              "ROUTEGUIDE_INSECURE",
				"slow":                  "ROUTEGUIDE_SLOW",
				"max-connections":       "ROUTEGUIDE_MAX_CONNECTIONS",
				"max-connection-age":    "ROUTEGUIDE_MAX_CONNECTION_AGE",
				"idempotency-retention": "ROUTEGUIDE_IDEMPOTENCY_RETENTION",
				"cache-max-bytes":       "ROUTEGUIDE_CACHE_MAX_BYTES",
			})
			if err != nil {
				return err
			}
			if cfg.HTTPAddr == "off" {
				cfg.HTTPAddr = ""
			}
			if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
				return usageError{errors.New("--tls-cert and --tls-key go together")}
			}
			if cfg.ClientCA != "" && cfg.TLSCert == "" {
				return usageError{errors.New("--client-ca needs --tls-cert and --tls-key: client certificates are checked in the TLS handshake")}
			}
			if cfg.Store == "" {
				return usageError{errors.New("--store is empty; want a file path, memory or a postgres:// URL")}
			}
			if cfg.TLSCert == "" && !cfg.Insecure && !grpcserver.Loopback(cmd.Context(), cfg.Addr) {
				return usageError{fmt.Errorf("--addr %s is not a loopback address, and plaintext must not face the network: serve TLS with --tls-cert and --tls-key, or pass --insecure to serve plaintext anyway", cfg.Addr)}
			}
			if cfg.HTTPAddr != "" {
				if err := checkAddr("--http-addr", cfg.HTTPAddr); err != nil {
					return err
				}
				if cfg.TLSCert == "" && !cfg.Insecure && !grpcserver.Loopback(cmd.Context(), cfg.HTTPAddr) {
					return usageError{fmt.Errorf("--http-addr %s is not a loopback address, and plaintext must not face the network: serve TLS with --tls-cert and --tls-key, or pass --insecure to serve plaintext anyway", cfg.HTTPAddr)}
				}
			}
			if err := httpserver.Origins(cfg.CORSOrigins); err != nil {
				return usageError{fmt.Errorf("--cors-origin: %w", err)}
			}
			if cfg.Pprof && cfg.MetricsAddr == "" {
				return usageError{errors.New("--pprof needs --metrics-addr: the profiles are served beside the metrics")}
			}
			if cfg.MetricsAddr != "" {
				if err := checkAddr("--metrics-addr", cfg.MetricsAddr); err != nil {
					return err
				}
			}
			if cfg.HealthAddr != "" {
				if err := checkAddr("--health-addr", cfg.HealthAddr); err != nil {
					return err
				}
			}
			if cfg.Pprof && !cfg.Insecure && !grpcserver.Loopback(cmd.Context(), cfg.MetricsAddr) {
				return usageError{fmt.Errorf("--metrics-addr %s is not a loopback address, and --pprof must not face the network (its profiles show memory and the command line): serve profiles on loopback, or pass --insecure to serve them anyway", cfg.MetricsAddr)}
			}
			if err := checkAddr("--addr", cfg.Addr); err != nil {
				return err
			}
			if cfg.ShutdownTimeout <= 0 {
				return usageError{fmt.Errorf("--shutdown-timeout %v: must be positive", cfg.ShutdownTimeout)}
			}
			if cfg.MaxConnections <= 0 {
				return usageError{fmt.Errorf("--max-connections %d: must be positive", cfg.MaxConnections)}
			}
			if cfg.Limits.MaxConnectionAge <= 0 {
				return usageError{fmt.Errorf("--max-connection-age %v: must be positive", cfg.Limits.MaxConnectionAge)}
			}
			if cfg.IdempotencyRetention <= 0 {
				return usageError{fmt.Errorf("--idempotency-retention %v: must be positive", cfg.IdempotencyRetention)}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The lines are held briefly and written together (see
			// logBuffer), and all written before serve returns.
			out := newLogBuffer(e.stderr, logFlushEvery, logBufferBytes)
			defer out.Close()
			log, err := newLogger(out, logFormat, logLevel)
			if err != nil {
				return usageError{err}
			}
			log = slog.New(flushingHandler{log.Handler(), out})
			cfg.Getenv = e.getenv
			return fail(server.Run(cmd.Context(), log, cfg))
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Addr, "addr", cfg.Addr, "host:port to listen on; a host name listens on each of its addresses"+envHelp("ROUTEGUIDE_ADDR"))
	f.StringVar(&cfg.HTTPAddr, "http-addr", cfg.HTTPAddr, "host:port of the HTTP listener (Connect, gRPC-Web, REST, the watch feed, the web page); off when empty or \"off\"; plaintext only on loopback unless TLS or --insecure"+envHelp("ROUTEGUIDE_HTTP_ADDR"))
	f.StringSliceVar(&cfg.AllowedHosts, "allowed-host", nil, "host names the HTTP listener answers to besides IP addresses, localhost, --http-addr's host and the TLS certificate's names; others are refused (DNS rebinding)"+envHelp("ROUTEGUIDE_ALLOWED_HOSTS"))
	f.StringSliceVar(&cfg.CORSOrigins, "cors-origin", nil, "origins (https://app.example.com) whose pages may call the HTTP listener from a browser; none when empty"+envHelp("ROUTEGUIDE_CORS_ORIGINS"))
	f.StringSliceVar(&cfg.TrustedProxies, "trusted-proxy", nil, "IP addresses or CIDR networks of reverse proxies whose X-Forwarded-For names the HTTP client; none when empty"+envHelp("ROUTEGUIDE_TRUSTED_PROXIES"))
	f.StringVar(&cfg.Store, "store", cfg.Store, "where people are kept: a SQLite file path, \"memory\" (kept nowhere), or PostgreSQL as a postgres:// URL or a \"host=... dbname=...\" string"+envHelp("ROUTEGUIDE_STORE"))
	f.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "how long in-flight calls may run after a stop signal"+envHelp("ROUTEGUIDE_SHUTDOWN_TIMEOUT"))
	f.StringVar(&logFormat, "log-format", logFormat, "log format: text or json"+envHelp("ROUTEGUIDE_LOG_FORMAT"))
	f.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "host:port to serve Prometheus metrics on, at /metrics; off when empty"+envHelp("ROUTEGUIDE_METRICS_ADDR"))
	f.StringVar(&cfg.HealthAddr, "health-addr", "", "host:port of a plaintext listener serving only grpc.health.v1, for probes that send no TLS (Kubernetes'); off when empty"+envHelp("ROUTEGUIDE_HEALTH_ADDR"))
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate to serve TLS with (TLS 1.2 or later)"+envHelp("ROUTEGUIDE_TLS_CERT"))
	f.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key of --tls-cert"+envHelp("ROUTEGUIDE_TLS_KEY"))
	f.StringVar(&cfg.ClientCA, "client-ca", "", "PEM CA certificates; clients must present a certificate they signed (mTLS)"+envHelp("ROUTEGUIDE_CLIENT_CA"))
	f.StringVar(&cfg.Tokens, "tokens", "", "file of bearer tokens, one \"TOKEN NAME ROLE\" a line, ROLE reader or writer"+envHelp("ROUTEGUIDE_TOKENS"))
	f.BoolVar(&cfg.Insecure, "insecure", false, "serve plaintext, or --pprof, on a non-loopback address"+envHelp("ROUTEGUIDE_INSECURE"))
	f.BoolVar(&cfg.Pprof, "pprof", false, "also serve runtime profiles at /debug/pprof/ on the metrics address, which must be loopback unless --insecure"+envHelp("ROUTEGUIDE_PPROF"))
	f.DurationVar(&cfg.Slow, "slow", cfg.Slow, "log a successful call at info level when it takes this long; every call is logged at debug"+envHelp("ROUTEGUIDE_SLOW"))
	f.IntVar(&cfg.MaxConnections, "max-connections", cfg.MaxConnections, "most client connections open at once; more wait until one closes"+envHelp("ROUTEGUIDE_MAX_CONNECTIONS"))
	f.DurationVar(&cfg.Limits.MaxConnectionAge, "max-connection-age", cfg.Limits.MaxConnectionAge, "how long a client connection lives before the server asks the client (GOAWAY) to open a new one, resolving its target again so that new replicas get calls; ±10%"+envHelp("ROUTEGUIDE_MAX_CONNECTION_AGE"))
	f.DurationVar(&cfg.IdempotencyRetention, "idempotency-retention", cfg.IdempotencyRetention, "how long a write's request id is kept: a retry within it is answered what the write answered"+envHelp("ROUTEGUIDE_IDEMPOTENCY_RETENTION"))
	f.Var(byteSize{&cfg.CacheMaxBytes}, "cache-max-bytes", "bound on the read cache's memory (256MiB, 1GiB): it then holds the people read lately and reads the others from the store, instead of loading the whole directory; 0 holds the whole directory"+envHelp("ROUTEGUIDE_CACHE_MAX_BYTES"))
	f.StringVar(&logLevel, "log-level", logLevel, "least severe level logged: debug, info, warn or error"+envHelp("ROUTEGUIDE_LOG_LEVEL"))
	return cmd
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

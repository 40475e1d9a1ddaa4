package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/routeguide/routeguide/internal/grpcclient"
	"github.com/routeguide/routeguide/internal/grpcserver"
	"github.com/routeguide/routeguide/internal/people"
)

// clientConfig is what every client command runs with.
type clientConfig struct {
	Addr    string
	Timeout time.Duration
	Output  string
	Token   string
	TLS     bool
	CA      string
	Cert    string
	Key     string
	// timeoutSet reports whether --timeout or ROUTEGUIDE_TIMEOUT was given,
	// for commands whose natural deadline differs from the default.
	timeoutSet bool
}

// addClientFlags registers the shared client flags on cmd and returns the
// config they fill. withOutput adds -o for commands that print people.
func addClientFlags(e *env, cmd *cobra.Command, withOutput bool) *clientConfig {
	cfg := &clientConfig{Addr: defaultAddr, Timeout: 10 * time.Second, Output: "text"}
	f := cmd.Flags()
	f.StringVar(&cfg.Addr, "addr", cfg.Addr, "server target: host:port, host:port,host:port,... or dns:///name:port"+envHelp("ROUTEGUIDE_ADDR"))
	f.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "deadline for each call; 0 means none"+envHelp("ROUTEGUIDE_TIMEOUT"))
	f.StringVar(&cfg.Token, "token", "", "bearer token to call with"+envHelp("ROUTEGUIDE_TOKEN"))
	f.BoolVar(&cfg.TLS, "tls", false, "connect with TLS (implied by --ca, --cert)"+envHelp("ROUTEGUIDE_TLS"))
	f.StringVar(&cfg.CA, "ca", "", "PEM CA certificates to verify the server with, instead of the system's"+envHelp("ROUTEGUIDE_CA"))
	f.StringVar(&cfg.Cert, "cert", "", "PEM client certificate, for servers that require one (mTLS)"+envHelp("ROUTEGUIDE_CERT"))
	f.StringVar(&cfg.Key, "key", "", "PEM private key of --cert"+envHelp("ROUTEGUIDE_KEY"))
	if withOutput {
		f.StringVarP(&cfg.Output, "output", "o", cfg.Output, "output format: text, or json for one protojson object a line")
	}
	cmd.PreRunE = func(cmd *cobra.Command, _ []string) error {
		err := bindEnv(cmd.Flags(), e.getenv, map[string]string{
			"addr":    "ROUTEGUIDE_ADDR",
			"timeout": "ROUTEGUIDE_TIMEOUT",
			"token":   "ROUTEGUIDE_TOKEN",
			"tls":     "ROUTEGUIDE_TLS",
			"ca":      "ROUTEGUIDE_CA",
			"cert":    "ROUTEGUIDE_CERT",
			"key":     "ROUTEGUIDE_KEY",
		})
		if err != nil {
			return err
		}
		addrs, err := grpcclient.Addresses(cfg.Addr)
		if err != nil {
			return usageError{fmt.Errorf("--addr %w", err)}
		}
		if (cfg.Cert == "") != (cfg.Key == "") {
			return usageError{errors.New("--cert and --key go together")}
		}
		cfg.TLS = cfg.TLS || cfg.CA != "" || cfg.Cert != ""
		if cfg.Token != "" && !cfg.TLS {
			if err := allLoopback(cmd.Context(), cfg.Addr, addrs); err != nil {
				return err
			}
		}
		cfg.timeoutSet = cmd.Flags().Changed("timeout")
		if cfg.Timeout < 0 {
			return usageError{fmt.Errorf("--timeout %v: must not be negative", cfg.Timeout)}
		}
		if cfg.Output != "text" && cfg.Output != "json" {
			return usageError{fmt.Errorf("--output %q: want text or json", cfg.Output)}
		}
		return nil
	}
	return cfg
}

// allLoopback refuses to send a token in plaintext to target unless every
// one of its addresses is a loopback address. A target with a resolver
// scheme has addresses only its resolver knows, and is refused.
func allLoopback(ctx context.Context, target string, addrs []string) error {
	if len(addrs) == 0 {
		return usageError{fmt.Errorf("refusing to send a token in plaintext to %s, whose addresses may not be loopback addresses: connect with --tls", target)}
	}
	for _, a := range addrs {
		if !grpcserver.Loopback(ctx, a) {
			return usageError{fmt.Errorf("refusing to send a token in plaintext to %s, which is not a loopback address: connect with --tls", a)}
		}
	}
	return nil
}

// connect returns a client for cfg.Addr.
func (cfg *clientConfig) connect() (*grpcclient.Client, error) {
	opts, err := cfg.dialOptions()
	if err != nil {
		return nil, err
	}
	c, err := grpcclient.New(cfg.Addr, opts...)
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// dialOptions returns the TLS and token options of cfg, to add to a
// plaintext connection's. It fails when a certificate file cannot be read.
func (cfg *clientConfig) dialOptions() ([]grpc.DialOption, error) {
	var opts []grpc.DialOption
	if cfg.TLS {
		tc, err := cfg.tlsConfig()
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	}
	if cfg.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(cfg.Token)))
	}
	return opts, nil
}

// tlsConfig returns the TLS configuration of --ca, --cert and --key. It
// fails when a file cannot be read.
func (cfg *clientConfig) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CA != "" {
		pem, err := os.ReadFile(cfg.CA)
		if err != nil {
			return nil, failure{fmt.Errorf("--ca: %w", err)}
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, failure{fmt.Errorf("--ca %s holds no PEM certificate", cfg.CA)}
		}
	}
	if cfg.Cert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.Cert, cfg.Key)
		if err != nil {
			return nil, failure{fmt.Errorf("--cert: %w", err)}
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// bearer sends a token as "authorization: Bearer TOKEN". The command line
// checks that it goes over TLS or to a loopback address.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

// openEnded drops the default deadline for a call that lasts as long as its
// user wants (a watch, an import, names from stdin); a --timeout or
// ROUTEGUIDE_TIMEOUT given explicitly still applies.
func (cfg *clientConfig) openEnded() {
	if !cfg.timeoutSet {
		cfg.Timeout = 0
	}
}

// callContext returns the context for one call: ctx with the configured
// deadline, if any.
func (cfg *clientConfig) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if cfg.Timeout == 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, cfg.Timeout)
}

// describe rewrites a failed call's error as the one line a person reads:
// which server could not be reached, how long it was given, or what the
// directory refused and why. It reads the domain's error kinds, which
// grpcclient returns (see wire.FromStatus). It returns nil for nil.
func (cfg *clientConfig) describe(err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, context.Canceled):
		return errors.New("interrupted")
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("no answer from RouteGuide at %s within %v (--timeout)", cfg.Addr, cfg.Timeout)
	}
	var e *people.Error
	if !errors.As(err, &e) {
		return err
	}
	switch e.Kind {
	case people.Unavailable:
		if hint := cfg.diagnoseTLS(); hint != "" {
			return fmt.Errorf("cannot connect to RouteGuide at %s: %s", cfg.Addr, hint)
		}
		return fmt.Errorf("RouteGuide at %s is unavailable: %s", cfg.Addr, briefly(e.Message))
	case people.NotFound, people.AlreadyExists:
		return errors.New(e.Message)
	case people.Invalid:
		// Name every field at fault, not only the first.
		if len(e.Violations) > 0 {
			fields := make([]string, len(e.Violations))
			for i, v := range e.Violations {
				fields[i] = v.Field + " " + v.Description
			}
			return errors.New("invalid: " + strings.Join(fields, "; "))
		}
	}
	// A call refused for a reason the domain has no kind for (a token, a
	// limit) is named by its code.
	if st, ok := status.FromError(err); ok {
		return fmt.Errorf("%s: %s", humanCode(st.Code()), e.Message)
	}
	return err
}

// describeStream is describe for a streaming call that printed answers
// answers before err ended it: a deadline that ends a stream after answers
// arrived is not a server that never answered.
func (cfg *clientConfig) describeStream(err error, answers int) error {
	if answers > 0 && (status.Code(err) == codes.DeadlineExceeded || errors.Is(err, context.DeadlineExceeded)) {
		return fmt.Errorf("the deadline (--timeout %v) ended the stream from RouteGuide at %s after %s", cfg.Timeout, cfg.Addr, plural(answers, "answer"))
	}
	return cfg.describe(err)
}

// counting returns f, counting each call in *n.
func counting[T any](n *int, f func(T) error) func(T) error {
	return func(v T) error {
		*n++
		return f(v)
	}
}

// humanCode returns c's name in lower-case words, such as "not found".
func humanCode(c codes.Code) string {
	var b strings.Builder
	for i, r := range c.String() {
		if i > 0 && unicode.IsUpper(r) {
			b.WriteByte(' ')
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// briefly shortens grpc-go's nested transport messages, such as
// `connection error: desc = "transport: Error while dialing: dial tcp
// 127.0.0.1:1: connect: connection refused"`, or those of its retries,
// such as `max retries exhausted: failed after 5 attempts: rpc error: code
// = Unavailable desc = connection error: desc = "error reading server
// preface: connection reset by peer"`, to their last clause.
func briefly(msg string) string {
	msg = strings.TrimSuffix(msg, `"`)
	if i := strings.LastIndex(msg, ": "); i >= 0 && (strings.Contains(msg, "transport") || strings.Contains(msg, "desc = ")) {
		return msg[i+2:]
	}
	return msg
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/routeguide/routeguide/internal/grpcclient"
)

// clientConfig is what every client command runs with.
type clientConfig struct {
	Addr    string
	Timeout time.Duration
	Output  string
	// timeoutSet reports whether --timeout or ROUTEGUIDE_TIMEOUT was given,
	// for commands whose natural deadline differs from the default.
	timeoutSet bool
}

// addClientFlags registers the shared client flags on cmd and returns the
// config they fill. withOutput adds -o for commands that print people.
func addClientFlags(e *env, cmd *cobra.Command, withOutput bool) *clientConfig {
	cfg := &clientConfig{Addr: defaultAddr, Timeout: 10 * time.Second, Output: "text"}
	f := cmd.Flags()
	f.StringVar(&cfg.Addr, "addr", cfg.Addr, "server address, host:port"+envHelp("ROUTEGUIDE_ADDR"))
	f.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "deadline for each call; 0 means none"+envHelp("ROUTEGUIDE_TIMEOUT"))
	if withOutput {
		f.StringVarP(&cfg.Output, "output", "o", cfg.Output, "output format: text, or json for one protojson object a line")
	}
	cmd.PreRunE = func(cmd *cobra.Command, _ []string) error {
		err := bindEnv(cmd.Flags(), e.getenv, map[string]string{
			"addr":    "ROUTEGUIDE_ADDR",
			"timeout": "ROUTEGUIDE_TIMEOUT",
		})
		if err != nil {
			return err
		}
		if err := checkAddr("--addr", cfg.Addr); err != nil {
			return err
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

// connect returns a client for cfg.Addr.
func (cfg *clientConfig) connect() (*grpcclient.Client, error) {
	c, err := grpcclient.New(cfg.Addr)
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
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
// which server could not be reached, or how long it was given. It returns nil
// for nil.
func (cfg *clientConfig) describe(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return errors.New("interrupted")
	}
	// The status itself, not status.FromError's view of the wrapped chain,
	// whose message would repeat the wrapping.
	var se interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &se) {
		return err
	}
	st := se.GRPCStatus()
	switch st.Code() {
	case codes.Unavailable:
		return fmt.Errorf("RouteGuide at %s is unavailable: %s", cfg.Addr, briefly(st.Message()))
	case codes.DeadlineExceeded:
		return fmt.Errorf("no answer from RouteGuide at %s within %v (--timeout)", cfg.Addr, cfg.Timeout)
	case codes.Canceled:
		return errors.New("interrupted")
	case codes.NotFound, codes.AlreadyExists:
		return errors.New(st.Message())
	case codes.InvalidArgument:
		// Name every field at fault, not only the first.
		var fields []string
		for _, d := range st.Details() {
			if br, ok := d.(*errdetails.BadRequest); ok {
				for _, v := range br.GetFieldViolations() {
					fields = append(fields, v.GetField()+" "+v.GetDescription())
				}
			}
		}
		if len(fields) > 0 {
			return errors.New("invalid: " + strings.Join(fields, "; "))
		}
	}
	return fmt.Errorf("%s: %s", humanCode(st.Code()), st.Message())
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
// 127.0.0.1:1: connect: connection refused"`, to their last clause.
func briefly(msg string) string {
	msg = strings.TrimSuffix(msg, `"`)
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.Contains(msg, "transport") {
		return msg[i+2:]
	}
	return msg
}

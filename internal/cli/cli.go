// Package cli is the routeguide command: `serve` runs the server, and the
// other subcommands are its client.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed
	exitUsage   = 2 // the command line was wrong
)

// env is what a command reads from its surroundings besides flags.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// Run runs the routeguide command with args (without the program name) and
// returns its exit code. ctx ends when the process is asked to stop. Failures
// are reported on stderr as one line.
func Run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "routeguide",
		Short: "RouteGuide: a gRPC people directory",
		Long: `RouteGuide is a gRPC people directory: "routeguide serve" runs the server,
and the other commands are its client.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Version:       version(),
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		serveCommand(e),
		demoCommand(e),
		getCommand(e),
		peopleCommand(e),
		addCommand(e),
		updateCommand(e),
		deleteCommand(e),
		listCommand(e),
		watchCommand(e),
		historyCommand(e),
		importCommand(e),
		exportCommand(e),
		benchCommand(e),
		versionCommand(e),
	)

	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	if errors.As(err, new(exitSilently)) {
		return exitFailure
	}
	var failed failure
	if errors.As(err, &failed) {
		fmt.Fprintf(stderr, "routeguide: %v\n", failed.err)
		return exitFailure
	}
	// Anything else is cobra's or ours about the command line.
	fmt.Fprintf(stderr, "routeguide: %v\n\n%s", err, cmd.UsageString())
	return exitUsage
}

// failure marks an error from a command that ran, as opposed to a mistake in
// the command line, which earns the usage text.
type failure struct{ err error }

func (f failure) Error() string { return f.err.Error() }
func (f failure) Unwrap() error { return f.err }

// fail returns err marked as a failure, or nil.
func fail(err error) error {
	if err == nil {
		return nil
	}
	return failure{err}
}

// exitSilently fails a command that has already said why on stderr.
type exitSilently struct{}

func (exitSilently) Error() string { return "failed" }

// usageError is a mistake in the command line.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }

// bindEnv fills every flag of fs that the command line did not set from its
// environment variable, named in envNames, so that flags win over the
// environment and the environment over defaults. A malformed value is a
// usage error that names the variable.
func bindEnv(fs *pflag.FlagSet, getenv func(string) string, envNames map[string]string) error {
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		name, ok := envNames[f.Name]
		if !ok || f.Changed {
			return
		}
		v := getenv(name)
		if v == "" {
			return
		}
		if err := f.Value.Set(v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %v", name, v, err))
			return
		}
		f.Changed = true
	})
	if len(errs) > 0 {
		return usageError{errors.Join(errs...)}
	}
	return nil
}

// envHelp returns the sentence that flag usage texts end with.
func envHelp(name string) string { return " (env " + name + ")" }

// version returns the module version the binary was built from, or "devel".
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

func versionCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(e.stdout, "routeguide", version(), runtime.Version())
			return fail(err)
		},
	}
}

// noArgs refuses positional arguments.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("%s takes no arguments, got %q", cmd.CommandPath(), strings.Join(args, " "))}
	}
	return nil
}

// checkAddr refuses an address that is not host:port, so that a missing port
// is a usage error rather than a dial to some default port. Addresses with a
// gRPC resolver scheme ("dns:///host:port") pass as they are.
func checkAddr(flag, addr string) error {
	if strings.Contains(addr, ":///") {
		return nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return usageError{fmt.Errorf("%s %q: want host:port", flag, addr)}
	}
	return nil
}

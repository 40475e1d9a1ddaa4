// Command routeguide is the RouteGuide people directory: `routeguide serve`
// runs the gRPC server, and the other subcommands are its client. Run
// `routeguide help` for the list.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/routeguide/routeguide/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, a second one kills the process at once
	// instead of waiting for a graceful stop.
	context.AfterFunc(ctx, stop)
	os.Exit(cli.Run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
}

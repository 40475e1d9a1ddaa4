// Command baseline is the bare reference RouteGuide is measured against: the
// seed contract (GetPerson and GetPeople from protos/person.proto and
// protos/route_guide.proto) served by grpc-go with stock options, from a map
// of the seed's two people, behaving as the seed's server does
// (bench/seedserver).
//
// It is the reference, so it is never tuned: grpc.NewServer() with no
// options, no interceptors, no health, no logging, no store. Whatever
// RouteGuide costs over it is the price of what RouteGuide adds.
// bench/compare.sh runs it side by side with `routeguide serve`.
//
//	go run ./bench/baseline --addr 127.0.0.1:50061
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc"

	"github.com/routeguide/routeguide/bench/seedserver"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends. It prints "listening on ADDR" once the listener
// is bound. It returns an error when the flags are wrong or the address
// cannot be listened on.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("baseline", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:50061", "address to listen on, host:port (port 0 picks a free one)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := grpc.NewServer()
	pb.RegisterRouteGuideServer(srv, seedserver.New())
	fmt.Fprintf(stdout, "listening on %s\n", lis.Addr())

	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		srv.Stop()
	}()
	err = srv.Serve(lis)
	<-done
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// Command gateway is the stock REST gateway RouteGuide's HTTP listener is
// measured against: grpc-gateway v2 (runtime.NewServeMux with its default
// options, and the handlers protoc-gen-grpc-gateway generates from the same
// google.api.http rules, in bench/gateway/routeguidepb) in front of a bare
// grpc-go server of the seed's service (bench/seedserver, as
// bench/baseline serves it). The gateway reaches the gRPC server as
// grpc-gateway's documentation sets it up: a client connection to the
// server's loopback listener (RegisterRouteGuideHandlerFromEndpoint).
//
// GET /v1/people/{name} answers the person as JSON. A name nobody has is the
// seed's "Not Found" person with 200, as GetPerson answers it; RouteGuide's
// REST route answers 404 there, so only found people compare.
//
// It is a reference, so it is never tuned: http.Server and grpc.NewServer
// with no options. bench/web.sh runs it beside `routeguide serve`.
//
//	go run ./bench/gateway --addr 127.0.0.1:50062
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	gw "github.com/routeguide/routeguide/bench/gateway/routeguidepb"
	"github.com/routeguide/routeguide/bench/seedserver"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends. It prints "listening on ADDR" once both
// listeners are bound, ADDR being the HTTP one. It returns an error when
// the flags are wrong or an address cannot be listened on.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:50062", "HTTP address to listen on, host:port (port 0 picks a free one)")
	grpcAddr := fs.String("grpc-addr", "127.0.0.1:0", "the gRPC server's address, which the gateway dials")
	if err := fs.Parse(args); err != nil {
		return err
	}
	grpcLis, err := net.Listen("tcp", *grpcAddr)
	if err != nil {
		return err
	}
	defer grpcLis.Close()
	httpLis, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	defer httpLis.Close()

	srv := grpc.NewServer()
	pb.RegisterRouteGuideServer(srv, seedserver.New())
	grpcDone := make(chan error, 1)
	go func() { grpcDone <- srv.Serve(grpcLis) }()
	defer func() {
		srv.Stop()
		<-grpcDone
	}()

	// The gateway's client connection closes when ctx ends.
	mux := runtime.NewServeMux()
	dial := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if err := gw.RegisterRouteGuideHandlerFromEndpoint(ctx, mux, grpcLis.Addr().String(), dial); err != nil {
		return err
	}
	hs := &http.Server{Handler: mux}
	fmt.Fprintf(stdout, "listening on %s\n", httpLis.Addr())

	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		hs.Close()
	}()
	err = hs.Serve(httpLis)
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Command lookup looks people up in a RouteGuide directory, as another
// service would: it imports the public client and the generated messages,
// nothing else of RouteGuide.
//
//	lookup [-addr TARGET] [-timeout D] NAME...
//
// It prints one line a person, and exits 1 when a name is nobody's or the
// directory cannot be reached. TARGET is host:port, a comma-separated list
// of replicas, or dns:///name:port.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/routeguide/routeguide/client"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs lookup with args and returns its exit code: 0 when everyone was
// found, 1 when someone was not or a call failed, 2 for a wrong command
// line.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lookup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "localhost:50051", "RouteGuide target: host:port, host:port,host:port,... or dns:///name:port")
	timeout := fs.Duration("timeout", 5*time.Second, "deadline of each lookup")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: lookup [-addr TARGET] [-timeout D] NAME...")
		return 2
	}
	c, err := client.New(*addr)
	if err != nil {
		fmt.Fprintf(stderr, "lookup: %v\n", err)
		return 2
	}
	defer c.Close()

	code := 0
	for _, name := range fs.Args() {
		callCtx, cancel := context.WithTimeout(ctx, *timeout)
		p, err := c.GetPerson(callCtx, name)
		cancel()
		switch status.Code(err) {
		case codes.OK:
			fmt.Fprintln(stdout, describe(p))
		case codes.NotFound:
			fmt.Fprintf(stderr, "lookup: nobody is called %q\n", name)
			code = 1
		default:
			fmt.Fprintf(stderr, "lookup: %s: %v\n", name, err)
			return 1
		}
	}
	return code
}

// describe returns one line about p.
func describe(p *pb.Person) string {
	line := fmt.Sprintf("%s, %d", p.GetName(), p.GetAge())
	if city := p.GetAddress().GetCity(); city != "" {
		line += ", lives in " + city
	}
	if h := p.GetHobbies(); len(h) > 0 {
		line += ", likes " + strings.Join(h, " and ")
	}
	return line
}

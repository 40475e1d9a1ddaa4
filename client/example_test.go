package client_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net"
	"time"

	"github.com/routeguide/routeguide/client"
	"github.com/routeguide/routeguide/internal/grpcserver"
	"github.com/routeguide/routeguide/internal/memory"
	"github.com/routeguide/routeguide/internal/people"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

// startServer runs a RouteGuide server in process on a free loopback port,
// holding the seed's people (Alice and Bob), as `routeguide serve --store
// memory` would, and returns its address and the function that stops it.
func startServer() (addr string, stop func()) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := grpcserver.New(memory.New(0, people.Seed()...), grpcserver.Options{Log: slog.New(slog.DiscardHandler), Limits: grpcserver.DefaultLimits()})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	return lis.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-served
	}
}

func Example() {
	addr, stop := startServer()
	defer stop()

	// A list of replicas works the same: "10.0.0.1:50051,10.0.0.2:50051",
	// or "dns:///routeguide.example:50051".
	c, err := client.New(addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := c.GetPerson(ctx, "Alice")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.GetName(), p.GetAge(), p.GetAddress().GetCity())
	// Output: Alice 30 New York
}

func ExampleClient_List() {
	addr, stop := startServer()
	defer stop()
	c, err := client.New(addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx := context.Background()
	for _, name := range []string{"Carol", "Dan", "Erin"} {
		if _, err := c.Add(ctx, &pb.Person{Name: name, Address: &pb.Person_Address{City: "Boston"}}); err != nil {
			log.Fatal(err)
		}
	}
	// Two people a page: the loop fetches the next page as it needs it.
	for p, err := range c.List(ctx, &pb.ListPeopleRequest{City: "Boston", PageSize: 2}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(p.GetName())
	}
	// Output:
	// Carol
	// Dan
	// Erin
}

func ExampleClient_Watch() {
	addr, stop := startServer()
	defer stop()
	c, err := client.New(addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Everyone first, then every change. Were the server to stop, the loop
	// would go on through another replica of the target (or this one,
	// restarted) from the last revision it delivered.
	watch := c.Watch(ctx, &pb.WatchPeopleRequest{SendCurrent: true}, client.OnReconnect(func(r client.Reconnect) {
		log.Printf("watch cut (%v); resuming after revision %d in %v", r.Err, r.After, r.Delay)
	}))
	for ev, err := range watch {
		if err != nil {
			log.Fatal(err)
		}
		switch ev.GetType() {
		case pb.WatchPeopleResponse_TYPE_CURRENT:
			fmt.Println("now:", ev.GetPerson().GetName())
		case pb.WatchPeopleResponse_TYPE_SYNCED:
			fmt.Println("that is everyone; changes follow")
			if _, err := c.Add(ctx, &pb.Person{Name: "Carol"}); err != nil {
				log.Fatal(err)
			}
		case pb.WatchPeopleResponse_TYPE_ADDED:
			fmt.Println("added:", ev.GetPerson().GetName())
			return
		}
	}
	// Output:
	// now: Alice
	// now: Bob
	// that is everyone; changes follow
	// added: Carol
}

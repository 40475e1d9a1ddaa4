// Command scale measures how RouteGuide's reads hold up as the directory
// grows, for bench/scale.sh: GetPerson throughput, and the cost of a
// ListPeople page at the start of the list and deep into it.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/routeguide/routeguide/routeguidepb"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:50051", "server address")
	mode := flag.String("mode", "get", "get: GetPerson throughput; list: first and deep page cost")
	people := flag.Int("people", 0, "names person-0000000 to person-N-1 exist; 0 asks for Alice and Bob")
	duration := flag.Duration("duration", 5*time.Second, "how long get runs")
	workers := flag.Int("workers", 32, "concurrent callers")
	conns := flag.Int("conns", 2, "connections the callers share")
	flag.Parse()

	clients := make([]pb.RouteGuideClient, *conns)
	for i := range clients {
		conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			fail(err)
		}
		defer conn.Close()
		clients[i] = pb.NewRouteGuideClient(conn)
	}
	switch *mode {
	case "get":
		get(clients, *people, *duration, *workers)
	case "list":
		list(clients[0])
	default:
		fail(fmt.Errorf("unknown -mode %q", *mode))
	}
}

// get calls GetPerson for random existing names from every worker for d and
// prints the rate.
func get(clients []pb.RouteGuideClient, n int, d time.Duration, workers int) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var calls, errs atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clients[w%len(clients)]
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for ctx.Err() == nil {
				name := []string{"Alice", "Bob"}[r.IntN(2)]
				if n > 0 {
					name = fmt.Sprintf("person-%07d", r.IntN(n))
				}
				p, err := c.GetPerson(ctx, &pb.Name{Name: name})
				switch {
				// The run's deadline is the calls' only one; the server, which
				// learns it as a timeout, may end a call a moment before ctx does.
				case ctx.Err() != nil, status.Code(err) == codes.DeadlineExceeded:
				case err != nil || p.GetName() != name:
					errs.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("GetPerson(%q) = %v, %v", name, p.GetName(), err))
				default:
					calls.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		fmt.Fprintln(os.Stderr, "scale: first failure:", e)
	}
	fmt.Printf("GetPerson: %.0f calls/s (%d calls, %d failures, %d callers over %d connections, %v)\n",
		float64(calls.Load())/d.Seconds(), calls.Load(), errs.Load(), workers, len(clients), d)
}

// list times 200 ListPeople pages of 50 at the start of the list and 200 at
// about nine tenths of it, reached by following real page tokens.
func list(c pb.RouteGuideClient) {
	ctx := context.Background()
	count := 0
	req := &pb.ListPeopleRequest{PageSize: 1000}
	var tokens []string
	for {
		resp, err := c.ListPeople(ctx, req)
		if err != nil {
			fail(err)
		}
		count += len(resp.GetPeople())
		if resp.GetNextPageToken() == "" {
			break
		}
		tokens = append(tokens, resp.GetNextPageToken())
		req.PageToken = resp.GetNextPageToken()
	}
	if len(tokens) == 0 {
		fail(fmt.Errorf("the directory holds only %d people; list needs more than a page", count))
	}
	deep := tokens[len(tokens)*9/10]
	timePages := func(token string) time.Duration {
		const n = 200
		start := time.Now()
		for range n {
			if _, err := c.ListPeople(ctx, &pb.ListPeopleRequest{PageSize: 50, PageToken: token}); err != nil {
				fail(err)
			}
		}
		return time.Since(start) / n
	}
	timePages("") // warm up
	first, far := timePages(""), timePages(deep)
	fmt.Printf("ListPeople page of 50: first %v, at 90%% of %d people %v (deep/first %.2f)\n",
		first.Round(time.Microsecond), count, far.Round(time.Microsecond), float64(far)/float64(first))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "scale:", err)
	os.Exit(1)
}

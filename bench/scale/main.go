// Command scale measures RouteGuide as the directory grows, for
// bench/scale.sh. Each mode prints its figures as "key value" lines:
//
//	get      GetPerson throughput (getperson_per_s)
//	list     ListPeople pages of 50: first, deep, and filtered by a city
//	write    AddPerson throughput from concurrent callers (addperson_per_s)
//	serve    starts a server on a store and reports its cold start (from
//	         the process's start to its read cache loaded), its live heap
//	         after a forced collection and its resident memory after reads
//	encoded  the mean size of the people of a JSON lines file, encoded as
//	         GetPerson answers them
//	bounded  a server on a store of -people holding the whole directory
//	         against one bounded to -cache-max-bytes: cold start, resident
//	         memory, GetPerson over a -hot set and over every name
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
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
	mode := flag.String("mode", "get", "get, list, write, serve, encoded or bounded")
	people := flag.Int("people", 0, "names person-0000000 to person-N-1 exist; 0 asks for Alice and Bob")
	duration := flag.Duration("duration", 5*time.Second, "how long get runs")
	workers := flag.Int("workers", 32, "concurrent callers")
	conns := flag.Int("conns", 2, "connections the callers share")
	city := flag.String("city", "Boston", "list: the city the filtered pages ask for")
	bin := flag.String("bin", "routeguide", "serve: the routeguide binary")
	store := flag.String("store", "", "serve: the --store to serve")
	file := flag.String("file", "", "encoded: the JSON lines file")
	prefix := flag.String("prefix", "w", "write: the names added start with this")
	maxBytes := flag.String("cache-max-bytes", "32MiB", "bounded: the bounded server's --cache-max-bytes")
	hot := flag.Int("hot", 100_000, "bounded: the hot set, the first names of -people")
	flag.Parse()

	switch *mode {
	case "serve":
		serveMode(*bin, *store, *people, *duration)
		return
	case "encoded":
		encodedMode(*file)
		return
	case "bounded":
		boundedMode(*bin, *store, *people, *hot, *maxBytes, *duration)
		return
	}

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
		get(clients, *people, *duration, *workers, os.Stdout)
	case "list":
		list(clients[0], *city)
	case "write":
		write(clients, *prefix, *duration, *workers)
	default:
		fail(fmt.Errorf("unknown -mode %q", *mode))
	}
}

// get calls GetPerson for random existing names from every worker for d and
// prints the rate.
func get(clients []pb.RouteGuideClient, n int, d time.Duration, workers int, out io.Writer) {
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
	fmt.Fprintf(out, "getperson_per_s %.0f\n# %d calls, %d failures, %d callers over %d connections, %v\n",
		float64(calls.Load())/d.Seconds(), calls.Load(), errs.Load(), workers, len(clients), d)
}

// list times 200 ListPeople pages of 50 at the start of the list and 200 at
// about nine tenths of it, reached by following real page tokens, and 200
// pages of people in city, the first and then each following the last.
func list(c pb.RouteGuideClient, city string) {
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
	const n = 200
	start := time.Now()
	inCity := 0
	req = &pb.ListPeopleRequest{PageSize: 50, City: city}
	for range n {
		resp, err := c.ListPeople(ctx, req)
		if err != nil {
			fail(err)
		}
		inCity += len(resp.GetPeople())
		req.PageToken = resp.GetNextPageToken() // "" at the end: start again
	}
	byCity := time.Since(start) / n
	if inCity == 0 {
		fail(fmt.Errorf("nobody lives in %q", city))
	}
	fmt.Printf("list_first_ms %.3f\nlist_deep_ms %.3f\nlist_city_ms %.3f\n# ListPeople pages of 50 of %d people: first, at 90%%, and in %s\n",
		ms(first), ms(far), ms(byCity), count, city)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// write calls AddPerson with new names from every worker for d and prints
// the rate of acknowledged additions.
func write(clients []pb.RouteGuideClient, prefix string, d time.Duration, workers int) {
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
			for i := 0; ctx.Err() == nil; i++ {
				p := &pb.Person{
					Name:    fmt.Sprintf("%s-%03d-%07d", prefix, w, i),
					Age:     int32(i % 100),
					Hobbies: []string{"chess", "go"},
					Address: &pb.Person_Address{Street: "1 Main St", City: "Boston"},
				}
				_, err := c.AddPerson(ctx, &pb.AddPersonRequest{Person: p})
				switch {
				case ctx.Err() != nil, status.Code(err) == codes.DeadlineExceeded:
				case err != nil:
					errs.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("AddPerson(%q): %v", p.Name, err))
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
	fmt.Printf("addperson_per_s %.0f\n# %d added, %d failures, %d callers over %d connections, %v\n",
		float64(calls.Load())/d.Seconds(), calls.Load(), errs.Load(), workers, len(clients), d)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "scale:", err)
	os.Exit(1)
}

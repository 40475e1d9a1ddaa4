package grpcserver

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/routeguide/routeguide/internal/people"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

func heapLive() uint64 {
	// Two collections: the first moves sync.Pool contents to the pools'
	// victim caches, the second frees them, so what is left is live.
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestAbandonedStreamsLeakNothing opens 10,000 GetPeople and WatchPeople
// streams, cancels each at a random point, then stops the server: TestMain's
// goleak finds no goroutine left, and the heap is back near where it began.
func TestAbandonedStreamsLeakNothing(t *testing.T) {
	streams := 10_000
	if testing.Short() {
		streams = 1_000
	}
	h := start(t, seedStore())
	base := heapLive()

	var wg sync.WaitGroup
	const workers = 50
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range streams / workers {
				// The stream is cancelled at a random point: perhaps before
				// it opens, perhaps mid-send, perhaps while a watch waits.
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(r.IntN(3000))*time.Microsecond)
				if i%2 == 0 {
					s, err := h.client.GetPeople(ctx)
					if err == nil {
						for range r.IntN(4) {
							s.Send(&pb.Name{Name: "Alice"})
							if r.IntN(2) == 0 {
								s.Recv()
							}
						}
					}
				} else {
					s, err := h.client.WatchPeople(ctx, &pb.WatchPeopleRequest{SendCurrent: r.IntN(2) == 0})
					if err == nil {
						for range r.IntN(3) {
							s.Recv()
						}
					}
				}
				<-ctx.Done()
				cancel()
			}
		}()
	}
	wg.Wait()
	// The server still serves. The bound is generous: on a loaded machine
	// the server may still be ending the last cancelled streams, and what is
	// tested here is that it serves again, not how soon.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := h.client.GetPerson(ctx, &pb.Name{Name: "Bob"}); err != nil {
		t.Fatalf("GetPerson after the streams: %v", err)
	}
	h.shutdown(t)
	// Allow for what the runtime and grpc-go keep pooled; a leak of 10,000
	// streams' state would be far more.
	if after := heapLive(); after > base+8<<20 {
		t.Errorf("heap in use grew from %d to %d bytes across %d abandoned streams", base, after, streams)
	}
}

// TestSlowWatcherIsBounded opens a watch over 200,000 people and never
// reads it. The server sends only as fast as HTTP/2 flow control lets it, so
// memory stays bounded instead of queuing the whole snapshot, and the server
// goes on serving others.
func TestSlowWatcherIsBounded(t *testing.T) {
	store := seedStore()
	batch := make([]people.Person, 200_000)
	for i := range batch {
		batch[i] = people.Person{Name: fmt.Sprintf("person-%07d", i), Hobbies: []string{"reading", "swimming"},
			Address: people.Address{Street: "123 Main Street", City: "Somewhere Quite Far Away"}}
	}
	if _, err := store.Import(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	batch = nil
	h := start(t, store)
	base := heapLive()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := h.client.WatchPeople(ctx, &pb.WatchPeopleRequest{SendCurrent: true}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // time for an unbounded sender to queue everything
	grown := int64(heapLive()) - int64(base)
	// The snapshot is some 20 MB of messages; flow-control windows hold a
	// few MB at most.
	if grown > 12<<20 {
		t.Errorf("heap grew by %d bytes while a watcher did not read", grown)
	}
	t.Logf("heap grew by %d bytes while a watcher did not read", grown)
	callCtx, cancelCall := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelCall()
	if _, err := h.client.GetPerson(callCtx, &pb.Name{Name: "Alice"}); err != nil {
		t.Errorf("GetPerson beside a stalled watch: %v", err)
	}
}

package grpcserver

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/proto"

	"github.com/routeguide/routeguide/internal/cache"
	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/sqlite"
	"github.com/routeguide/routeguide/internal/wire"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

// benchStore is the store `routeguide serve` runs by default: SQLite behind
// the read cache, holding the seed's people. The server reads through the
// cache's Keeper, as `routeguide serve` does (see benchOptions).
func benchStore(b *testing.B) *cache.Store {
	b.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "people.db"), 0)
	if err != nil {
		b.Fatal(err)
	}
	c := cache.New(s, cache.Options{})
	b.Cleanup(func() {
		c.Close()
		s.Close()
	})
	for !c.Ready() {
		time.Sleep(time.Millisecond) // the seed's two people load at once
	}
	return c
}

// benchOptions are the options `routeguide serve` runs with, reading
// through c.
func benchOptions(c *cache.Store) Options {
	return Options{Log: slog.New(slog.DiscardHandler), Limits: DefaultLimits(), Slow: time.Second, Answers: c}
}

// BenchmarkGetPersonHandler measures the handler the server runs: the
// cache read and the answer's kept wire form.
func BenchmarkGetPersonHandler(b *testing.B) {
	c := benchStore(b)
	svc := newService(c, c, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	req := &pb.Name{Name: "Alice"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := svc.getPerson(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetPersonEncode measures the handler plus the server codec's
// work on its answer, the whole per-call work that is RouteGuide's rather
// than grpc-go's.
func BenchmarkGetPersonEncode(b *testing.B) {
	c := benchStore(b)
	svc := newService(c, c, slog.New(slog.DiscardHandler))
	codec := newCodec()
	ctx := context.Background()
	req := &pb.Name{Name: "Alice"}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := svc.getPerson(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		data, err := codec.Marshal(resp)
		if err != nil {
			b.Fatal(err)
		}
		data.Free()
	}
}

// BenchmarkGetPersonProto is BenchmarkGetPersonEncode the way grpc-go's own
// handler path would do it: read, build the message, then encode it.
func BenchmarkGetPersonProto(b *testing.B) {
	store := benchStore(b)
	ctx := context.Background()
	req := &pb.Name{Name: "Alice"}
	b.ReportAllocs()
	for b.Loop() {
		p, err := store.Person(ctx, req.GetName())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := proto.Marshal(wire.ToProto(p)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetPerson measures a whole unary call through grpc-go over an
// in-process connection, with the server's interceptors, from several
// callers at once.
func BenchmarkGetPerson(b *testing.B) {
	c := benchStore(b)
	h := startWith(b, c, benchOptions(c))
	req := &pb.Name{Name: "Alice"}
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if _, err := h.client.GetPerson(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkGetPeople measures one GetPeople stream answering names sent
// ahead of the answers, as a pipelining client does.
func BenchmarkGetPeople(b *testing.B) {
	c := benchStore(b)
	h := startWith(b, c, benchOptions(c))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := h.client.GetPeople(ctx)
	if err != nil {
		b.Fatal(err)
	}
	names := []*pb.Name{{Name: "Alice"}, {Name: "Bob"}}
	b.ReportAllocs()
	b.ResetTimer()
	sent := make(chan error, 1)
	go func() {
		for i := range b.N {
			if err := stream.Send(names[i%2]); err != nil {
				sent <- err
				return
			}
		}
		sent <- stream.CloseSend()
	}()
	for range b.N {
		if _, err := stream.Recv(); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-sent; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCachePerson measures a store read from the cache, and
// BenchmarkSQLitePerson the same read from SQLite itself.
func BenchmarkCachePerson(b *testing.B) {
	s := benchStore(b)
	benchPerson(b, s)
}

func BenchmarkSQLitePerson(b *testing.B) {
	s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "people.db"), 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	benchPerson(b, s)
}

func benchPerson(b *testing.B, s people.Reader) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Person(ctx, "Alice"); err != nil {
			b.Fatal(err)
		}
	}
}

// addOnly is a store whose Add takes no time, so that BenchmarkAddPerson
// measures what the server does around a write.
type addOnly struct {
	people.Store
	rev atomic.Int64
}

func (s *addOnly) Add(context.Context, people.Person) (int64, error) { return s.rev.Add(1), nil }

// BenchmarkAddPerson measures the server's own work on an AddPerson, the
// store's aside: the calls interceptor, the handler (validation, the
// write's context, the audit line, written as `routeguide serve` formats
// it) and the answer, as a call from a peer over TCP reaches it.
func BenchmarkAddPerson(b *testing.B) {
	store := &addOnly{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := newService(store, nil, log)
	c := &calls{log: log, slow: time.Second, drain: context.Background(), failures: newFailureLog(log, failuresBurst, failuresInterval)}
	ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50123}})
	info := &grpc.UnaryServerInfo{FullMethod: pb.RouteGuide_AddPerson_FullMethodName}
	handler := func(ctx context.Context, req any) (any, error) {
		return svc.AddPerson(ctx, req.(*pb.AddPersonRequest))
	}
	req := &pb.AddPersonRequest{Person: &pb.Person{
		Name: "w-001-0000001", Age: 41, Hobbies: []string{"chess", "go"},
		Address: &pb.Person_Address{Street: "1 Main St", City: "Boston"},
	}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.unary(ctx, req, info, handler); err != nil {
			b.Fatal(err)
		}
	}
}

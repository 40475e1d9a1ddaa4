package grpcserver

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/routeguide/routeguide/internal/memory"
	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/postgres"
	"github.com/routeguide/routeguide/internal/postgres/postgrestest"
	"github.com/routeguide/routeguide/internal/sqlite"
	"github.com/routeguide/routeguide/internal/syncbuf"
	"github.com/routeguide/routeguide/internal/wire"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

// everyStore runs test on each store: memory, SQLite, and PostgreSQL when
// postgrestest's variable names a server.
func everyStore(t *testing.T, test func(t *testing.T, s people.Store)) {
	stores := []struct {
		name string
		open func(t *testing.T) people.Store
	}{
		{"memory", func(t *testing.T) people.Store { return memory.New(0, people.Seed()...) }},
		{"sqlite", func(t *testing.T) people.Store {
			s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "people.db"), 0)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
		{"postgres", func(t *testing.T) people.Store {
			s, err := postgres.Open(context.Background(), postgrestest.Schema(t), 0, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			s := st.open(t)
			t.Cleanup(func() { s.Close() })
			test(t, s)
		})
	}
}

// TestImportOversizedMessage checks that a request too large to receive
// ends the import with RESOURCE_EXHAUSTED, logged as such, and that every
// store keeps the requests received before it.
func TestImportOversizedMessage(t *testing.T) {
	everyStore(t, func(t *testing.T, s people.Store) {
		logs := &syncbuf.Buffer{}
		log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		h := startWith(t, s, Options{Log: log, Limits: DefaultLimits(), Slow: time.Minute})
		ctx := callCtx(t)
		stream, err := h.client.ImportPeople(ctx)
		if err != nil {
			t.Fatal(err)
		}
		stream.Send(&pb.ImportPeopleRequest{People: []*pb.Person{{Name: "Carol"}}})
		stream.Send(&pb.ImportPeopleRequest{People: []*pb.Person{{Name: "Dan"}}})
		stream.Send(&pb.ImportPeopleRequest{People: []*pb.Person{{Name: strings.Repeat("x", 5<<20)}}})
		_, err = stream.CloseAndRecv()
		wantStatus(t, "ImportPeople with an oversized request", err, codes.ResourceExhausted, nil)

		// The call's log line comes once the handler has returned, with
		// whatever it stored.
		var code any
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			for _, l := range logLines(t, logs) {
				if m, _ := l["method"].(string); strings.HasSuffix(m, "/ImportPeople") {
					code = l["code"]
				}
			}
			if code != nil {
				break
			}
		}
		if code != codes.ResourceExhausted.String() {
			t.Errorf("the import was logged with code %v, want %v; log:\n%s", code, codes.ResourceExhausted, logs)
		}
		for _, name := range []string{"Carol", "Dan"} {
			if _, err := s.Person(ctx, name); err != nil {
				t.Errorf("Person(%s), sent before the oversized request: %v; want it stored", name, err)
			}
		}
	})
}

// recordingStore is a directory that records the size of every import
// transaction.
type recordingStore struct {
	people.Store
	mu    sync.Mutex
	sizes [][2]int // people, encoded bytes
}

func (s *recordingStore) Import(ctx context.Context, batch []people.Person) (people.ImportResult, error) {
	n := 0
	for _, p := range batch {
		n += proto.Size(wire.ToProto(p))
	}
	s.mu.Lock()
	s.sizes = append(s.sizes, [2]int{len(batch), n})
	s.mu.Unlock()
	return s.Store.Import(ctx, batch)
}

// largePerson is a person of about 2.5 KiB encoded: 32 hobbies of 64
// characters, the most allowed.
func largePerson(i int) *pb.Person {
	p := &pb.Person{Name: fmt.Sprintf("Large %06d", i)}
	for h := range 32 {
		p.Hobbies = append(p.Hobbies, fmt.Sprintf("%02d%s", h, strings.Repeat("h", 62)))
	}
	return p
}

// TestImportTransactionBounds checks that import transactions stay within
// their bounds in people and in bytes, and hold whole requests.
func TestImportTransactionBounds(t *testing.T) {
	tests := []struct {
		name     string
		requests int
		perReq   int
		person   func(i int) *pb.Person
	}{
		{"large people", 14, 300, largePerson}, // about 10 MiB
		{"small people", 110, 1000, func(i int) *pb.Person { return &pb.Person{Name: fmt.Sprintf("p%07d", i)} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &recordingStore{Store: memory.New(0)}
			h := start(t, s)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // generous: the machine may be loaded
			defer cancel()
			stream, err := h.client.ImportPeople(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for r := range tt.requests {
				req := &pb.ImportPeopleRequest{}
				for i := range tt.perReq {
					req.People = append(req.People, tt.person(r*tt.perReq+i))
				}
				if err := stream.Send(req); err != nil {
					t.Fatal(err)
				}
			}
			resp, err := stream.CloseAndRecv()
			if err != nil {
				t.Fatal(err)
			}
			if want := int64(tt.requests * tt.perReq); resp.GetAdded() != want {
				t.Errorf("added %d, want %d", resp.GetAdded(), want)
			}
			if len(s.sizes) < 2 {
				t.Errorf("import transactions %v; want more than one", s.sizes)
			}
			for _, size := range s.sizes {
				if size[0] > importTxPeople || size[1] > importTxBytes || size[0]%tt.perReq != 0 {
					t.Errorf("a transaction of %d people, %d bytes; want at most %d people and %d bytes, in whole requests of %d",
						size[0], size[1], importTxPeople, importTxBytes, tt.perReq)
				}
			}
		})
	}
}

// sqliteWatched is a SQLite directory that says when an import transaction
// has begun.
type sqliteWatched struct {
	*sqlite.Store
	importing chan struct{} // closed when the first import begins
	once      sync.Once
}

func (s *sqliteWatched) Import(ctx context.Context, batch []people.Person) (people.ImportResult, error) {
	s.once.Do(func() { close(s.importing) })
	return s.Store.Import(ctx, batch)
}

// TestImportLetsWritersIn checks that a large import on SQLite, whose one
// writer it shares, does not keep other writers out until it ends: a
// writer that arrives while the import's first transaction runs is
// answered before the import ends.
func TestImportLetsWritersIn(t *testing.T) {
	if testing.Short() {
		t.Skip("imports some 8 MiB")
	}
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "people.db"), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := &sqliteWatched{Store: db, importing: make(chan struct{})}
	h := start(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // generous: the machine may be loaded
	defer cancel()

	var imported atomic.Bool
	importErr := make(chan error, 1)
	go func() {
		stream, err := h.client.ImportPeople(ctx)
		if err != nil {
			importErr <- err
			return
		}
		for r := range 5 { // about 8.5 MiB: two transactions
			req := &pb.ImportPeopleRequest{}
			for i := range 800 {
				req.People = append(req.People, largePerson(r*800+i))
			}
			if err := stream.Send(req); err != nil {
				break // CloseAndRecv says why
			}
		}
		_, err = stream.CloseAndRecv()
		imported.Store(true)
		importErr <- err
	}()

	select {
	case <-s.importing:
	case err := <-importErr:
		t.Fatalf("the import ended before it began a transaction: %v", err)
	}
	var during atomic.Int64 // writers answered before the import ended
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			_, err := h.client.AddPerson(ctx, &pb.AddPersonRequest{Person: &pb.Person{Name: fmt.Sprintf("Writer %d", i)}})
			if err != nil {
				t.Errorf("AddPerson during the import: %v", err)
				return
			}
			if !imported.Load() {
				during.Add(1)
			}
		})
	}
	wg.Wait()
	if err := <-importErr; err != nil {
		t.Fatalf("ImportPeople: %v", err)
	}
	if during.Load() == 0 {
		t.Error("no writer was answered before the import ended; want them let in between its transactions")
	}
}

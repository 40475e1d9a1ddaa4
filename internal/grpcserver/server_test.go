package grpcserver

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/routeguide/routeguide/internal/cache"
	"github.com/routeguide/routeguide/internal/memory"
	"github.com/routeguide/routeguide/internal/people"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// harness is a Server on an in-process connection.
type harness struct {
	srv    *Server
	conn   *grpc.ClientConn
	client pb.RouteGuideClient

	mu     sync.Mutex // held through shutdown, so that a test and its cleanup may both call it
	served chan error
}

func start(t testing.TB, store people.Store) *harness {
	t.Helper()
	return startWith(t, store, Options{Log: slog.New(slog.DiscardHandler), Limits: DefaultLimits(), Slow: time.Second})
}

// startWith is start with the server's options given.
func startWith(t testing.TB, store people.Store, opts Options) *harness {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	h := &harness{
		srv:    New(store, opts),
		served: make(chan error, 1),
	}
	go func() { h.served <- h.srv.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	h.conn = conn
	h.client = pb.NewRouteGuideClient(conn)
	t.Cleanup(func() {
		conn.Close()
		h.shutdown(t)
	})
	return h
}

// shutdown stops the server once; later calls do nothing.
func (h *harness) shutdown(t testing.TB) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.served == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if !h.srv.Shutdown(ctx) {
		t.Errorf("Shutdown was not graceful")
	}
	if err := <-h.served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	h.served = nil
}

func seedStore() *memory.Store { return memory.New(0, people.Seed()...) }

// storeWith is a seeded directory whose lookups person answers.
type storeWith struct {
	*memory.Store
	person func(ctx context.Context, name string) (people.Person, error)
}

func (s storeWith) Person(ctx context.Context, name string) (people.Person, error) {
	return s.person(ctx, name)
}

var (
	alice = &pb.Person{
		Name: "Alice", Age: 30, Gender: pb.Person_FEMALE,
		Hobbies: []string{"reading", "swimming"},
		Address: &pb.Person_Address{Street: "123 Main St", City: "New York"},
	}
	bob = &pb.Person{
		Name: "Bob", Age: 25, Gender: pb.Person_MALE,
		Hobbies: []string{"gaming", "cycling"},
		Address: &pb.Person_Address{Street: "456 Elm St", City: "Los Angeles"},
	}
	notFound = &pb.Person{Name: "Not Found"}
)

func TestGetPerson(t *testing.T) {
	h := start(t, seedStore())
	tests := []struct {
		name string
		want *pb.Person
	}{
		{"Alice", alice},
		{"Bob", bob},
		{"Charlie", notFound},
		{"", notFound},
		{"alice", notFound}, // names match exactly
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			got, err := h.client.GetPerson(ctx, &pb.Name{Name: tt.name})
			if err != nil {
				t.Fatalf("GetPerson(%q): %v", tt.name, err)
			}
			if !proto.Equal(got, tt.want) {
				t.Errorf("GetPerson(%q) = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}

func TestGetPeopleOrderAndUnknownNames(t *testing.T) {
	h := start(t, seedStore())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := h.client.GetPeople(ctx)
	if err != nil {
		t.Fatalf("GetPeople: %v", err)
	}
	for _, n := range []string{"Bob", "Charlie", "Alice", "", "Bob", "Not Found", "Alice"} {
		if err := stream.Send(&pb.Name{Name: n}); err != nil {
			t.Fatalf("Send(%q): %v", n, err)
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatalf("CloseSend: %v", err)
	}
	want := []*pb.Person{bob, alice, bob, alice}
	for i, w := range want {
		got, err := stream.Recv()
		if err != nil {
			t.Fatalf("Recv #%d: %v", i, err)
		}
		if !proto.Equal(got, w) {
			t.Errorf("answer #%d = %v, want %v", i, got, w)
		}
	}
	if got, err := stream.Recv(); err != io.EOF {
		t.Errorf("after the last answer: Recv = %v, %v; want io.EOF", got, err)
	}
}

// TestGetPeopleInterleaves proves the server answers each name before the
// client has sent the next one, and before it half-closes.
func TestGetPeopleInterleaves(t *testing.T) {
	h := start(t, seedStore())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := h.client.GetPeople(ctx)
	if err != nil {
		t.Fatalf("GetPeople: %v", err)
	}
	for _, want := range []*pb.Person{alice, bob, alice} {
		if err := stream.Send(&pb.Name{Name: want.Name}); err != nil {
			t.Fatalf("Send(%q): %v", want.Name, err)
		}
		got, err := stream.Recv()
		if err != nil {
			t.Fatalf("Recv after sending %q: %v", want.Name, err)
		}
		if !proto.Equal(got, want) {
			t.Errorf("answer to %q = %v, want %v", want.Name, got, want)
		}
	}
	stream.CloseSend()
	if _, err := stream.Recv(); err != io.EOF {
		t.Errorf("Recv after CloseSend = %v, want io.EOF", err)
	}
}

func TestGetPeopleEmptyStream(t *testing.T) {
	h := start(t, seedStore())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := h.client.GetPeople(ctx)
	if err != nil {
		t.Fatalf("GetPeople: %v", err)
	}
	stream.CloseSend()
	if got, err := stream.Recv(); err != io.EOF {
		t.Errorf("Recv = %v, %v; want io.EOF", got, err)
	}
}

func TestGetPeopleClientCancels(t *testing.T) {
	h := start(t, seedStore())
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := h.client.GetPeople(ctx)
	if err != nil {
		t.Fatalf("GetPeople: %v", err)
	}
	if err := stream.Send(&pb.Name{Name: "Alice"}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatalf("Recv: %v", err)
	}
	cancel()
	if _, err := stream.Recv(); status.Code(err) != codes.Canceled {
		t.Errorf("Recv after cancel: code %v, want %v (err %v)", status.Code(err), codes.Canceled, err)
	}
	// The server keeps serving after a stream is abandoned.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if _, err := h.client.GetPerson(ctx2, &pb.Name{Name: "Bob"}); err != nil {
		t.Errorf("GetPerson after a cancelled stream: %v", err)
	}
}

func TestGetPeopleDeadline(t *testing.T) {
	h := start(t, seedStore())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	stream, err := h.client.GetPeople(ctx)
	if err != nil {
		t.Fatalf("GetPeople: %v", err)
	}
	// Send nothing: the stream stays open until its deadline.
	if _, err := stream.Recv(); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("Recv: code %v, want %v (err %v)", status.Code(err), codes.DeadlineExceeded, err)
	}
}

func TestGetPersonDeadline(t *testing.T) {
	h := start(t, blockingStore(nil))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := h.client.GetPerson(ctx, &pb.Name{Name: "Alice"})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("GetPerson: code %v, want %v (err %v)", status.Code(err), codes.DeadlineExceeded, err)
	}
}

// blockingStore is a directory whose lookups answer only when their caller
// gives up. When entered is not nil, each lookup signals it on arrival.
func blockingStore(entered chan struct{}) people.Store {
	return storeWith{seedStore(), func(ctx context.Context, _ string) (people.Person, error) {
		if entered != nil {
			entered <- struct{}{}
		}
		<-ctx.Done()
		return people.Person{}, ctx.Err()
	}}
}

// failingStore is a directory whose lookups fail with err.
func failingStore(err error) people.Store {
	return storeWith{seedStore(), func(context.Context, string) (people.Person, error) {
		return people.Person{}, err
	}}
}

func TestStoreErrorsMapToCodes(t *testing.T) {
	secret := errors.New("dial tcp 10.1.2.3:5432: connection refused")
	tests := []struct {
		name    string
		err     error
		code    codes.Code
		message string
	}{
		{"unavailable", &people.Error{Kind: people.Unavailable, Message: "database down", Err: secret}, codes.Unavailable, "service unavailable; retry later"},
		{"internal", &people.Error{Kind: people.Internal, Message: "scan row", Err: secret}, codes.Internal, "internal error"},
		{"unclassified", secret, codes.Internal, "internal error"},
		{"invalid", people.Errorf(people.Invalid, "name is too long"), codes.InvalidArgument, "name is too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, failingStore(tt.err))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()

			_, err := h.client.GetPerson(ctx, &pb.Name{Name: "Alice"})
			if st := status.Convert(err); st.Code() != tt.code || st.Message() != tt.message {
				t.Errorf("GetPerson: got %v %q, want %v %q", st.Code(), st.Message(), tt.code, tt.message)
			}

			stream, err := h.client.GetPeople(ctx)
			if err != nil {
				t.Fatalf("GetPeople: %v", err)
			}
			stream.Send(&pb.Name{Name: "Alice"})
			_, err = stream.Recv()
			if st := status.Convert(err); st.Code() != tt.code || st.Message() != tt.message {
				t.Errorf("GetPeople: got %v %q, want %v %q", st.Code(), st.Message(), tt.code, tt.message)
			}
		})
	}
}

func TestHealth(t *testing.T) {
	h := start(t, seedStore())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hc := healthpb.NewHealthClient(h.conn)
	for _, svc := range []string{"", ServiceName} {
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil {
			t.Fatalf("Check(%q): %v", svc, err)
		}
		if got, want := resp.GetStatus(), healthpb.HealthCheckResponse_SERVING; got != want {
			t.Errorf("Check(%q) = %v, want %v", svc, got, want)
		}
	}
}

// TestShutdownEndsOpenStreams checks that a graceful shutdown reports
// NOT_SERVING to health watchers, then ends waiting streams with UNAVAILABLE
// instead of waiting for them.
func TestShutdownEndsOpenStreams(t *testing.T) {
	h := start(t, seedStore())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	watch, err := healthpb.NewHealthClient(h.conn).Watch(ctx, &healthpb.HealthCheckRequest{Service: ServiceName})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	if resp, err := watch.Recv(); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("first health update = %v, %v; want SERVING", resp, err)
	}

	stream, err := h.client.GetPeople(ctx)
	if err != nil {
		t.Fatalf("GetPeople: %v", err)
	}
	stream.Send(&pb.Name{Name: "Alice"})
	if _, err := stream.Recv(); err != nil {
		t.Fatalf("Recv: %v", err)
	}

	h.shutdown(t) // fails unless graceful, which an open stream would prevent
	if _, err := stream.Recv(); status.Code(err) != codes.Unavailable {
		t.Errorf("open GetPeople after shutdown: code %v, want %v (err %v)", status.Code(err), codes.Unavailable, err)
	}
	if resp, err := watch.Recv(); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health update on shutdown = %v, %v; want NOT_SERVING", resp, err)
	}
	if _, err := watch.Recv(); status.Code(err) != codes.Unavailable {
		t.Errorf("health watch after shutdown: code %v, want %v (err %v)", status.Code(err), codes.Unavailable, err)
	}
}

func TestShutdownCutsOffAtDeadline(t *testing.T) {
	entered := make(chan struct{}, 1)
	h := start(t, blockingStore(entered))
	callCtx, cancelCall := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelCall()
	errc := make(chan error, 1)
	go func() {
		_, err := h.client.GetPerson(callCtx, &pb.Name{Name: "Alice"})
		errc <- err
	}()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if h.srv.Shutdown(ctx) {
		t.Errorf("Shutdown reported graceful with a call stuck in a handler")
	}
	<-h.served
	h.served = nil
	if err := <-errc; status.Code(err) != codes.Unavailable {
		t.Errorf("stuck call: code %v, want %v (err %v)", status.Code(err), codes.Unavailable, err)
	}
}

func TestReflectionListsServices(t *testing.T) {
	h := start(t, seedStore())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := reflectionpb.NewServerReflectionClient(h.conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatalf("ServerReflectionInfo: %v", err)
	}
	defer stream.CloseSend()
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	got := map[string]bool{}
	for _, s := range resp.GetListServicesResponse().GetService() {
		got[s.GetName()] = true
	}
	for _, want := range []string{"RouteGuide", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
		if !got[want] {
			t.Errorf("reflection lists %v, missing %s", got, want)
		}
	}
}

// TestAnswersFromCacheFollowUpdates checks the answers GetPerson and
// GetPeople send in the wire form kept with each cached person: the same
// person answered twice is answered the same, and once updated or deleted,
// never as before.
func TestAnswersFromCacheFollowUpdates(t *testing.T) {
	c := cache.New(seedStore(), cache.Options{})
	t.Cleanup(func() { c.Close() })
	for !c.Ready() {
		time.Sleep(time.Millisecond) // the seed's two people load at once
	}
	h := startWith(t, c, Options{Log: slog.New(slog.DiscardHandler), Limits: DefaultLimits(), Slow: time.Second, Answers: c})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ask := func(names ...string) []*pb.Person {
		t.Helper()
		stream, err := h.client.GetPeople(ctx)
		if err != nil {
			t.Fatalf("GetPeople: %v", err)
		}
		for _, n := range names {
			if err := stream.Send(&pb.Name{Name: n}); err != nil {
				t.Fatalf("Send(%q): %v", n, err)
			}
		}
		stream.CloseSend()
		var got []*pb.Person
		for {
			p, err := stream.Recv()
			if err == io.EOF {
				return got
			}
			if err != nil {
				t.Fatalf("Recv: %v", err)
			}
			got = append(got, p)
		}
	}
	check := func(got []*pb.Person, want ...*pb.Person) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("got %d answers %v, want %d %v", len(got), got, len(want), want)
		}
		for i := range want {
			if !proto.Equal(got[i], want[i]) {
				t.Errorf("answer #%d = %v, want %v", i, got[i], want[i])
			}
		}
	}
	get := func(name string) *pb.Person {
		t.Helper()
		p, err := h.client.GetPerson(ctx, &pb.Name{Name: name})
		if err != nil {
			t.Fatalf("GetPerson(%q): %v", name, err)
		}
		return p
	}
	check(ask("Alice", "Bob", "Alice"), alice, bob, alice)
	check([]*pb.Person{get("Alice"), get("Bob"), get("Alice")}, alice, bob, alice)

	updated := proto.Clone(alice).(*pb.Person)
	updated.Age = 31
	if _, err := h.client.UpdatePerson(ctx, &pb.UpdatePersonRequest{Person: updated, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"age"}}}); err != nil {
		t.Fatalf("UpdatePerson: %v", err)
	}
	if _, err := h.client.DeletePerson(ctx, &pb.DeletePersonRequest{Name: "Bob"}); err != nil {
		t.Fatalf("DeletePerson: %v", err)
	}
	check(ask("Alice", "Bob", "Alice"), updated, updated)
	check([]*pb.Person{get("Alice"), get("Bob")}, updated, notFound)
}

// TestGetPersonInProcess checks the typed GetPerson, which the server does
// not register but callers in the same process may use, against the seed.
func TestGetPersonInProcess(t *testing.T) {
	svc := newService(seedStore(), nil, slog.New(slog.DiscardHandler))
	for name, want := range map[string]*pb.Person{"Alice": alice, "Bob": bob, "Charlie": notFound, "a\x00b": notFound} {
		got, err := svc.GetPerson(context.Background(), &pb.Name{Name: name})
		if err != nil || !proto.Equal(got, want) {
			t.Errorf("GetPerson(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
}

package grpcclient

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/routeguide/routeguide/internal/grpcserver"
	"github.com/routeguide/routeguide/internal/memory"
	"github.com/routeguide/routeguide/internal/people"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// dial returns a Client of a server on the seed's people, in process.
func dial(t *testing.T) *Client {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpcserver.New(memory.New(0, people.Seed()...), grpcserver.Options{Log: slog.New(slog.DiscardHandler), Limits: grpcserver.DefaultLimits()})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	c, err := New("passthrough:///bufconn", grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return c
}

// TestErrorsAreDomainErrors checks that a refused call comes back as the
// domain error the server refused it with: its kind, its message and every
// field violation, with the status still there for status.Code.
func TestErrorsAreDomainErrors(t *testing.T) {
	c := dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	_, _, err := c.Add(ctx, people.Person{Age: 200})
	var e *people.Error
	if !errors.As(err, &e) || e.Kind != people.Invalid {
		t.Fatalf("Add(no name, age 200) = %v, want an Invalid *people.Error", err)
	}
	var fields []string
	for _, v := range e.Violations {
		fields = append(fields, v.Field)
	}
	if want := []string{"person.name", "person.age"}; !slices.Equal(fields, want) {
		t.Errorf("violations name %q, want %q", fields, want)
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("status.Code = %v, want InvalidArgument", status.Code(err))
	}

	_, _, err = c.Add(ctx, people.Seed()[0])
	if people.KindOf(err) != people.AlreadyExists || people.MessageOf(err) == "" {
		t.Errorf("Add(Alice) = %v, want AlreadyExists with a message", err)
	}
	if _, err := c.Person(ctx, "Nobody"); people.KindOf(err) != people.NotFound {
		t.Errorf("Person(Nobody) = %v, want NotFound", err)
	}
	if _, err := c.Person(ctx, "Alice"); err != nil {
		t.Errorf("Person(Alice): %v", err)
	}

	ended, stop := context.WithTimeout(ctx, time.Nanosecond)
	defer stop()
	<-ended.Done()
	if _, err := c.Person(ended, "Alice"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Person past its deadline = %v, want one that is context.DeadlineExceeded", err)
	}
}

// TestUpdateSendsTheMask checks that Update changes exactly the fields it
// names, and refuses to name none.
func TestUpdateSendsTheMask(t *testing.T) {
	c := dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, _, err := c.Update(ctx, "Alice", people.Update{
		Fields: people.FieldCity | people.FieldHobbies,
		To:     people.Person{Age: 99, Address: people.Address{Street: "ignored", City: "Paris"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := people.Seed()[0]
	want.Hobbies, want.Address.City = nil, "Paris"
	if got.Age != want.Age || got.Address != want.Address || len(got.Hobbies) != 0 {
		t.Errorf("Update(Alice: city, hobbies) = %+v, want %+v", got, want)
	}
	if _, _, err := c.Update(ctx, "Alice", people.Update{}); people.KindOf(err) != people.Invalid {
		t.Errorf("Update of no field = %v, want Invalid", err)
	}
}

// TestEventTypes checks the names a watch's events are printed by.
func TestEventTypes(t *testing.T) {
	for typ, want := range map[EventType]string{
		EventCurrent: "current", EventSynced: "synced",
		EventAdded: "added", EventUpdated: "updated", EventDeleted: "deleted",
		EventType(pb.WatchPeopleResponse_TYPE_UNSPECIFIED): "TYPE_UNSPECIFIED",
		EventType(42): "42",
	} {
		if got := typ.String(); got != want {
			t.Errorf("EventType(%d).String() = %q, want %q", typ, got, want)
		}
	}
}

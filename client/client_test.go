package client_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/routeguide/routeguide/client"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newClient(t *testing.T, opts ...client.Option) *client.Client {
	t.Helper()
	addr, stop := startServer()
	t.Cleanup(stop)
	c, err := client.New(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestMethods calls each method once against a real server in process.
func TestMethods(t *testing.T) {
	c := newClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, err := c.GetPerson(ctx, "Nobody"); status.Code(err) != codes.NotFound {
		t.Errorf("GetPerson(Nobody) = %v, want NOT_FOUND", err)
	}
	found, err := c.People(ctx, "Bob", "Nobody", "Alice")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range found {
		names = append(names, p.GetName())
	}
	if want := []string{"Bob", "Alice"}; !slices.Equal(names, want) {
		t.Errorf("People = %q, want %q", names, want)
	}

	added, err := c.Add(ctx, &pb.Person{Name: " Carol ", Age: 41})
	if err != nil || added.GetPerson().GetName() != "Carol" || added.GetRevision() == 0 {
		t.Fatalf("Add = %v, %v; want Carol, trimmed, with a revision", added, err)
	}
	if _, err := c.Add(ctx, &pb.Person{Name: "Carol"}); status.Code(err) != codes.AlreadyExists {
		t.Errorf("Add(Carol) again = %v, want ALREADY_EXISTS", err)
	}
	updated, err := c.Update(ctx, &pb.Person{Name: "Carol", Age: 42, Hobbies: []string{"chess"}}, "age")
	if err != nil || updated.GetPerson().GetAge() != 42 || len(updated.GetPerson().GetHobbies()) != 0 {
		t.Errorf("Update(age) = %v, %v; want age 42 and the hobbies left alone", updated, err)
	}
	rev, err := c.Delete(ctx, "Carol")
	if err != nil || rev <= updated.GetRevision() {
		t.Errorf("Delete = %d, %v; want a revision after %d", rev, err, updated.GetRevision())
	}
	if _, err := c.Delete(ctx, "Carol"); status.Code(err) != codes.NotFound {
		t.Errorf("Delete(Carol) again = %v, want NOT_FOUND", err)
	}

	batch := func(yield func(*pb.Person) bool) {
		for _, name := range []string{"Dan", "Erin", "Alice"} {
			if !yield(&pb.Person{Name: name, Age: 30, Gender: pb.Person_FEMALE, Hobbies: []string{"reading", "swimming"}}) {
				return
			}
		}
	}
	imported, err := c.Import(ctx, batch)
	if err != nil || imported.GetAdded() != 2 {
		t.Errorf("Import = %v, %v; want 2 added", imported, err)
	}
	_, err = c.Import(ctx, func(yield func(*pb.Person) bool) { yield(&pb.Person{Age: 200}) })
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("Import(a person without a name) = %v, want INVALID_ARGUMENT", err)
	}

	names = nil
	for p, err := range c.List(ctx, &pb.ListPeopleRequest{PageSize: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, p.GetName())
		if len(names) == 3 {
			break
		}
	}
	if want := []string{"Alice", "Bob", "Dan"}; !slices.Equal(names, want) {
		t.Errorf("List, a page each, stopped after 3 = %q, want %q", names, want)
	}
	for _, err := range c.List(ctx, &pb.ListPeopleRequest{PageSize: -1}) {
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("List(page_size -1) = %v, want INVALID_ARGUMENT", err)
		}
	}
}

// TestWatchEndsWithTheServersStatus checks that a watch the server refuses
// ends the loop with the server's status, as sent.
func TestWatchEndsWithTheServersStatus(t *testing.T) {
	c := newClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := 0
	for ev, err := range c.Watch(ctx, &pb.WatchPeopleRequest{AfterRevision: -1}) {
		n++
		if ev != nil || status.Code(err) != codes.InvalidArgument {
			t.Errorf("Watch(after_revision -1) yielded %v, %v; want INVALID_ARGUMENT", ev, err)
		}
		if st, _ := status.FromError(err); st.Message() == "" || errors.Unwrap(err) != nil {
			t.Errorf("error %#v, want the server's status as it is", err)
		}
	}
	if n != 1 {
		t.Errorf("the loop ran %d times, want 1", n)
	}
}

// TestTokenNeedsTLS checks that a client that would send its token in
// plaintext is refused.
func TestTokenNeedsTLS(t *testing.T) {
	_, err := client.New("127.0.0.1:1", client.WithToken("secret"))
	if err == nil || !strings.Contains(err.Error(), "transport level security") {
		t.Errorf("New(a token without TLS) = %v, want an error about transport security", err)
	}
	c, err := client.New("127.0.0.1:1", client.WithToken("secret"), client.WithTLS(nil))
	if err != nil {
		t.Errorf("New(a token with TLS) = %v", err)
	} else {
		c.Close()
	}
}

// TestBadTarget checks that New refuses a list with an entry that is not
// host:port, naming it.
func TestBadTarget(t *testing.T) {
	_, err := client.New("127.0.0.1:1,nowhere")
	if err == nil || !strings.Contains(err.Error(), `"nowhere"`) {
		t.Errorf("New(a list with a bad entry) = %v, want an error naming it", err)
	}
}

// TestConditionalWrites checks that an update or delete with the etag
// GetPersonETag read is made while the person is as read, and refused with
// ABORTED once she changed.
func TestConditionalWrites(t *testing.T) {
	c := newClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	alice, etag, err := c.GetPersonETag(ctx, "Alice")
	if err != nil || alice.GetName() != "Alice" || etag == "" {
		t.Fatalf("GetPersonETag(Alice) = %v, %q, %v", alice, etag, err)
	}
	up, err := c.UpdateIfMatch(ctx, &pb.Person{Name: "Alice", Age: 31}, etag, "age")
	if err != nil || up.GetEtag() == etag {
		t.Fatalf("UpdateIfMatch with the etag read = %v, %v; want a new etag", up, err)
	}
	if _, err := c.UpdateIfMatch(ctx, &pb.Person{Name: "Alice", Age: 32}, etag, "age"); status.Code(err) != codes.Aborted {
		t.Errorf("UpdateIfMatch with a stale etag = %v, want ABORTED", err)
	}
	if _, err := c.DeleteIfMatch(ctx, "Alice", etag); status.Code(err) != codes.Aborted {
		t.Errorf("DeleteIfMatch with a stale etag = %v, want ABORTED", err)
	}
	if _, err := c.DeleteIfMatch(ctx, "Alice", up.GetEtag()); err != nil {
		t.Errorf("DeleteIfMatch with the current etag: %v", err)
	}
}

package grpcserver

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/routeguide/routeguide/internal/cache"
	"github.com/routeguide/routeguide/internal/memory"
	"github.com/routeguide/routeguide/internal/people"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

// TestNamesNormalizedOnEveryMethod checks that a name a write accepts is
// found by every read given the same string, untrimmed or not in NFC, with
// and without the read cache.
func TestNamesNormalizedOnEveryMethod(t *testing.T) {
	tests := []struct {
		name, given, stored, prefix string
	}{
		{"untrimmed", " Trim ", "Trim", " Tr"},
		{"decomposed", "Jose\u0301", "Jos\u00e9", "Jose\u0301"},
		{"untrimmed and decomposed", "\tZo\u0308e ", "Z\u00f6e", "Zo\u0308"},
	}
	// Each store comes with the Keeper the server reads through, if any.
	stores := map[string]func(t *testing.T) (people.Store, Keeper){
		"memory": func(*testing.T) (people.Store, Keeper) { return seedStore(), nil },
		"cache": func(t *testing.T) (people.Store, Keeper) {
			c := cache.New(seedStore(), cache.Options{})
			t.Cleanup(func() { c.Close() })
			for !c.Ready() {
				time.Sleep(time.Millisecond)
			}
			return c, c
		},
	}
	for storeName, newStore := range stores {
		for _, tt := range tests {
			t.Run(storeName+"/"+tt.name, func(t *testing.T) {
				store, keeper := newStore(t)
				h := startWith(t, store, Options{Log: slog.New(slog.DiscardHandler), Limits: DefaultLimits(), Slow: time.Second, Answers: keeper})
				ctx := callCtx(t)
				found := func(what string, p *pb.Person) {
					t.Helper()
					if p.GetName() != tt.stored {
						t.Errorf("%s: person %q, want %q", what, p.GetName(), tt.stored)
					}
				}

				watch, err := h.client.WatchPeople(ctx, &pb.WatchPeopleRequest{AfterRevision: 2})
				if err != nil {
					t.Fatal(err)
				}
				added, err := h.client.AddPerson(ctx, &pb.AddPersonRequest{Person: &pb.Person{Name: tt.given, Age: 1}})
				if err != nil {
					t.Fatalf("AddPerson(%q): %v", tt.given, err)
				}
				found("AddPerson", added.GetPerson())
				ev, err := watch.Recv()
				if err != nil {
					t.Fatalf("watch: %v", err)
				}
				found("WatchPeople", ev.GetPerson())

				for _, name := range []string{tt.given, tt.stored} {
					p, err := h.client.GetPerson(ctx, &pb.Name{Name: name})
					if err != nil {
						t.Fatalf("GetPerson(%q): %v", name, err)
					}
					found("GetPerson("+name+")", p)
				}
				stream, err := h.client.GetPeople(ctx)
				if err != nil {
					t.Fatal(err)
				}
				stream.Send(&pb.Name{Name: tt.given})
				stream.CloseSend()
				p, err := stream.Recv()
				if err != nil {
					t.Fatalf("GetPeople(%q): %v", tt.given, err)
				}
				found("GetPeople", p)
				if _, err := stream.Recv(); err != io.EOF {
					t.Errorf("GetPeople: %v after the one person, want EOF", err)
				}

				list, err := h.client.ListPeople(ctx, &pb.ListPeopleRequest{NamePrefix: tt.prefix})
				if err != nil || len(list.GetPeople()) != 1 {
					t.Fatalf("ListPeople(prefix %q) = %v, %v; want the one person", tt.prefix, list, err)
				}
				found("ListPeople", list.GetPeople()[0])

				updated, err := h.client.UpdatePerson(ctx, &pb.UpdatePersonRequest{Person: &pb.Person{Name: tt.given, Age: 2}})
				if err != nil {
					t.Fatalf("UpdatePerson(%q): %v", tt.given, err)
				}
				found("UpdatePerson", updated.GetPerson())

				imp, err := h.client.ImportPeople(ctx)
				if err != nil {
					t.Fatal(err)
				}
				imp.Send(&pb.ImportPeopleRequest{People: []*pb.Person{{Name: tt.given, Age: 3}}})
				resp, err := imp.CloseAndRecv()
				if err != nil || resp.GetAdded() != 0 || resp.GetUpdated() != 1 {
					t.Fatalf("ImportPeople(%q) = %v, %v; want 1 updated", tt.given, resp, err)
				}
				if p, _ := h.client.GetPerson(ctx, &pb.Name{Name: tt.given}); p.GetAge() != 3 {
					t.Errorf("GetPerson(%q) after the import = %v, want age 3", tt.given, p)
				}

				if _, err := h.client.DeletePerson(ctx, &pb.DeletePersonRequest{Name: tt.given}); err != nil {
					t.Fatalf("DeletePerson(%q): %v", tt.given, err)
				}
				if p, _ := h.client.GetPerson(ctx, &pb.Name{Name: tt.stored}); p.GetName() != people.NotFoundName {
					t.Errorf("GetPerson(%q) after the delete = %v, want Not Found", tt.stored, p)
				}
			})
		}
	}
}

// TestNamesRefused checks that names nobody may have are refused with
// INVALID_ARGUMENT naming the field, and that a read for one finds nobody.
func TestNamesRefused(t *testing.T) {
	h := start(t, seedStore())
	ctx := callCtx(t)
	for _, name := range []string{"Not Found", " not found ", "Alice\u200b", "Ali\u200cce", "\u3164", "\u2800", "\u0301"} {
		_, err := h.client.AddPerson(ctx, &pb.AddPersonRequest{Person: &pb.Person{Name: name}})
		wantStatus(t, "AddPerson("+name+")", err, codes.InvalidArgument, []string{"person.name"})
		p, err := h.client.GetPerson(ctx, &pb.Name{Name: name})
		if err != nil || p.GetName() != people.NotFoundName {
			t.Errorf("GetPerson(%q) = %v, %v; want Not Found", name, p, err)
		}
	}
}

// TestNamesStoredUnnormalized checks that a person stored before names were
// normalized is still found by GetPerson under its stored name.
func TestNamesStoredUnnormalized(t *testing.T) {
	old := "Jose\u0301"
	h := start(t, memory.New(0, people.Person{Name: old, Age: 7}))
	ctx := callCtx(t)
	p, err := h.client.GetPerson(ctx, &pb.Name{Name: old})
	if err != nil || p.GetName() != old {
		t.Errorf("GetPerson(%q) = %v, %v; want the stored person", old, p, err)
	}
}

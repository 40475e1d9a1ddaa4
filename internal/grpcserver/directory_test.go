package grpcserver

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/routeguide/routeguide/internal/memory"
	"github.com/routeguide/routeguide/internal/people"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wantStatus checks err's code and, when fields is not nil, the fields its
// BadRequest detail names.
func wantStatus(t *testing.T, what string, err error, code codes.Code, fields []string) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != code {
		t.Errorf("%s: code %v (%q), want %v", what, st.Code(), st.Message(), code)
		return
	}
	if fields == nil {
		return
	}
	var got []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				got = append(got, v.GetField())
			}
		}
	}
	if !slices.Equal(got, fields) {
		t.Errorf("%s: BadRequest fields %q, want %q (message %q)", what, got, fields, st.Message())
	}
}

func TestAddPerson(t *testing.T) {
	h := start(t, seedStore())
	ctx := callCtx(t)
	carol := &pb.Person{Name: "  Carol ", Age: 41, Gender: pb.Person_FEMALE, Hobbies: []string{"chess"},
		Address: &pb.Person_Address{Street: "1 Oak St", City: "Boston"}}
	resp, err := h.client.AddPerson(ctx, &pb.AddPersonRequest{Person: carol})
	if err != nil {
		t.Fatalf("AddPerson: %v", err)
	}
	want := proto.Clone(carol).(*pb.Person)
	want.Name = "Carol" // trimmed
	if !proto.Equal(resp.GetPerson(), want) || resp.GetRevision() != 3 {
		t.Errorf("AddPerson = %v, want %v at revision 3", resp, want)
	}
	// The seed's GetPerson finds the new person.
	if got, err := h.client.GetPerson(ctx, &pb.Name{Name: "Carol"}); err != nil || !proto.Equal(got, want) {
		t.Errorf("GetPerson(Carol) = %v, %v; want %v", got, err, want)
	}
	_, err = h.client.AddPerson(ctx, &pb.AddPersonRequest{Person: &pb.Person{Name: "Carol"}})
	wantStatus(t, "AddPerson(Carol) again", err, codes.AlreadyExists, nil)
}

func TestAddPersonInvalid(t *testing.T) {
	h := start(t, seedStore())
	tests := []struct {
		name   string
		person *pb.Person
		fields []string
	}{
		{"no person", nil, []string{"person"}},
		{"empty name", &pb.Person{}, []string{"person.name"}},
		{"blank name", &pb.Person{Name: " \t "}, []string{"person.name"}},
		{"101 characters", &pb.Person{Name: strings.Repeat("é", 101)}, []string{"person.name"}},
		{"NUL", &pb.Person{Name: "a\x00b"}, []string{"person.name"}},
		{"control character", &pb.Person{Name: "a\x1bb"}, []string{"person.name"}},
		{"right-to-left override", &pb.Person{Name: "evil\u202etxt.exe"}, []string{"person.name"}},
		{"age", &pb.Person{Name: "A", Age: 151}, []string{"person.age"}},
		{"negative age", &pb.Person{Name: "A", Age: -1}, []string{"person.age"}},
		{"gender", &pb.Person{Name: "A", Gender: 7}, []string{"person.gender"}},
		{"too many hobbies", &pb.Person{Name: "A", Hobbies: make([]string, 33)}, nil},
		{"long hobby", &pb.Person{Name: "A", Hobbies: []string{strings.Repeat("h", 65)}}, []string{"person.hobbies[0]"}},
		{"long street and city", &pb.Person{Name: "A", Address: &pb.Person_Address{Street: strings.Repeat("s", 201), City: strings.Repeat("c", 201)}},
			[]string{"person.address.street", "person.address.city"}},
		{"everything", &pb.Person{Age: 200, Gender: -1}, []string{"person.name", "person.age", "person.gender"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.client.AddPerson(callCtx(t), &pb.AddPersonRequest{Person: tt.person})
			wantStatus(t, "AddPerson", err, codes.InvalidArgument, tt.fields)
		})
	}
	// Nothing invalid was stored, and the server still serves.
	resp, err := h.client.ListPeople(callCtx(t), &pb.ListPeopleRequest{})
	if err != nil || len(resp.GetPeople()) != 2 {
		t.Errorf("ListPeople after refused adds = %v, %v; want Alice and Bob", resp, err)
	}
}

func TestUpdatePerson(t *testing.T) {
	to := &pb.Person{Name: "Alice", Age: 31, Gender: pb.Person_MALE, Hobbies: []string{"rowing"},
		Address: &pb.Person_Address{Street: "9 New St", City: "Austin"}}
	with := func(change func(p *pb.Person)) *pb.Person {
		p := proto.Clone(alice).(*pb.Person)
		change(p)
		return p
	}
	tests := []struct {
		name  string
		paths []string
		to    *pb.Person
		want  *pb.Person
	}{
		{"age", []string{"age"}, to, with(func(p *pb.Person) { p.Age = 31 })},
		{"address", []string{"address"}, to, with(func(p *pb.Person) { p.Address = to.Address })},
		{"city", []string{"address.city"}, to, with(func(p *pb.Person) { p.Address.City = "Austin" })},
		{"hobbies cleared", []string{"hobbies"}, &pb.Person{Name: "Alice"}, with(func(p *pb.Person) { p.Hobbies = nil })},
		{"empty mask: the fields set", nil, &pb.Person{Name: " Alice ", Age: 31, Hobbies: []string{"rowing"}},
			with(func(p *pb.Person) { p.Age = 31; p.Hobbies = []string{"rowing"} })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, seedStore())
			ctx := callCtx(t)
			resp, err := h.client.UpdatePerson(ctx, &pb.UpdatePersonRequest{Person: tt.to, UpdateMask: &fieldmaskpb.FieldMask{Paths: tt.paths}})
			if err != nil {
				t.Fatalf("UpdatePerson: %v", err)
			}
			if !proto.Equal(resp.GetPerson(), tt.want) || resp.GetRevision() != 3 {
				t.Errorf("UpdatePerson = %v, want %v at revision 3", resp, tt.want)
			}
			if got, _ := h.client.GetPerson(ctx, &pb.Name{Name: "Alice"}); !proto.Equal(got, tt.want) {
				t.Errorf("GetPerson(Alice) = %v, want %v", got, tt.want)
			}
		})
	}

	h := start(t, seedStore())
	errors := []struct {
		name   string
		req    *pb.UpdatePersonRequest
		code   codes.Code
		fields []string
	}{
		{"nobody", &pb.UpdatePersonRequest{Person: &pb.Person{Name: "Charlie", Age: 3}}, codes.NotFound, nil},
		{"no person", &pb.UpdatePersonRequest{}, codes.InvalidArgument, []string{"person"}},
		{"blank name", &pb.UpdatePersonRequest{Person: &pb.Person{Name: " "}}, codes.InvalidArgument, []string{"person.name"}},
		{"unknown path", &pb.UpdatePersonRequest{Person: &pb.Person{Name: "Alice"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"shoe_size"}}}, codes.InvalidArgument, []string{"update_mask"}},
		{"name path", &pb.UpdatePersonRequest{Person: &pb.Person{Name: "Alice"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"name"}}}, codes.InvalidArgument, []string{"update_mask"}},
		{"invalid value", &pb.UpdatePersonRequest{Person: &pb.Person{Name: "Alice", Age: 300}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"age"}}}, codes.InvalidArgument, []string{"person.age"}},
	}
	for _, tt := range errors {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.client.UpdatePerson(callCtx(t), tt.req)
			wantStatus(t, "UpdatePerson", err, tt.code, tt.fields)
		})
	}
}

func TestDeletePerson(t *testing.T) {
	h := start(t, seedStore())
	ctx := callCtx(t)
	resp, err := h.client.DeletePerson(ctx, &pb.DeletePersonRequest{Name: "Alice"})
	if err != nil || resp.GetRevision() != 3 {
		t.Fatalf("DeletePerson = %v, %v; want revision 3", resp, err)
	}
	if got, _ := h.client.GetPerson(ctx, &pb.Name{Name: "Alice"}); !proto.Equal(got, notFound) {
		t.Errorf("GetPerson(Alice) after delete = %v, want the Not Found person", got)
	}
	_, err = h.client.DeletePerson(ctx, &pb.DeletePersonRequest{Name: "Alice"})
	wantStatus(t, "DeletePerson(Alice) again", err, codes.NotFound, nil)
	_, err = h.client.DeletePerson(ctx, &pb.DeletePersonRequest{})
	wantStatus(t, "DeletePerson(empty)", err, codes.InvalidArgument, []string{"name"})
}

// manyPeople is a directory of n people named p0000, p0001, ..., every
// third one in Boston.
func manyPeople(t *testing.T, n int) *memory.Store {
	s := seedStore()
	var batch []people.Person
	for i := range n {
		p := people.Person{Name: fmt.Sprintf("p%04d", i)}
		if i%3 == 0 {
			p.Address.City = "Boston"
		}
		batch = append(batch, p)
	}
	if _, err := s.Import(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestListPeoplePages(t *testing.T) {
	h := start(t, manyPeople(t, 250))
	ctx := callCtx(t)
	req := &pb.ListPeopleRequest{PageSize: 40, City: "Boston"}
	var got []string
	pages := 0
	for {
		resp, err := h.client.ListPeople(ctx, req)
		if err != nil {
			t.Fatalf("ListPeople page %d: %v", pages, err)
		}
		pages++
		for _, p := range resp.GetPeople() {
			got = append(got, p.GetName())
		}
		if resp.GetNextPageToken() == "" {
			break
		}
		req.PageToken = resp.GetNextPageToken()
	}
	if len(got) != 84 || pages != 3 || !slices.IsSorted(got) {
		t.Errorf("paged %d people in %d pages, sorted %v; want 84 in 3, sorted", len(got), pages, slices.IsSorted(got))
	}
}

func TestListPeopleSizes(t *testing.T) {
	h := start(t, manyPeople(t, 1100))
	ctx := callCtx(t)
	for _, tt := range []struct {
		size int32
		want int
	}{{0, 50}, {1, 1}, {1000, 1000}, {1001, 1000}, {1 << 30, 1000}} {
		resp, err := h.client.ListPeople(ctx, &pb.ListPeopleRequest{PageSize: tt.size})
		if err != nil || len(resp.GetPeople()) != tt.want {
			t.Errorf("ListPeople(page_size %d) = %d people, %v; want %d", tt.size, len(resp.GetPeople()), err, tt.want)
		}
	}
	_, err := h.client.ListPeople(ctx, &pb.ListPeopleRequest{PageSize: -1})
	wantStatus(t, "ListPeople(page_size -1)", err, codes.InvalidArgument, []string{"page_size"})
}

func TestListPeopleBadTokens(t *testing.T) {
	h := start(t, manyPeople(t, 10))
	ctx := callCtx(t)
	resp, err := h.client.ListPeople(ctx, &pb.ListPeopleRequest{PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	tok := resp.GetNextPageToken()
	for _, tt := range []struct {
		name string
		req  *pb.ListPeopleRequest
	}{
		{"not base64", &pb.ListPeopleRequest{PageToken: "%%%"}},
		{"not JSON", &pb.ListPeopleRequest{PageToken: "bm90IGpzb24"}},
		{"tampered", &pb.ListPeopleRequest{PageToken: tok[:len(tok)-2] + "xx"}},
		{"other filters", &pb.ListPeopleRequest{PageToken: tok, City: "Boston"}},
	} {
		_, err := h.client.ListPeople(ctx, tt.req)
		wantStatus(t, "ListPeople("+tt.name+")", err, codes.InvalidArgument, []string{"page_token"})
	}
}

func TestImportPeople(t *testing.T) {
	h := start(t, seedStore())
	ctx := callCtx(t)
	stream, err := h.client.ImportPeople(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stream.Send(&pb.ImportPeopleRequest{People: []*pb.Person{{Name: "Carol"}, {Name: "Alice", Age: 99}}})
	stream.Send(&pb.ImportPeopleRequest{People: []*pb.Person{{Name: " Dan "}}})
	resp, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatalf("ImportPeople: %v", err)
	}
	if resp.GetAdded() != 2 || resp.GetUpdated() != 1 || resp.GetRevision() != 5 {
		t.Errorf("ImportPeople = %v, want 2 added, 1 updated, revision 5", resp)
	}
	if got, _ := h.client.GetPerson(ctx, &pb.Name{Name: "Dan"}); got.GetName() != "Dan" {
		t.Errorf("GetPerson(Dan) = %v", got)
	}

	// A batch with an invalid person is refused whole; earlier batches stay.
	stream, err = h.client.ImportPeople(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stream.Send(&pb.ImportPeopleRequest{People: []*pb.Person{{Name: "Erin"}, {Name: "Fay"}}})
	stream.Send(&pb.ImportPeopleRequest{People: []*pb.Person{{Name: "Gus"}, {Name: ""}}})
	_, err = stream.CloseAndRecv()
	wantStatus(t, "ImportPeople with an invalid person", err, codes.InvalidArgument, []string{"people[3].name"})
	for name, want := range map[string]string{"Erin": "Erin", "Gus": "Not Found"} {
		if got, _ := h.client.GetPerson(ctx, &pb.Name{Name: name}); got.GetName() != want {
			t.Errorf("GetPerson(%s) after the refused batch = %v, want %s", name, got, want)
		}
	}
}

func TestWatchPeople(t *testing.T) {
	h := start(t, seedStore())
	ctx := callCtx(t)
	watch, err := h.client.WatchPeople(ctx, &pb.WatchPeopleRequest{SendCurrent: true})
	if err != nil {
		t.Fatal(err)
	}
	expect := func(rev int64, typ pb.WatchPeopleResponse_Type, name string) {
		t.Helper()
		ev, err := watch.Recv()
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		if ev.GetRevision() != rev || ev.GetType() != typ || ev.GetPerson().GetName() != name {
			t.Errorf("event = %v, want revision %d %v %q", ev, rev, typ, name)
		}
	}
	expect(2, pb.WatchPeopleResponse_TYPE_CURRENT, "Alice")
	expect(2, pb.WatchPeopleResponse_TYPE_CURRENT, "Bob")
	expect(2, pb.WatchPeopleResponse_TYPE_SYNCED, "")
	h.client.AddPerson(ctx, &pb.AddPersonRequest{Person: &pb.Person{Name: "Carol"}})
	expect(3, pb.WatchPeopleResponse_TYPE_ADDED, "Carol")
	h.client.UpdatePerson(ctx, &pb.UpdatePersonRequest{Person: &pb.Person{Name: "Carol", Age: 5}})
	expect(4, pb.WatchPeopleResponse_TYPE_UPDATED, "Carol")
	h.client.DeletePerson(ctx, &pb.DeletePersonRequest{Name: "Bob"})
	expect(5, pb.WatchPeopleResponse_TYPE_DELETED, "Bob")

	// A client resumes after the last revision it saw.
	resumed, err := h.client.WatchPeople(ctx, &pb.WatchPeopleRequest{AfterRevision: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []int64{4, 5} {
		ev, err := resumed.Recv()
		if err != nil || ev.GetRevision() != want {
			t.Errorf("resumed watch: %v, %v; want revision %d", ev, err, want)
		}
	}
}

func TestWatchPeopleOutOfRange(t *testing.T) {
	s := memory.New(2, people.Seed()...)
	h := start(t, s)
	ctx := callCtx(t)
	for i := range 3 {
		h.client.AddPerson(ctx, &pb.AddPersonRequest{Person: &pb.Person{Name: fmt.Sprint("n", i)}})
	}
	for _, tt := range []struct {
		after int64
		code  codes.Code
	}{{1, codes.OutOfRange}, {99, codes.OutOfRange}, {-1, codes.InvalidArgument}} {
		watch, err := h.client.WatchPeople(ctx, &pb.WatchPeopleRequest{AfterRevision: tt.after})
		if err != nil {
			t.Fatal(err)
		}
		_, err = watch.Recv()
		wantStatus(t, fmt.Sprintf("WatchPeople(after %d)", tt.after), err, tt.code, nil)
	}
	// From now on: nothing until the next change. The header says when the
	// watch is in place, and from which revision.
	watch, err := h.client.WatchPeople(ctx, &pb.WatchPeopleRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if md, err := watch.Header(); err != nil || !slices.Equal(md.Get(watchRevisionHeader), []string{"5"}) {
		t.Fatalf("watch header = %v, %v; want %s: 5", md, err, watchRevisionHeader)
	}
	h.client.DeletePerson(ctx, &pb.DeletePersonRequest{Name: "n0"})
	if ev, err := watch.Recv(); err != nil || ev.GetType() != pb.WatchPeopleResponse_TYPE_DELETED || ev.GetRevision() != 6 {
		t.Errorf("watch from now = %v, %v; want the deletion at revision 6", ev, err)
	}
}

// TestNUL checks that NUL, which no valid name holds and PostgreSQL cannot
// store, is answered at the edge: a lookup finds nobody, a filter is refused.
func TestNUL(t *testing.T) {
	h := start(t, seedStore())
	ctx := callCtx(t)
	if got, err := h.client.GetPerson(ctx, &pb.Name{Name: "Al\x00ice"}); err != nil || !proto.Equal(got, notFound) {
		t.Errorf("GetPerson(NUL) = %v, %v; want the Not Found person", got, err)
	}
	for _, req := range []*pb.ListPeopleRequest{{City: "\x00"}, {Hobby: "a\x00"}, {NamePrefix: "\x00"}} {
		_, err := h.client.ListPeople(ctx, req)
		wantStatus(t, fmt.Sprintf("ListPeople(%v)", req), err, codes.InvalidArgument, nil)
	}
	tok := encodePageToken(people.Query{}, "a\x00b")
	_, err := h.client.ListPeople(ctx, &pb.ListPeopleRequest{PageToken: tok})
	wantStatus(t, "ListPeople(token with NUL)", err, codes.InvalidArgument, []string{"page_token"})
}

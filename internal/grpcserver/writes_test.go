package grpcserver

import (
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/syncbuf"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

func TestWriteMethodsAreTheWriterRoles(t *testing.T) {
	for method, role := range methodRoles {
		if got := writeMethod(method); got != (role == RoleWriter) {
			t.Errorf("writeMethod(%s) = %v, but its role is %v", method, got, role)
		}
	}
}

// TestETags checks that every answer carrying a person carries its etag
// (GetPerson as a header, its body the seed's), and that updates and
// deletes with an etag are made only while it is the person's.
func TestETags(t *testing.T) {
	h := start(t, seedStore())
	ctx := callCtx(t)
	alice := people.Seed()[0]
	var header metadata.MD
	got, err := h.client.GetPerson(ctx, &pb.Name{Name: "Alice"}, grpc.Header(&header))
	if err != nil {
		t.Fatal(err)
	}
	etag := people.ETag(alice)
	if v := header.Get(etagHeader); len(v) != 1 || v[0] != etag {
		t.Errorf("GetPerson's etag header = %q, want [%q]", v, etag)
	}
	if want, _ := encode(alice); !proto.Equal(got, mustUnmarshal(t, want.Bytes())) {
		t.Errorf("GetPerson = %v, want the seed's answer", got)
	}
	header = nil
	if _, err := h.client.GetPerson(ctx, &pb.Name{Name: "Nobody"}, grpc.Header(&header)); err != nil || len(header.Get(etagHeader)) != 0 {
		t.Errorf("GetPerson(Nobody) header %v, %v; want no etag for the Not Found answer", header, err)
	}

	list, err := h.client.ListPeople(ctx, &pb.ListPeopleRequest{})
	if err != nil || len(list.GetEtags()) != 2 || list.GetEtags()[0] != etag {
		t.Errorf("ListPeople etags = %q, %v; want Alice's and Bob's", list.GetEtags(), err)
	}

	older := &pb.UpdatePersonRequest{Person: &pb.Person{Name: "Alice", Age: 31}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"age"}}, Etag: etag}
	header = nil
	up, err := h.client.UpdatePerson(ctx, older, grpc.Header(&header))
	if err != nil || up.GetEtag() == etag || up.GetEtag() == "" {
		t.Fatalf("UpdatePerson with the current etag = %v, %v; want a new etag", up, err)
	}
	// Only a caller marked WithETagHeader (REST) is sent a write's etag
	// as a header too.
	if v := header.Get(etagHeader); len(v) != 0 {
		t.Errorf("UpdatePerson's etag header = %q, want none over gRPC", v)
	}
	_, err = h.client.UpdatePerson(ctx, older)
	wantStatus(t, "UpdatePerson with a stale etag", err, codes.Aborted, nil)
	_, err = h.client.DeletePerson(ctx, &pb.DeletePersonRequest{Name: "Alice", Etag: etag})
	wantStatus(t, "DeletePerson with a stale etag", err, codes.Aborted, nil)
	if _, err := h.client.DeletePerson(ctx, &pb.DeletePersonRequest{Name: "Alice", Etag: up.GetEtag()}); err != nil {
		t.Errorf("DeletePerson with the current etag: %v", err)
	}
	add, err := h.client.AddPerson(ctx, &pb.AddPersonRequest{Person: &pb.Person{Name: "Carol"}})
	if err != nil || add.GetEtag() != people.ETag(people.Person{Name: "Carol"}) {
		t.Errorf("AddPerson etag = %v, %v", add, err)
	}
}

func mustUnmarshal(t *testing.T, b []byte) *pb.Person {
	t.Helper()
	var p pb.Person
	if err := proto.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	return &p
}

// watchEvents starts a watch and returns a function that reads its next
// event.
func watchEvents(t *testing.T, ctx context.Context, client pb.RouteGuideClient) func() *pb.WatchPeopleResponse {
	t.Helper()
	w, err := client.WatchPeople(ctx, &pb.WatchPeopleRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Header(); err != nil {
		t.Fatal(err)
	}
	return func() *pb.WatchPeopleResponse {
		t.Helper()
		ev, err := w.Recv()
		if err != nil {
			t.Fatalf("watch: %v", err)
		}
		return ev
	}
}

// TestRequestIDs checks that a write sent again with its request id, one
// after the other or at once, answers the same revision with one change
// and one watch event; that the metadata carries it as well as the field;
// and that the id with another request, or one that is not a UUID, is
// refused naming request_id.
func TestRequestIDs(t *testing.T) {
	h := start(t, seedStore())
	ctx := callCtx(t)
	next := watchEvents(t, ctx, h.client)
	const id = "0d9d4b8e-5b8e-4c1e-9a51-6b1b2c3d4e5f"
	req := &pb.AddPersonRequest{Person: &pb.Person{Name: "Carol", Age: 41}, RequestId: id}

	var wg sync.WaitGroup
	revs := make([]int64, 6)
	for i := range revs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := h.client.AddPerson(ctx, req)
			if err != nil {
				t.Errorf("AddPerson %d: %v", i, err)
				return
			}
			revs[i] = resp.GetRevision()
		}()
	}
	wg.Wait()
	again, err := h.client.AddPerson(ctx, req)
	if err != nil {
		t.Fatalf("AddPerson again: %v", err)
	}
	for i, rev := range append(revs, again.GetRevision()) {
		if rev != 3 {
			t.Errorf("AddPerson %d answered revision %d, want 3", i, rev)
		}
	}
	if ev := next(); ev.GetRevision() != 3 || ev.GetRequestId() != id {
		t.Errorf("first event = %v, want Carol's addition with request id %s", ev, id)
	}

	// The metadata carries a request id as well: the same id in it is the
	// same request.
	mctx := metadata.AppendToOutgoingContext(ctx, idempotencyKeyHeader, id)
	if resp, err := h.client.AddPerson(mctx, &pb.AddPersonRequest{Person: req.GetPerson()}); err != nil || resp.GetRevision() != 3 {
		t.Errorf("AddPerson with the id as metadata = %v, %v; want revision 3", resp, err)
	}

	_, err = h.client.AddPerson(ctx, &pb.AddPersonRequest{Person: &pb.Person{Name: "Dave"}, RequestId: id})
	wantStatus(t, "the id with another request", err, codes.InvalidArgument, []string{"request_id"})
	_, err = h.client.AddPerson(ctx, &pb.AddPersonRequest{Person: &pb.Person{Name: "Dave"}, RequestId: "not-a-uuid"})
	wantStatus(t, "a request id that is not a UUID", err, codes.InvalidArgument, []string{"request_id"})
	_, err = h.client.AddPerson(metadata.AppendToOutgoingContext(ctx, idempotencyKeyHeader, "0d9d4b8e-5b8e-4c1e-9a51-000000000000"),
		&pb.AddPersonRequest{Person: &pb.Person{Name: "Dave"}, RequestId: id})
	wantStatus(t, "field and metadata disagreeing", err, codes.InvalidArgument, []string{"request_id"})

	// The next event is the next change: the repeats sent none.
	if _, err := h.client.DeletePerson(ctx, &pb.DeletePersonRequest{Name: "Bob"}); err != nil {
		t.Fatal(err)
	}
	if ev := next(); ev.GetType() != pb.WatchPeopleResponse_TYPE_DELETED || ev.GetRevision() != 4 {
		t.Errorf("next event = %v, want Bob's deletion at revision 4", ev)
	}
}

// TestImportRequestIDs checks that an import's batch with a request id,
// sent again, counts what it first counted and changes nothing, and that
// idempotency-key metadata on an import is refused.
func TestImportRequestIDs(t *testing.T) {
	store := seedStore()
	h := start(t, store)
	ctx := callCtx(t)
	batches := []*pb.ImportPeopleRequest{
		{People: []*pb.Person{{Name: "Carol"}, {Name: "Alice", Age: 30}}, RequestId: "0d9d4b8e-5b8e-4c1e-9a51-000000000001"},
		{People: []*pb.Person{{Name: "Dave"}}, RequestId: "0d9d4b8e-5b8e-4c1e-9a51-000000000002"},
	}
	importAll := func(ctx context.Context) (*pb.ImportPeopleResponse, error) {
		stream, err := h.client.ImportPeople(ctx)
		if err != nil {
			return nil, err
		}
		for _, b := range batches {
			if err := stream.Send(b); err != nil && err != io.EOF {
				return nil, err
			}
		}
		return stream.CloseAndRecv()
	}
	first, err := importAll(ctx)
	if err != nil || first.GetAdded() != 2 || first.GetUpdated() != 1 {
		t.Fatalf("ImportPeople = %v, %v; want 2 added, 1 updated (Alice's age)", first, err)
	}
	again, err := importAll(ctx)
	if err != nil || !proto.Equal(again, first) {
		t.Errorf("the same import again = %v, %v; want %v", again, err, first)
	}
	if rev, _ := store.Revision(ctx); rev != first.GetRevision() {
		t.Errorf("revision after the repeat = %d, want %d", rev, first.GetRevision())
	}
	_, err = importAll(metadata.AppendToOutgoingContext(ctx, idempotencyKeyHeader, "0d9d4b8e-5b8e-4c1e-9a51-000000000003"))
	wantStatus(t, "ImportPeople with idempotency-key metadata", err, codes.InvalidArgument, []string{"request_id"})
}

// TestAuditTrail checks that the principal of a token, or "local", with
// the peer and the request id, reaches the change, the watch event, the
// history and the audit log line; and that the token never does.
func TestAuditTrail(t *testing.T) {
	const token = "writer-token-0123456789"
	tests := []struct {
		name      string
		auth      *Auth
		md        []string
		principal string
	}{
		{"token", NewAuth([]Token{{hash: sha256.Sum256([]byte(token)), Principal: Principal{Name: "ops", Role: RoleWriter}}}, false), []string{"authorization", "Bearer " + token}, "ops"},
		{"local", nil, nil, "local"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &syncbuf.Buffer{}
			log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
			h := startWith(t, seedStore(), Options{Log: log, Limits: DefaultLimits(), Slow: time.Hour, Auth: tt.auth})
			ctx := callCtx(t)
			if tt.md != nil {
				ctx = metadata.AppendToOutgoingContext(ctx, tt.md...)
			}
			next := watchEvents(t, ctx, h.client)
			const id = "0d9d4b8e-5b8e-4c1e-9a51-6b1b2c3d4e50"
			if _, err := h.client.UpdatePerson(ctx, &pb.UpdatePersonRequest{Person: &pb.Person{Name: "Alice", Age: 44}, RequestId: id}); err != nil {
				t.Fatal(err)
			}
			ev := next()
			if ev.GetPrincipal() != tt.principal || ev.GetRequestId() != id || ev.GetPeer() == "" || ev.GetChangeTime() == nil {
				t.Errorf("watch event = %v, want principal %q, request id %s, a peer and a time", ev, tt.principal, id)
			}
			hist, err := h.client.ListPersonChanges(ctx, &pb.ListPersonChangesRequest{Name: "Alice"})
			if err != nil || len(hist.GetChanges()) != 2 || hist.GetChanges()[0].GetPrincipal() != tt.principal {
				t.Errorf("ListPersonChanges(Alice) = %v, %v; want 2 changes, the newest by %q", hist, err, tt.principal)
			}
			h.shutdown(t)
			var audits []map[string]any
			for _, l := range logLines(t, logs) {
				if l["msg"] == "audit" {
					audits = append(audits, l)
				}
			}
			if len(audits) != 1 {
				t.Fatalf("audit lines = %v, want one", audits)
			}
			a := audits[0]
			if a["principal"] != tt.principal || a["request_id"] != id || a["name"] != "Alice" || a["code"] != "OK" || a["peer"] == "" || a["level"] != "INFO" {
				t.Errorf("audit line = %v", a)
			}
			if strings.Contains(logs.String(), token) {
				t.Errorf("the log holds the token")
			}
		})
	}
}

// TestImportUnchangedSendsNoEvent imports a person equal to the stored
// one: the answer counts it unchanged, no revision is taken, and watchers
// hear nothing of it.
func TestImportUnchangedSendsNoEvent(t *testing.T) {
	h := start(t, seedStore())
	ctx := callCtx(t)
	next := watchEvents(t, ctx, h.client)
	stream, err := h.client.ImportPeople(ctx)
	if err != nil {
		t.Fatal(err)
	}
	alice := &pb.Person{Name: "Alice", Age: 30, Gender: pb.Person_FEMALE, Hobbies: []string{"reading", "swimming"},
		Address: &pb.Person_Address{Street: "123 Main St", City: "New York"}}
	if err := stream.Send(&pb.ImportPeopleRequest{People: []*pb.Person{alice}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.CloseAndRecv()
	if err != nil || resp.GetUnchanged() != 1 || resp.GetAdded()+resp.GetUpdated() != 0 || resp.GetRevision() != 2 {
		t.Fatalf("ImportPeople of Alice as stored = %v, %v; want 1 unchanged at revision 2", resp, err)
	}
	if _, err := h.client.DeletePerson(ctx, &pb.DeletePersonRequest{Name: "Bob"}); err != nil {
		t.Fatal(err)
	}
	if ev := next(); ev.GetType() != pb.WatchPeopleResponse_TYPE_DELETED || ev.GetRevision() != 3 {
		t.Errorf("first event after the import = %v, want Bob's deletion at revision 3", ev)
	}
}

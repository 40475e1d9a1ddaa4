package grpcserver

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/wire"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

// Page sizes for ListPeople.
const (
	defaultPageSize = 50
	maxPageSize     = 1000
)

// watchRevisionHeader is the response header WatchPeople sends once it is in
// place, holding the revision it follows changes from.
const watchRevisionHeader = wire.WatchRevisionHeader

// watchBatch is the most changes or people a watch reads from the store at
// a time; fewer when Limits.WatchPageBytes would not hold them at their
// longest (see watchPageLen).
const watchBatch = 256

// AddPerson adds a new person.
func (s *service) AddPerson(ctx context.Context, req *pb.AddPersonRequest) (*pb.AddPersonResponse, error) {
	if req.GetPerson() == nil {
		return nil, s.fail(ctx, "AddPerson", required("person"))
	}
	p := people.Normalize(wire.FromProto(req.GetPerson()))
	if err := people.Validate(p); err != nil {
		return nil, s.fail(ctx, "AddPerson", withFieldPrefix(err, "person."))
	}
	ctx, w, err := s.writeContext(ctx, writeRequest{method: pb.RouteGuide_AddPerson_FullMethodName, requestID: req.GetRequestId(), req: req, metadata: true})
	if err != nil {
		return nil, s.fail(ctx, "AddPerson", err)
	}
	rev, err := s.store.Add(ctx, p)
	if err != nil {
		err = s.fail(ctx, "AddPerson", err)
	}
	s.audit(ctx, "AddPerson", w, p.Name, rev, err)
	if err != nil {
		return nil, err
	}
	etag := people.ETag(p)
	sendETagHeader(ctx, etag)
	return &pb.AddPersonResponse{Person: wire.ToProto(p), Revision: rev, Etag: etag}, nil
}

// UpdatePerson changes the fields named by the mask.
func (s *service) UpdatePerson(ctx context.Context, req *pb.UpdatePersonRequest) (*pb.UpdatePersonResponse, error) {
	if req.GetPerson() == nil {
		return nil, s.fail(ctx, "UpdatePerson", required("person"))
	}
	to := wire.FromProto(req.GetPerson())
	name := people.NormalizeName(to.Name)
	if err := people.ValidateName(name); err != nil {
		return nil, s.fail(ctx, "UpdatePerson", withFieldPrefix(err, "person."))
	}
	fields, err := wire.MaskFields(req.GetUpdateMask(), to)
	if err != nil {
		return nil, s.fail(ctx, "UpdatePerson", err)
	}
	ctx, w, err := s.writeContext(ctx, writeRequest{method: pb.RouteGuide_UpdatePerson_FullMethodName, requestID: req.GetRequestId(), etag: req.GetEtag(), req: req, metadata: true})
	if err != nil {
		return nil, s.fail(ctx, "UpdatePerson", err)
	}
	p, rev, err := s.store.Update(ctx, name, people.Update{Fields: fields, To: to})
	if err != nil {
		err = s.fail(ctx, "UpdatePerson", withFieldPrefix(err, "person."))
	}
	s.audit(ctx, "UpdatePerson", w, name, rev, err)
	if err != nil {
		return nil, err
	}
	etag := people.ETag(p)
	sendETagHeader(ctx, etag)
	return &pb.UpdatePersonResponse{Person: wire.ToProto(p), Revision: rev, Etag: etag}, nil
}

// DeletePerson removes a person.
func (s *service) DeletePerson(ctx context.Context, req *pb.DeletePersonRequest) (*pb.DeletePersonResponse, error) {
	name := people.NormalizeName(req.GetName())
	if err := people.ValidateName(name); err != nil {
		return nil, s.fail(ctx, "DeletePerson", err)
	}
	ctx, w, err := s.writeContext(ctx, writeRequest{method: pb.RouteGuide_DeletePerson_FullMethodName, requestID: req.GetRequestId(), etag: req.GetEtag(), req: req, metadata: true})
	if err != nil {
		return nil, s.fail(ctx, "DeletePerson", err)
	}
	rev, err := s.store.Delete(ctx, name)
	if err != nil {
		err = s.fail(ctx, "DeletePerson", err)
	}
	s.audit(ctx, "DeletePerson", w, name, rev, err)
	if err != nil {
		return nil, err
	}
	return &pb.DeletePersonResponse{Revision: rev}, nil
}

// ListPeople returns one page of people. The server answers ListPeople
// with listPeople's encoding (see routeGuideService); this is its decoded
// form, for the generated interface.
func (s *service) ListPeople(ctx context.Context, req *pb.ListPeopleRequest) (*pb.ListPeopleResponse, error) {
	page, err := s.listPeople(ctx, req)
	if err != nil {
		return nil, err
	}
	resp := &pb.ListPeopleResponse{}
	if err := proto.Unmarshal(page.b, resp); err != nil {
		return nil, s.fail(ctx, "ListPeople", err)
	}
	return resp, nil
}

// listPeople returns one page of people as the encoding of its
// ListPeopleResponse, which the server's codec sends as it is.
func (s *service) listPeople(ctx context.Context, req *pb.ListPeopleRequest) (*encodedPage, error) {
	size := int(req.GetPageSize())
	switch {
	case size < 0:
		return nil, s.fail(ctx, "ListPeople", invalidField("page_size", fmt.Sprintf("must not be negative, got %d", size)))
	case size == 0:
		size = defaultPageSize
	case size > maxPageSize:
		size = maxPageSize
	}
	q := people.Query{City: req.GetCity(), Hobby: req.GetHobby(), NamePrefix: people.NormalizePrefix(req.GetNamePrefix()), Limit: size + 1}
	for field, v := range map[string]string{"city": q.City, "hobby": q.Hobby, "name_prefix": q.NamePrefix} {
		if !storable(v) {
			return nil, s.fail(ctx, "ListPeople", invalidField(field, "must not contain NUL"))
		}
	}
	if tok := req.GetPageToken(); tok != "" {
		after, err := decodePageToken(q, tok)
		if err != nil {
			return nil, s.fail(ctx, "ListPeople", err)
		}
		q.After = after
	}
	found, err := s.store.List(ctx, q)
	if err != nil {
		return nil, s.fail(ctx, "ListPeople", err)
	}
	var next string
	if len(found) > size {
		found = found[:size]
		next = encodePageToken(q, found[size-1].Name)
	}
	// Some 100 bytes a person, as people usually are, saves growing b
	// many times over.
	b, err := appendListPage(make([]byte, 0, 100*len(found)+len(next)+8), found, next)
	if err != nil {
		return nil, s.fail(ctx, "ListPeople", err)
	}
	return newEncodedPage(b), nil
}

// appendListPage appends the encoding of the ListPeopleResponse holding
// found, their etags and next as its page token: proto.Marshal's bytes for
// it, field by field, which a test holds it to. It is built here rather
// than as a message for proto.Marshal because export reads everyone through
// ListPeople: a message of a page's people cost two objects a person, the
// etags a string each, and marshalling it a walk over them all, some 15%
// of the server's CPU in an export of a million people.
func appendListPage(b []byte, found []people.Person, next string) ([]byte, error) {
	var m pb.Person
	var a pb.Person_Address
	var one []byte
	for _, p := range found {
		var err error
		one, err = proto.MarshalOptions{}.MarshalAppend(one[:0], wire.SetProto(&m, &a, p))
		if err != nil {
			return nil, err
		}
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, one)
	}
	if next != "" {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, next)
	}
	for _, p := range found {
		sum := people.ETagSum(p)
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(hex.EncodedLen(len(sum))))
		b = hex.AppendEncode(b, sum[:])
	}
	return b, nil
}

// ListPersonChanges returns the changes to one person still in the change
// log, newest first.
func (s *service) ListPersonChanges(ctx context.Context, req *pb.ListPersonChangesRequest) (*pb.ListPersonChangesResponse, error) {
	name := people.NormalizeName(req.GetName())
	if err := people.ValidateName(name); err != nil {
		return nil, s.fail(ctx, "ListPersonChanges", err)
	}
	size := int(req.GetPageSize())
	switch {
	case size < 0:
		return nil, s.fail(ctx, "ListPersonChanges", invalidField("page_size", fmt.Sprintf("must not be negative, got %d", size)))
	case size == 0:
		size = defaultPageSize
	case size > maxPageSize:
		size = maxPageSize
	}
	changes, err := s.store.History(ctx, name, size)
	if err != nil {
		return nil, s.fail(ctx, "ListPersonChanges", err)
	}
	resp := &pb.ListPersonChangesResponse{Changes: make([]*pb.WatchPeopleResponse, len(changes))}
	for i, c := range changes {
		resp.Changes[i] = wire.ChangeToProto(c)
	}
	return resp, nil
}

// WatchPeople streams changes, after the current people when asked. A slow
// reader holds back only its own stream: Send blocks once HTTP/2 flow
// control fills, and the watch reads the next people or changes from the
// store only after sending the last, so a stream holds one page at most,
// whose bytes Limits.WatchPageBytes bounds. A page is read whole and the
// store's connection released before the first send.
//
// Watches are counted per connection and per server, and refused past
// Limits.MaxWatchersPerConn or Limits.MaxWatchers. A client that accepts no
// data for Limits.WatchStallTimeout while the watch waits to send has its
// watch ended with RESOURCE_EXHAUSTED, telling it to watch again from the
// last revision it received: the server does not keep falling behind on
// its behalf.
func (s *service) WatchPeople(req *pb.WatchPeopleRequest, stream grpc.ServerStreamingServer[pb.WatchPeopleResponse]) error {
	ctx := stream.Context()
	if after := req.GetAfterRevision(); after < 0 {
		return s.fail(ctx, "WatchPeople", invalidField("after_revision", fmt.Sprintf("must not be negative, got %d", after)))
	}
	leave, err := s.watchers.enter(ctx)
	if err != nil {
		return err
	}
	defer leave()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w := newWatchSender(ctx, s.watchStall, cancel, stream)
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- panicked{p}
			}
		}()
		done <- s.watch(ctx, req, w)
	}()
	select {
	case err = <-done:
		if p, ok := err.(panicked); ok {
			panic(p.value)
		}
	case <-ctx.Done():
		// The watch's goroutine may be waiting in a send that only the
		// end of the stream interrupts; returning ends it.
		err = status.FromContextError(ctx.Err()).Err()
	}
	if errors.Is(context.Cause(ctx), errStalled) {
		return stalledStatus(s.watchStall)
	}
	return err
}

// watch runs a watch, sending through w.
func (s *service) watch(ctx context.Context, req *pb.WatchPeopleRequest, w *watchSender) error {
	after := req.GetAfterRevision()
	if req.GetSendCurrent() || after == 0 {
		rev, err := s.store.Revision(ctx)
		if err != nil {
			return s.fail(ctx, "WatchPeople", err)
		}
		after = rev
	}
	// The header tells the client the watch is in place, and from where:
	// every change after this revision will reach it.
	if err := w.stream.SendHeader(metadata.Pairs(watchRevisionHeader, strconv.FormatInt(after, 10))); err != nil {
		return err
	}
	if req.GetSendCurrent() {
		if err := s.sendCurrent(ctx, w, after); err != nil {
			return err
		}
	}
	for {
		changes, err := s.store.Changes(ctx, after, s.watchPage)
		if err != nil {
			return s.fail(ctx, "WatchPeople", err)
		}
		for i, c := range changes {
			ev := wire.ChangeToProto(c)
			changes[i] = people.Change{} // as in sendCurrent
			if err := w.send(ev); err != nil {
				return err
			}
			after = ev.GetRevision()
		}
		if len(changes) == s.watchPage {
			continue
		}
		if err := s.store.WaitChange(ctx, after); err != nil {
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

// sendCurrent sends every person as a CURRENT event of revision rev, then a
// SYNCED event.
func (s *service) sendCurrent(ctx context.Context, w *watchSender, rev int64) error {
	q := people.Query{Limit: s.watchPage}
	for {
		page, err := s.store.List(ctx, q)
		if err != nil {
			return s.fail(ctx, "WatchPeople", err)
		}
		if len(page) == q.Limit {
			q.After = page[len(page)-1].Name
		}
		for i, p := range page {
			ev := &pb.WatchPeopleResponse{Revision: rev, Type: pb.WatchPeopleResponse_TYPE_CURRENT, Person: wire.ToProto(p), Etag: people.ETag(p)}
			page[i] = people.Person{} // a send that waits holds only the people not yet sent
			if err := w.send(ev); err != nil {
				return err
			}
		}
		if len(page) < q.Limit {
			break
		}
	}
	return w.send(&pb.WatchPeopleResponse{Revision: rev, Type: pb.WatchPeopleResponse_TYPE_SYNCED})
}

// Bounds of one import transaction: it holds at most importTxPeople people
// and importTxBytes of encoded people, whichever comes first (a single
// request with more people than importTxPeople goes whole into one).
// People arrive in no particular order, so a transaction touches pages all
// over the name and hobby indexes, and each touched page is written once
// per transaction: larger transactions import faster (see the README's
// Scale section), but hold SQLite's one writer longer, keeping other
// writers waiting, and hold the people they gather in memory. The bytes
// bound keeps an import of large people (many hobbies each) from holding
// either for long: a transaction of importTxBytes costs about what one of
// importTxPeople small people does.
const (
	importTxPeople = 100_000
	importTxBytes  = 8 << 20
)

// importTx gathers the people of one import transaction, as the batches
// of its requests: appending each batch to one slice copied the people
// gathered so far at every growth, a tenth of the server's CPU in an
// import (its profile), where people joins them once.
type importTx struct {
	batches [][]people.Person
	n       int // the people in batches
	bytes   int // their encoded size
}

// add adds a request's batch, size bytes encoded.
func (tx *importTx) add(batch []people.Person, size int) {
	tx.batches = append(tx.batches, batch)
	tx.n += len(batch)
	tx.bytes += size
}

// people returns the transaction's people, in the order they came.
func (tx *importTx) people() []people.Person {
	if len(tx.batches) == 1 {
		return tx.batches[0]
	}
	return slices.Concat(tx.batches...)
}

// fits reports whether a request of n people, size bytes encoded, can join
// the transaction without passing its bounds; an empty transaction takes
// any request.
func (tx *importTx) fits(n, size int) bool {
	return tx.n == 0 || (tx.n+n <= importTxPeople && tx.bytes+size <= importTxBytes)
}

// full reports whether the transaction has reached a bound.
func (tx *importTx) full() bool {
	return tx.n >= importTxPeople || tx.bytes >= importTxBytes
}

// ImportPeople stores the people it receives in transactions bounded by
// importTxPeople and importTxBytes, each holding whole requests, and
// answers with the counts of the whole import once all are stored. A
// request with an invalid person is refused whole, naming the person by
// its place in the import; every request before it is stored first. So is
// every request before one too large to receive (RESOURCE_EXHAUSTED),
// whatever the store. A call that ends otherwise (cancelled, past its
// deadline, its connection lost) stores no more than the transactions
// already committed.
//
// Transactions are stored, in order, by a goroutine of their own
// (importStorer) while this one receives and checks the requests of the
// next: the store's commit and the decoding of what follows overlap, and
// so do the store and the client, which would otherwise wait for each
// transaction before sending more.
func (s *service) ImportPeople(stream grpc.ClientStreamingServer[pb.ImportPeopleRequest, pb.ImportPeopleResponse]) (err error) {
	ctx := stream.Context()
	var (
		total   people.ImportResult
		seen    int
		pending importTx
	)
	if len(metadata.ValueFromIncomingContext(ctx, idempotencyKeyHeader)) > 0 {
		return s.fail(ctx, "ImportPeople", invalidField("request_id", "goes in each ImportPeopleRequest, not in "+idempotencyKeyHeader+" metadata"))
	}
	ctx, w, err := s.writeContext(ctx, writeRequest{method: pb.RouteGuide_ImportPeople_FullMethodName})
	if err != nil {
		return s.fail(ctx, "ImportPeople", err)
	}
	defer func() {
		s.audit(ctx, "ImportPeople", w, "", total.Revision, err,
			slog.Int64("added", total.Added), slog.Int64("updated", total.Updated), slog.Int64("unchanged", total.Unchanged))
	}()
	rev, err := s.store.Revision(ctx)
	if err != nil {
		return s.fail(ctx, "ImportPeople", err)
	}
	total.Revision = rev
	st := s.startImportStorer(ctx, &total)
	defer st.wait()
	defer st.cancel() // before wait: a call that ends early stops the transaction being stored
	// store hands the gathered transaction to the storer.
	store := func() error {
		if pending.n == 0 {
			return st.failed()
		}
		err := st.send(importJob{ctx: st.ctx, people: pending.people()})
		pending = importTx{}
		return err
	}
	// storeAll stores everything received and waits for it.
	storeAll := func() error {
		if err := store(); err != nil {
			return err
		}
		return st.wait()
	}
	for {
		if err := st.failed(); err != nil {
			return err
		}
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			if err := storeAll(); err != nil {
				return err
			}
			return stream.SendAndClose(&pb.ImportPeopleResponse{Added: total.Added, Updated: total.Updated, Unchanged: total.Unchanged, Revision: total.Revision})
		}
		if status.Code(err) == codes.ResourceExhausted {
			// A message too large to receive: grpc-go has already ended
			// the call, and its context, with this code. What arrived
			// before it is stored all the same (the storer's context is
			// not the call's), as before an invalid person, and on every
			// store alike; the call's own code is what it ends with, and
			// what is logged.
			if serr := storeAll(); serr != nil {
				return serr
			}
			return err
		}
		if err != nil {
			return err // the caller has gone: it can learn nothing more
		}
		batch := make([]people.Person, len(req.GetPeople()))
		for i, m := range req.GetPeople() {
			p := people.Normalize(wire.FromProto(m))
			if err := people.Validate(p); err != nil {
				if err := storeAll(); err != nil {
					return err
				}
				return s.fail(ctx, "ImportPeople", withFieldPrefix(err, fmt.Sprintf("people[%d].", seen+i)))
			}
			batch[i] = p
		}
		seen += len(batch)
		if req.GetRequestId() != "" {
			// A request with a request id goes in a transaction of its
			// own, which records the id: a repeat of the request counts
			// what the first counted.
			if err := store(); err != nil {
				return err
			}
			kctx, _, err := s.writeContext(st.ctx, writeRequest{method: pb.RouteGuide_ImportPeople_FullMethodName, requestID: req.GetRequestId(), req: req})
			if err != nil {
				if werr := st.wait(); werr != nil {
					return werr
				}
				return s.fail(ctx, "ImportPeople", err)
			}
			if err := st.send(importJob{ctx: kctx, people: batch}); err != nil {
				return err
			}
			continue
		}
		size := proto.Size(req)
		if !pending.fits(len(batch), size) {
			if err := store(); err != nil {
				return err
			}
		}
		pending.add(batch, size)
		if pending.full() {
			if err := store(); err != nil {
				return err
			}
		}
	}
}

// importJob is a transaction of an import for its storer: people, stored
// with ctx.
type importJob struct {
	ctx    context.Context
	people []people.Person
}

// importStorer stores an import's transactions, one at a time and in the
// order sent, adding their counts to a total, until one fails; the call's
// goroutine reads the total only once wait has returned. Its context
// keeps the call's values but not its end, so that what was received
// before a request too large to receive is stored all the same; the call
// cancels it when it ends otherwise.
type importStorer struct {
	ctx    context.Context
	cancel context.CancelFunc
	jobs   chan importJob
	done   chan struct{} // closed when the storer has ended
	err    atomic.Pointer[error]
	closed bool
}

// startImportStorer starts the storer of an import whose call has ctx.
func (s *service) startImportStorer(ctx context.Context, total *people.ImportResult) *importStorer {
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	// Unbuffered: one transaction is stored while the next is gathered,
	// and no more are held.
	st := &importStorer{ctx: sctx, cancel: cancel, jobs: make(chan importJob), done: make(chan struct{})}
	go func() {
		defer close(st.done)
		for job := range st.jobs {
			if st.err.Load() != nil {
				continue // failed: the call is ending
			}
			r, err := s.store.Import(job.ctx, job.people)
			if err != nil {
				err = s.fail(ctx, "ImportPeople", err)
				st.err.Store(&err)
				continue
			}
			total.Added += r.Added
			total.Updated += r.Updated
			total.Unchanged += r.Unchanged
			total.Revision = max(total.Revision, r.Revision)
		}
	}()
	return st
}

// send hands job to the storer, once it has stored the one before; it
// returns the storer's error when that one failed.
func (st *importStorer) send(job importJob) error {
	if err := st.failed(); err != nil {
		return err
	}
	st.jobs <- job
	return nil
}

// failed returns the error that stopped the storer, or nil.
func (st *importStorer) failed() error {
	if err := st.err.Load(); err != nil {
		return *err
	}
	return nil
}

// wait ends the storer once it has stored everything sent, and returns
// the error that stopped it, if any. Nothing may be sent after.
func (st *importStorer) wait() error {
	if !st.closed {
		close(st.jobs)
		st.closed = true
	}
	<-st.done
	return st.failed()
}

// fail returns the status error for a failed call, logging what the caller
// is not shown.
func (s *service) fail(ctx context.Context, method string, err error) error {
	return statusError(ctx, s.log, method, err)
}

func required(field string) error {
	return invalidField(field, "is required")
}

// invalidField returns an Invalid error about one field.
func invalidField(field, desc string) error {
	return &people.Error{
		Kind:       people.Invalid,
		Message:    field + " " + desc,
		Violations: []people.FieldViolation{{Field: field, Description: desc}},
	}
}

// withFieldPrefix returns err with prefix put before every violated field's
// path, so that paths name the field in the request, such as "person.name";
// other errors are returned as they are.
func withFieldPrefix(err error, prefix string) error {
	var e *people.Error
	if !errors.As(err, &e) || len(e.Violations) == 0 {
		return err
	}
	out := *e
	out.Violations = make([]people.FieldViolation, len(e.Violations))
	for i, v := range e.Violations {
		out.Violations[i] = people.FieldViolation{Field: prefix + v.Field, Description: v.Description}
	}
	return &out
}

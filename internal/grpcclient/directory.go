package grpcclient

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/wire"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

// Add adds p and returns the person as stored and the change's revision.
// It carries a request id, and is sent again on UNAVAILABLE or
// DEADLINE_EXCEEDED (see retryWrite): a write whose answer was lost is
// answered on the retry, not refused as ALREADY_EXISTS.
func (c *Client) Add(ctx context.Context, p people.Person, opts ...WriteOption) (people.Person, int64, error) {
	o := newWriteOptions(opts)
	req := &pb.AddPersonRequest{Person: wire.ToProto(p), RequestId: o.requestID}
	var resp *pb.AddPersonResponse
	err := retryWrite(ctx, func(ctx context.Context) (err error) {
		resp, err = c.rg.AddPerson(ctx, req)
		return err
	})
	if err != nil {
		return people.Person{}, 0, fromStatus(err)
	}
	return wire.FromProto(resp.GetPerson()), resp.GetRevision(), nil
}

// Update changes u's fields of the person named name and returns the person
// as stored and the change's revision. Updating no field is refused here, as
// an empty mask would mean "every field set" to the server.
//
// With IfMatch, the update is made only while the person's etag is the one
// given, and fails with an error of kind people.Aborted otherwise. It is
// retried as Add is.
func (c *Client) Update(ctx context.Context, name string, u people.Update, opts ...WriteOption) (people.Person, int64, error) {
	mask := wire.Mask(u.Fields)
	if len(mask.GetPaths()) == 0 {
		return people.Person{}, 0, people.Errorf(people.Invalid, "nothing to update")
	}
	o := newWriteOptions(opts)
	to := u.To
	to.Name = name
	req := &pb.UpdatePersonRequest{Person: wire.ToProto(to), UpdateMask: mask, RequestId: o.requestID, Etag: o.ifMatch}
	var resp *pb.UpdatePersonResponse
	err := retryWrite(ctx, func(ctx context.Context) (err error) {
		resp, err = c.rg.UpdatePerson(ctx, req)
		return err
	})
	if err != nil {
		return people.Person{}, 0, fromStatus(err)
	}
	return wire.FromProto(resp.GetPerson()), resp.GetRevision(), nil
}

// Delete removes the person named name and returns the change's revision.
// IfMatch makes it conditional, as for Update; it is retried as Add is.
func (c *Client) Delete(ctx context.Context, name string, opts ...WriteOption) (int64, error) {
	o := newWriteOptions(opts)
	req := &pb.DeletePersonRequest{Name: name, RequestId: o.requestID, Etag: o.ifMatch}
	var resp *pb.DeletePersonResponse
	err := retryWrite(ctx, func(ctx context.Context) (err error) {
		resp, err = c.rg.DeletePerson(ctx, req)
		return err
	})
	if err != nil {
		return 0, fromStatus(err)
	}
	return resp.GetRevision(), nil
}

// History returns up to limit (the server's default when 0) changes to
// the person named name still in the change log, newest first.
func (c *Client) History(ctx context.Context, name string, limit int) ([]Event, error) {
	resp, err := c.rg.ListPersonChanges(ctx, &pb.ListPersonChangesRequest{Name: name, PageSize: int32(limit)})
	if err != nil {
		return nil, fromStatus(err)
	}
	out := make([]Event, len(resp.GetChanges()))
	for i, m := range resp.GetChanges() {
		out[i] = eventOf(m)
	}
	return out, nil
}

// List calls found with every person matching q's filters, in name order,
// fetching pages as it goes; q.Limit caps how many (0: no cap). newContext
// gives each page's call its context, so that a deadline bounds one page
// rather than the whole listing. It stops at found's first error.
func (c *Client) List(ctx context.Context, q people.Query, newContext func(context.Context) (context.Context, context.CancelFunc), found func(people.Person) error) error {
	return c.ListETags(ctx, q, newContext, func(p people.Person, _ string) error { return found(p) })
}

// ListETags is List, calling found with each person's etag too.
func (c *Client) ListETags(ctx context.Context, q people.Query, newContext func(context.Context) (context.Context, context.CancelFunc), found func(p people.Person, etag string) error) error {
	type page struct {
		raw rawPage
		err error
	}
	left := q.Limit
	// fetch asks for the page after token in the background. The next page
	// is asked for as soon as a page arrives, before the page is even
	// decoded (its token is read from its bytes first) and before found
	// sees its people, so the server reads one page while the client
	// decodes and handles the last: an export is the client's CPU and the
	// server's at once, not in turn.
	fetch := func(token string, size int32) (<-chan page, context.CancelFunc) {
		req := &pb.ListPeopleRequest{City: q.City, Hobby: q.Hobby, NamePrefix: q.NamePrefix, PageSize: size, PageToken: token}
		pctx, cancel := newContext(ctx)
		ch := make(chan page, 1)
		go func() {
			var p page
			p.err = c.conn.Invoke(pctx, pb.RouteGuide_ListPeople_FullMethodName, req, &p.raw, grpc.ForceCodecV2(rawCodec{}))
			ch <- p
		}()
		return ch, cancel
	}
	size := func() int32 {
		if q.Limit > 0 {
			return int32(min(left, 1000))
		}
		return 1000
	}
	next, cancel := fetch("", size())
	var resp pb.ListPeopleResponse
	for {
		p := <-next
		cancel()
		if p.err != nil {
			return fromStatus(p.err)
		}
		token, err := p.raw.nextPageToken()
		if err == nil {
			err = proto.Unmarshal(p.raw.b, &resp)
		}
		if err != nil {
			return fromStatus(status.Errorf(codes.Internal, "grpc: failed to unmarshal the received message: %v", err))
		}
		got := resp.GetPeople()
		left -= len(got)
		more := token != "" && (q.Limit <= 0 || left > 0)
		if more {
			next, cancel = fetch(token, size())
		}
		etags := resp.GetEtags()
		for i, m := range got {
			var etag string
			if i < len(etags) {
				etag = etags[i]
			}
			if err := found(wire.FromProto(m), etag); err != nil {
				if more {
					cancel()
					<-next
				}
				return err
			}
		}
		if !more {
			return nil
		}
	}
}

// EventType says what a watch event reports. Its values are the wire's;
// its names, the domain's (see String).
type EventType pb.WatchPeopleResponse_Type

// The watch's event types.
const (
	EventCurrent = EventType(pb.WatchPeopleResponse_TYPE_CURRENT) // a person as the watch started
	EventSynced  = EventType(pb.WatchPeopleResponse_TYPE_SYNCED)  // every current person has been sent
	EventAdded   = EventType(pb.WatchPeopleResponse_TYPE_ADDED)
	EventUpdated = EventType(pb.WatchPeopleResponse_TYPE_UPDATED)
	EventDeleted = EventType(pb.WatchPeopleResponse_TYPE_DELETED)
)

// String returns "current", "synced", or for a change the name of its
// people.ChangeType ("added", "updated", "deleted"); for a type this
// client does not know, the wire's name of it.
func (t EventType) String() string {
	switch t {
	case EventCurrent:
		return "current"
	case EventSynced:
		return "synced"
	}
	if c, ok := wire.ChangeTypeOf(pb.WatchPeopleResponse_Type(t)); ok {
		return c.String()
	}
	return pb.WatchPeopleResponse_Type(t).String()
}

// Event is one event of a watch. For a deletion, Person holds only the name.
type Event struct {
	Revision int64
	Type     EventType
	Person   people.Person
	ETag     string        // the person's etag after the change; empty for a deletion
	Origin   people.Origin // who made a change, from where, with which request id, when
}

// eventOf returns the event m reports.
func eventOf(m *pb.WatchPeopleResponse) Event {
	return Event{Revision: m.GetRevision(), Type: EventType(m.GetType()), Person: wire.FromProto(m.GetPerson()),
		ETag: m.GetEtag(), Origin: wire.OriginFromProto(m)}
}

// AppendJSON appends ev as one line of protojson (no trailing newline): the
// WatchPeopleResponse it came as, as grpcurl shows it.
func (ev Event) AppendJSON(dst []byte) ([]byte, error) {
	m := &pb.WatchPeopleResponse{Revision: ev.Revision, Type: pb.WatchPeopleResponse_Type(ev.Type), Etag: ev.ETag,
		Principal: ev.Origin.Principal, Peer: ev.Origin.Peer, RequestId: ev.Origin.RequestID}
	if ev.Type != EventSynced {
		m.Person = wire.ToProto(ev.Person)
	}
	if !ev.Origin.Time.IsZero() {
		m.ChangeTime = timestamppb.New(ev.Origin.Time)
	}
	return wire.AppendMessageJSON(dst, m)
}

// Batch limits for ImportPeople requests: each stays far below the largest
// message the server receives (grpcserver.DefaultLimits; README, Limits).
const (
	importBatchPeople = 1000
	importBatchBytes  = 1 << 20
)

// Importer sends people to ImportPeople in batches. Add people, then Close
// to learn what the import did.
type Importer struct {
	stream grpc.ClientStreamingClient[pb.ImportPeopleRequest, pb.ImportPeopleResponse]
	cancel context.CancelFunc
	batch  *pb.ImportPeopleRequest // the batch being filled; a sent one is never reused
	bytes  int
	broken bool // a Send failed; Close reports why
}

// Import starts an import.
func (c *Client) Import(ctx context.Context) (*Importer, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := c.rg.ImportPeople(ctx)
	if err != nil {
		cancel()
		return nil, fromStatus(err)
	}
	return &Importer{stream: stream, cancel: cancel, batch: &pb.ImportPeopleRequest{}}, nil
}

// ErrImportEnded is what Add returns once the server has ended the import;
// Close says why.
var ErrImportEnded = errors.New("the server ended the import")

// Add queues p, sending a batch when one is full. Once the server has ended
// the import, Add returns ErrImportEnded and queues nothing; Close then
// reports the server's answer.
func (im *Importer) Add(p people.Person) error {
	return im.AddMessage(wire.ToProto(p))
}

// AddMessage is Add for a person as its message, which the Importer keeps
// until it is sent: the caller must not change it.
func (im *Importer) AddMessage(m *pb.Person) error {
	if im.broken {
		return ErrImportEnded
	}
	im.batch.People = append(im.batch.People, m)
	im.bytes += proto.Size(m)
	if len(im.batch.People) >= importBatchPeople || im.bytes >= importBatchBytes {
		return im.flush()
	}
	return nil
}

func (im *Importer) flush() error {
	if im.broken || len(im.batch.People) == 0 {
		return nil
	}
	// grpc-go may read a sent message later (stats handlers do), so each
	// batch is a new message.
	err := im.stream.Send(im.batch)
	im.batch = &pb.ImportPeopleRequest{People: make([]*pb.Person, 0, importBatchPeople)}
	im.bytes = 0
	if errors.Is(err, io.EOF) {
		im.broken = true // the call has ended; CloseAndRecv says why
		return nil
	}
	return fromStatus(err)
}

// Close sends what is queued, ends the import and returns its counts: every
// batch sent before a failure stays stored.
func (im *Importer) Close() (people.ImportResult, error) {
	defer im.cancel()
	if err := im.flush(); err != nil {
		return people.ImportResult{}, err
	}
	resp, err := im.stream.CloseAndRecv()
	if err != nil {
		return people.ImportResult{}, fromStatus(err)
	}
	return people.ImportResult{Added: resp.GetAdded(), Updated: resp.GetUpdated(), Unchanged: resp.GetUnchanged(), Revision: resp.GetRevision()}, nil
}

package grpcserver

import (
	"cmp"
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/routeguide/routeguide/internal/people"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

// Keeper is a directory that keeps each person in wire form, ready to
// send; the read cache (cache.Store) is one. A person asked for many times
// is then encoded once (BenchmarkGetPersonHandler against
// BenchmarkGetPersonProto), and held once, in that form.
//
// Encoded returns the wire encoding of the person named name (as
// wire.AppendPerson writes it), which nobody may modify, and the person's
// etag (people.ETagSum), or the lookup's error as people.Reader's Person
// would.
type Keeper interface {
	Encoded(ctx context.Context, name string) ([]byte, [8]byte, error)
}

// encoded reads the person named name in wire form: from the Keeper, which
// keeps the encoding, when the server has one; else from the store,
// encoding it anew.
func (s *service) encoded(ctx context.Context, name string) (*encodedPerson, error) {
	if s.keeper == nil {
		p, err := s.store.Person(ctx, name)
		if err != nil {
			return nil, err
		}
		return encode(p)
	}
	enc, etag, err := s.keeper.Encoded(ctx, name)
	if err != nil {
		return nil, err
	}
	return kept(enc, etag), nil
}

func newService(store people.Store, keeper Keeper, log *slog.Logger) *service {
	s := &service{store: store, keeper: keeper, log: log, retention: DefaultIdempotencyRetention}
	s.setLimits(DefaultLimits())
	return s
}

// setLimits applies the limits of l that the service enforces itself; a
// zero limit means its default.
func (s *service) setLimits(l Limits) {
	d := DefaultLimits()
	s.watchers = newWatchers(cmp.Or(l.MaxWatchersPerConn, d.MaxWatchersPerConn), cmp.Or(l.MaxWatchers, d.MaxWatchers))
	s.watchPage = watchPageLen(cmp.Or(l.WatchPageBytes, d.WatchPageBytes))
	s.watchStall = cmp.Or(l.WatchStallTimeout, d.WatchStallTimeout)
}

// service implements the RouteGuide gRPC service over a store.
type service struct {
	pb.UnimplementedRouteGuideServer

	store  people.Store // Close is the owner's business, not the service's
	keeper Keeper       // where GetPerson and GetPeople read, when not nil
	log    *slog.Logger

	watchers   *watchers     // the open watches, against their limits
	watchPage  int           // people a watch reads at a time
	watchStall time.Duration // how long a watch waits for its client to accept data
	retention  time.Duration // how long a write's request id is kept
}

// GetPerson answers the person with the requested name, or the seed's
// "Not Found" person when nobody has it. The server does not call it:
// it registers getPerson, which answers the same in wire form (see
// routeGuideService). This form is the generated interface's, for callers
// in the same process.
func (s *service) GetPerson(ctx context.Context, req *pb.Name) (*pb.Person, error) {
	answer, err := s.getPerson(ctx, req)
	if err != nil {
		return nil, err
	}
	var p pb.Person
	if err := proto.Unmarshal(answer.Bytes(), &p); err != nil {
		return nil, statusError(ctx, s.log, "GetPerson", err)
	}
	return &p, nil
}

// notFoundStatusKey marks a call whose caller wants NOT_FOUND, not the
// seed's "Not Found" person, for a name nobody has.
type notFoundStatusKey struct{}

// WithNotFoundStatus returns ctx marked so that GetPerson answers a name
// nobody has with NOT_FOUND rather than the seed's "Not Found" person. The
// HTTP listener marks its REST calls this way (GET /v1/people/{name} answers
// 404); gRPC and Connect callers, who may be the seed's own clients, keep
// the seed's answer.
func WithNotFoundStatus(ctx context.Context) context.Context {
	return context.WithValue(ctx, notFoundStatusKey{}, true)
}

func notFoundAsStatus(ctx context.Context) bool {
	v, _ := ctx.Value(notFoundStatusKey{}).(bool)
	return v
}

// notFoundAnswer is the seed's answer for a name nobody has.
var notFoundAnswer = must(encode(people.Person{Name: people.NotFoundName}))

// getPerson answers GetPerson in wire form: a cached person is encoded once
// per version, as for GetPeople.
func (s *service) getPerson(ctx context.Context, req *pb.Name) (*encodedPerson, error) {
	answer, err := s.lookup(ctx, req.GetName())
	if err != nil {
		if people.KindOf(err) == people.NotFound && !notFoundAsStatus(ctx) {
			return notFoundAnswer, nil
		}
		return nil, statusError(ctx, s.log, "GetPerson", err)
	}
	return answer, nil
}

// routeGuideService is the generated description of the RouteGuide service
// with two changes: GetPerson's handler calls getPerson, whose answer the
// server's codec sends as it is, instead of GetPerson, whose answer grpc-go
// would encode again for every call; and ListPeople's calls listPeople,
// which encodes its page itself (see appendListPage).
func routeGuideService() *grpc.ServiceDesc {
	desc := pb.RouteGuide_ServiceDesc
	desc.Methods = slices.Clone(desc.Methods)
	for name, h := range map[string]grpc.MethodHandler{"GetPerson": getPersonHandler, "ListPeople": listPeopleHandler} {
		i := slices.IndexFunc(desc.Methods, func(m grpc.MethodDesc) bool { return m.MethodName == name })
		if i < 0 {
			panic("the generated RouteGuide service has no " + name + " method")
		}
		desc.Methods[i].Handler = h
	}
	return &desc
}

// listPeopleHandler is the generated ListPeople handler, calling
// listPeople.
func listPeopleHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(pb.ListPeopleRequest)
	if err := dec(in); err != nil {
		return nil, err
	}
	s := srv.(*service)
	handler := func(ctx context.Context, req any) (any, error) {
		page, err := s.listPeople(ctx, req.(*pb.ListPeopleRequest))
		if err != nil {
			return nil, err // not a nil *encodedPage in an interface
		}
		return page, nil
	}
	if interceptor == nil {
		return handler(ctx, in)
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: pb.RouteGuide_ListPeople_FullMethodName}
	return interceptor(ctx, in, info, handler)
}

// getPersonHandler is the generated GetPerson handler, calling getPerson.
func getPersonHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(pb.Name)
	if err := dec(in); err != nil {
		return nil, err
	}
	s := srv.(*service)
	handler := func(ctx context.Context, req any) (any, error) {
		answer, err := s.getPerson(ctx, req.(*pb.Name))
		if err != nil {
			return nil, err // not a nil *encodedPerson in an interface
		}
		setETag(ctx, answer)
		return answer, nil
	}
	if interceptor == nil {
		return handler(ctx, in)
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: pb.RouteGuide_GetPerson_FullMethodName}
	return interceptor(ctx, in, info, handler)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// GetPeople answers each name as it arrives, in order, and skips names nobody
// has. Names are received on their own goroutine so that a stream waiting for
// its next name still ends as soon as its context does (the client cancels,
// the deadline passes or the server drains); the handler alone sends.
//
// A pipelining client keeps many names in flight, so both goroutines first
// try the channel without blocking, and only wait (on the channel or the
// context) when it is empty or full; one request message is reused for the
// whole stream, since grpc-go decodes into it before RecvMsg returns. Each
// answer is sent in its kept wire form (see encoded), which saves encoding
// it again: BenchmarkGetPersonEncode against BenchmarkGetPersonProto
// measures one answer, bench/compare.sh's GetPeople runs a stream.
//
// A client that sends names faster than it reads answers fills the queue
// and then HTTP/2 flow control: the stream then holds at most
// getPeopleQueueBytes of names, plus one message being received. A name
// longer than any spelling of a valid name is nobody's, so it is dropped as
// it arrives, taking no place in the queue.
func (s *service) GetPeople(stream grpc.BidiStreamingServer[pb.Name, pb.Person]) error {
	ctx := stream.Context()
	names := make(chan string, getPeopleQueue)
	recvErr := make(chan error, 1)
	go func() {
		defer close(names)
		var req pb.Name
		for {
			if err := stream.RecvMsg(&req); err != nil {
				if err != io.EOF {
					recvErr <- err
				}
				return
			}
			name, ok := findableName(req.GetName())
			req.Name = "" // not kept while waiting for the next name
			if !ok {
				continue
			}
			select {
			case names <- name:
				continue
			default:
			}
			select {
			case names <- name:
			case <-ctx.Done():
				return
			}
		}
	}()

	for {
		var name string
		var ok bool
		select {
		case name, ok = <-names:
		default:
			select {
			case name, ok = <-names:
			case <-ctx.Done():
			}
		}
		if err := ctx.Err(); err != nil {
			return status.FromContextError(err).Err()
		}
		if !ok {
			select {
			case err := <-recvErr:
				return err
			default:
				return nil // the client finished sending and has every answer
			}
		}
		answer, err := s.lookup(ctx, name)
		if err != nil {
			if people.KindOf(err) == people.NotFound {
				continue
			}
			return statusError(ctx, s.log, "GetPeople", err)
		}
		if err := stream.SendMsg(answer); err != nil {
			return err
		}
	}
}

// errUnstorable answers a name no write can store: callers only test its
// kind, so it is made once rather than formatting the (untrusted, possibly
// long) name on every call.
var errUnstorable = people.Errorf(people.NotFound, "nobody can be named so")

// lookup reads the person a GetPerson or GetPeople name asks for, in wire
// form. The name is normalized as writes normalize it (people.NormalizeName),
// which costs nothing for a name that is already normal. A person stored
// under a name that is not normal, before names were normalized, is still
// found by that name. It returns an error of kind NotFound when nobody has
// the name.
func (s *service) lookup(ctx context.Context, name string) (*encodedPerson, error) {
	if !storable(name) {
		return nil, errUnstorable
	}
	normal := people.NormalizeName(name)
	answer, err := s.encoded(ctx, normal)
	// KindOf allocates, so it is asked only on the rare path.
	if err != nil && normal != name && people.KindOf(err) == people.NotFound {
		return s.encoded(ctx, name)
	}
	return answer, err
}

// getPeopleQueueBytes bounds the names one GetPeople stream holds received
// but not yet answered. Only names of at most people.MaxNameSpelling bytes
// are queued, so a queue of getPeopleQueue names stays within it.
const (
	getPeopleQueueBytes = 64 << 10
	getPeopleQueue      = getPeopleQueueBytes / people.MaxNameSpelling
)

// findableName returns name without its surrounding white space, which
// lookups ignore, and whether someone could have it: it is short enough to
// be a valid name once normalized. The name returned does not keep name's
// bytes alive.
func findableName(name string) (string, bool) {
	trimmed := strings.TrimSpace(name)
	if len(trimmed) > people.MaxNameSpelling {
		return "", false
	}
	if len(trimmed) < len(name) {
		trimmed = strings.Clone(trimmed)
	}
	return trimmed, true
}

// storable reports whether s could be stored at all. Protobuf strings may
// hold NUL, which PostgreSQL text cannot; no valid name contains it, so a
// lookup for one finds nobody without asking the store.
func storable(s string) bool {
	return !strings.ContainsRune(s, 0)
}

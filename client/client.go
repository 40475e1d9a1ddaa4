// Package client is a Go client of RouteGuide, the gRPC people directory,
// for programs that call it: the service's messages are the generated ones
// of github.com/routeguide/routeguide/routeguidepb.
//
// New dials a target the way the routeguide command does: host:port, a
// comma-separated list of replicas (host:port,host:port,...), or any target
// grpc-go resolves, such as dns:///name:port. Calls are spread round-robin
// over the replicas whose health (grpc.health.v1, service RouteGuide) says
// SERVING; reads (GetPerson, GetPeople, ListPeople, WatchPeople) that fail
// with UNAVAILABLE are tried again on the next replica, up to 5 attempts,
// with retries throttled while most calls fail. Add, Update and Delete put
// a fresh request id on each write and retry it, with the same request id,
// on UNAVAILABLE or DEADLINE_EXCEEDED (with time left), with backoff: the
// server answers a repeat of a request id with the first answer, so a
// write that reached a replica before it died is neither made twice nor
// refused as ALREADY_EXISTS. UpdateIfMatch and DeleteIfMatch make a write
// conditional on the person's etag (GetPersonETag), failing with ABORTED
// when it changed. A Watch reconnects by itself and resumes after the last
// revision it delivered.
//
// Failed calls return the server's gRPC status: read it with status.Code
// and status.FromError (google.golang.org/grpc/status).
package client

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"iter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/routeguide/routeguide/internal/grpcclient"
	"github.com/routeguide/routeguide/internal/wire"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

// Client calls the RouteGuide servers of one target. It is safe for
// concurrent use.
type Client struct {
	c  *grpcclient.Client
	rg pb.RouteGuideClient
}

// Option configures New.
type Option func(*options)

type options struct {
	dial []grpc.DialOption
}

// WithTLS connects with TLS configured by c; nil trusts the system's
// certificate authorities. Without it the connection is plaintext.
func WithTLS(c *tls.Config) Option {
	if c == nil {
		c = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return func(o *options) {
		o.dial = append(o.dial, grpc.WithTransportCredentials(credentials.NewTLS(c)))
	}
}

// WithToken sends token with every call as "authorization: Bearer TOKEN",
// which a server run with --tokens checks. The token is sent only over TLS:
// New fails when WithToken is given without WithTLS.
func WithToken(token string) Option {
	return func(o *options) {
		o.dial = append(o.dial, grpc.WithPerRPCCredentials(bearer(token)))
	}
}

// WithDialOptions adds grpc-go dial options, after the client's own, such
// as interceptors or a stats handler.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dial = append(o.dial, opts...) }
}

type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return true }

// New returns a Client of the servers at target (see the package comment
// for its forms). It connects lazily, on the first call; it fails only when
// target cannot be parsed, such as an entry of a list that is not
// host:port, or the options contradict each other (WithToken without
// WithTLS).
func New(target string, opts ...Option) (*Client, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	c, err := grpcclient.New(target, o.dial...)
	if err != nil {
		return nil, err
	}
	return &Client{c: c, rg: pb.NewRouteGuideClient(c.Conn())}, nil
}

// Close closes the client's connections; calls in flight fail with
// CANCELED.
func (c *Client) Close() error { return c.c.Close() }

// RouteGuide returns the generated client on the same connections,
// balanced and retried alike, for what the methods below do not cover.
func (c *Client) RouteGuide() pb.RouteGuideClient { return c.rg }

// GetPerson returns the person named name. For a name nobody has it returns
// a NOT_FOUND status error (the server answers such a name with a person
// called "Not Found", which GetPerson does not pass on).
func (c *Client) GetPerson(ctx context.Context, name string) (*pb.Person, error) {
	p, err := c.rg.GetPerson(ctx, &pb.Name{Name: name})
	if err != nil {
		return nil, err
	}
	if wire.IsNotFound(p) {
		return nil, status.Errorf(codes.NotFound, "no person named %q", name)
	}
	return p, nil
}

// People returns the people of names that someone has, in the order the
// server answers them, through one GetPeople stream; names nobody has are
// left out.
func (c *Client) People(ctx context.Context, names ...string) ([]*pb.Person, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.rg.GetPeople(ctx)
	if err != nil {
		return nil, err
	}
	go func() {
		for _, name := range names {
			if stream.Send(&pb.Name{Name: name}) != nil {
				return // the call failed; Recv says why
			}
		}
		stream.CloseSend()
	}()
	var found []*pb.Person
	for {
		p, err := stream.Recv()
		if err == io.EOF {
			return found, nil
		}
		if err != nil {
			return nil, err
		}
		found = append(found, p)
	}
}

// GetPersonETag is GetPerson, returning the person's etag too (the "etag"
// response header), for UpdateIfMatch and DeleteIfMatch.
func (c *Client) GetPersonETag(ctx context.Context, name string) (*pb.Person, string, error) {
	var header metadata.MD
	p, err := c.rg.GetPerson(ctx, &pb.Name{Name: name}, grpc.Header(&header))
	if err != nil {
		return nil, "", err
	}
	if wire.IsNotFound(p) {
		return nil, "", status.Errorf(codes.NotFound, "no person named %q", name)
	}
	var etag string
	if v := header.Get("etag"); len(v) > 0 {
		etag = v[0]
	}
	return p, etag, nil
}

// Add adds p and returns the person as stored (its name trimmed and
// normalized), the change's revision and the person's etag. It fails with
// ALREADY_EXISTS for a name someone has, INVALID_ARGUMENT naming each field
// at fault. It carries a fresh request id and is retried with it (see the
// package comment).
func (c *Client) Add(ctx context.Context, p *pb.Person) (*pb.AddPersonResponse, error) {
	req := &pb.AddPersonRequest{Person: p, RequestId: grpcclient.NewRequestID()}
	var resp *pb.AddPersonResponse
	err := grpcclient.RetryWrite(ctx, func(ctx context.Context) (err error) {
		resp, err = c.rg.AddPerson(ctx, req)
		return err
	})
	return resp, err
}

// Update sets the fields of the person named p.Name named by fields, field
// mask paths such as "age", "hobbies" or "address.city", to their values
// in p; no fields means every field set in p. It fails with NOT_FOUND for
// a name nobody has. It is retried as Add is.
func (c *Client) Update(ctx context.Context, p *pb.Person, fields ...string) (*pb.UpdatePersonResponse, error) {
	return c.UpdateIfMatch(ctx, p, "", fields...)
}

// UpdateIfMatch is Update made only while the person's etag is etag (as
// GetPersonETag, Add, Update or List's ListPeopleResponse gave it): when
// the person changed since, it fails with ABORTED and changes nothing. An
// empty etag updates unconditionally.
func (c *Client) UpdateIfMatch(ctx context.Context, p *pb.Person, etag string, fields ...string) (*pb.UpdatePersonResponse, error) {
	req := &pb.UpdatePersonRequest{Person: p, Etag: etag, RequestId: grpcclient.NewRequestID()}
	if len(fields) > 0 {
		req.UpdateMask = &fieldmaskpb.FieldMask{Paths: fields}
	}
	var resp *pb.UpdatePersonResponse
	err := grpcclient.RetryWrite(ctx, func(ctx context.Context) (err error) {
		resp, err = c.rg.UpdatePerson(ctx, req)
		return err
	})
	return resp, err
}

// Delete removes the person named name and returns the change's revision.
// It fails with NOT_FOUND for a name nobody has. It is retried as Add is.
func (c *Client) Delete(ctx context.Context, name string) (int64, error) {
	return c.DeleteIfMatch(ctx, name, "")
}

// DeleteIfMatch is Delete made only while the person's etag is etag, as
// for UpdateIfMatch.
func (c *Client) DeleteIfMatch(ctx context.Context, name, etag string) (int64, error) {
	req := &pb.DeletePersonRequest{Name: name, Etag: etag, RequestId: grpcclient.NewRequestID()}
	var resp *pb.DeletePersonResponse
	err := grpcclient.RetryWrite(ctx, func(ctx context.Context) (err error) {
		resp, err = c.rg.DeletePerson(ctx, req)
		return err
	})
	return resp.GetRevision(), err
}

// List returns every person that req's filters match, in name order,
// calling ListPeople for one page after another (req.PageSize people each;
// 0 is the server's default) as the loop asks for more. A failed page ends
// the loop with its error. req is not changed.
func (c *Client) List(ctx context.Context, req *pb.ListPeopleRequest) iter.Seq2[*pb.Person, error] {
	return func(yield func(*pb.Person, error) bool) {
		page := &pb.ListPeopleRequest{City: req.GetCity(), Hobby: req.GetHobby(), NamePrefix: req.GetNamePrefix(), PageSize: req.GetPageSize(), PageToken: req.GetPageToken()}
		for {
			resp, err := c.rg.ListPeople(ctx, page)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, p := range resp.GetPeople() {
				if !yield(p, nil) {
					return
				}
			}
			if resp.GetNextPageToken() == "" {
				return
			}
			page.PageToken = resp.GetNextPageToken()
		}
	}
}

// Reconnect describes a watch about to open a new stream after its last
// one ended.
type Reconnect struct {
	Err     error         // why the last stream ended
	After   int64         // the revision the watch resumes after
	Listing bool          // the listing of current people resumes
	Delay   time.Duration // how long the watch waits first
}

// ErrListingChanged ends a watch with send_current whose stream broke while
// it listed the current people, when the directory changed before it could
// reconnect: the rest of the listing cannot be had as of the revision its
// first part showed. Watch again.
var ErrListingChanged = grpcclient.ErrListingChanged

// WatchOption configures Watch.
type WatchOption func(*watchOptions)

type watchOptions struct {
	reconnecting func(Reconnect)
}

// OnReconnect has f called before each new stream of a watch, for a log
// line or a metric.
func OnReconnect(f func(Reconnect)) WatchOption {
	return func(o *watchOptions) { o.reconnecting = f }
}

// Watch returns every event of the watch req (send_current lists everyone
// first; after_revision resumes after a revision; neither starts from now)
// as the loop asks for it, until ctx ends or the loop stops.
//
// Once the watch is in place, a stream that ends with UNAVAILABLE (its
// replica stopped, drained or lost its connection) or RESOURCE_EXHAUSTED
// (the server ended a watch read too slowly) is followed by a new one after
// a backoff of up to 3s, which resumes after the last revision delivered:
// every change is delivered once, in order. A listing cut halfway resumes
// where it stopped, or ends with ErrListingChanged when the directory
// changed meanwhile. Any other failure (OUT_OF_RANGE for changes no longer
// kept, or the call's context ending) ends the loop with its error.
func (c *Client) Watch(ctx context.Context, req *pb.WatchPeopleRequest, opts ...WatchOption) iter.Seq2[*pb.WatchPeopleResponse, error] {
	var o watchOptions
	for _, opt := range opts {
		opt(&o)
	}
	var reconnecting func(grpcclient.Reconnect)
	if o.reconnecting != nil {
		reconnecting = func(r grpcclient.Reconnect) {
			o.reconnecting(Reconnect{Err: statusOf(r.Err), After: r.After, Listing: r.Listing, Delay: r.Delay})
		}
	}
	return func(yield func(*pb.WatchPeopleResponse, error) bool) {
		err := grpcclient.WatchMessages(ctx, c.rg, req, reconnecting, func(m *pb.WatchPeopleResponse) error {
			if !yield(m, nil) {
				return errStopped
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStopped) {
			yield(nil, statusOf(err))
		}
	}
}

var errStopped = errors.New("the loop stopped")

// statusOf returns the gRPC status error err carries, as the server sent
// it, or err itself when it carries none.
func statusOf(err error) error {
	var st interface{ GRPCStatus() *status.Status }
	if errors.As(err, &st) {
		return st.GRPCStatus().Err()
	}
	return err
}

// Import adds or replaces every person of people through one ImportPeople
// stream, sent in batches, and returns the counts added, updated and
// unchanged. Each batch is stored whole; an import that fails (a person
// INVALID_ARGUMENT, named by its place, e.g. people[41].name) keeps every
// batch before it. Import holds each person until its batch is sent: do
// not change one after people yields it.
func (c *Client) Import(ctx context.Context, people iter.Seq[*pb.Person]) (*pb.ImportPeopleResponse, error) {
	im, err := c.c.Import(ctx)
	if err != nil {
		return nil, statusOf(err)
	}
	for p := range people {
		if err := im.AddMessage(p); errors.Is(err, grpcclient.ErrImportEnded) {
			break // Close says why
		} else if err != nil {
			im.Close()
			return nil, statusOf(err)
		}
	}
	r, err := im.Close()
	if err != nil {
		return nil, statusOf(err)
	}
	return &pb.ImportPeopleResponse{Added: r.Added, Updated: r.Updated, Unchanged: r.Unchanged, Revision: r.Revision}, nil
}

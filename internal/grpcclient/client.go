// Package grpcclient is a RouteGuide client that speaks in domain types: it
// reads the directory the way a people.Reader does, so the CLI never handles
// wire messages.
package grpcclient

import (
	"context"
	"io"
	"iter"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/wire"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

// Client is a connection to a RouteGuide server, safe for concurrent use.
type Client struct {
	conn *grpc.ClientConn
	rg   pb.RouteGuideClient
}

var _ people.Reader = (*Client)(nil)

// New returns a Client for the servers at target, as Dial reads it. It
// connects lazily, on the first call; it fails only when target cannot be
// parsed.
func New(target string, opts ...grpc.DialOption) (*Client, error) {
	conn, err := Dial(target, opts...)
	if err != nil {
		return nil, err
	}
	return &Client{conn: conn, rg: pb.NewRouteGuideClient(conn)}, nil
}

// Conn returns the client's connection, balanced and retried as Dial says,
// for calls this client has no method for.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Person returns the person with the given name through GetPerson. It returns
// an error of kind people.NotFound when the server answers with its
// "Not Found" person (see wire.IsNotFound). Other failures are domain errors
// that wrap the call's status (see fromStatus).
func (c *Client) Person(ctx context.Context, name string) (people.Person, error) {
	m, err := c.rg.GetPerson(ctx, &pb.Name{Name: name})
	if err != nil {
		return people.Person{}, fromStatus(err)
	}
	if wire.IsNotFound(m) {
		return people.Person{}, people.Errorf(people.NotFound, "no person named %q", name)
	}
	return wire.FromProto(m), nil
}

// PersonETag is Person, returning the person's etag too: the "etag"
// header GetPerson answers with, for a later IfMatch.
func (c *Client) PersonETag(ctx context.Context, name string) (people.Person, string, error) {
	var header metadata.MD
	m, err := c.rg.GetPerson(ctx, &pb.Name{Name: name}, grpc.Header(&header))
	if err != nil {
		return people.Person{}, "", fromStatus(err)
	}
	if wire.IsNotFound(m) {
		return people.Person{}, "", people.Errorf(people.NotFound, "no person named %q", name)
	}
	var etag string
	if v := header.Get("etag"); len(v) > 0 {
		etag = v[0]
	}
	return wire.FromProto(m), etag, nil
}

// People streams names through GetPeople and calls found with each person
// as the server answers, while names are still being sent. Names nobody has
// are skipped, as the server does. People returns when the server has
// answered every name, when found returns an error (that error), or when the
// call fails (an error that wraps its status). names may block, for instance
// on a terminal: People does not wait for it, so names may still be read from
// after People returns, until its next name is ready.
func (c *Client) People(ctx context.Context, names iter.Seq[string], found func(people.Person) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.rg.GetPeople(ctx)
	if err != nil {
		return fromStatus(err)
	}

	sent := make(chan error, 1)
	go func() {
		sent <- sendNames(ctx, stream, names)
	}()

	for {
		m, err := stream.Recv()
		if err == io.EOF {
			select {
			case err := <-sent:
				return err
			default:
				return nil // the server finished before the names did
			}
		}
		if err != nil {
			return fromStatus(err)
		}
		if err := found(wire.FromProto(m)); err != nil {
			return err
		}
	}
}

// sendNames sends every name, then half-closes the stream. A Send failure
// means the call itself failed, which Recv reports, so it is not an error
// here.
func sendNames(ctx context.Context, stream grpc.BidiStreamingClient[pb.Name, pb.Person], names iter.Seq[string]) error {
	for name := range names {
		if ctx.Err() != nil {
			return nil
		}
		if err := stream.Send(&pb.Name{Name: name}); err != nil {
			return nil
		}
	}
	return stream.CloseSend()
}

// fromStatus turns a call's status error into the domain error it carries:
// a *people.Error of the kind its code maps to, with its message and field
// violations, or, for a call cancelled or past its deadline, an error that
// matches context.Canceled or context.DeadlineExceeded (see
// wire.FromStatus). The status stays in the chain for status.Code. It
// returns nil for nil.
func fromStatus(err error) error {
	return wire.FromStatus(err)
}

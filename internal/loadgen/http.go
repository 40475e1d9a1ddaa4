package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	pb "github.com/routeguide/routeguide/routeguidepb"
)

// Protocol is how a run's calls travel.
type Protocol string

// The protocols. GRPC runs on the grpc.ClientConnInterface Run is given;
// the others on an HTTPConn.
const (
	GRPC         Protocol = "grpc"
	ConnectJSON  Protocol = "connect-json"  // Connect unary, protojson bodies
	ConnectProto Protocol = "connect-proto" // Connect unary, binary bodies
	GRPCWeb      Protocol = "grpc-web"      // gRPC-Web, binary
	REST         Protocol = "rest"          // GET /v1/people/{name}, JSON answer
)

// Protocols lists every protocol, gRPC first.
var Protocols = []Protocol{GRPC, ConnectJSON, ConnectProto, GRPCWeb, REST}

// HTTPClient returns the client an HTTPConn makes calls with for callers
// callers at once: HTTP/1.1 with keep-alive, one idle connection kept for
// each caller so that no call waits for a handshake, and no compression
// (RouteGuide's answers are a few hundred bytes; gzip would cost both ends
// more CPU than it saves on loopback). HTTP/1.1 rather than h2c because it
// is what a browser and most REST clients speak to a plaintext listener.
func HTTPClient(callers int) *http.Client {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	return &http.Client{Transport: &http.Transport{
		Protocols:           &protocols,
		MaxIdleConns:        callers,
		MaxIdleConnsPerHost: callers,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
	}}
}

// HTTPConn makes GetPerson calls to a RouteGuide HTTP listener (or another
// server of the same REST route, such as a grpc-gateway) in one of the HTTP
// protocols. It is a grpc.ClientConnInterface so that Run drives it as it
// drives a gRPC connection, but it knows only GetPerson: the Get workload.
// Answers are decoded whole (protojson or protobuf, into a pb.Person), on
// every server alike.
type HTTPConn struct {
	protocol Protocol
	base     string // scheme://host:port, no trailing slash
	client   *http.Client
	header   http.Header                         // sent with every call, such as Authorization
	connect  *connect.Client[pb.Name, pb.Person] // nil for REST
}

var _ grpc.ClientConnInterface = (*HTTPConn)(nil)

// NewHTTPConn returns a connection to the HTTP listener at base
// ("http://host:port") that calls it in protocol p through client, with
// header on every call. p must not be GRPC.
func NewHTTPConn(p Protocol, base string, client *http.Client, header http.Header) (*HTTPConn, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &ConfigError{Field: "base", Value: base, Want: "want http://host:port or https://host:port"}
	}
	c := &HTTPConn{protocol: p, base: strings.TrimSuffix(base, "/"), client: client, header: header}
	// No compression either way, as HTTPClient explains.
	opts := []connect.ClientOption{connect.WithAcceptCompression("gzip", nil, nil)}
	switch p {
	case ConnectJSON:
		opts = append(opts, connect.WithProtoJSON())
	case ConnectProto:
	case GRPCWeb:
		opts = append(opts, connect.WithGRPCWeb())
	case REST:
		return c, nil
	default:
		return nil, &ConfigError{Field: "Protocol", Value: fmt.Sprintf("%q", p), Want: "want connect-json, connect-proto, grpc-web or rest"}
	}
	c.connect = connect.NewClient[pb.Name, pb.Person](client, c.base+pb.RouteGuide_GetPerson_FullMethodName, opts...)
	return c, nil
}

// Invoke makes a GetPerson call; reply is a *pb.Person or a run's *answer.
func (c *HTTPConn) Invoke(ctx context.Context, method string, args, reply any, _ ...grpc.CallOption) error {
	req, ok := args.(*pb.Name)
	if method != pb.RouteGuide_GetPerson_FullMethodName || !ok {
		return status.Errorf(codes.Unimplemented, "loadgen: %s over %s: only GetPerson is measured over HTTP", method, c.protocol)
	}
	var p *pb.Person
	var err error
	if c.connect != nil {
		p, err = c.callConnect(ctx, req)
	} else {
		p, err = c.callREST(ctx, req)
	}
	if err != nil {
		return err
	}
	switch r := reply.(type) {
	case *pb.Person:
		proto.Reset(r)
		proto.Merge(r, p)
	case *answer:
		r.fromPerson(p)
	default:
		return status.Errorf(codes.Internal, "loadgen: cannot read a Person into %T", reply)
	}
	return nil
}

func (c *HTTPConn) callConnect(ctx context.Context, req *pb.Name) (*pb.Person, error) {
	r := connect.NewRequest(req)
	for k, v := range c.header {
		r.Header()[k] = v
	}
	res, err := c.connect.CallUnary(ctx, r)
	if err != nil {
		// Connect's codes are gRPC's, number for number.
		msg := err.Error()
		if ce := (*connect.Error)(nil); errors.As(err, &ce) {
			msg = ce.Message()
		}
		return nil, status.Error(codes.Code(connect.CodeOf(err)), msg)
	}
	return res.Msg, nil
}

func (c *HTTPConn) callREST(ctx context.Context, req *pb.Name) (*pb.Person, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/people/"+url.PathEscape(req.GetName()), nil)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	for k, v := range c.header {
		hr.Header[k] = v
	}
	hr.Header.Set("Accept", "application/json")
	res, err := c.client.Do(hr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	// The body is read to its end, so that the connection is reused.
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "reading the answer: %v", err)
	}
	if res.StatusCode != http.StatusOK {
		return nil, restError(res.StatusCode, body)
	}
	p := &pb.Person{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(body, p); err != nil {
		return nil, status.Errorf(codes.Internal, "decode a Person: %v", err)
	}
	return p, nil
}

// restError is the error a REST answer with status code and body stands
// for: the code of its google.rpc.Status body when it has one, or else the
// code Google's mapping gives the HTTP status.
func restError(code int, body []byte) error {
	var s struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &s) == nil && s.Code > 0 && s.Code <= int(codes.Unauthenticated) {
		return status.Error(codes.Code(s.Code), s.Message)
	}
	c := codes.Unknown
	switch code {
	case http.StatusBadRequest:
		c = codes.InvalidArgument
	case http.StatusUnauthorized:
		c = codes.Unauthenticated
	case http.StatusForbidden:
		c = codes.PermissionDenied
	case http.StatusNotFound:
		c = codes.NotFound
	case http.StatusConflict:
		c = codes.AlreadyExists
	case http.StatusTooManyRequests:
		c = codes.ResourceExhausted
	case http.StatusNotImplemented:
		c = codes.Unimplemented
	case http.StatusServiceUnavailable:
		c = codes.Unavailable
	case http.StatusGatewayTimeout:
		c = codes.DeadlineExceeded
	}
	return status.Errorf(c, "HTTP %d: %s", code, strings.TrimSpace(string(body)))
}

// NewStream fails: GetPeople and the other streams are measured over gRPC.
func (c *HTTPConn) NewStream(_ context.Context, _ *grpc.StreamDesc, method string, _ ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, status.Errorf(codes.Unimplemented, "loadgen: %s over %s: only GetPerson is measured over HTTP", method, c.protocol)
}

// Close closes the idle connections of the client.
func (c *HTTPConn) Close() { c.client.CloseIdleConnections() }

// fromPerson sets a from a decoded Person.
func (a *answer) fromPerson(p *pb.Person) {
	a.name = append(a.name[:0], p.GetName()...)
	a.more = false
	p.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		if fd.Number() != 1 {
			a.more = true
			return false
		}
		return true
	})
}

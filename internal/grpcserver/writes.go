package grpcserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/routeguide/routeguide/internal/people"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

// Writes are safe to retry and to race (Google's AIP-155 and AIP-154):
//
//   - a write's request id, from its request_id field or its
//     idempotencyKeyHeader metadata, is recorded by the store with the
//     write's outcome in the write's own transaction, and a repeat of it
//     within the retention answers that outcome;
//   - an update or delete with an etag is refused with ABORTED when the
//     person's etag (people.ETag) is no longer that one, checked in the
//     write's transaction;
//   - every change records its origin (principal, peer, request id), and
//     every write is logged once, at info, as an "audit" line.

// idempotencyKeyHeader is the metadata that may carry a write's request id
// instead of its request_id field, for clients built from protos without
// the field.
const idempotencyKeyHeader = "idempotency-key"

// etagHeader is the response header GetPerson sends the person's etag in.
const etagHeader = "etag"

// DefaultIdempotencyRetention is how long a write's request id is kept by
// default: a retry within it is answered what the write answered.
const DefaultIdempotencyRetention = 24 * time.Hour

// principalKey is the context key of the caller's Principal, which the
// calls interceptor sets for writes (writeMethod).
type principalKey struct{}

// writeMethod reports whether method writes (needs RoleWriter; a test
// checks the two agree). The interceptor gives only those calls their
// principal in the context, so that reads pay nothing for it; a switch
// costs a read less than a lookup in methodRoles.
func writeMethod(method string) bool {
	switch method {
	case pb.RouteGuide_AddPerson_FullMethodName, pb.RouteGuide_UpdatePerson_FullMethodName,
		pb.RouteGuide_DeletePerson_FullMethodName, pb.RouteGuide_ImportPeople_FullMethodName:
		return true
	}
	return false
}

// principalOf returns the name of the caller of a write.
func principalOf(ctx context.Context) string {
	p, _ := ctx.Value(principalKey{}).(Principal)
	return p.Name
}

// writeRequest is what a write's handler tells writeContext about its call.
type writeRequest struct {
	method    string        // the full method name
	requestID string        // the request_id field
	etag      string        // the etag field, for updates and deletes
	req       proto.Message // the request, for its digest (request_id cleared)
	metadata  bool          // whether idempotencyKeyHeader may carry the request id
}

// writeContext returns ctx carrying the people.Write of a write (see
// people.WithWrite), or INVALID_ARGUMENT naming request_id when the
// request id is not a UUID, or when the field and the metadata both carry
// one and they differ.
func (s *service) writeContext(ctx context.Context, r writeRequest) (context.Context, people.Write, error) {
	w := people.Write{IfMatch: r.etag}
	w.Principal = principalOf(ctx)
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		w.Peer = p.Addr.String()
	}
	id := r.requestID
	if r.metadata {
		if v := metadata.ValueFromIncomingContext(ctx, idempotencyKeyHeader); len(v) > 0 {
			switch {
			case len(v) > 1:
				return ctx, w, invalidField("request_id", "is given more than once as "+idempotencyKeyHeader+" metadata")
			case id != "" && id != v[0]:
				return ctx, w, invalidField("request_id", "differs from the "+idempotencyKeyHeader+" metadata")
			}
			id = v[0]
		}
	}
	if id != "" {
		u, err := uuid.Parse(id)
		if err != nil {
			return ctx, w, invalidField("request_id", "must be a UUID")
		}
		w.RequestID = u.String()
		w.Digest = digest(r.method, w.Principal, r.req)
		w.Expires = time.Now().Add(s.retention)
	}
	return people.WithWrite(ctx, w), w, nil
}

// digest identifies a request for its request id: the method, the caller
// and the request's content with its request id cleared, so that a request
// sent again with the same id matches whether the id came in the field or
// the metadata, and one caller's id never answers another's request.
func digest(method, principal string, req proto.Message) string {
	m := proto.Clone(req)
	if f := m.ProtoReflect().Descriptor().Fields().ByName("request_id"); f != nil {
		m.ProtoReflect().Clear(f)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		b = nil // a message that decoded always encodes; nil still separates method and caller
	}
	h := sha256.New()
	h.Write([]byte(method))
	h.Write([]byte{0})
	h.Write([]byte(principal))
	h.Write([]byte{0})
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// audit logs one "audit" line for a write: who made it, from where, with
// which request id, on whom, and its outcome.
func (s *service) audit(ctx context.Context, method string, w people.Write, name string, rev int64, err error, attrs ...slog.Attr) {
	code := codes.OK
	if err != nil {
		code = status.Code(err)
	}
	attrs = append([]slog.Attr{
		slog.String("method", method),
		slog.String("principal", w.Principal),
		slog.String("peer", w.Peer),
		slog.String("request_id", w.RequestID),
		slog.String("name", name),
		slog.String("code", code.String()),
		slog.Int64("revision", rev),
	}, attrs...)
	s.log.LogAttrs(ctx, slog.LevelInfo, "audit", attrs...)
}

// etagHeaderKey marks a call whose caller wants a write's etag as a
// response header too (WithETagHeader).
type etagHeaderKey struct{}

// WithETagHeader returns ctx marked so that AddPerson and UpdatePerson
// also send the person's etag as the etag response header, as GetPerson
// does. The HTTP listener marks its REST calls this way: their answer's
// body is the person alone (the google.api.http rules' response_body), so
// the header is where they find the etag. gRPC and Connect callers read it
// from the answer and are sent no header they do not need.
func WithETagHeader(ctx context.Context) context.Context {
	return context.WithValue(ctx, etagHeaderKey{}, true)
}

// sendETagHeader sends etag as the etag response header of a write whose
// caller asked for it (WithETagHeader). Its error is ignored, as setETag's.
func sendETagHeader(ctx context.Context, etag string) {
	if v, _ := ctx.Value(etagHeaderKey{}).(bool); v {
		_ = grpc.SetHeader(ctx, metadata.Pairs(etagHeader, etag))
	}
}

// setETag sends e's etag as GetPerson's response header, built here from
// the 8 bytes e holds (see encodedPerson). Its error is ignored: it fails
// only when there is no stream (an in-process caller of getPerson) or the
// header has gone, and the answer stands either way.
func setETag(ctx context.Context, e *encodedPerson) {
	if e.hasETag {
		_ = grpc.SetHeader(ctx, metadata.MD{etagHeader: {people.ETagString(e.etag)}})
	}
}

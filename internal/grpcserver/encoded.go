package grpcserver

import (
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/wire"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

// encodedPerson is a Person in its wire form, ready to send as it is (see
// codec): a person answered many times is then encoded once. It is never
// modified, so any number of streams may send one at once.
type encodedPerson struct {
	b []byte
	// msg is b as grpc-go sends it, built once: boxing b into a mem.Buffer
	// for every send would allocate twice per answer. grpc-go treats a
	// BufferSlice as immutable and a SliceBuffer's Free does nothing, so
	// concurrent sends can share it.
	msg mem.BufferSlice
	// etag is the person's etag as GetPerson's response header, built
	// with the encoding so that a cached person's costs nothing more per
	// call than grpc-go's copy of it; nil for the "Not Found" answer.
	etag metadata.MD
}

// encode returns p's wire form: the encoding of wire.ToProto(p).
func encode(p people.Person) (*encodedPerson, error) {
	var m pb.Person
	var a pb.Person_Address
	b, err := proto.Marshal(wire.SetProto(&m, &a, p))
	if err != nil {
		return nil, err
	}
	e := &encodedPerson{b: b, msg: mem.BufferSlice{mem.SliceBuffer(b)}}
	if p.Name != people.NotFoundName {
		e.etag = metadata.MD{etagHeader: {people.ETag(p)}}
	}
	return e, nil
}

// encodeAny is encode as a derive function for Keeper.Derived.
func encodeAny(p people.Person) (any, error) {
	e, err := encode(p)
	if err != nil {
		return nil, err // not a nil *encodedPerson in an interface
	}
	return e, nil
}

// Bytes returns the encoding, which the caller must not modify.
func (e *encodedPerson) Bytes() []byte { return e.b }

// codec is protobuf, as grpc-go's default codec, except that a message that
// is an *encodedPerson is sent as the bytes it holds.
type codec struct {
	proto encoding.CodecV2
}

var _ encoding.CodecV2 = codec{}

// newCodec returns the codec, for grpc.ForceServerCodecV2.
func newCodec() codec {
	return codec{proto: encoding.GetCodecV2(grpcproto.Name)}
}

// Marshal encodes v, or returns an *encodedPerson's bytes without copying
// them: grpc-go only reads a message's buffers, and frees (here: drops) them
// once they are written.
func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	if e, ok := v.(*encodedPerson); ok {
		return e.msg, nil
	}
	return c.proto.Marshal(v)
}

// Unmarshal decodes data into v, as protobuf.
func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	return c.proto.Unmarshal(data, v)
}

// Name is protobuf's: "proto".
func (c codec) Name() string { return c.proto.Name() }

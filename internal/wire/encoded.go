package wire

import (
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	pb "github.com/routeguide/routeguide/internal/gen/routeguidepb"
	"github.com/routeguide/routeguide/internal/people"
)

// Encoded is a Person in its wire form, ready to send as it is (see Codec):
// a person answered many times is then encoded once. It is never modified,
// so any number of streams may send one at once.
type Encoded struct {
	b []byte
	// msg is b as grpc-go sends it, built once: boxing b into a mem.Buffer
	// for every send would allocate twice per answer. grpc-go treats a
	// BufferSlice as immutable and a SliceBuffer's Free does nothing, so
	// concurrent sends can share it.
	msg mem.BufferSlice
}

// Encode returns p's wire form: the encoding of ToProto(p).
func Encode(p people.Person) (*Encoded, error) {
	var m pb.Person
	var a pb.Person_Address
	b, err := proto.Marshal(SetProto(&m, &a, p))
	if err != nil {
		return nil, err
	}
	return &Encoded{b: b, msg: mem.BufferSlice{mem.SliceBuffer(b)}}, nil
}

// Bytes returns the encoding, which the caller must not modify.
func (e *Encoded) Bytes() []byte { return e.b }

// Codec is protobuf, as grpc-go's default codec, except that a message that
// is an *Encoded is sent as the bytes it holds.
type Codec struct {
	proto encoding.CodecV2
}

var _ encoding.CodecV2 = Codec{}

// NewCodec returns the codec, for grpc.ForceServerCodecV2.
func NewCodec() Codec {
	return Codec{proto: encoding.GetCodecV2(grpcproto.Name)}
}

// Marshal encodes v, or returns an *Encoded's bytes without copying them:
// grpc-go only reads a message's buffers, and frees (here: drops) them once
// they are written.
func (c Codec) Marshal(v any) (mem.BufferSlice, error) {
	if e, ok := v.(*Encoded); ok {
		return e.msg, nil
	}
	return c.proto.Marshal(v)
}

// Unmarshal decodes data into v, as protobuf.
func (c Codec) Unmarshal(data mem.BufferSlice, v any) error {
	return c.proto.Unmarshal(data, v)
}

// Name is protobuf's: "proto".
func (c Codec) Name() string { return c.proto.Name() }

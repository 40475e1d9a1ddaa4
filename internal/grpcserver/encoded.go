package grpcserver

import (
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
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
	// msg is b as grpc-go sends it: a BufferSlice of one Buffer, buf,
	// whose backing array (one) is part of the encodedPerson too, so that
	// building one allocates once, not three times. grpc-go treats a
	// BufferSlice as immutable and a SliceBuffer's Free does nothing, so
	// concurrent sends can share it.
	msg mem.BufferSlice
	buf mem.SliceBuffer
	one [1]mem.Buffer
	// etag is the person's etag (people.ETagSum), which setETag sends as
	// GetPerson's response header; hasETag is false for the "Not Found"
	// answer, which has none. The header is built at each send, from these
	// 8 bytes, rather than kept: a metadata.MD kept with every cached
	// person would cost it some hundred bytes more.
	etag    [8]byte
	hasETag bool
}

// newEncoded returns b, with etag, as an encodedPerson, in one allocation.
func newEncoded(b []byte, etag [8]byte, hasETag bool) *encodedPerson {
	e := &encodedPerson{b: b, buf: b, etag: etag, hasETag: hasETag}
	e.one[0] = &e.buf
	e.msg = e.one[:]
	return e
}

// encode returns p's wire form: the encoding of wire.ToProto(p).
func encode(p people.Person) (*encodedPerson, error) {
	var m pb.Person
	var a pb.Person_Address
	b, err := proto.Marshal(wire.SetProto(&m, &a, p))
	if err != nil {
		return nil, err
	}
	if p.Name == people.NotFoundName {
		return newEncoded(b, [8]byte{}, false), nil
	}
	return newEncoded(b, people.ETagSum(p), true), nil
}

// kept returns the encoding a Keeper holds, ready to send, without copying
// it: grpc-go only reads a message's buffers (see codec.Marshal). Keeping
// an *encodedPerson beside each kept person instead, which sends with no
// allocation, cost some 90 bytes a person.
func kept(b []byte, etag [8]byte) *encodedPerson {
	return newEncoded(b, etag, true)
}

// Bytes returns the encoding, which the caller must not modify.
func (e *encodedPerson) Bytes() []byte { return e.b }

// encodedPage is a ListPeople answer in its wire form (see listPeople),
// which the codec sends as it is.
type encodedPage struct {
	b   []byte
	buf mem.SliceBuffer
	one [1]mem.Buffer
}

func newEncodedPage(b []byte) *encodedPage {
	e := &encodedPage{b: b, buf: b}
	e.one[0] = &e.buf
	return e
}

// codec is protobuf, as grpc-go's default codec, except that a message that
// is an *encodedPerson or an *encodedPage is sent as the bytes it holds.
type codec struct {
	proto encoding.CodecV2
}

var _ encoding.CodecV2 = codec{}

// newCodec returns the codec, for grpc.ForceServerCodecV2.
func newCodec() codec {
	return codec{proto: encoding.GetCodecV2(grpcproto.Name)}
}

// Marshal encodes v, or returns an *encodedPerson's or *encodedPage's bytes without copying
// them: grpc-go only reads a message's buffers, and frees (here: drops) them
// once they are written.
func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	switch e := v.(type) {
	case *encodedPerson:
		return e.msg, nil
	case *encodedPage:
		return e.one[:], nil
	}
	return c.proto.Marshal(v)
}

// Unmarshal decodes data into v, as protobuf.
func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	return c.proto.Unmarshal(data, v)
}

// Name is protobuf's: "proto".
func (c codec) Name() string { return c.proto.Name() }

package loadgen

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/routeguide/routeguide/internal/people"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

// answer is a Person as a run reads it: only as far as the run checks it.
// A run decodes every answer on the same cores as the server it measures;
// decoding whole Persons took a share of its CPU the server could not have
// (the README's Performance section).
type answer struct {
	name []byte // the name field, reused from answer to answer
	more bool   // a field other than the name is set
}

// is reports whether a is the Person named name.
func (a *answer) is(name string) bool { return string(a.name) == name }

// notFound reports whether a is the seed's answer to a name nobody has
// (see isNotFoundPerson).
func (a *answer) notFound(req *pb.Name) bool {
	return a.is(people.NotFoundName) && !a.more && req.GetName() != people.NotFoundName
}

// decode reads a Person's encoding into a, checking that it is well formed
// protobuf, as far as the fields it skips.
func (a *answer) decode(b []byte) error {
	a.name, a.more = a.name[:0], false
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			a.name = append(a.name[:0], v...)
			b = b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		a.more = true
		b = b[n:]
	}
	return nil
}

// answerCodec is protobuf, except that it reads an *answer as one.
type answerCodec struct {
	proto encoding.CodecV2
}

var _ encoding.CodecV2 = answerCodec{}

func newAnswerCodec() answerCodec {
	return answerCodec{proto: encoding.GetCodecV2(grpcproto.Name)}
}

func (c answerCodec) Marshal(v any) (mem.BufferSlice, error) { return c.proto.Marshal(v) }

func (c answerCodec) Unmarshal(data mem.BufferSlice, v any) error {
	a, ok := v.(*answer)
	if !ok {
		return c.proto.Unmarshal(data, v)
	}
	var err error
	if len(data) == 1 {
		err = a.decode(data[0].ReadOnlyData())
	} else {
		buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
		err = a.decode(buf.ReadOnlyData())
		buf.Free()
	}
	if err != nil {
		return fmt.Errorf("decode a Person: %w", err)
	}
	return nil
}

func (c answerCodec) Name() string { return c.proto.Name() }

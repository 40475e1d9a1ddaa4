package httpserver

import (
	"connectrpc.com/connect"
	"connectrpc.com/vanguard"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// jsonCodec is vanguard's JSON codec, except that a body that is not JSON
// of its message is INVALID_ARGUMENT (HTTP 400), the caller's mistake, where
// vanguard would answer UNKNOWN (HTTP 500) for a Connect or REST call.
type jsonCodec struct {
	vanguard.JSONCodec
}

func newJSONCodec(res vanguard.TypeResolver) vanguard.Codec {
	return jsonCodec{*vanguard.NewJSONCodec(res)}
}

func (c jsonCodec) Unmarshal(data []byte, msg proto.Message) error {
	return invalid(c.JSONCodec.Unmarshal(data, msg))
}

func (c jsonCodec) UnmarshalField(data []byte, msg proto.Message, field protoreflect.FieldDescriptor) error {
	return invalid(c.JSONCodec.UnmarshalField(data, msg, field))
}

func invalid(err error) error {
	if err == nil {
		return nil
	}
	return decodeError{err}
}

// decodeError is a body that does not decode, INVALID_ARGUMENT both to
// vanguard (a connect.Error) and, when grpc-go reads the body vanguard
// translates and meets the error there, to grpc-go (GRPCStatus).
type decodeError struct{ err error }

func (e decodeError) Error() string { return e.err.Error() }

func (e decodeError) Unwrap() error { return connect.NewError(connect.CodeInvalidArgument, e.err) }

func (e decodeError) GRPCStatus() *status.Status {
	return status.New(codes.InvalidArgument, "the body does not decode: "+e.err.Error())
}

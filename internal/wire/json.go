package wire

import (
	"bytes"
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/routeguide/routeguide/internal/people"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

// AppendMessageJSON appends m as one line of protojson (no trailing
// newline), as grpcurl shows it: proto field names in lowerCamelCase, enums
// by name, 64-bit integers as strings, fields at their zero value left out.
// protojson on its own varies its spacing between builds on purpose;
// compacting it makes the output byte-stable for scripts and golden files.
// Every JSON the client prints goes through here, so all of it has one
// form.
func AppendMessageJSON(dst []byte, m proto.Message) ([]byte, error) {
	raw, err := protojson.Marshal(m)
	if err != nil {
		return dst, fmt.Errorf("encode %s: %w", m.ProtoReflect().Descriptor().Name(), err)
	}
	buf := bytes.NewBuffer(dst)
	if err := json.Compact(buf, raw); err != nil {
		return dst, fmt.Errorf("compact %s: %w", m.ProtoReflect().Descriptor().Name(), err)
	}
	return buf.Bytes(), nil
}

// ImportResultToProto returns r as the ImportPeople answer.
func ImportResultToProto(r people.ImportResult) *pb.ImportPeopleResponse {
	return &pb.ImportPeopleResponse{Added: r.Added, Updated: r.Updated, Unchanged: r.Unchanged, Revision: r.Revision}
}

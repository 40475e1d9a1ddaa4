// Package wire converts between RouteGuide's domain types and the wire
// contract's generated messages, and reads and writes the JSON-lines form of
// a Person that the CLI prints, exports and imports. It is the one home of
// the contract's vocabulary that the server and the client both speak:
// error kinds and field violations as statuses, update-mask paths, the
// seed's "Not Found" answer and the watch's change types.
package wire

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/routeguide/routeguide/internal/people"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

// IsNotFound reports whether m is the seed's answer to a name nobody has: a
// Person named people.NotFoundName and nothing else. Nobody may have that
// name (people.Validate), so the answer is never a person.
func IsNotFound(m *pb.Person) bool {
	return m.GetName() == people.NotFoundName && proto.Equal(m, &pb.Person{Name: people.NotFoundName})
}

// ToProto returns the wire form of p. The result shares p's hobbies slice.
func ToProto(p people.Person) *pb.Person {
	m := &pb.Person{
		Name:    p.Name,
		Age:     p.Age,
		Gender:  pb.Person_Gender(p.Gender),
		Hobbies: p.Hobbies,
	}
	if p.Address != (people.Address{}) {
		m.Address = &pb.Person_Address{Street: p.Address.Street, City: p.Address.City}
	}
	return m
}

// SetProto makes m hold p, using a for its address, and returns m: ToProto
// for a caller that sends people one at a time and can reuse one message.
// m shares p's hobbies slice.
func SetProto(m *pb.Person, a *pb.Person_Address, p people.Person) *pb.Person {
	m.Name = p.Name
	m.Age = p.Age
	m.Gender = pb.Person_Gender(p.Gender)
	m.Hobbies = p.Hobbies
	m.Address = nil
	if p.Address != (people.Address{}) {
		a.Street, a.City = p.Address.Street, p.Address.City
		m.Address = a
	}
	return m
}

// FromProto returns the domain form of m. A nil m is the zero Person. The
// result shares m's hobbies slice. An undefined gender value is kept as it
// is; validation is the domain's job, not the converter's.
func FromProto(m *pb.Person) people.Person {
	return people.Person{
		Name:    m.GetName(),
		Age:     m.GetAge(),
		Gender:  people.Gender(m.GetGender()),
		Hobbies: m.GetHobbies(),
		Address: people.Address{
			Street: m.GetAddress().GetStreet(),
			City:   m.GetAddress().GetCity(),
		},
	}
}

// AppendJSON appends p as one line of protojson (no trailing newline), in the
// compact, stable form `{"name":"Alice","age":30,...}`: byte for byte what
// AppendMessageJSON writes of ToProto(p), which a test and a fuzz target
// hold it to. It writes the line itself rather than through protojson
// because export writes every person through here: at a million people
// protojson's reflection and the compacting after it were some 60% of the
// client's CPU and most of its allocations (export ran at some 100,000
// people/s, bound by the client), where this appends with no allocation.
// It fails, as protojson does, only for text that is not UTF-8.
func AppendJSON(dst []byte, p people.Person) ([]byte, error) {
	start := len(dst)
	dst = append(dst, '{')
	var bad bool
	if p.Name != "" {
		dst, bad = appendJSONString(append(dst, `"name":`...), p.Name)
	}
	if p.Age != 0 {
		if len(dst) > start+1 {
			dst = append(dst, ',')
		}
		dst = strconv.AppendInt(append(dst, `"age":`...), int64(p.Age), 10)
	}
	if p.Gender != 0 {
		if len(dst) > start+1 {
			dst = append(dst, ',')
		}
		dst = append(dst, `"gender":`...)
		if name, ok := pb.Person_Gender_name[int32(p.Gender)]; ok {
			dst = append(append(append(dst, '"'), name...), '"')
		} else {
			dst = strconv.AppendInt(dst, int64(p.Gender), 10)
		}
	}
	if len(p.Hobbies) > 0 {
		if len(dst) > start+1 {
			dst = append(dst, ',')
		}
		dst = append(dst, `"hobbies":[`...)
		for i, h := range p.Hobbies {
			if i > 0 {
				dst = append(dst, ',')
			}
			var b bool
			dst, b = appendJSONString(dst, h)
			bad = bad || b
		}
		dst = append(dst, ']')
	}
	if a := p.Address; a != (people.Address{}) {
		if len(dst) > start+1 {
			dst = append(dst, ',')
		}
		dst = append(dst, `"address":{`...)
		var b1, b2 bool
		if a.Street != "" {
			dst, b1 = appendJSONString(append(dst, `"street":`...), a.Street)
		}
		if a.City != "" {
			if a.Street != "" {
				dst = append(dst, ',')
			}
			dst, b2 = appendJSONString(append(dst, `"city":`...), a.City)
		}
		dst = append(dst, '}')
		bad = bad || b1 || b2
	}
	dst = append(dst, '}')
	if bad {
		// protojson's own error, so that it reads as it always has.
		return appendJSONProto(dst[:start], p)
	}
	return dst, nil
}

// appendJSONProto is AppendJSON through protojson: the form AppendJSON
// reproduces, and its error for text that is not UTF-8.
func appendJSONProto(dst []byte, p people.Person) ([]byte, error) {
	out, err := AppendMessageJSON(dst, ToProto(p))
	if err != nil {
		return dst, fmt.Errorf("person %q: %w", p.Name, err)
	}
	return out, nil
}

// appendJSONString appends s as a JSON string escaped as protojson escapes
// it: '"', '\\' and the control characters below U+0020 only (\b \f \n
// \r \t by name, the rest as \u00xx), nothing HTML-escaped, and no escape
// for U+2028 or U+2029. It reports whether s is not valid UTF-8, for which
// protojson fails.
func appendJSONString(dst []byte, s string) ([]byte, bool) {
	dst = append(dst, '"')
	i := 0
	for j := 0; j < len(s); {
		c := s[j]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[j:])
			if r == utf8.RuneError && n == 1 {
				return dst, true
			}
			j += n
			continue
		}
		if c >= ' ' && c != '"' && c != '\\' {
			j++
			continue
		}
		dst = append(dst, s[i:j]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		j++
		i = j
	}
	return append(append(dst, s[i:]...), '"'), false
}

const hexDigits = "0123456789abcdef"

// ParseJSON reads one protojson Person. Unknown fields are an error, so that
// a misspelt field is reported rather than silently dropped.
func ParseJSON(line []byte) (people.Person, error) {
	var m pb.Person
	if err := protojson.Unmarshal(line, &m); err != nil {
		// protojson varies the spacing of its messages between builds on
		// purpose; a message people and golden files read is kept stable.
		msg := strings.TrimPrefix(strings.ReplaceAll(err.Error(), "\u00a0", " "), "proto: ")
		return people.Person{}, people.Errorf(people.Invalid, "bad person JSON: %s", msg)
	}
	return FromProto(&m), nil
}

// changeTypes is the one table of watch event types that report changes:
// each change type's. The other event types, CURRENT and SYNCED, start a
// watch and report no change.
var changeTypes = [...]pb.WatchPeopleResponse_Type{
	people.Added:   pb.WatchPeopleResponse_TYPE_ADDED,
	people.Updated: pb.WatchPeopleResponse_TYPE_UPDATED,
	people.Deleted: pb.WatchPeopleResponse_TYPE_DELETED,
}

// ChangeTypeOf returns the change type a watch event of type t reports,
// and false when t reports no change.
func ChangeTypeOf(t pb.WatchPeopleResponse_Type) (people.ChangeType, bool) {
	for c, typ := range changeTypes {
		if typ == t && typ != pb.WatchPeopleResponse_TYPE_UNSPECIFIED {
			return people.ChangeType(c), true
		}
	}
	return 0, false
}

// ChangeToProto returns c as a watch event. A change of a type the table
// does not know is sent as TYPE_UNSPECIFIED.
func ChangeToProto(c people.Change) *pb.WatchPeopleResponse {
	p := c.Person
	if c.Type == people.Deleted {
		p = people.Person{Name: p.Name}
	}
	var typ pb.WatchPeopleResponse_Type
	if int(c.Type) < len(changeTypes) {
		typ = changeTypes[c.Type]
	}
	ev := &pb.WatchPeopleResponse{Revision: c.Revision, Type: typ, Person: ToProto(p),
		Principal: c.Origin.Principal, Peer: c.Origin.Peer, RequestId: c.Origin.RequestID}
	if c.Type != people.Deleted {
		ev.Etag = people.ETag(p)
	}
	if !c.Origin.Time.IsZero() {
		ev.ChangeTime = timestamppb.New(c.Origin.Time)
	}
	return ev
}

// OriginFromProto returns the origin a watch event reports.
func OriginFromProto(ev *pb.WatchPeopleResponse) people.Origin {
	o := people.Origin{Principal: ev.GetPrincipal(), Peer: ev.GetPeer(), RequestID: ev.GetRequestId()}
	if ev.GetChangeTime() != nil {
		o.Time = ev.GetChangeTime().AsTime()
	}
	return o
}

// WatchRevisionHeader is the response header WatchPeople sends once the
// watch is in place, holding, in decimal, the revision it follows changes
// from: every change after it reaches the watch. A client that resumes a
// watch before any change arrived resumes after it.
const WatchRevisionHeader = "routeguide-watch-revision"

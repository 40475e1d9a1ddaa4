package wire

import (
	"google.golang.org/protobuf/proto"

	"github.com/routeguide/routeguide/internal/people"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

// AppendPerson appends the wire encoding of p (a Person message, as
// GetPerson answers it) to b and returns the result. It fails only for a
// person no validation lets through, such as one with text that is not
// UTF-8.
func AppendPerson(b []byte, p people.Person) ([]byte, error) {
	var m pb.Person
	var a pb.Person_Address
	return proto.MarshalOptions{}.MarshalAppend(b, SetProto(&m, &a, p))
}

// DecodePerson returns the person whose wire encoding is b, as
// AppendPerson wrote it.
func DecodePerson(b []byte) (people.Person, error) {
	var m pb.Person
	if err := proto.Unmarshal(b, &m); err != nil {
		return people.Person{}, err
	}
	return FromProto(&m), nil
}

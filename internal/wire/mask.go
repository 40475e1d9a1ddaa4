package wire

import (
	"fmt"
	"math/bits"
	"strings"

	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/routeguide/routeguide/internal/people"
)

// maskPaths is the one table of UpdatePerson's mask paths and the fields of
// a person each names. The server accepts every row; a client names one
// field a path, so it writes only the rows of a single field.
var maskPaths = [...]struct {
	path   string
	fields people.Field
}{
	{"age", people.FieldAge},
	{"gender", people.FieldGender},
	{"hobbies", people.FieldHobbies},
	{"address", people.FieldStreet | people.FieldCity},
	{"address.street", people.FieldStreet},
	{"address.city", people.FieldCity},
}

// Mask returns the update mask that names exactly the fields f, one path a
// field, in the order of the person message; an empty mask for none.
func Mask(f people.Field) *fieldmaskpb.FieldMask {
	mask := &fieldmaskpb.FieldMask{}
	for _, m := range maskPaths {
		if bits.OnesCount8(uint8(m.fields)) == 1 && f&m.fields != 0 {
			mask.Paths = append(mask.Paths, m.path)
		}
	}
	return mask
}

// MaskFields returns the fields an update mask names. An empty mask names
// every field that is set in to, as the mask's own documentation says. It
// returns an Invalid error about update_mask for the name, which never
// changes, and for a path it does not know.
func MaskFields(mask *fieldmaskpb.FieldMask, to people.Person) (people.Field, error) {
	if len(mask.GetPaths()) == 0 {
		return setFields(to), nil
	}
	var f people.Field
next:
	for _, path := range mask.GetPaths() {
		for _, m := range maskPaths {
			if m.path == path {
				f |= m.fields
				continue next
			}
		}
		if path == "name" {
			return 0, invalidMask("the name cannot be changed; add the person under the new name and delete the old one")
		}
		return 0, invalidMask(fmt.Sprintf("unknown field %q; want %s", path, knownPaths()))
	}
	return f, nil
}

// setFields returns the fields of p that are not their zero value.
func setFields(p people.Person) people.Field {
	var f people.Field
	if p.Age != 0 {
		f |= people.FieldAge
	}
	if p.Gender != people.GenderUnknown {
		f |= people.FieldGender
	}
	if len(p.Hobbies) > 0 {
		f |= people.FieldHobbies
	}
	if p.Address.Street != "" {
		f |= people.FieldStreet
	}
	if p.Address.City != "" {
		f |= people.FieldCity
	}
	return f
}

// knownPaths lists the mask paths for a person to read: "age, gender, ...
// or address.city".
func knownPaths() string {
	paths := make([]string, len(maskPaths))
	for i, m := range maskPaths {
		paths[i] = m.path
	}
	last := len(paths) - 1
	return strings.Join(paths[:last], ", ") + " or " + paths[last]
}

// invalidMask returns an Invalid error about the update_mask field.
func invalidMask(desc string) error {
	return &people.Error{
		Kind:       people.Invalid,
		Message:    "update_mask " + desc,
		Violations: []people.FieldViolation{{Field: "update_mask", Description: desc}},
	}
}

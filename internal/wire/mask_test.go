package wire

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/routeguide/routeguide/internal/people"
)

// TestMaskRoundTrip checks that the mask a client writes for any set of
// fields names exactly those fields to the server.
func TestMaskRoundTrip(t *testing.T) {
	for f := people.Field(0); f <= people.AllFields; f++ {
		got, err := MaskFields(Mask(f), people.Person{Age: 1}) // an empty mask would name the age
		if f == 0 {
			if len(Mask(f).GetPaths()) != 0 {
				t.Errorf("Mask(0) = %v, want no paths", Mask(f).GetPaths())
			}
			continue
		}
		if err != nil || got != f {
			t.Errorf("MaskFields(Mask(%05b)) = %05b, %v", f, got, err)
		}
	}
	if got, want := Mask(people.FieldCity|people.FieldAge).GetPaths(), []string{"age", "address.city"}; !slices.Equal(got, want) {
		t.Errorf("Mask(age, city) = %q, want %q", got, want)
	}
}

func TestMaskFields(t *testing.T) {
	set := people.Person{Name: "Zoë", Gender: people.GenderFemale, Address: people.Address{City: "Łódź"}}
	for _, tt := range []struct {
		paths []string
		want  people.Field
		err   string // the violation's description, when refused
	}{
		{nil, people.FieldGender | people.FieldCity, ""}, // every field set
		{[]string{"address"}, people.FieldStreet | people.FieldCity, ""},
		{[]string{"hobbies", "address.street"}, people.FieldHobbies | people.FieldStreet, ""},
		{[]string{"age", "name"}, 0, "the name cannot be changed; add the person under the new name and delete the old one"},
		{[]string{"shoe"}, 0, `unknown field "shoe"; want age, gender, hobbies, address, address.street or address.city`},
	} {
		got, err := MaskFields(&fieldmaskpb.FieldMask{Paths: tt.paths}, set)
		if tt.err == "" {
			if err != nil || got != tt.want {
				t.Errorf("MaskFields(%q) = %05b, %v; want %05b", tt.paths, got, err, tt.want)
			}
			continue
		}
		e, ok := err.(*people.Error)
		if !ok || e.Kind != people.Invalid || len(e.Violations) != 1 ||
			e.Violations[0] != (people.FieldViolation{Field: "update_mask", Description: tt.err}) {
			t.Errorf("MaskFields(%q) = %v, want an Invalid error about update_mask: %s", tt.paths, err, tt.err)
		}
	}
}

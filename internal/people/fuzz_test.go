package people

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzValidate checks that validation never panics, that what it accepts
// keeps to the rules, and that a normalized valid person stays valid.
func FuzzValidate(f *testing.F) {
	f.Add("Alice", int32(30), int32(2), "reading", "123 Main St", "New York")
	f.Add("", int32(-1), int32(9), "", "", "")
	f.Add("Not Found", int32(1), int32(1), "a", "", "")
	f.Add("Ali\u200cce\u0301", int32(1), int32(1), "a", "", "")
	f.Add(" a\u202eb ", int32(151), int32(0), strings.Repeat("h", 65), "\x00", "\xff")
	f.Fuzz(func(t *testing.T, name string, age, gender int32, hobby, street, city string) {
		p := Normalize(Person{Name: name, Age: age, Gender: Gender(gender), Hobbies: []string{hobby}, Address: Address{Street: street, City: city}})
		err := Validate(p)
		if err == nil {
			if p.Name == "" || !utf8.ValidString(p.Name) || utf8.RuneCountInString(p.Name) > MaxNameLen || p.Age < 0 || p.Age > MaxAge {
				t.Fatalf("Validate accepted %+v", p)
			}
			if strings.ContainsAny(p.Name, "\x00\n\u202e") {
				t.Fatalf("Validate accepted a name with a control character: %q", p.Name)
			}
			if p.Name != NormalizeName(p.Name) {
				t.Fatalf("normalizing name %q again changed it to %q", p.Name, NormalizeName(p.Name))
			}
			if strings.EqualFold(p.Name, NotFoundName) || strings.ContainsAny(p.Name, "\u200b\u200c\ufeff\u2060\u3164\u2800\u00ad\u2028") {
				t.Fatalf("Validate accepted an invisible or reserved name: %+q", p.Name)
			}
			if err := Validate(Normalize(p)); err != nil {
				t.Fatalf("a valid person became invalid after normalizing again: %v", err)
			}
			return
		}
		if KindOf(err) != Invalid || len(err.(*Error).Violations) == 0 {
			t.Fatalf("Validate error %v is not Invalid with violations", err)
		}
	})
}

package people

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on a person's fields. They bound what one record can cost to store
// and to send, and keep names printable.
const (
	MaxNameLen    = 100 // characters
	MaxAge        = 150
	MaxHobbies    = 32
	MaxHobbyLen   = 64  // characters
	MaxAddressLen = 200 // characters, for street and city each
)

// FieldViolation names one field of a request and what is wrong with it.
type FieldViolation struct {
	Field       string // the field's path, such as "name" or "hobbies[2]"
	Description string
}

// NormalizeName returns name as the directory stores it: without leading and
// trailing white space.
func NormalizeName(name string) string { return strings.TrimSpace(name) }

// Normalize returns p as the directory stores it, with its name normalized.
func Normalize(p Person) Person {
	p.Name = NormalizeName(p.Name)
	return p
}

// Validate checks p, which should already be normalized, against the
// directory's rules. It returns nil, or an *Error of kind Invalid that lists
// every violation.
func Validate(p Person) error {
	var v []FieldViolation
	add := func(field, format string, args ...any) {
		v = append(v, FieldViolation{Field: field, Description: fmt.Sprintf(format, args...)})
	}
	if msg := checkName(p.Name); msg != "" {
		add("name", "%s", msg)
	}
	if p.Age < 0 || p.Age > MaxAge {
		add("age", "must be between 0 and %d, got %d", MaxAge, p.Age)
	}
	if p.Gender != GenderUnknown && p.Gender != GenderMale && p.Gender != GenderFemale {
		add("gender", "must be UNKNOWN, MALE or FEMALE, got %d", int32(p.Gender))
	}
	if len(p.Hobbies) > MaxHobbies {
		add("hobbies", "at most %d hobbies, got %d", MaxHobbies, len(p.Hobbies))
	}
	for i, h := range p.Hobbies {
		if msg := checkText(h, MaxHobbyLen, true); msg != "" {
			add(fmt.Sprintf("hobbies[%d]", i), "%s", msg)
		}
	}
	if msg := checkText(p.Address.Street, MaxAddressLen, false); msg != "" {
		add("address.street", "%s", msg)
	}
	if msg := checkText(p.Address.City, MaxAddressLen, false); msg != "" {
		add("address.city", "%s", msg)
	}
	if len(v) > 0 {
		return &Error{Kind: Invalid, Message: "invalid person: " + v[0].Field + " " + v[0].Description, Violations: v}
	}
	return nil
}

// ValidateName checks a name given to look up, change or delete someone,
// after NormalizeName. It returns nil or an *Error of kind Invalid.
func ValidateName(name string) error {
	if msg := checkName(name); msg != "" {
		return &Error{Kind: Invalid, Message: "invalid name: " + msg, Violations: []FieldViolation{{Field: "name", Description: msg}}}
	}
	return nil
}

func checkName(name string) string {
	if name == "" {
		return "is required"
	}
	return checkText(name, MaxNameLen, true)
}

// checkText returns what is wrong with s, or "". It must be valid UTF-8, at
// most max characters, free of control characters and of the invisible
// characters that reorder text (a right-to-left override can make one name
// display as another). required also refuses a blank s.
func checkText(s string, max int, required bool) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	if required && strings.TrimSpace(s) == "" {
		return "must not be blank"
	}
	if n := utf8.RuneCountInString(s); n > max {
		return fmt.Sprintf("must be at most %d characters, got %d", max, n)
	}
	for _, r := range s {
		if unicode.IsControl(r) || isBidiControl(r) {
			return fmt.Sprintf("must not contain control character %U", r)
		}
	}
	return ""
}

// isBidiControl reports whether r is one of Unicode's explicit
// directional formatting characters.
func isBidiControl(r rune) bool {
	switch {
	case r == 0x061C, r == 0x200E, r == 0x200F:
		return true
	case r >= 0x202A && r <= 0x202E:
		return true
	case r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

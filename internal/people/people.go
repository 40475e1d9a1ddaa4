// Package people is RouteGuide's domain: the Person record, the errors the
// directory reports, and the people the directory starts with. It imports
// nothing of the transport or storage layers; those convert at their edges.
package people

import (
	"slices"
	"strconv"
	"strings"
)

// Gender is a person's gender. Its values match the wire contract's enum.
type Gender int32

// The defined genders. GenderUnknown is the zero value.
const (
	GenderUnknown Gender = 0
	GenderMale    Gender = 1
	GenderFemale  Gender = 2
)

// String returns the lower-case name of g, or "gender(N)" for an undefined
// value.
func (g Gender) String() string {
	switch g {
	case GenderUnknown:
		return "unknown"
	case GenderMale:
		return "male"
	case GenderFemale:
		return "female"
	}
	return "gender(" + strconv.Itoa(int(g)) + ")"
}

// ParseGender returns the Gender named s (case-insensitive: unknown, male,
// female). It returns an Invalid error for any other text.
func ParseGender(s string) (Gender, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "unknown", "":
		return GenderUnknown, nil
	case "male":
		return GenderMale, nil
	case "female":
		return GenderFemale, nil
	}
	return GenderUnknown, Errorf(Invalid, "gender %q is not one of unknown, male, female", s)
}

// Address is where a person lives.
type Address struct {
	Street string
	City   string
}

// Person is one entry of the directory. Name is its key.
type Person struct {
	Name    string
	Age     int32
	Gender  Gender
	Hobbies []string
	Address Address
}

// Equal reports whether p and q hold the same values, treating nil and
// empty hobbies alike. A write that would store a person equal to the one
// stored is no change, and is not recorded.
func (p Person) Equal(q Person) bool {
	return p.Name == q.Name && p.Age == q.Age && p.Gender == q.Gender &&
		p.Address == q.Address && slices.Equal(p.Hobbies, q.Hobbies)
}

// Seed returns the people a new directory holds: Alice and Bob, as the seed
// contract defines them. Each call returns fresh values the caller may keep.
func Seed() []Person {
	return []Person{
		{
			Name:    "Alice",
			Age:     30,
			Gender:  GenderFemale,
			Hobbies: []string{"reading", "swimming"},
			Address: Address{Street: "123 Main St", City: "New York"},
		},
		{
			Name:    "Bob",
			Age:     25,
			Gender:  GenderMale,
			Hobbies: []string{"gaming", "cycling"},
			Address: Address{Street: "456 Elm St", City: "Los Angeles"},
		},
	}
}

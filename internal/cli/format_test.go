package cli

import (
	"testing"

	"github.com/routeguide/routeguide/internal/people"
)

// The wants are what CPython 3.11 prints for repr(s).
func TestPyRepr(t *testing.T) {
	tests := []struct{ in, want string }{
		{"reading", `'reading'`},
		{"", `''`},
		{"rock'n'roll", `"rock'n'roll"`},
		{`say "hi"`, `'say "hi"'`},
		{`it's "x"`, `'it\'s "x"'`},
		{`back\slash`, `'back\\slash'`},
		{"tab\there\nnl\rcr", `'tab\there\nnl\rcr'`},
		{"nul\x00bell\x07del\x7f", `'nul\x00bell\x07del\x7f'`},
		{"café", `'café'`},
		{"nbsp\u00a0", `'nbsp\xa0'`},
		{"rlo\u202e", `'rlo\u202e'`},
		{"한국어", `'한국어'`},
		{"emoji😀", `'emoji😀'`},
		{"private\U000f0000", `'private\U000f0000'`},
	}
	for _, tt := range tests {
		if got := pyRepr(tt.in); got != tt.want {
			t.Errorf("pyRepr(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestSeedLine(t *testing.T) {
	tests := []struct {
		p    people.Person
		want string
	}{
		{people.Seed()[0], "GetPerson: Alice, Age: 30, Gender: 2, Hobbies: ['reading', 'swimming'], Address: 123 Main St, New York"},
		{people.Person{Name: "Not Found"}, "GetPerson: Not Found, Age: 0, Gender: 0, Hobbies: [], Address: , "},
	}
	for _, tt := range tests {
		if got := seedLine("GetPerson", tt.p); got != tt.want {
			t.Errorf("seedLine(%v) =\n%q, want\n%q", tt.p, got, tt.want)
		}
	}
}

package cli

import (
	"unicode/utf8"

	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/wire"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

// parsePersonJSON reads one JSON line of import. protojson took two thirds
// of the client's CPU in an import of a million people from
// bench/genpeople (0.6 of 0.9 CPU-seconds per 100,000 people), so the lines
// export writes, and genpeople, are read directly (fastPerson); any other
// line, and any line the direct reading does not take whole, goes to
// protojson, which also words every error. FuzzParsePersonJSON holds the
// two to the same answers.
func parsePersonJSON(line []byte) (people.Person, error) {
	if p, ok := fastPerson(line); ok {
		return p, nil
	}
	return wire.ParseJSON(line)
}

// fastPerson reads line when it is a Person object of the plain shape
// export writes: no white space, the fields name, age, gender, hobbies and
// address (street, city) each at most once and in any order, strings
// without escapes, age a plain integer, gender one of the enum's names.
// ok is false for anything else, valid or not.
func fastPerson(line []byte) (p people.Person, ok bool) {
	r := fastReader{b: line}
	var seen [5]bool
	if !r.byte('{') {
		return p, false
	}
	if r.byte('}') {
		return p, r.end()
	}
	for {
		key, ok := r.str()
		if !ok || !r.byte(':') {
			return p, false
		}
		f := -1
		switch key {
		case "name":
			f = 0
			p.Name, ok = r.str()
		case "age":
			f = 1
			p.Age, ok = r.int32()
		case "gender":
			f = 2
			var g string
			if g, ok = r.str(); ok {
				var v int32
				v, ok = pb.Person_Gender_value[g]
				p.Gender = people.Gender(v)
			}
		case "hobbies":
			f = 3
			p.Hobbies, ok = r.strs()
		case "address":
			f = 4
			p.Address, ok = r.address()
		}
		if f < 0 || !ok || seen[f] {
			return people.Person{}, false
		}
		seen[f] = true
		if r.byte('}') {
			return p, r.end()
		}
		if !r.byte(',') {
			return people.Person{}, false
		}
	}
}

// fastReader reads the plain JSON fastPerson takes from b.
type fastReader struct {
	b []byte
	i int
}

// byte consumes c when it comes next.
func (r *fastReader) byte(c byte) bool {
	if r.i < len(r.b) && r.b[r.i] == c {
		r.i++
		return true
	}
	return false
}

// end reports whether everything has been read.
func (r *fastReader) end() bool { return r.i == len(r.b) }

// str reads a string with no escape and no control character, in valid
// UTF-8.
func (r *fastReader) str() (string, bool) {
	if !r.byte('"') {
		return "", false
	}
	start := r.i
	ascii := true
	for ; r.i < len(r.b); r.i++ {
		switch c := r.b[r.i]; {
		case c == '"':
			s := r.b[start:r.i]
			r.i++
			if !ascii && !utf8.Valid(s) {
				return "", false
			}
			return string(s), true
		case c == '\\' || c < 0x20:
			return "", false
		case c >= 0x80:
			ascii = false
		}
	}
	return "", false
}

// int32 reads an integer without sign, leading zero, fraction or
// exponent, that fits in an int32.
func (r *fastReader) int32() (int32, bool) {
	start := r.i
	var n int64
	for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
		n = 10*n + int64(r.b[r.i]-'0')
		r.i++
		if n > 1<<31-1 {
			return 0, false
		}
	}
	digits := r.i - start
	if digits == 0 || (digits > 1 && r.b[start] == '0') {
		return 0, false
	}
	return int32(n), true
}

// strs reads an array of strings; an empty one is nil, as protojson leaves
// it.
func (r *fastReader) strs() ([]string, bool) {
	if !r.byte('[') {
		return nil, false
	}
	if r.byte(']') {
		return nil, true
	}
	var out []string
	for {
		s, ok := r.str()
		if !ok {
			return nil, false
		}
		out = append(out, s)
		if r.byte(']') {
			return out, true
		}
		if !r.byte(',') {
			return nil, false
		}
	}
}

// address reads an Address object with street and city, each at most
// once.
func (r *fastReader) address() (people.Address, bool) {
	var a people.Address
	if !r.byte('{') {
		return a, false
	}
	if r.byte('}') {
		return a, true
	}
	var street, city bool
	for {
		key, ok := r.str()
		if !ok || !r.byte(':') {
			return a, false
		}
		switch {
		case key == "street" && !street:
			street = true
			a.Street, ok = r.str()
		case key == "city" && !city:
			city = true
			a.City, ok = r.str()
		default:
			return a, false
		}
		if !ok {
			return a, false
		}
		if r.byte('}') {
			return a, true
		}
		if !r.byte(',') {
			return a, false
		}
	}
}

package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"

	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/wire"
)

// personWriter returns a function that prints one person to w in the given
// output format: "text" for people, "json" for scripts (one protojson object
// a line). Each person is written with one Write, so output shows up as it
// arrives.
func personWriter(w io.Writer, output string) func(people.Person) error {
	if output == "json" {
		var buf []byte
		return func(p people.Person) error {
			var err error
			if buf, err = wire.AppendJSON(buf[:0], p); err != nil {
				return err
			}
			buf = append(buf, '\n')
			_, err = w.Write(buf)
			return err
		}
	}
	return func(p people.Person) error {
		_, err := io.WriteString(w, textLine(p)+"\n")
		return err
	}
}

// etagWriter is personWriter for answers that carry each person's etag:
// with "json" the etag is added to the person's object as "etag"; the
// text form leaves it out.
func etagWriter(w io.Writer, output string) func(people.Person, string) error {
	if output != "json" {
		print := personWriter(w, output)
		return func(p people.Person, _ string) error { return print(p) }
	}
	var buf []byte
	return func(p people.Person, etag string) error {
		var err error
		if buf, err = wire.AppendJSON(buf[:0], p); err != nil {
			return err
		}
		if etag != "" && len(buf) > 0 && buf[len(buf)-1] == '}' {
			buf = strconv.AppendQuote(append(buf[:len(buf)-1], `,"etag":`...), etag)
			buf = append(buf, '}')
		}
		buf = append(buf, '\n')
		_, err = w.Write(buf)
		return err
	}
}

// textLine returns p on one line for people to read, such as
//
//	Alice  age 30  female  hobbies: reading, swimming  address: 123 Main St, New York
func textLine(p people.Person) string {
	hobbies, address := "-", "-"
	if len(p.Hobbies) > 0 {
		hobbies = strings.Join(p.Hobbies, ", ")
	}
	switch a := p.Address; {
	case a.Street != "" && a.City != "":
		address = a.Street + ", " + a.City
	case a.Street != "" || a.City != "":
		address = a.Street + a.City
	}
	return fmt.Sprintf("%s  age %d  %s  hobbies: %s  address: %s", p.Name, p.Age, p.Gender, hobbies, address)
}

// seedLine returns p formatted exactly as the seed's Python client prints it:
// the gender as its number and the hobbies as a Python list.
func seedLine(prefix string, p people.Person) string {
	return fmt.Sprintf("%s: %s, Age: %d, Gender: %d, Hobbies: %s, Address: %s, %s",
		prefix, p.Name, p.Age, int32(p.Gender), pyList(p.Hobbies), p.Address.Street, p.Address.City)
}

// pyList returns what Python's repr prints for a list of strings.
func pyList(items []string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, s := range items {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(pyRepr(s))
	}
	b.WriteByte(']')
	return b.String()
}

// pyRepr returns what Python's repr prints for the string s: single quotes
// unless s holds a single quote and no double quote, with backslash escapes
// for the quote, backslashes and characters that are not printable.
func pyRepr(s string) string {
	quote := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		quote = '"'
	}
	var b strings.Builder
	b.WriteByte(quote)
	for _, r := range s {
		switch {
		case r == rune(quote) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0x80 || unicode.IsPrint(r):
			b.WriteRune(r)
		case r <= 0xff:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
	}
	b.WriteByte(quote)
	return b.String()
}

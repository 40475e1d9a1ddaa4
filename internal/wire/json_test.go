package wire

import (
	"bytes"
	"testing"

	"github.com/routeguide/routeguide/internal/people"
)

// oddPeople are people whose JSON is easy to get wrong: every escape
// protojson makes and the characters it leaves alone, zero and negative
// numbers, genders the enum does not name, empty hobbies and half an
// address.
var oddPeople = []people.Person{
	{},
	{Name: "Nobody"},
	{Age: -7},
	{Name: "a", Age: 2147483647, Gender: people.GenderFemale},
	{Name: "b", Age: -2147483648, Gender: 7},
	{Name: "c", Gender: -1},
	{Name: "Quote \"me\" \\ please", Hobbies: []string{"", "x"}},
	{Name: "ctl \x00\x01\x07\b\t\n\v\f\r\x1b\x1f\x7f end"},
	{Name: "html <b>&amp;</b> 'q' /slash/"},
	{Name: "line\u2028sep\u2029 bom\ufeff repl\ufffd"},
	{Name: "Zürich 東京 🎉"},
	{Hobbies: []string{"only hobbies"}},
	{Name: "s", Address: people.Address{Street: "1 Oak St"}},
	{Name: "c", Address: people.Address{City: "Boston\n"}},
	{Name: "bad utf8 \xff"},
	{Name: "ok", Hobbies: []string{"bad \xc3"}},
	{Name: "ok", Address: people.Address{City: "\xed\xa0\x80"}},
	people.Seed()[0],
}

// checkJSON fails unless AppendJSON writes of p what protojson does
// (AppendMessageJSON of ToProto(p)), appending to what dst held, and fails
// exactly when protojson does.
func checkJSON(t *testing.T, p people.Person) {
	t.Helper()
	want, wantErr := appendJSONProto([]byte("prefix"), p)
	got, err := AppendJSON([]byte("prefix"), p)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("AppendJSON(%q) error %v, protojson's %v", p, err, wantErr)
	}
	if err != nil {
		if err.Error() != wantErr.Error() {
			t.Errorf("AppendJSON(%q) error %q, protojson's %q", p, err, wantErr)
		}
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("AppendJSON(%q)\n = %s\nprotojson %s", p, got, want)
	}
}

func TestAppendJSONIsProtojson(t *testing.T) {
	for _, p := range oddPeople {
		checkJSON(t, p)
	}
	for r := rune(0); r < 0x800; r++ {
		checkJSON(t, people.Person{Name: "x" + string(r) + "y", Hobbies: []string{string(r)}})
	}
}

func FuzzAppendJSON(f *testing.F) {
	for _, p := range oddPeople {
		var h0, h1 string
		if len(p.Hobbies) > 0 {
			h0 = p.Hobbies[0]
		}
		if len(p.Hobbies) > 1 {
			h1 = p.Hobbies[1]
		}
		f.Add(p.Name, p.Age, int32(p.Gender), uint8(len(p.Hobbies)), h0, h1, p.Address.Street, p.Address.City)
	}
	f.Fuzz(func(t *testing.T, name string, age, gender int32, hobbies uint8, h0, h1, street, city string) {
		p := people.Person{Name: name, Age: age, Gender: people.Gender(gender), Address: people.Address{Street: street, City: city}}
		p.Hobbies = []string{h0, h1, h0 + h1}[:hobbies%4]
		checkJSON(t, p)
	})
}

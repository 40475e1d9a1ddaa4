package cli

import (
	"reflect"
	"testing"

	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/wire"
)

var personJSONSeeds = []string{
	`{"name":"person-0373859","age":59,"gender":"FEMALE","hobbies":["skiing","rowing"],"address":{"street":"234 Pine St","city":"Baltimore"}}`,
	`{"name":"Carol","age":41,"gender":"FEMALE","hobbies":["chess"],"address":{"street":"1 Oak St","city":"Boston"}}`,
	`{"name":"Dave"}`,
	`{}`,
	`{"address":{"city":"Paris","street":"1 rue"},"hobbies":[],"gender":"UNKNOWN","age":0,"name":"Zoë"}`,
	`{"name":"Eve","age":7,"hobbies":["a\"b"]}`,
	`{"name":"Eve","age":-7}`,
	`{"name":"Eve","age":07}`,
	`{"name":"Eve","age":2147483648}`,
	`{"name":"Eve","age":"41"}`,
	`{"name":"Eve","gender":"male"}`,
	`{"name":"Eve","gender":2}`,
	`{"name":"Eve","name":"Eve"}`,
	`{"name":"Eve","address":{}}`,
	`{"name":"Eve","address":null}`,
	`{"name":"Eve","nickname":"E"}`,
	`{"name":"Eve"} `,
	`{"name":"Eve",}`,
	`{"name":"\xff"}`,
	`{"name": "Eve"}`,
}

// TestParsePersonJSON checks the lines import reads directly: each answers
// what protojson answers.
func TestParsePersonJSON(t *testing.T) {
	direct := 0
	for _, line := range personJSONSeeds {
		if _, ok := fastPerson([]byte(line)); ok {
			direct++
		}
		checkPersonJSON(t, []byte(line))
	}
	if direct < 5 {
		t.Errorf("only %d of the plain lines were read directly", direct)
	}
	p, ok := fastPerson([]byte(personJSONSeeds[0]))
	want := people.Person{Name: "person-0373859", Age: 59, Gender: people.GenderFemale, Hobbies: []string{"skiing", "rowing"},
		Address: people.Address{Street: "234 Pine St", City: "Baltimore"}}
	if !ok || !reflect.DeepEqual(p, want) {
		t.Errorf("fastPerson = %+v, %v; want %+v", p, ok, want)
	}
}

// FuzzParsePersonJSON holds parsePersonJSON to protojson: every line it
// reads directly, protojson reads as the same person.
func FuzzParsePersonJSON(f *testing.F) {
	for _, s := range personJSONSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) { checkPersonJSON(t, line) })
}

func checkPersonJSON(t *testing.T, line []byte) {
	t.Helper()
	got, err := parsePersonJSON(line)
	want, werr := wire.ParseJSON(line)
	if (err == nil) != (werr == nil) || (err != nil && err.Error() != werr.Error()) {
		t.Fatalf("parsePersonJSON(%q) error %v; protojson's %v", line, err, werr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parsePersonJSON(%q) = %#v; protojson reads %#v", line, got, want)
	}
}

package cli

import (
	"bufio"
	"strings"
	"testing"

	"github.com/routeguide/routeguide/internal/people"
)

// FuzzImportParsers feeds arbitrary input to both import formats: they must
// never panic, and must report every bad input as an error naming a line.
func FuzzImportParsers(f *testing.F) {
	f.Add("name,age,gender,hobbies,street,city\nErin,29,female,climbing;jazz,\"5 Pine St, Apt 2\",Seattle\n")
	f.Add(`{"name":"Carol","age":41,"gender":"FEMALE","hobbies":["chess"],"address":{"street":"1 Oak St","city":"Boston"}}` + "\n")
	f.Add("name,age,sex\n")
	f.Add("{\"name\":\"Max\",\"shoe\":44}\n\n{")
	f.Add("name,age,gender,hobbies,street,city\n\"unterminated\n")
	f.Fuzz(func(t *testing.T, input string) {
		for _, format := range []string{"csv", "jsonl"} {
			last := 0
			err := readPeople(bufio.NewReader(strings.NewReader(input)), format, func(line int, _ people.Person) error {
				if line < last || line < 1 {
					t.Fatalf("%s: line numbers went from %d to %d", format, last, line)
				}
				last = line
				return nil
			})
			if err != nil && !strings.HasPrefix(err.Error(), "line ") {
				t.Fatalf("%s: error %q does not name a line", format, err)
			}
		}
	})
}

// Command genpeople writes synthetic people as JSON lines, the format
// `routeguide import` reads, for RouteGuide's scale benchmarks. The output
// is the same for the same flags.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"

	"github.com/routeguide/routeguide/bench/genpeople/gen"
)

// genders are the JSON names of people.Gender's values, by value.
var genders = []string{"UNKNOWN", "MALE", "FEMALE"}

func main() {
	n := flag.Int("n", 1_000_000, "how many people")
	shuffle := flag.Bool("shuffle", true, "write them in random order rather than name order")
	flag.Parse()

	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	for _, i := range gen.Order(*n, *shuffle) {
		p := gen.Person(i)
		fmt.Fprintf(w, `{"name":%q,"age":%d,"gender":%q,"hobbies":[%q,%q],"address":{"street":%q,"city":%q}}`+"\n",
			p.Name, p.Age, genders[p.Gender], p.Hobbies[0], p.Hobbies[1], p.Address.Street, p.Address.City)
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "genpeople:", err)
		os.Exit(1)
	}
}

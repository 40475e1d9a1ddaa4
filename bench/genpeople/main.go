// Command genpeople writes synthetic people as JSON lines, the format
// `routeguide import` reads, for RouteGuide's scale benchmarks. The output
// is the same for the same flags.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
)

var (
	cities  = []string{"New York", "Los Angeles", "Chicago", "Houston", "Phoenix", "Philadelphia", "San Antonio", "San Diego", "Dallas", "Austin", "Boston", "Seattle", "Denver", "Portland", "Miami", "Atlanta", "Detroit", "Nashville", "Memphis", "Baltimore"}
	hobbies = []string{"reading", "swimming", "gaming", "cycling", "chess", "go", "running", "climbing", "jazz", "cooking", "hiking", "painting", "rowing", "judo", "tennis", "gardening", "knitting", "photography", "sailing", "skiing"}
	streets = []string{"Main St", "Elm St", "Oak Ave", "Pine St", "Maple Ave", "Cedar Rd", "Birch Ln", "Lake Dr"}
	genders = []string{"UNKNOWN", "MALE", "FEMALE"}
)

func main() {
	n := flag.Int("n", 1_000_000, "how many people")
	shuffle := flag.Bool("shuffle", true, "write them in random order rather than name order")
	flag.Parse()

	order := make([]int, *n)
	for i := range order {
		order[i] = i
	}
	r := rand.New(rand.NewPCG(1, 2))
	if *shuffle {
		r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	for _, i := range order {
		h1, h2 := hobbies[i%len(hobbies)], hobbies[(i/len(hobbies)+i+1)%len(hobbies)]
		fmt.Fprintf(w, `{"name":"person-%07d","age":%d,"gender":%q,"hobbies":[%q,%q],"address":{"street":"%d %s","city":%q}}`+"\n",
			i, i%100, genders[i%3], h1, h2, 1+i%999, streets[i%len(streets)], cities[i%len(cities)])
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "genpeople:", err)
		os.Exit(1)
	}
}

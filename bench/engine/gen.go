package main

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/routeguide/routeguide/internal/people"
)

// The people bench/genpeople writes, by the same rules, so that the
// engine's figures are for the rows RouteGuide's import of that file
// stores. (genpeople is a command and cannot be imported; a change to its
// rules belongs in both.)
var (
	cities     = []string{"New York", "Los Angeles", "Chicago", "Houston", "Phoenix", "Philadelphia", "San Antonio", "San Diego", "Dallas", "Austin", "Boston", "Seattle", "Denver", "Portland", "Miami", "Atlanta", "Detroit", "Nashville", "Memphis", "Baltimore"}
	hobbyNames = []string{"reading", "swimming", "gaming", "cycling", "chess", "go", "running", "climbing", "jazz", "cooking", "hiking", "painting", "rowing", "judo", "tennis", "gardening", "knitting", "photography", "sailing", "skiing"}
	streets    = []string{"Main St", "Elm St", "Oak Ave", "Pine St", "Maple Ave", "Cedar Rd", "Birch Ln", "Lake Dr"}
)

// generated returns the i-th person of genpeople: named person-%07d, with
// two hobbies (sometimes the same one twice, which the store keeps in the
// person's list and indexes once).
func generated(i int) people.Person {
	return people.Person{
		Name:    personName("person-", i),
		Age:     int32(i % 100),
		Gender:  people.Gender(i % 3),
		Hobbies: []string{hobbyNames[i%len(hobbyNames)], hobbyNames[(i/len(hobbyNames)+i+1)%len(hobbyNames)]},
		Address: people.Address{Street: fmt.Sprintf("%d %s", 1+i%999, streets[i%len(streets)]), City: cities[i%len(cities)]},
	}
}

// order returns 0..n-1 in genpeople's order: shuffled with its seed.
func order(n int) []int {
	o := make([]int, n)
	for i := range o {
		o[i] = i
	}
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(o), func(i, j int) { o[i], o[j] = o[j], o[i] })
	return o
}

// personName returns prefix followed by i in at least seven digits.
func personName(prefix string, i int) string { return fmt.Sprintf("%s%07d", prefix, i) }

// tags returns h without repeats, in order: the hobbies table's rows for
// a person.
func tags(h []string) []string {
	var out []string
	for _, t := range h {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

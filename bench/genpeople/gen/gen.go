// Package gen holds the rules of bench/genpeople's synthetic people, so
// that the command and the benchmarks that need the same people in
// memory (bench/engine) make them alike.
package gen

import (
	"fmt"
	"math/rand/v2"

	"github.com/routeguide/routeguide/internal/people"
)

var (
	cities  = []string{"New York", "Los Angeles", "Chicago", "Houston", "Phoenix", "Philadelphia", "San Antonio", "San Diego", "Dallas", "Austin", "Boston", "Seattle", "Denver", "Portland", "Miami", "Atlanta", "Detroit", "Nashville", "Memphis", "Baltimore"}
	hobbies = []string{"reading", "swimming", "gaming", "cycling", "chess", "go", "running", "climbing", "jazz", "cooking", "hiking", "painting", "rowing", "judo", "tennis", "gardening", "knitting", "photography", "sailing", "skiing"}
	streets = []string{"Main St", "Elm St", "Oak Ave", "Pine St", "Maple Ave", "Cedar Rd", "Birch Ln", "Lake Dr"}
)

// Person returns the i-th person: named person-%07d, with two hobbies
// (sometimes the same one twice, which a store keeps in the person's list
// and indexes once).
func Person(i int) people.Person {
	return people.Person{
		Name:    fmt.Sprintf("person-%07d", i),
		Age:     int32(i % 100),
		Gender:  people.Gender(i % 3),
		Hobbies: []string{hobbies[i%len(hobbies)], hobbies[(i/len(hobbies)+i+1)%len(hobbies)]},
		Address: people.Address{Street: fmt.Sprintf("%d %s", 1+i%999, streets[i%len(streets)]), City: cities[i%len(cities)]},
	}
}

// Order returns 0..n-1 in the order genpeople writes them: shuffled with
// a fixed seed, or in name order.
func Order(n int, shuffle bool) []int {
	o := make([]int, n)
	for i := range o {
		o[i] = i
	}
	if shuffle {
		r := rand.New(rand.NewPCG(1, 2))
		r.Shuffle(len(o), func(i, j int) { o[i], o[j] = o[j], o[i] })
	}
	return o
}

package main

import (
	"fmt"
	"slices"

	"github.com/routeguide/routeguide/bench/genpeople/gen"
	"github.com/routeguide/routeguide/internal/people"
)

// generated returns the i-th person bench/genpeople writes, so that the
// engine's figures are for the rows RouteGuide's import of that file
// stores.
func generated(i int) people.Person { return gen.Person(i) }

// order returns 0..n-1 in genpeople's order.
func order(n int) []int { return gen.Order(n, true) }

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

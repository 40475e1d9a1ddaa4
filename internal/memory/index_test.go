package memory

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/routeguide/routeguide/internal/people"
)

// TestFilteredListsFollowWrites makes random adds, updates, deletions and
// imports (with names repeated within a batch), then checks every filtered
// list against a filter applied to every person.
func TestFilteredListsFollowWrites(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 2))
	cities := []string{"Paris", "Oslo", "Lima"}
	hobbies := []string{"chess", "go", "tennis", "golf"}
	person := func() people.Person {
		p := people.Person{Name: fmt.Sprintf("p%02d", r.IntN(60)), Address: people.Address{City: cities[r.IntN(len(cities))]}}
		for _, h := range hobbies {
			if r.IntN(3) == 0 {
				p.Hobbies = append(p.Hobbies, h)
			}
		}
		return p
	}
	s := New(0)
	for range 2000 {
		switch r.IntN(4) {
		case 0:
			s.Add(ctx, person())
		case 1:
			p := person()
			s.Update(ctx, p.Name, people.Update{Fields: people.FieldCity | people.FieldHobbies, To: p})
		case 2:
			s.Delete(ctx, person().Name)
		case 3:
			batch := make([]people.Person, r.IntN(20))
			for i := range batch {
				batch[i] = person()
			}
			if _, err := s.Import(ctx, batch); err != nil {
				t.Fatal(err)
			}
		}
	}
	all, err := s.List(ctx, people.Query{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, city := range append(cities, "") {
		for _, hobby := range append(hobbies, "") {
			for _, after := range []string{"", "p30"} {
				q := people.Query{City: city, Hobby: hobby, After: after, Limit: 1000}
				got, err := s.List(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				var want []people.Person
				for _, p := range all {
					if q.Matches(p) {
						want = append(want, p)
					}
				}
				if !slices.EqualFunc(got, want, func(a, b people.Person) bool { return a.Name == b.Name }) {
					t.Errorf("List(%+v) = %d people, want %d", q, len(got), len(want))
				}
			}
		}
	}
}

// BenchmarkListPage measures one page of 100 people from the middle of a
// directory of 300,000, unfiltered and by each filter, and one by a hobby
// one person in a thousand has.
func BenchmarkListPage(b *testing.B) {
	ctx := context.Background()
	const n = 300_000
	batch := make([]people.Person, n)
	for i := range batch {
		batch[i] = people.Person{Name: fmt.Sprintf("person-%07d", i),
			Hobbies: []string{fmt.Sprintf("hobby%d", i%5), fmt.Sprintf("hobby%d", 5+i%7)},
			Address: people.Address{City: fmt.Sprintf("City%d", i%10)}}
		if i%1000 == 0 {
			batch[i].Hobbies = append(batch[i].Hobbies, "rare")
		}
	}
	s := New(1000)
	if _, err := s.Import(ctx, batch); err != nil {
		b.Fatal(err)
	}
	for name, q := range map[string]people.Query{
		"all":   {},
		"city":  {City: "City3"},
		"hobby": {Hobby: "hobby2"},
		"rare":  {Hobby: "rare"}, // one person in 1,000
	} {
		b.Run(name, func(b *testing.B) {
			q.After, q.Limit = fmt.Sprintf("person-%07d", n/4), 100
			for b.Loop() {
				if page, err := s.List(ctx, q); err != nil || len(page) != q.Limit {
					b.Fatalf("List(%+v) = %d people, %v", q, len(page), err)
				}
			}
		})
	}
}

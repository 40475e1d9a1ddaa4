package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/routeguide/routeguide/internal/people"
)

// BenchmarkListPage measures one page of 100 people from the middle of a
// directory of 300,000, unfiltered and by each filter: every filter should
// cost about what an unfiltered page costs (see TestListPlans).
func BenchmarkListPage(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "people.db"), 1000)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const n, batchSize = 300_000, 50_000
	for start := 0; start < n; start += batchSize {
		batch := make([]people.Person, batchSize)
		for j := range batch {
			i := start + j
			batch[j] = people.Person{Name: fmt.Sprintf("person-%07d", i), Age: int32(i % 100),
				Hobbies: []string{fmt.Sprintf("hobby%d", i%5), fmt.Sprintf("hobby%d", 5+i%7)},
				Address: people.Address{Street: "1 Main St", City: fmt.Sprintf("City%d", i%10)}}
		}
		if _, err := s.Import(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	middle := fmt.Sprintf("person-%07d", n/2)
	for name, q := range map[string]people.Query{
		"all":          {},
		"city":         {City: "City3"},
		"hobby":        {Hobby: "hobby2"},
		"prefix":       {NamePrefix: "person-01"},
		"city+hobby":   {City: "City3", Hobby: "hobby8"},
		"hobby+prefix": {Hobby: "hobby2", NamePrefix: "person-01"},
	} {
		b.Run(name, func(b *testing.B) {
			q.After, q.Limit = middle, 100
			if q.NamePrefix != "" {
				q.After = q.NamePrefix + "5"
			}
			for b.Loop() {
				page, err := s.List(ctx, q)
				if err != nil || len(page) != q.Limit {
					b.Fatalf("List(%+v) = %d people, %v", q, len(page), err)
				}
			}
		})
	}
}

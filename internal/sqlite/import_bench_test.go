package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/routeguide/routeguide/internal/people"
)

// BenchmarkImport measures Import of fresh people in batches of 100,000 (as
// the server groups them: grpcserver's importTxPeople), in random name
// order, as `routeguide import` sends them.
func BenchmarkImport(b *testing.B) {
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "people.db"), 0)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	r := rand.New(rand.NewPCG(1, 2))
	batch := make([]people.Person, 100000)
	b.ResetTimer()
	for i := 0; i < b.N; i += len(batch) {
		for j := range batch {
			n := r.IntN(1 << 30)
			batch[j] = people.Person{Name: fmt.Sprintf("person-%010d", n), Age: int32(n % 100),
				Hobbies: []string{"chess", "go"}, Address: people.Address{Street: "1 Main St", City: "Boston"}}
		}
		if _, err := s.Import(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "people/s")
}

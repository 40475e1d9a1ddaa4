package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/routeguide/routeguide/internal/people"
)

// benchPeople returns n people like bench/genpeople's, in the same random
// name order: two hobbies each, twenty cities.
func benchPeople(n int) []people.Person {
	cities := []string{"New York", "Los Angeles", "Chicago", "Houston", "Phoenix", "Philadelphia", "San Antonio", "San Diego", "Dallas", "Austin", "Boston", "Seattle", "Denver", "Portland", "Miami", "Atlanta", "Detroit", "Nashville", "Memphis", "Baltimore"}
	hobbies := []string{"reading", "swimming", "gaming", "cycling", "chess", "go", "running", "climbing", "jazz", "cooking", "hiking", "painting", "rowing", "judo", "tennis", "gardening", "knitting", "photography", "sailing", "skiing"}
	streets := []string{"Main St", "Elm St", "Oak Ave", "Pine St", "Maple Ave", "Cedar Rd", "Birch Ln", "Lake Dr"}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
	out := make([]people.Person, n)
	for k, i := range order {
		out[k] = people.Person{
			Name:    fmt.Sprintf("person-%07d", i),
			Age:     int32(i % 100),
			Gender:  people.Gender(i % 3),
			Hobbies: []string{hobbies[i%len(hobbies)], hobbies[(i/len(hobbies)+i+1)%len(hobbies)]},
			Address: people.Address{Street: fmt.Sprintf("%d %s", 1+i%999, streets[i%len(streets)]), City: cities[i%len(cities)]},
		}
	}
	return out
}

// cpuSeconds returns the CPU time this process has used so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// BenchmarkImport measures Import of n people, like bench/genpeople's, into
// an empty directory, in transactions of 100,000 (grpcserver's
// importTxPeople, the batches `routeguide import` is stored in). It
// reports people/s and the CPU seconds 100,000 people cost, the figure to
// compare on a shared machine. Run it with -benchtime=1x: each run imports
// into a file of its own.
func BenchmarkImport(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("people=%d", n), func(b *testing.B) {
			all := benchPeople(n)
			ctx := context.Background()
			for range b.N {
				b.StopTimer()
				s, err := Open(ctx, filepath.Join(b.TempDir(), "people.db"), 0)
				if err != nil {
					b.Fatal(err)
				}
				cpu0, start := cpuSeconds(), time.Now()
				b.StartTimer()
				for i := 0; i < n; i += 100_000 {
					if _, err := s.Import(ctx, all[i:min(i+100_000, n)]); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				took, cpu := time.Since(start).Seconds(), cpuSeconds()-cpu0
				b.ReportMetric(float64(n)/took, "people/s")
				b.ReportMetric(cpu/float64(n)*1e5, "cpu-s/100k")
				s.Close()
			}
		})
	}
}

package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/routeguide/routeguide/bench/genpeople/gen"
	"github.com/routeguide/routeguide/internal/people"
)

// benchPeople returns n people as bench/genpeople writes them, in the
// same random name order.
func benchPeople(n int) []people.Person {
	out := make([]people.Person, n)
	for k, i := range gen.Order(n, true) {
		out[k] = gen.Person(i)
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

package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/routeguide/routeguide/bench/genpeople/gen"
	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/postgres/postgrestest"
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

// cpuSeconds returns the CPU time this process and the database's
// backends pids have used so far. The backends are read from /proc, so the
// figure is there only when PostgreSQL runs on this machine.
func cpuSeconds(pids []int) (self, backends float64) {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	self = float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		u, _ := strconv.ParseFloat(f[11], 64)
		s, _ := strconv.ParseFloat(f[12], 64)
		backends += (u + s) / 100 // clock ticks
	}
	return self, backends
}

// BenchmarkImport measures Import of n people, like bench/genpeople's, into
// an empty directory, in transactions of 100,000 (grpcserver's
// importTxPeople, the batches `routeguide import` is stored in), then
// AddPerson from 64 concurrent callers right after. It reports people/s,
// and the CPU seconds a million people cost this process (client) and
// the database backends of the store's connections (pg, on this machine
// only). Run it with -benchtime=1x: each run imports into a schema of its
// own.
func BenchmarkImport(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("people=%d", n), func(b *testing.B) {
			all := benchPeople(n)
			ctx := context.Background()
			for range b.N {
				b.StopTimer()
				s, err := Open(ctx, postgrestest.Schema(b), 0, slog.New(slog.DiscardHandler))
				if err != nil {
					b.Fatal(err)
				}
				var pids []int
				rows, _ := s.pool.Query(ctx, "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
				for rows.Next() {
					var pid int
					rows.Scan(&pid)
					pids = append(pids, pid)
				}
				rows.Close()
				conn, _ := s.pool.Acquire(ctx) // the connection the imports run on
				var pid int
				conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid)
				pids = append(pids, pid)
				conn.Release()
				self0, pg0 := cpuSeconds(pids)
				start := time.Now()
				b.StartTimer()
				for i := 0; i < n; i += 100_000 {
					if _, err := s.Import(ctx, all[i:min(i+100_000, n)]); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				took := time.Since(start).Seconds()
				self1, pg1 := cpuSeconds(pids)
				b.ReportMetric(float64(n)/took, "people/s")
				b.ReportMetric((self1-self0)/float64(n)*1e6, "client-cpu-s/Mpeople")
				b.ReportMetric((pg1-pg0)/float64(n)*1e6, "pg-cpu-s/Mpeople")
				b.ReportMetric(benchAdds(b, s), "adds/s")
				s.Close()
			}
		})
	}
}

// benchAdds adds people from 64 concurrent callers, for at most 5,000
// additions or 20 seconds, and returns additions a second.
func benchAdds(b *testing.B, s *Store) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var next, done atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range 64 {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := next.Add(1)
				if i > 5000 {
					return
				}
				p := people.Person{Name: fmt.Sprintf("added-%07d", (i*7919)%10_000_000), Age: 30, Hobbies: []string{"chess", "jazz"},
					Address: people.Address{Street: "1 Main St", City: "Boston"}}
				if _, err := s.Add(ctx, p); err != nil {
					if ctx.Err() == nil {
						b.Error(err)
					}
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(done.Load()) / time.Since(start).Seconds()
}

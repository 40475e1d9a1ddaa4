package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/postgres/postgrestest"
)

// BenchmarkCopyFloor measures what PostgreSQL itself allows for an import
// into this schema, for BenchmarkImport to be read against: each batch of
// 100,000 of n people is copied straight into people, hobbies and changes
// (three COPYs through pgx's CopyFrom, one transaction, committed), in the
// given order or sorted by key, with none of the Store's work (the write
// lock, statistics, retention, notifying). It reports people/s and the CPU seconds a million people cost
// the database backend (on this machine only).
func BenchmarkCopyFloor(b *testing.B) {
	for _, n := range []int{1_000_000} {
		for _, sorted := range []bool{false, true} {
			b.Run(fmt.Sprintf("people=%d/sorted=%v", n, sorted), func(b *testing.B) {
				all := benchPeople(n)
				ctx := context.Background()
				for range b.N {
					b.StopTimer()
					s, err := Open(ctx, postgrestest.Schema(b), 0, slog.New(slog.DiscardHandler))
					if err != nil {
						b.Fatal(err)
					}
					conn, err := s.pool.Acquire(ctx)
					if err != nil {
						b.Fatal(err)
					}
					var pid int
					conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid)
					self0, pg0 := cpuSeconds([]int{pid})
					start := time.Now()
					b.StartTimer()
					rev := int64(2)
					for i := 0; i < n; i += 100_000 {
						batch := all[i:min(i+100_000, n)]
						if err := copyFloor(ctx, conn.Conn(), batch, rev, sorted); err != nil {
							b.Fatal(err)
						}
						rev += int64(len(batch))
					}
					b.StopTimer()
					took := time.Since(start).Seconds()
					self1, pg1 := cpuSeconds([]int{pid})
					b.ReportMetric(float64(n)/took, "people/s")
					b.ReportMetric((self1-self0)/float64(n)*1e6, "client-cpu-s/Mpeople")
					b.ReportMetric((pg1-pg0)/float64(n)*1e6, "pg-cpu-s/Mpeople")
					conn.Release()
					s.Close()
				}
			})
		}
	}
}

func copyFloor(ctx context.Context, conn *pgx.Conn, batch []people.Person, rev int64, sorted bool) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	byName := batch
	if sorted {
		byName = slices.Clone(batch)
		slices.SortFunc(byName, func(a, b people.Person) int { return strings.Compare(a.Name, b.Name) })
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"people"}, []string{"name", "age", "gender", "hobbies", "street", "city"},
		pgx.CopyFromSlice(len(byName), func(i int) ([]any, error) { return personArgs(byName[i]), nil })); err != nil {
		return err
	}
	type tag struct{ hobby, name string }
	var ts []tag
	for _, p := range byName {
		h := p.Hobbies
		if t := tags(h); t != nil {
			h = t
		}
		for _, h := range h {
			ts = append(ts, tag{h, p.Name})
		}
	}
	if sorted {
		slices.SortFunc(ts, func(a, b tag) int {
			if c := strings.Compare(a.hobby, b.hobby); c != 0 {
				return c
			}
			return strings.Compare(a.name, b.name)
		})
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"hobbies"}, []string{"hobby", "name"},
		pgx.CopyFromSlice(len(ts), func(i int) ([]any, error) { return []any{ts[i].hobby, ts[i].name}, nil })); err != nil {
		return err
	}
	at := time.Now().UnixMilli()
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"changes"}, []string{"revision", "type", "name", "age", "gender", "hobbies", "street", "city", "principal", "peer", "request_id", "at"},
		pgx.CopyFromSlice(len(batch), func(i int) ([]any, error) {
			p := batch[i]
			return []any{rev + int64(i) + 1, int16(1), p.Name, p.Age, int32(p.Gender), hobbies(p.Hobbies), p.Address.Street, p.Address.City, "", "", "", at}, nil
		})); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

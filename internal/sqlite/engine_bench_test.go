package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/routeguide/routeguide/internal/people"
)

// BenchmarkImportEngine measures what SQLite itself allows for an import
// into this schema, to set Store.Import against (BenchmarkImport): the
// same rows as BenchmarkImport's, written to the same tables (people and
// people_by_city, hobbies, changes) in transactions of 100,000 with the
// writer's settings and in name order, but with none of the Store's work
// around them (no request ids, no RETURNING, no kept changes) and the
// sort and every argument made off the clock. Each of its statements writes chunk rows:
// "values" binds each column of each row (as Store.Import does), "json"
// binds one JSON array of the chunk's rows, read with json_each (on
// people in the order given, three times the CPU of "values": SQLite
// reads each column out of the JSON again).
func BenchmarkImportEngine(b *testing.B) {
	const n, tx, chunk = 1_000_000, 100_000, 256
	all := benchPeople(n)
	for _, mode := range []string{"values", "json"} {
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			// stmtsOf returns the statements of the transaction of the
			// people from t, and their arguments.
			type stmt struct {
				query string
				args  []any
			}
			stmtsOf := func(t int) []stmt {
				// In name order, as Store.Import writes a transaction's
				// people: in the order given, each statement wrote all
				// over the indexes, and the import cost twice as much.
				batch := slices.SortedFunc(slices.Values(all[t:t+tx]), func(a, b people.Person) int { return strings.Compare(a.Name, b.Name) })
				var st []stmt
				for c := t; c < t+tx; c += chunk {
					ps := batch[c-t : min(c+chunk, t+tx)-t]
					var pr, hr, cr [][]any
					for _, p := range ps {
						cols := personArgs(p)
						pr = append(pr, cols)
						for _, h := range p.Hobbies {
							hr = append(hr, []any{h, p.Name})
						}
						cr = append(cr, append([]any{1}, cols...))
					}
					origin := []any{"local", "127.0.0.1:1", "", time.Now().UnixMilli()}
					switch mode {
					case "values":
						st = append(st,
							stmt{"INSERT OR IGNORE INTO people (" + personColumns + ") VALUES " + rowsOf("(?, ?, ?, ?, ?, ?)", len(pr)), flat(pr)},
							stmt{"INSERT OR IGNORE INTO hobbies (hobby, name) VALUES " + rowsOf("(?, ?)", len(hr)), flat(hr)},
							stmt{"INSERT INTO changes (type, " + personColumns + ", " + originColumns + ")" +
								" SELECT column1, column2, column3, column4, column5, column6, column7, ?1, ?2, ?3, ?4 FROM (VALUES " +
								rowsOf("(?, ?, ?, ?, ?, ?, ?)", len(cr)) + ")", append(origin, flat(cr)...)})
					case "json":
						st = append(st,
							stmt{"INSERT OR IGNORE INTO people (" + personColumns + ")" +
								" SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5 FROM json_each(?)", []any{jsonOf(pr)}},
							stmt{"INSERT OR IGNORE INTO hobbies (hobby, name) SELECT value->>0, value->>1 FROM json_each(?)", []any{jsonOf(hr)}},
							stmt{"INSERT INTO changes (type, " + personColumns + ", " + originColumns + ")" +
								" SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, ?, ?, ?, ? FROM json_each(?)",
								append(origin, jsonOf(cr))})
					}
				}
				return st
			}
			for range b.N {
				b.StopTimer()
				s, err := Open(ctx, filepath.Join(b.TempDir(), "people.db"), 0)
				if err != nil {
					b.Fatal(err)
				}
				prepared := map[string]*sql.Stmt{}
				var took, cpu float64
				for t := 0; t < n; t += tx {
					// Each transaction's arguments are made, and the
					// garbage of the last collected, off the clock.
					st := stmtsOf(t)
					for _, q := range st {
						if prepared[q.query] == nil {
							if prepared[q.query], err = s.write.PrepareContext(ctx, q.query); err != nil {
								b.Fatal(err)
							}
						}
					}
					runtime.GC()
					cpu0, start := cpuSeconds(), time.Now()
					b.StartTimer()
					tr, err := s.write.BeginTx(ctx, nil)
					if err != nil {
						b.Fatal(err)
					}
					for _, q := range st {
						if _, err := tr.StmtContext(ctx, prepared[q.query]).ExecContext(ctx, q.args...); err != nil {
							b.Fatal(err)
						}
					}
					if err := tr.Commit(); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					took, cpu = took+time.Since(start).Seconds(), cpu+cpuSeconds()-cpu0
				}
				var count int
				if err := s.write.QueryRowContext(ctx, "SELECT count(*) FROM changes").Scan(&count); err != nil || count != n+2 {
					b.Fatalf("changes: got %d (%v), want %d", count, err, n+2)
				}
				b.ReportMetric(float64(n)/took, "people/s")
				b.ReportMetric(cpu/float64(n)*1e5, "cpu-s/100k")
				for _, st := range prepared {
					st.Close()
				}
				s.Close()
			}
		})
	}
}

// rowsOf returns n copies of row, separated by commas.
func rowsOf(row string, n int) string { return strings.Repeat(row+",", n-1) + row }

// flat returns rows' values one after another.
func flat(rows [][]any) []any {
	var out []any
	for _, r := range rows {
		out = append(out, r...)
	}
	return out
}

// jsonOf returns rows as a JSON array of arrays.
func jsonOf(rows [][]any) string {
	b, err := json.Marshal(rows)
	if err != nil {
		panic(fmt.Sprint("encode rows: ", err))
	}
	return string(b)
}

package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/postgres"
	"github.com/routeguide/routeguide/internal/postgres/postgrestest"
	rgsqlite "github.com/routeguide/routeguide/internal/sqlite"
)

// dump returns every row of the tables, each as text, leaving out the
// columns that differ by when or by chance (the time of a change, a
// request's id and expiry).
func dump(t *testing.T, db *sql.DB) []string {
	t.Helper()
	var out []string
	for _, q := range []string{
		"SELECT 'people', name, age, gender, hobbies, street, city FROM people ORDER BY name",
		"SELECT 'hobbies', hobby, name FROM hobbies ORDER BY hobby, name",
		"SELECT 'changes', revision, type, name, age, gender, hobbies, street, city, principal, peer, request_id <> '' FROM changes ORDER BY revision",
		"SELECT 'requests', digest, outcome FROM requests ORDER BY digest",
	} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			out = append(out, strings.TrimSpace(fmt.Sprintln(vals...)))
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestSQLiteRowsMatchStore checks that the rows the benchmark loads and
// writes are the rows RouteGuide's SQLite store writes for the same
// import and the same AddPerson.
func TestSQLiteRowsMatchStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// 380 has the same hobby twice: listed twice, indexed once.
	ps := []people.Person{generated(5), generated(380), generated(1), generated(42)}
	if h := ps[1].Hobbies; h[0] != h[1] {
		t.Fatalf("generated(380).Hobbies = %q, want one hobby twice", h)
	}

	db, err := createSQLite(ctx, filepath.Join(dir, "bench.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := loadSQLite(ctx, db, ps, true, 3, 2); err != nil {
		t.Fatal(err)
	}
	if n, _, _, _, err := writeSQLite(ctx, db, "w2-", 2, time.Minute, 1); err != nil || n != 2 {
		t.Fatalf("writeSQLite = %d people, %v; want 2", n, err)
	}

	st, err := rgsqlite.Open(ctx, filepath.Join(dir, "store.db"), 0)
	if err != nil {
		t.Fatal(err)
	}
	// The benchmark's chunks of 3 are the store's import batches.
	fillStore(t, st, ps)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	sdb, err := openSQLite(filepath.Join(dir, "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()

	got, want := dump(t, db), dump(t, sdb)
	if !slices.Equal(got, want) {
		t.Errorf("the benchmark's rows differ from the store's:\ngot:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(got) < 20 {
		t.Errorf("only %d rows compared", len(got))
	}
}

// dumpPostgres is dump on PostgreSQL, each value as text.
func dumpPostgres(t *testing.T, ctx context.Context, conn *pgx.Conn) []string {
	t.Helper()
	var out []string
	for _, q := range []string{
		"SELECT 'people', name, age::text, gender::text, hobbies::text, street, city FROM people ORDER BY name",
		"SELECT 'hobbies', hobby, name FROM hobbies ORDER BY hobby, name",
		"SELECT 'changes', revision::text, type::text, name, age::text, gender::text, hobbies::text, street, city, principal, peer, (request_id <> '')::text FROM changes ORDER BY revision",
		"SELECT 'requests', digest, outcome FROM requests ORDER BY digest",
	} {
		rows, err := conn.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
			var vals []string
			v, err := r.Values()
			for _, x := range v {
				vals = append(vals, fmt.Sprint(x))
			}
			return strings.Join(vals, " "), err
		})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, got...)
	}
	return out
}

// TestPostgresRowsMatchStore is TestSQLiteRowsMatchStore on PostgreSQL,
// each side in a schema of its own.
func TestPostgresRowsMatchStore(t *testing.T) {
	ctx := context.Background()
	ps := []people.Person{generated(5), generated(380), generated(1), generated(42)}
	open := func(url string) *pgx.Conn {
		st, err := postgres.Open(ctx, url, 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(ctx) })
		return conn
	}

	benchURL := postgrestest.Schema(t)
	conn := open(benchURL)
	if err := loadPostgres(ctx, conn, ps, true, 3); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgx.ParseConfig(benchURL)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := writePostgres(ctx, cfg, "w2", 1, 2, true, time.Minute, 1); err != nil || r.people != 2 {
		t.Fatalf("writePostgres = %d people, %v; want 2", r.people, err)
	}

	storeURL := postgrestest.Schema(t)
	sconn := open(storeURL)
	st, err := postgres.Open(ctx, storeURL, 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	fillStore(t, st, ps)
	st.Close()

	got, want := dumpPostgres(t, ctx, conn), dumpPostgres(t, ctx, sconn)
	if !slices.Equal(got, want) {
		t.Errorf("the benchmark's rows differ from the store's:\ngot:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(got) < 20 {
		t.Errorf("only %d rows compared", len(got))
	}
}

// fillStore writes through st what the benchmark writes straight into its
// database: ps imported in batches of 3, as its loads chunk them, and the
// additions of its write run w2- with their request ids.
func fillStore(t *testing.T, st people.Store, ps []people.Person) {
	t.Helper()
	ctx := context.Background()
	for c := range slices.Chunk(ps, 3) {
		ictx := people.WithWrite(ctx, people.Write{Origin: people.Origin{Principal: loadPrincipal, Peer: loadPeer}})
		if _, err := st.Import(ictx, c); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range additions("w2-", 0, 2, 0) {
		sum := sha256.Sum256([]byte(a.p.Name))
		w := people.Write{
			Origin:  people.Origin{Principal: loadPrincipal, Peer: writePeer, RequestID: a.id},
			Digest:  hex.EncodeToString(sum[:]),
			Expires: time.Now().Add(time.Hour),
		}
		if _, err := st.Add(people.WithWrite(ctx, w), a.p); err != nil {
			t.Fatal(err)
		}
	}
}

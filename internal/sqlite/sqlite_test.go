package sqlite

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/peopletest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func open(t *testing.T, path string, retain int) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, retain)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	peopletest.Run(t, func(t *testing.T, opts peopletest.Options) people.Store {
		return open(t, filepath.Join(t.TempDir(), "people.db"), opts.Retain)
	})
}

// TestReopenDoesNotReseed checks that migrations run once: a deleted seed
// person stays deleted, and what was written is still there.
func TestReopenDoesNotReseed(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "people.db")
	s, err := Open(ctx, path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, "Alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add(ctx, people.Person{Name: "Carol", Age: 41}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = open(t, path, 0)
	if _, err := s.Person(ctx, "Alice"); people.KindOf(err) != people.NotFound {
		t.Errorf("Person(Alice) after reopening = %v, want NotFound", err)
	}
	if p, err := s.Person(ctx, "Carol"); err != nil || p.Age != 41 {
		t.Errorf("Person(Carol) after reopening = %+v, %v", p, err)
	}
	if rev, err := s.Revision(ctx); err != nil || rev != 4 {
		t.Errorf("Revision after reopening = %d, %v; want 4", rev, err)
	}
}

// TestQueriesUseIndexes checks that the queries run on every write or
// watch read a few rows of an index rather than scanning a table, which
// grows with the directory and its change log.
func TestQueriesUseIndexes(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "people.db"), 0)
	for _, q := range []string{
		changeBounds,
		"SELECT max(revision) FROM changes",
		"SELECT revision, type, " + personColumns + " FROM changes WHERE revision > 1 ORDER BY revision LIMIT 10",
		"SELECT " + personColumns + " FROM people WHERE name = 'Alice'",
	} {
		rows, err := s.read.Query("EXPLAIN QUERY PLAN " + q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		for _, step := range plan {
			if strings.HasPrefix(step, "SCAN ") && step != "SCAN CONSTANT ROW" {
				t.Errorf("%s\nscans a table: %q", q, plan)
			}
		}
	}
}

// TestDecodeHobbies checks the hobbies column's reader against
// encoding/json, on what encodeHobbies writes and on arrays it must leave
// to encoding/json.
func TestDecodeHobbies(t *testing.T) {
	for _, h := range [][]string{nil, {"chess"}, {"chess", "go"}, {`say "hi"`, `a\b`}, {"", "x"}, {`","`}, {"é", "<&>"}, {"a,b", "c"}} {
		got, err := decodeHobbies(encodeHobbies(h))
		if err != nil || !slices.Equal(got, h) {
			t.Errorf("decodeHobbies(encodeHobbies(%q)) = %q, %v", h, got, err)
		}
	}
	for _, s := range []string{`["a" ,"b"]`, `[ "a"]`, `["a\u0041"]`, `["a","b"`, `{}`, `[1]`} {
		got, err := decodeHobbies(s)
		var want []string
		wantErr := json.Unmarshal([]byte(s), &want)
		if (err != nil) != (wantErr != nil) || (err == nil && !slices.Equal(got, want)) {
			t.Errorf("decodeHobbies(%s) = %q, %v; encoding/json reads %q, %v", s, got, err, want, wantErr)
		}
	}
}

package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/routeguide/routeguide/internal/people"
)

// TestUpgradeFromBeforeSafeWrites opens a file made by the migrations
// before the audit trail and request ids: Open adds them, the changes
// already logged read back with an empty origin, and new writes record
// theirs.
func TestUpgradeFromBeforeSafeWrites(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "people.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"migrations/0001_schema.sql", "migrations/0002_seed.sql"} {
		body, err := migrations.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, string(body)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := db.ExecContext(ctx, "PRAGMA user_version = "+string(rune('1'+i))); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s := open(t, path, 0)
	w := people.Write{Origin: people.Origin{Principal: "ops"}}
	w.RequestID, w.Digest = "6f1c2d1e-0000-4000-8000-000000000099", "d"
	if _, _, err := s.Update(people.WithWrite(ctx, w), "Alice", people.Update{Fields: people.FieldAge, To: people.Person{Age: 31}}); err != nil {
		t.Fatalf("Update after upgrading: %v", err)
	}
	hist, err := s.History(ctx, "Alice", 10)
	if err != nil || len(hist) != 2 {
		t.Fatalf("History(Alice) = %+v, %v; want 2 changes", hist, err)
	}
	if hist[0].Origin.Principal != "ops" || !hist[1].Origin.Time.IsZero() || hist[1].Origin.Principal != "" {
		t.Errorf("origins = %+v, %+v; want ops, then the empty origin of the change logged before the upgrade", hist[0].Origin, hist[1].Origin)
	}
}

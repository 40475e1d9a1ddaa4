package postgres

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/postgres/postgrestest"
)

// TestUpgradeFromBeforeSafeWrites opens a schema made by the migrations
// before the audit trail and request ids: Open adds them, the changes
// already logged read back with an empty origin, and new writes record
// theirs.
func TestUpgradeFromBeforeSafeWrites(t *testing.T) {
	url := postgrestest.Schema(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"migrations/0001_schema.sql", "migrations/0002_seed.sql"} {
		body, err := migrations.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, string(body)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := conn.Exec(ctx, "INSERT INTO schema_migrations (version) VALUES ($1)", i+1); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close(ctx)

	s := open(t, url, 0)
	w := people.Write{Origin: people.Origin{Principal: "ops"}}
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

// Package postgrestest gives tests a PostgreSQL schema of their own on the
// server named by ROUTEGUIDE_TEST_POSTGRES.
package postgrestest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the variable that points tests at a PostgreSQL server, such
// as postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const EnvURL = "ROUTEGUIDE_TEST_POSTGRES"

// Require skips t unless EnvURL is set.
func Require(t testing.TB) {
	t.Helper()
	if os.Getenv(EnvURL) == "" {
		t.Skipf("set %s to a PostgreSQL URL to run this test", EnvURL)
	}
}

// Schema creates an empty schema for t and returns a URL whose connections
// use it; cleanup drops it. It skips t when EnvURL is unset.
func Schema(t testing.TB) string {
	t.Helper()
	Require(t)
	base := os.Getenv(EnvURL)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to %s: %v", EnvURL, err)
	}
	defer conn.Close(ctx)
	schema := fmt.Sprintf("routeguide_test_%d", rand.Uint64()>>1)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

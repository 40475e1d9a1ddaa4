package server

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/routeguide/routeguide/internal/postgres/postgrestest"
	"github.com/routeguide/routeguide/internal/syncbuf"
)

// The forms a PostgreSQL password can take in --store; each test checks
// that the password appears in no log line and no error. The hosts refuse
// connections, so that opening fails and its error is checked too.
var passwordForms = []struct {
	name, dsn, password string
}{
	{"user info", "postgres://alice:s3cr3t-userinfo@127.0.0.1:1/db?connect_timeout=2", "s3cr3t-userinfo"},
	{"escaped user info", "postgresql://alice:s3cr%40t-escaped@127.0.0.1:1/db", "s3cr@t-escaped"},
	{"query", "postgres://alice@127.0.0.1:1/db?password=s3cr3t-query&sslmode=disable", "s3cr3t-query"},
	{"escaped query", "postgres://alice@127.0.0.1:1/db?password=s3cr3t+q%26uery", "s3cr3t q&uery"},
	{"ssl key passphrase", "postgres://alice@127.0.0.1:1/db?sslpassword=s3cr3t-sslkey&sslmode=disable", "s3cr3t-sslkey"},
	{"keyword/value", "host=127.0.0.1 port=1 dbname=db user=alice password=s3cr3t-kv sslmode=disable", "s3cr3t-kv"},
	{"keyword/value quoted", "host=127.0.0.1 port=1 password='s3cr3t kv\\'quoted' dbname=db", `s3cr3t kv'quoted`},
	{"malformed URL", "postgres://alice:s3cr3t-malformed@127.0.0.1:notaport/db", "s3cr3t-malformed"},
}

func TestPasswordNeverShown(t *testing.T) {
	for _, tt := range passwordForms {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncbuf.Buffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			spec, err := parseStore(tt.dsn)
			var shown []string
			if err == nil {
				if spec.kind != storePostgres {
					t.Fatalf("%q taken for kind %v, want PostgreSQL", tt.dsn, spec.kind)
				}
				shown = append(shown, spec.name)
				_, err = openBackend(context.Background(), log, spec, 0)
				if err == nil {
					t.Fatal("opening a store on a closed port succeeded")
				}
			}
			shown = append(shown, err.Error(), logs.String())
			for _, s := range shown {
				for _, secret := range []string{tt.password, strings.Fields(tt.password)[0]} {
					if strings.Contains(s, secret) {
						t.Errorf("%q shows the password %q", s, secret)
					}
				}
			}
			if !strings.Contains(err.Error(), "xxxxx") && !strings.Contains(err.Error(), "postgres") {
				t.Errorf("error %q does not say which store", err)
			}
		})
	}
}

func TestRedactDSN(t *testing.T) {
	tests := []struct{ dsn, want string }{
		{"postgres://alice:pw@db:5432/people?sslmode=require", "postgres://alice:xxxxx@db:5432/people?sslmode=require"},
		{"postgres://alice@db/people?password=pw&application_name=rg", "postgres://alice@db/people?application_name=rg&password=xxxxx"},
		{"postgres://db/people", "postgres://db/people"},
		{"host=db password=pw dbname=people", "host=db password=xxxxx dbname=people"},
		{"host=db password = 'p w' sslpassword=k", "host=db password=xxxxx sslpassword=xxxxx"},
	}
	for _, tt := range tests {
		if got := redactDSN(tt.dsn); got != tt.want {
			t.Errorf("redactDSN(%q) = %q, want %q", tt.dsn, got, tt.want)
		}
	}
}

func TestParseStore(t *testing.T) {
	tests := []struct {
		spec string
		kind storeKind
		name string
	}{
		{"memory", storeMemory, "memory"},
		{"people.db", storeSQLite, "sqlite:people.db"},
		{"dir/host=x.db", storeSQLite, "sqlite:dir/host=x.db"},
		{"postgres://u:pw@h/db", storePostgres, "postgres://u:xxxxx@h/db"},
		{"dbname=people host=h", storePostgres, "dbname=people host=h"},
	}
	for _, tt := range tests {
		s, err := parseStore(tt.spec)
		if err != nil || s.kind != tt.kind || s.name != tt.name {
			t.Errorf("parseStore(%q) = kind %v name %q, %v; want kind %v name %q", tt.spec, s.kind, s.name, err, tt.kind, tt.name)
		}
	}
	if _, err := parseStore(""); err == nil {
		t.Error("parseStore(\"\") succeeded")
	}
}

// TestPasswordNotInStartLine runs a server on PostgreSQL with a password in
// each form the URL takes and checks the log never shows it. The test
// database trusts its clients, so the password is sent and ignored.
func TestPasswordNotInStartLine(t *testing.T) {
	dsn := postgrestest.Schema(t)
	withPassword := strings.Replace(dsn, "postgres://postgres@", "postgres://postgres:s3cr3t-userinfo@", 1)
	sep := "?"
	if strings.Contains(withPassword, "?") {
		sep = "&"
	}
	withPassword += sep + "password=s3cr3t-query"
	cfg := testConfig(t)
	cfg.Store = withPassword
	srv := start(t, cfg)
	if strings.Contains(srv.logs.String(), "s3cr3t") {
		t.Errorf("the log shows the password:\n%s", srv.logs)
	}
	if !strings.Contains(srv.logs.String(), "postgres://postgres:xxxxx@") {
		t.Errorf("the start line does not name the store, masked:\n%s", srv.logs)
	}
}

package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/routeguide/routeguide/internal/cache"
	"github.com/routeguide/routeguide/internal/grpcserver"
	"github.com/routeguide/routeguide/internal/memory"
	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/postgres"
	"github.com/routeguide/routeguide/internal/sqlite"
	"github.com/routeguide/routeguide/internal/telemetry"
)

// storeKind is which engine a --store value names.
type storeKind int

const (
	storeSQLite storeKind = iota
	storeMemory
	storePostgres
)

// storeSpec is a --store value, checked, before anything is opened.
type storeSpec struct {
	kind storeKind
	spec string
	// name is how logs and errors name the store, credentials masked.
	name string
	// secrets are the credentials the spec carries, to mask wherever an
	// error from opening it might echo them.
	secrets []string
}

// parseStore checks spec: "memory", a postgres:// (or postgresql://) URL,
// a PostgreSQL keyword/value string ("host=... dbname=..."), or else a
// SQLite file path. It opens and creates nothing; a PostgreSQL spec is
// parsed as pgx will parse it, so a malformed one fails here.
func parseStore(spec string) (storeSpec, error) {
	switch {
	case spec == "":
		return storeSpec{}, errors.New("store: empty; want a file path, memory or a postgres:// URL")
	case spec == "memory":
		return storeSpec{kind: storeMemory, spec: spec, name: "memory"}, nil
	case isPostgres(spec):
		s := storeSpec{kind: storePostgres, spec: spec, name: redactDSN(spec), secrets: dsnSecrets(spec)}
		if _, err := pgxpool.ParseConfig(spec); err != nil {
			return storeSpec{}, s.mask(fmt.Errorf("store %s: %w", s.name, err))
		}
		return s, nil
	}
	return storeSpec{kind: storeSQLite, spec: spec, name: "sqlite:" + spec}, nil
}

// keywordValue matches the start of a libpq keyword/value connection string
// ("host=db dbname=people"), which no one means as a SQLite file name.
var keywordValue = regexp.MustCompile(`^\s*(host|hostaddr|port|dbname|user|password|passfile|service|sslmode|connect_timeout|application_name)\s*=`)

func isPostgres(spec string) bool {
	return strings.HasPrefix(spec, "postgres://") || strings.HasPrefix(spec, "postgresql://") || keywordValue.MatchString(spec)
}

// mask is what credentials are replaced with.
const mask = "xxxxx"

// passwordKeys are the DSN parameters that hold a credential: the password,
// and the passphrase of an encrypted client key.
var passwordKeys = []string{"password", "sslpassword"}

// kvPassword matches a credential in a keyword/value string, its value
// plain or single-quoted with backslash escapes; group 2 is the value.
var kvPassword = regexp.MustCompile(`\b(password|sslpassword)\s*=\s*('(?:[^'\\]|\\.)*'|[^\s']*)`)

// userinfoPassword matches the password of a URL that net/url cannot parse;
// group 1 is the password.
var userinfoPassword = regexp.MustCompile(`://[^:/@]*:([^@]*)@`)

// redactDSN returns a PostgreSQL connection string for logs: every password
// (in the user info, in the query, as a keyword) replaced with xxxxx. A URL
// that does not parse is named only "postgres".
func redactDSN(dsn string) string {
	if !strings.Contains(dsn, "://") {
		return kvPassword.ReplaceAllString(dsn, "$1="+mask)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres"
	}
	if q := u.Query(); len(q) > 0 {
		for _, k := range passwordKeys {
			if q.Has(k) {
				q.Set(k, mask)
			}
		}
		u.RawQuery = q.Encode()
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), mask)
	}
	return u.String()
}

// dsnSecrets returns the credentials dsn carries, each as written and as
// decoded, so that any echo of them can be masked.
func dsnSecrets(dsn string) []string {
	var out []string
	add := func(s ...string) {
		for _, v := range s {
			if v != "" {
				out = append(out, v)
			}
		}
	}
	if !strings.Contains(dsn, "://") {
		for _, m := range kvPassword.FindAllStringSubmatch(dsn, -1) {
			v := m[2]
			add(v)
			if uq, ok := strings.CutPrefix(v, "'"); ok {
				uq = strings.TrimSuffix(uq, "'")
				add(uq, strings.NewReplacer(`\'`, `'`, `\\`, `\`).Replace(uq))
			}
		}
		return out
	}
	if m := userinfoPassword.FindStringSubmatch(dsn); m != nil {
		add(m[1])
		if d, err := url.PathUnescape(m[1]); err == nil {
			add(d)
		}
	}
	if u, err := url.Parse(dsn); err == nil {
		if p, ok := u.User.Password(); ok {
			add(p)
		}
		q := u.Query()
		for _, k := range passwordKeys {
			for _, v := range q[k] {
				add(v, url.QueryEscape(v))
			}
		}
	}
	return out
}

// mask returns err with every secret of s masked in its message, or nil.
// The wrapped chain stays reachable for errors.Is; only the text changes.
func (s storeSpec) mask(err error) error {
	if err == nil || len(s.secrets) == 0 {
		return err
	}
	msg := err.Error()
	for _, secret := range s.secrets {
		msg = strings.ReplaceAll(msg, secret, mask)
	}
	return maskedError{msg: msg, err: err}
}

// maskedError is an error whose message had credentials taken out.
type maskedError struct {
	msg string
	err error
}

func (e maskedError) Error() string { return e.msg }
func (e maskedError) Unwrap() error { return e.err }

// snapshotEvery is how often a server on SQLite writes its read cache's
// snapshot again when the directory has changed: after a crash, the next
// start catches up from at most this far back, through the change log.
const snapshotEvery = 10 * time.Minute

// backend is an open store, ready to serve from.
type backend struct {
	// dir is what the server answers from: the store, behind the read
	// cache when the store is not already in memory.
	dir people.Store
	// answers is where GetPerson and GetPeople read, keeping each person's
	// encoded answer: the read cache, or nil when there is none.
	answers grpcserver.Keeper
	// name names the store in logs, credentials masked.
	name string
	// collectors are the store's metrics, for the metrics address.
	collectors []prometheus.Collector
	// close closes the cache, then the store.
	close func() error
}

// openBackend opens (creating and migrating where needed) the store spec
// names, and puts the read cache in front of it where one helps. It fails
// with an error that names the store, credentials masked. A positive
// cacheMax bounds the read cache (cache.Options.MaxBytes).
func openBackend(ctx context.Context, log *slog.Logger, spec storeSpec, cacheMax int64) (backend, error) {
	var (
		store people.Store
		cs    []prometheus.Collector
	)
	switch spec.kind {
	case storeMemory:
		// Already in memory: a cache would only copy it.
		if cacheMax > 0 {
			log.Warn("the memory store has no read cache to bound; --cache-max-bytes is ignored")
		}
		return backend{dir: memory.New(0, people.Seed()...), name: spec.name, close: func() error { return nil }}, nil
	case storePostgres:
		s, err := postgres.Open(ctx, spec.spec, 0, log)
		if err != nil {
			return backend{}, spec.mask(fmt.Errorf("open store %s: %w", spec.name, err))
		}
		store, cs = s, []prometheus.Collector{telemetry.PoolCollector(s.Pool())}
	default:
		s, err := sqlite.Open(ctx, spec.spec, 0)
		if err != nil {
			return backend{}, fmt.Errorf("open store: %w", err)
		}
		store, cs = s, append(telemetry.SQLCollectors(s.DBs()), telemetry.SQLiteCollector(s))
	}
	// Reads are answered from memory, kept current by the change log; on
	// PostgreSQL other replicas write too. On SQLite, which only this
	// process writes, the whole-directory cache keeps a snapshot beside
	// the file, so that the next start reads one file instead of every
	// row (see cache.Options.Snapshot); a bounded cache loads nothing.
	opts := cache.Options{Shared: spec.kind == storePostgres, Log: log, MaxBytes: cacheMax}
	if spec.kind == storeSQLite && cacheMax <= 0 {
		opts.Snapshot, opts.SnapshotEvery = spec.spec+"-cache", snapshotEvery
	}
	c := cache.New(store, opts)
	if cacheMax > 0 {
		cs = append(cs, telemetry.CacheCollector(c))
	}
	return backend{
		dir:        c,
		answers:    c,
		name:       spec.name,
		collectors: cs,
		close:      func() error { return errors.Join(c.Close(), store.Close()) },
	}, nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/postgres"
)

// writeLock is the advisory lock RouteGuide's PostgreSQL writers take
// (internal/postgres: "RouteGui").
const writeLock = 0x526f757465477569

// benchPostgres measures the loads and the writes on PostgreSQL, each load
// in the database created anew, the writes on the full load's.
func benchPostgres(ctx context.Context, cfg config, out *figures, log io.Writer) error {
	connCfg, err := pgx.ParseConfig(cfg.postgres)
	if err != nil {
		return err
	}
	name := connCfg.Database
	switch name {
	case "", "postgres", "template0", "template1", "test", "routeguide_scale":
		return fmt.Errorf("refusing to drop the database %q: name one of its own", name)
	}
	admin := connCfg.Copy()
	admin.Database = "postgres"
	defer dropDatabase(context.WithoutCancel(ctx), admin, name)

	ps := generate(cfg.people)
	var b best
	for rep := range cfg.repeat {
		for _, kind := range cfg.loads {
			if err := loadPostgresAnew(ctx, cfg, admin, connCfg, kind, ps, &b, log); err != nil {
				return fmt.Errorf("load %s: %w", kind, err)
			}
			if kind != "full" || rep < cfg.repeat-1 {
				continue
			}
			if err := writesPostgres(ctx, cfg, connCfg, &b, log); err != nil {
				return err
			}
		}
	}
	b.print(out)
	return nil
}

// loadPostgresAnew creates the database anew and measures a load of kind
// into it. A full load is left settled for writes: its statistics
// gathered and its dirty pages written out, so that neither lands in a
// write run.
func loadPostgresAnew(ctx context.Context, cfg config, admin, connCfg *pgx.ConnConfig, kind string, ps []people.Person, b *best, log io.Writer) error {
	if err := createPostgres(ctx, admin, connCfg.Database, cfg.postgres); err != nil {
		return err
	}
	conn, err := connectPostgres(ctx, connCfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var sync string
	if err := conn.QueryRow(ctx, "SHOW synchronous_commit").Scan(&sync); err != nil || sync != "on" {
		return fmt.Errorf("synchronous_commit is %q (%v), not on", sync, err)
	}
	if kind == "bare" {
		if _, err := conn.Exec(ctx, "DROP INDEX people_by_city"); err != nil {
			return err
		}
	}
	fmt.Fprintf(log, "postgres: load %s, %d people\n", kind, len(ps))
	pid := conn.PgConn().PID()
	scpu0, cpu0, t0 := cpuOf(pid), cpuSelf(), time.Now()
	if err := loadPostgres(ctx, conn, ps, kind == "full", cfg.pgChunk); err != nil {
		return err
	}
	b.keep("pg_load_"+kind, 1, len(ps), time.Since(t0), cpuSelf()-cpu0, cpuOf(pid)-scpu0)
	if kind != "full" {
		return nil
	}
	if _, err := conn.Exec(ctx, "VACUUM ANALYZE"); err != nil {
		return err
	}
	_, err = conn.Exec(ctx, "CHECKPOINT")
	return err
}

// writesPostgres measures the write runs, -repeat times each.
func writesPostgres(ctx context.Context, cfg config, connCfg *pgx.ConnConfig, b *best, log io.Writer) error {
	for rep := range cfg.repeat {
		for _, c := range cfg.conns {
			for _, lock := range []bool{false, true} {
				if lock && c == 1 {
					continue // one writer waits for nobody
				}
				for _, g := range cfg.groups {
					k := fmt.Sprintf("pg_write_c%d_g%d", c, g)
					if lock {
						k += "_lock"
					}
					fmt.Fprintf(log, "postgres: %s\n", k)
					r, err := writePostgres(ctx, connCfg, fmt.Sprintf("%s-%d", k, rep), c, g, lock, cfg.duration, cfg.maxTxns)
					if err != nil {
						return fmt.Errorf("%s: %w", k, err)
					}
					b.keep(k, g, r.people, r.wall, r.cpu, r.serverCPU)
				}
			}
		}
	}
	return nil
}

// connectPostgres connects with synchronous_commit on: a commit returns
// once its log is flushed, as RouteGuide's do.
func connectPostgres(ctx context.Context, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	cfg = cfg.Copy()
	cfg.RuntimeParams["synchronous_commit"] = "on"
	return pgx.ConnectConfig(ctx, cfg)
}

// createPostgres drops the database name and creates it again as
// RouteGuide does: its store's Open, with its migrations, then Close.
func createPostgres(ctx context.Context, admin *pgx.ConnConfig, name, url string) error {
	if err := dropDatabase(ctx, admin, name); err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return err
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	conn.Close(ctx)
	if err != nil {
		return err
	}
	st, err := postgres.Open(ctx, url, 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	return st.Close()
}

func dropDatabase(ctx context.Context, admin *pgx.ConnConfig, name string) error {
	conn, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	return err
}

// pgHobbies returns h as the store binds it: never NULL.
func pgHobbies(h []string) []string {
	if h == nil {
		return []string{}
	}
	return h
}

// loadPostgres adds ps, chunk people a transaction, each table's rows
// copied (COPY) in one stream: the people, and with all, their hobbies and
// their changes, logged from the revision after the latest, as an import
// by loadPrincipal.
func loadPostgres(ctx context.Context, conn *pgx.Conn, ps []people.Person, all bool, chunk int) error {
	var rev int64
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(revision), 0) FROM changes").Scan(&rev); err != nil {
		return err
	}
	for start := 0; start < len(ps); start += chunk {
		c := ps[start:min(start+chunk, len(ps))]
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			idx := byName(c)
			_, err := tx.CopyFrom(ctx, pgx.Identifier{"people"}, []string{"name", "age", "gender", "hobbies", "street", "city"},
				pgx.CopyFromSlice(len(idx), func(i int) ([]any, error) {
					p := c[idx[i]]
					return []any{p.Name, p.Age, int32(p.Gender), pgHobbies(p.Hobbies), p.Address.Street, p.Address.City}, nil
				}))
			if err != nil || !all {
				return err
			}
			hs := hobbyRows(c)
			_, err = tx.CopyFrom(ctx, pgx.Identifier{"hobbies"}, []string{"hobby", "name"},
				pgx.CopyFromSlice(len(hs), func(i int) ([]any, error) { return []any{hs[i].hobby, hs[i].name}, nil }))
			if err != nil {
				return err
			}
			at := time.Now().UnixMilli()
			_, err = tx.CopyFrom(ctx, pgx.Identifier{"changes"},
				[]string{"revision", "type", "name", "age", "gender", "hobbies", "street", "city", "principal", "peer", "request_id", "at"},
				pgx.CopyFromSlice(len(c), func(i int) ([]any, error) {
					p := c[i]
					return []any{rev + int64(i) + 1, int16(people.Added), p.Name, p.Age, int32(p.Gender), pgHobbies(p.Hobbies), p.Address.Street, p.Address.City,
						loadPrincipal, loadPeer, "", at}, nil
				}))
			return err
		})
		if err != nil {
			return err
		}
		rev += int64(len(c))
	}
	return nil
}

// The statements of a write transaction on PostgreSQL: each table's rows
// for the whole group in one statement, from arrays, as the store's
// batch does (its hobbies lists as array literals, which arrays of
// arrays, being rectangular, cannot hold).
const (
	pgAddPeople = `INSERT INTO people (name, age, gender, hobbies, street, city)
		SELECT n, a, g, h::text[], s, c FROM unnest($1::text[], $2::int4[], $3::int4[], $4::text[], $5::text[], $6::text[]) AS u(n, a, g, h, s, c)`
	pgAddHobbies = `INSERT INTO hobbies (hobby, name) SELECT * FROM unnest($1::text[], $2::text[])`
	pgAddChanges = `INSERT INTO changes (revision, type, name, age, gender, hobbies, street, city, principal, peer, request_id, at)
		SELECT r, 1, n, a, g, h::text[], s, c, $8, $9, id, $11 FROM unnest($1::int8[], $2::text[], $3::int4[], $4::int4[], $5::text[], $6::text[], $7::text[], $10::text[]) AS u(r, n, a, g, h, s, c, id)`
	pgAddRequests = `INSERT INTO requests (id, digest, expires, outcome) SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::text[])
		ON CONFLICT (id) DO UPDATE SET digest = excluded.digest, expires = excluded.expires, outcome = excluded.outcome`
)

// pgBatch returns a write transaction adding as, in one round trip:
// BEGIN, the lock when lock, each table's rows, COMMIT.
func pgBatch(as []addition, lock bool) *pgx.Batch {
	n := len(as)
	var (
		name, hobbies, street, city, id, digest, outcome = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		age, gender                                      = make([]int32, n), make([]int32, n)
		rev, expires                                     = make([]int64, n), make([]int64, n)
		hobby, hobbyName                                 []string
	)
	for i, a := range as {
		name[i], age[i], gender[i], hobbies[i], street[i], city[i] = a.p.Name, a.p.Age, int32(a.p.Gender), postgres.ArrayLiteral(a.p.Hobbies), a.p.Address.Street, a.p.Address.City
		rev[i], id[i], digest[i], expires[i], outcome[i] = a.rev, a.id, a.digest, a.expires, a.outcome
		for _, h := range a.hobbyTag {
			hobby, hobbyName = append(hobby, h), append(hobbyName, a.p.Name)
		}
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	if lock {
		b.Queue("SELECT pg_advisory_xact_lock($1)", int64(writeLock))
	}
	b.Queue(pgAddPeople, name, age, gender, hobbies, street, city)
	b.Queue(pgAddHobbies, hobby, hobbyName)
	b.Queue(pgAddChanges, rev, name, age, gender, hobbies, street, city, loadPrincipal, writePeer, id, as[0].at)
	b.Queue(pgAddRequests, id, digest, expires, outcome)
	b.Queue("COMMIT")
	return b
}

// writeResult is what a write run committed, in what time.
type writeResult struct {
	people, txns int
	wall, cpu    time.Duration
	serverCPU    time.Duration // the run's backends'
}

// writePostgres commits, from conns connections at once, for d or until
// maxTxns committed, transactions that each add g people with the rows
// of an AddPerson, named prefix and a number.
func writePostgres(ctx context.Context, cfg *pgx.ConnConfig, prefix string, conns, g int, lock bool, d time.Duration, maxTxns int) (writeResult, error) {
	cs := make([]*pgx.Conn, conns)
	defer func() {
		for _, c := range cs {
			if c != nil {
				c.Close(context.WithoutCancel(ctx))
			}
		}
	}()
	for i := range cs {
		c, err := connectPostgres(ctx, cfg)
		if err != nil {
			return writeResult{}, err
		}
		cs[i] = c
	}
	var latest int64
	if err := cs[0].QueryRow(ctx, "SELECT coalesce(max(revision), 0) FROM changes").Scan(&latest); err != nil {
		return writeResult{}, err
	}
	var (
		revs, names, txns atomic.Int64 // revisions and names handed out; transactions committed
		firstErr          error
		once              sync.Once
		wg                sync.WaitGroup
	)
	revs.Store(latest)
	serverCPU := func() (t time.Duration) {
		for _, c := range cs {
			t += cpuOf(c.PgConn().PID())
		}
		return t
	}
	scpu0, cpu0, t0 := serverCPU(), cpuSelf(), time.Now()
	runCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for runCtx.Err() == nil && txns.Load() < int64(maxTxns) {
				first := names.Add(int64(g)) - int64(g)
				rev := revs.Add(int64(g)) - int64(g)
				as := additions(prefix+"-", int(first), g, rev)
				// A transaction sent is let finish, so that the run
				// counts only commits, whole.
				if err := c.SendBatch(context.WithoutCancel(ctx), pgBatch(as, lock)).Close(); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
				txns.Add(1)
			}
		}()
	}
	wg.Wait()
	r := writeResult{txns: int(txns.Load()), wall: time.Since(t0), cpu: cpuSelf() - cpu0, serverCPU: serverCPU() - scpu0}
	r.people = r.txns * g
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	if errors.Is(firstErr, context.DeadlineExceeded) && ctx.Err() == nil {
		firstErr = nil
	}
	return r, firstErr
}

package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"modernc.org/sqlite"

	"github.com/routeguide/routeguide/internal/people"
	rgsqlite "github.com/routeguide/routeguide/internal/sqlite"
)

// The origin every loaded change records, as `routeguide import` run
// locally would.
const (
	loadPrincipal = "local"
	loadPeer      = "@"
	writePeer     = "127.0.0.1:54321"
)

// benchSQLite measures the loads and the writes on SQLite, each load in a
// new file, the writes on the last full load's.
func benchSQLite(ctx context.Context, cfg config, out *figures, log io.Writer) error {
	dir := cfg.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "engine-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	ps := generate(cfg.people)
	var b best
	var written *sql.DB // the last full load's, for the writes
	defer func() {
		if written != nil {
			written.Close()
		}
	}()
	for rep := range cfg.repeat {
		for _, kind := range cfg.loads {
			path := filepath.Join(dir, fmt.Sprintf("load-%s-%d.db", kind, rep))
			db, err := createSQLite(ctx, path)
			if err != nil {
				return err
			}
			if kind == "bare" {
				if _, err := db.ExecContext(ctx, "DROP INDEX people_by_city"); err != nil {
					db.Close()
					return err
				}
			}
			fmt.Fprintf(log, "sqlite: load %s, %d people\n", kind, len(ps))
			cpu0, t0 := cpuSelf(), time.Now()
			err = loadSQLite(ctx, db, ps, kind == "full", cfg.sqliteChunk, cfg.rows)
			wall, cpu := time.Since(t0), cpuSelf()-cpu0
			if err != nil {
				db.Close()
				return fmt.Errorf("load %s: %w", kind, err)
			}
			b.keep("sqlite_load_"+kind, 1, len(ps), wall, cpu, -1)
			if kind == "full" && rep == cfg.repeat-1 {
				written = db
				continue
			}
			db.Close()
			removeSQLite(path)
		}
	}
	if written != nil {
		if err := checkpoint(ctx, written); err != nil {
			return err
		}
		for rep := range cfg.repeat {
			for _, g := range cfg.groups {
				fmt.Fprintf(log, "sqlite: write g%d\n", g)
				n, _, wall, cpu, err := writeSQLite(ctx, written, fmt.Sprintf("w%d-%d-", g, rep), g, cfg.duration, cfg.maxTxns)
				if err != nil {
					return fmt.Errorf("write g%d: %w", g, err)
				}
				b.keep(fmt.Sprintf("sqlite_write_g%d", g), g, n, wall, cpu, -1)
			}
		}
	}
	b.print(out)
	return nil
}

// removeSQLite removes the file at path and the files SQLite and the
// store keep beside it.
func removeSQLite(path string) {
	for _, suffix := range []string{"", "-wal", "-shm", "-lock"} {
		os.Remove(path + suffix)
	}
}

// generate returns n of genpeople's people, in its order.
func generate(n int) []people.Person {
	ps := make([]people.Person, n)
	for j, i := range order(n) {
		ps[j] = generated(i)
	}
	return ps
}

// createSQLite creates the directory at path as RouteGuide does (its
// store's Open, with its migrations), closes the store and opens the file
// as the store's writer does.
func createSQLite(ctx context.Context, path string) (*sql.DB, error) {
	st, err := rgsqlite.Open(ctx, path, 0)
	if err != nil {
		return nil, err
	}
	if err := st.Close(); err != nil {
		return nil, err
	}
	return openSQLite(path)
}

// openSQLite opens the file at path with the pragmas internal/sqlite's
// Open gives its writer: WAL, synchronous=FULL with fdatasync, the
// immediate write lock at BEGIN, statement journals in memory and
// checkpoints every 8,192 pages; its page cache is sized as the store's
// (rgsqlite.SizeWriterCache) by the loads and the writes. One connection,
// as the store's one writer.
func openSQLite(path string) (*sql.DB, error) {
	sqlite.Fdatasync(true)
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + url.Values{
		"_pragma": {"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)"},
		"_txlock": {"immediate"},
	}.Encode() + "&_pragma=temp_store(memory)&_pragma=wal_autocheckpoint(8192)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	return db, nil
}

// checkpoint writes the log into the file, so that a write run does not
// pay for the load's pages.
func checkpoint(ctx context.Context, db *sql.DB) error {
	_, err := db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
	return err
}

// sqliteRows are the statements of the rows a person adds, each INSERT of
// many rows made of a head and a row's placeholders.
var sqliteRows = struct {
	people, hobbies, changes, requests rowsStmt
}{
	people:   rowsStmt{"INSERT OR IGNORE INTO people (name, age, gender, hobbies, street, city) VALUES ", "(?, ?, ?, ?, ?, ?)", "", 6},
	hobbies:  rowsStmt{"INSERT OR IGNORE INTO hobbies (hobby, name) VALUES ", "(?, ?)", "", 2},
	changes:  rowsStmt{"INSERT INTO changes (revision, type, name, age, gender, hobbies, street, city, principal, peer, request_id, at) VALUES ", "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", "", 12},
	requests: rowsStmt{"INSERT INTO requests (id, digest, expires, outcome) VALUES ", "(?, ?, ?, ?)", " ON CONFLICT (id) DO UPDATE SET digest = excluded.digest, expires = excluded.expires, outcome = excluded.outcome", 4},
}

// rowsStmt is an INSERT of any number of rows: head, the row's
// placeholders repeated, tail; cols is a row's number of values.
type rowsStmt struct {
	head, row, tail string
	cols            int
}

// stmts prepares each statement once on the one connection, whose
// transactions are run by hand (BEGIN IMMEDIATE, COMMIT): a database/sql
// transaction would hold the connection, and a statement prepared meanwhile
// wait for it for ever.
type stmts struct {
	conn *sql.Conn
	m    map[string]*sql.Stmt
}

func (s *stmts) get(ctx context.Context, r rowsStmt, n int) (*sql.Stmt, error) {
	text := r.head + strings.Repeat(r.row+",", n-1) + r.row + r.tail
	if st, ok := s.m[text]; ok {
		return st, nil
	}
	st, err := s.conn.PrepareContext(ctx, text)
	if err != nil {
		return nil, err
	}
	if s.m == nil {
		s.m = map[string]*sql.Stmt{}
	}
	s.m[text] = st
	return st, nil
}

// newStmts takes db's connection for the statements.
func newStmts(ctx context.Context, db *sql.DB) (*stmts, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	return &stmts{conn: conn}, nil
}

func (s *stmts) close() {
	for _, st := range s.m {
		st.Close()
	}
	s.conn.Close()
}

// inTx runs fn in a write transaction, which it commits when fn returns
// nil and rolls back otherwise.
func (s *stmts) inTx(ctx context.Context, fn func() error) error {
	if _, err := s.conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	err := fn()
	if err == nil {
		_, err = s.conn.ExecContext(ctx, "COMMIT")
	}
	if err != nil {
		s.conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
	}
	return err
}

// insert writes args, rows of r, in statements of at most max rows.
func (s *stmts) insert(ctx context.Context, r rowsStmt, args []any, max int) error {
	for len(args) > 0 {
		n := min(len(args)/r.cols, max)
		st, err := s.get(ctx, r, n)
		if err != nil {
			return err
		}
		if _, err := st.ExecContext(ctx, args[:n*r.cols]...); err != nil {
			return err
		}
		args = args[n*r.cols:]
	}
	return nil
}

// personArgs returns p's people row as the SQLite store binds it: the
// hobbies as a JSON array.
func personArgs(p people.Person) []any {
	h, _ := json.Marshal(p.Hobbies) // a []string always encodes
	if p.Hobbies == nil {
		h = []byte("[]")
	}
	return []any{p.Name, p.Age, int32(p.Gender), string(h), p.Address.Street, p.Address.City}
}

// hobbyRow is a row of the hobbies table.
type hobbyRow struct{ hobby, name string }

// hobbyRows returns the hobbies rows of ps, in key order.
func hobbyRows(ps []people.Person) []hobbyRow {
	var rows []hobbyRow
	for _, p := range ps {
		for _, h := range tags(p.Hobbies) {
			rows = append(rows, hobbyRow{h, p.Name})
		}
	}
	slices.SortFunc(rows, func(a, b hobbyRow) int {
		return cmpOr(strings.Compare(a.hobby, b.hobby), strings.Compare(a.name, b.name))
	})
	return rows
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// byName returns the indexes of ps in the order of their names.
func byName(ps []people.Person) []int {
	idx := make([]int, len(ps))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return strings.Compare(ps[a].Name, ps[b].Name) })
	return idx
}

// loadSQLite adds ps to db, chunk people a transaction: their people
// rows, and with all their hobbies and changes rows, logged from the
// revision after the latest, as an import by loadPrincipal.
func loadSQLite(ctx context.Context, db *sql.DB, ps []people.Person, all bool, chunk, rows int) error {
	var rev int64
	if err := db.QueryRowContext(ctx, "SELECT max(revision) FROM changes").Scan(&rev); err != nil {
		return err
	}
	s, err := newStmts(ctx, db)
	if err != nil {
		return err
	}
	defer s.close()
	var args []any
	for c := range slices.Chunk(ps, chunk) {
		if err := rgsqlite.SizeWriterCache(ctx, s.conn); err != nil {
			return err
		}
		err := s.inTx(ctx, func() error {
			// Each person's row is made once, for the people and the
			// change log's statements both, as the store's import does.
			pa := make([][]any, len(c))
			for i, p := range c {
				pa[i] = personArgs(p)
			}
			args = args[:0]
			for _, i := range byName(c) {
				args = append(args, pa[i]...)
			}
			if err := s.insert(ctx, sqliteRows.people, args, rows); err != nil {
				return err
			}
			if !all {
				return nil
			}
			args = args[:0]
			for _, h := range hobbyRows(c) {
				args = append(args, h.hobby, h.name)
			}
			if err := s.insert(ctx, sqliteRows.hobbies, args, rows); err != nil {
				return err
			}
			args = args[:0]
			at := time.Now().UnixMilli()
			for i := range c {
				rev++
				args = append(args, rev, int(people.Added))
				args = append(args, pa[i]...)
				args = append(args, loadPrincipal, loadPeer, "", at)
			}
			return s.insert(ctx, sqliteRows.changes, args, rows)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// addition is one AddPerson's rows beyond the person: its change's
// origin and revision, and its request's record.
type addition struct {
	p        people.Person
	rev      int64
	id       string // the request id, a random UUID
	digest   string
	at       int64 // when, Unix milliseconds
	expires  int64
	outcome  string
	hobbyTag []string
}

// additions returns g additions of new people named prefix-NNNNNNN from
// first on, their changes numbered after rev, made now.
func additions(prefix string, first, g int, rev int64) []addition {
	now := time.Now()
	as := make([]addition, g)
	for i := range as {
		p := generated(first + i)
		p.Name = personName(prefix, first+i)
		sum := sha256.Sum256([]byte(p.Name))
		as[i] = addition{
			p: p, rev: rev + int64(i) + 1, id: uuid.NewString(), digest: hex.EncodeToString(sum[:]),
			at: now.UnixMilli(), expires: now.Add(24 * time.Hour).UnixMilli(),
			outcome: fmt.Sprintf(`{"revision":%d}`, rev+int64(i)+1), hobbyTag: tags(p.Hobbies),
		}
	}
	return as
}

// writeSQLite commits, for d or maxTxns transactions, transactions that
// each add g people, named prefix and a number, with the rows of an
// AddPerson, and returns how many
// people and transactions committed, in what wall and CPU time.
func writeSQLite(ctx context.Context, db *sql.DB, prefix string, g int, d time.Duration, maxTxns int) (n, txns int, wall, cpu time.Duration, err error) {
	var rev int64
	if err := db.QueryRowContext(ctx, "SELECT max(revision) FROM changes").Scan(&rev); err != nil {
		return 0, 0, 0, 0, err
	}
	s, err := newStmts(ctx, db)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer s.close()
	if err := rgsqlite.SizeWriterCache(ctx, s.conn); err != nil {
		return 0, 0, 0, 0, err
	}
	cpu0, t0 := cpuSelf(), time.Now()
	var args []any
	for txns < maxTxns && time.Since(t0) < d && ctx.Err() == nil {
		as := additions(prefix, n, g, rev)
		err := s.inTx(ctx, func() error {
			args = args[:0]
			for _, a := range as {
				args = append(args, personArgs(a.p)...)
			}
			if err := s.insert(ctx, sqliteRows.people, args, g); err != nil {
				return err
			}
			args = args[:0]
			for _, a := range as {
				for _, h := range a.hobbyTag {
					args = append(args, h, a.p.Name)
				}
			}
			if err := s.insert(ctx, sqliteRows.hobbies, args, 2*g); err != nil {
				return err
			}
			args = args[:0]
			for _, a := range as {
				args = append(args, a.rev, int(people.Added))
				args = append(args, personArgs(a.p)...)
				args = append(args, loadPrincipal, writePeer, a.id, a.at)
			}
			if err := s.insert(ctx, sqliteRows.changes, args, g); err != nil {
				return err
			}
			args = args[:0]
			for _, a := range as {
				args = append(args, a.id, a.digest, a.expires, a.outcome)
			}
			return s.insert(ctx, sqliteRows.requests, args, g)
		})
		if err != nil {
			return 0, 0, 0, 0, err
		}
		n += g
		txns++
		rev += int64(g)
	}
	return n, txns, time.Since(t0), cpuSelf() - cpu0, ctx.Err()
}

// Package sqlite is the embedded people directory: one SQLite file, in WAL
// mode with full sync, so a write that returned is on disk. It is what
// `routeguide serve` uses by default.
//
// Writes commit in groups: the writes waiting while one transaction commits
// go together into the next, so that concurrent writers share one fsync
// instead of queueing for one each. A group's additions go in together, a
// few statements for all of them (batch.go); its other writes each run in
// a savepoint of their own.
package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/routeguide/routeguide/internal/groupcommit"
	"github.com/routeguide/routeguide/internal/notify"
	"github.com/routeguide/routeguide/internal/people"
)

// DefaultRetain is how many recent changes a Store keeps for watchers that
// resume from a revision: ten of the server's largest import transactions,
// so a watcher that falls a little behind a bulk import can still catch up.
const DefaultRetain = 1_000_000

//go:embed migrations/*.sql
var migrations embed.FS

// maxGroup is the most writes one transaction commits together.
const maxGroup = 256

// Store is a directory in one SQLite file, safe for concurrent use. Writes go
// through one connection, in order; reads use a pool.
type Store struct {
	path   string
	lock   *os.File // held locked while the store is open; see lock
	write  *sql.DB
	read   *sql.DB
	retain int
	latest notify.Latest
	damage atomic.Pointer[damage] // the first read that found the file damaged
	// imported is the change log of the last import transaction, kept
	// until a read of the log has passed its end (see Changes).
	imported atomic.Pointer[importedChanges]
	// recent is the change log of the last groups (see recent.go).
	recent people.RecentChanges

	group *groupcommit.Committer[write]
	// stmts are the write path's statements, prepared on the writer once
	// (see writeStatements); a group's transaction binds them to itself.
	stmts map[string]*sql.Stmt
	// pruned is the revision up to which the change log has been
	// trimmed, and nextSweep when (Unix milliseconds) finish next deletes
	// expired request ids: see finish.
	pruned    atomic.Int64
	nextSweep atomic.Int64
}

// write is a write as its group carries it: run applies it in a savepoint
// of the group's transaction. An addition also carries its person and its
// people.Write, so that the group's batch (runBatch) can add it together
// with the group's other additions instead.
type write struct {
	run writeFunc
	add *people.Person // the person an Add adds; nil for other writes
	w   people.Write   // the Add's Write
	// out is where the batch puts the outcome of a keyed addition it
	// refused: the refusal is the write's answer, recorded with its
	// request id, so the write is applied (and the group commits the
	// record) while its caller gets the error.
	out *people.Outcome
}

// writeFunc is a write, run in its group's transaction.
type writeFunc = func(ctx context.Context, g *groupTx) error

// pending is a write waiting for its group to commit.
type pending = groupcommit.Write[write]

var (
	_ people.Store  = (*Store)(nil)
	_ people.Pinger = (*Store)(nil)
)

// Open opens or creates the directory at path, applying any migrations the
// file lacks; a new file starts with the seed's Alice and Bob. It keeps at
// least the last retain changes (DefaultRetain when retain is 0; see
// trimSlack).
//
// One process serves one file: Open holds a lock on path+"-lock" until
// Close, and fails, naming the process holding it, when another Store has
// it open. It also fails, naming the file, when the file is damaged or
// cannot be written (see check).
func Open(ctx context.Context, path string, retain int) (*Store, error) {
	return openWith(ctx, path, retain, nil)
}

// openWith is Open with extra SQLite URI parameters, which tests use to open a
// file read-only.
func openWith(ctx context.Context, path string, retain int, extra url.Values) (*Store, error) {
	if retain <= 0 {
		retain = DefaultRetain
	}
	lockFile, err := lock(path)
	if err != nil {
		return nil, err
	}
	if err := checkHeader(path); err != nil {
		unlock(lockFile)
		return nil, fmt.Errorf("refusing %s: %w", path, err)
	}
	// Commit with fdatasync(2), as SQLite's own Linux builds do: it
	// writes the log's data and the size needed to read it back, all a
	// commit needs to be durable, without the timestamp update fsync(2)
	// also waits for. Where it is unavailable, fsync stays.
	sqlite.Fdatasync(true)
	if err := registerWALVFS(); err != nil {
		unlock(lockFile)
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + url.Values{
		"vfs": {walVFSName}, // the unix VFS, writing the log a transaction at a time
		"_pragma": {
			"journal_mode(WAL)",
			"synchronous(FULL)", // fsync the WAL on every commit: acknowledged means durable
			"busy_timeout(10000)",
			// No memory map: the read cache's load reads every page of the
			// people table once, and through a map each stayed resident in
			// the server (150 MiB of 380 at a million people). Pages read
			// with a call each stay in the kernel's page cache instead, and
			// the load took no longer.
		},
		"_txlock": {"immediate"}, // take the write lock at BEGIN, not at the first write
	}.Encode()
	if len(extra) > 0 {
		dsn += "&" + extra.Encode()
	}
	// The writer's page cache is sized by writerCache, from the file's
	// size: the DSN gives the size of a file under 1 GiB, and Open and
	// finish set it as the file grows. Its statement and savepoint
	// journals stay in memory: they only undo a statement or a savepoint
	// within a transaction (the write-ahead log is what survives a
	// crash), and written to a temporary file they were a tenth of a
	// group's time and of an import's CPU. It checkpoints the log into
	// the file every 8,192 pages (32 MiB) rather than SQLite's 1,000: a busy
	// directory rewrites the same few pages (each index's end) in group
	// after group, and a checkpoint writes each page once however often the
	// log holds it, so rarer checkpoints write and sync far less.
	write, err := sql.Open("sqlite", dsn+fmt.Sprintf("&_pragma=cache_size(%d)", -writerCacheSmall>>10)+"&_pragma=temp_store(memory)&_pragma=wal_autocheckpoint(8192)")
	if err != nil {
		unlock(lockFile)
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	read, err := sql.Open("sqlite", dsn)
	if err != nil {
		write.Close()
		unlock(lockFile)
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	read.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)))
	read.SetMaxIdleConns(max(4, runtime.GOMAXPROCS(0)))

	s := &Store{path: path, lock: lockFile, write: write, read: read, retain: retain, recent: people.RecentChanges{Keep: recentKept}}
	s.group = groupcommit.New(maxGroup, s.begin)
	if err := s.migrate(ctx); err != nil {
		s.Close()
		if damaged(err) {
			return nil, fmt.Errorf("refusing %s: it is damaged: %w", path, err)
		}
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	if err := s.check(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("refusing %s: %w", path, err)
	}
	rev, err := s.Revision(ctx)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.latest.Advance(rev)
	if err := SizeWriterCache(ctx, s.write); err != nil {
		s.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := s.prepare(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return s, nil
}

// The writer's page cache holds writerCacheSmall bytes of pages while the
// file is under 1 GiB, and writerCacheLarge from then on.
//
// At the end of every write transaction SQLite drops from its page cache
// the pages past the end of the file, and when the cache has held a page
// numbered past that end by more than its hash table has slots, it looks
// at every page it holds to find them. It has, on almost every commit of
// new people: a B-tree that rebalances sibling pages and finds the new
// ones out of order swaps them through a temporary page number, that of
// the page at 1 GiB (SQLite's lock page), and the cache remembers that
// number as the highest it has held. So below 1 GiB each commit walks the
// whole cache. With 256 MiB of pages (some 63,000 with SQLite's own
// overhead) after an import of a million people, that walk was a third
// of the server's CPU under 64 AddPerson callers, about 2.4 ms a group;
// with 16 MiB it is a few percent, and the pages no longer cached come
// back from the kernel's page cache for some 2% of the server's CPU (CPU
// profiles of the same run). Past 1 GiB the lock page lies inside the
// file, no commit walks the cache, and the large cache spares the reads
// of trees that have outgrown the small one.
const (
	writerCacheSmall = 16 << 20
	writerCacheLarge = 256 << 20
	lockPageOffset   = 1 << 30 // where SQLite's lock page begins
)

// writerCache is the writer's page cache, in bytes, for a file of pages
// pages of pageSize bytes.
func writerCache(pages, pageSize int64) int64 {
	if pages*pageSize > lockPageOffset {
		return writerCacheLarge
	}
	return writerCacheSmall
}

// SizeWriterCache sets the page cache of the writer c (the writer, its one
// connection, or a transaction on it) for the file's size now (see
// writerCache). Setting the size it already has costs nothing.
// bench/engine gives its writer the same.
func SizeWriterCache(ctx context.Context, c querier) error {
	var pages, pageSize int64
	if err := c.QueryRowContext(ctx, "SELECT page_count, page_size FROM pragma_page_count, pragma_page_size").Scan(&pages, &pageSize); err != nil {
		return fmt.Errorf("size the page cache: %w", err)
	}
	if _, err := c.ExecContext(ctx, fmt.Sprintf("PRAGMA cache_size = %d", -writerCache(pages, pageSize)>>10)); err != nil {
		return fmt.Errorf("size the page cache: %w", err)
	}
	return nil
}

// migrate applies, in order and each in its own transaction, the embedded
// migrations newer than the file's user_version.
func (s *Store) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	slices.Sort(names)
	var version int
	if err := s.write.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return err
	}
	for i, name := range names {
		if i+1 <= version {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		tx, err := s.write.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("%s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", i+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// DBs returns the store's connection pools, for their statistics.
func (s *Store) DBs() map[string]*sql.DB {
	return map[string]*sql.DB{"sqlite_read": s.read, "sqlite_write": s.write}
}

// Close stops taking writes, waits for the group being committed, and closes
// the database. A write still waiting either commits or fails with
// Unavailable.
func (s *Store) Close() error {
	s.group.Close()
	for _, st := range s.stmts {
		st.Close()
	}
	err := errors.Join(s.read.Close(), s.write.Close())
	unlock(s.lock) // last: the file is not ours until SQLite has let go
	return err
}

const personColumns = "name, age, gender, hobbies, street, city"

// Person returns the person named name, or an error of kind people.NotFound.
func (s *Store) Person(ctx context.Context, name string) (people.Person, error) {
	row := s.read.QueryRowContext(ctx, "SELECT "+personColumns+" FROM people WHERE name = ?", name)
	p, err := scanPerson(row)
	if errors.Is(err, sql.ErrNoRows) {
		return people.Person{}, notFound(name)
	}
	if err != nil {
		return people.Person{}, s.readError("get person", err)
	}
	return p, nil
}

// Add stores p; AlreadyExists when the name is taken. Its group usually
// adds it together with the group's other additions (runBatch); run below
// adds it alone, in a savepoint, when the batch leaves it.
func (s *Store) Add(ctx context.Context, p people.Person) (int64, error) {
	w := people.WriteOf(ctx)
	o, err := s.applyOnce(ctx, "add person", write{add: &p, w: w}, func(ctx context.Context, g *groupTx) (people.Outcome, error) {
		res, err := g.ExecContext(ctx, insertPerson, personArgs(p)...)
		if err != nil {
			return people.Outcome{}, err
		}
		if n, err := res.RowsAffected(); err != nil {
			return people.Outcome{}, err
		} else if n == 0 {
			return people.Outcome{}, taken(p.Name)
		}
		if err := setHobbies(ctx, g, p.Name, nil, p.Hobbies); err != nil {
			return people.Outcome{}, err
		}
		return people.Outcome{}, g.record(ctx, people.Added, p, stamp(w))
	})
	return o.Revision, err
}

func taken(name string) error {
	return people.Errorf(people.AlreadyExists, "%q already exists", name)
}

// Update applies u to the person named name; NotFound when nobody has it,
// Invalid when the result breaks the rules, Aborted when the Write's etag
// is not the person's.
func (s *Store) Update(ctx context.Context, name string, u people.Update) (people.Person, int64, error) {
	w := people.WriteOf(ctx)
	o, err := s.applyOnce(ctx, "update person", write{w: w}, func(ctx context.Context, g *groupTx) (people.Outcome, error) {
		old, err := scanPerson(g.QueryRowContext(ctx, selectPerson, name))
		if errors.Is(err, sql.ErrNoRows) {
			return people.Outcome{}, notFound(name)
		}
		if err != nil {
			return people.Outcome{}, err
		}
		if err := w.CheckETag(old); err != nil {
			return people.Outcome{}, err
		}
		updated := u.Apply(old)
		if err := people.Validate(updated); err != nil {
			return people.Outcome{}, err
		}
		if updated.Equal(old) {
			return people.Outcome{Person: &updated}, nil // no change: the write's revision is the latest
		}
		args := personArgs(updated)
		if _, err := g.ExecContext(ctx, updatePerson, append(args[1:], name)...); err != nil {
			return people.Outcome{}, err
		}
		if err := setHobbies(ctx, g, name, old.Hobbies, updated.Hobbies); err != nil {
			return people.Outcome{}, err
		}
		return people.Outcome{Person: &updated}, g.record(ctx, people.Updated, updated, stamp(w))
	})
	if err != nil {
		return people.Person{}, 0, err
	}
	return *o.Person, o.Revision, nil
}

// Delete removes the person named name; NotFound when nobody has it,
// Aborted when the Write's etag is not the person's.
func (s *Store) Delete(ctx context.Context, name string) (int64, error) {
	w := people.WriteOf(ctx)
	o, err := s.applyOnce(ctx, "delete person", write{w: w}, func(ctx context.Context, g *groupTx) (people.Outcome, error) {
		if w.IfMatch != "" {
			old, err := scanPerson(g.QueryRowContext(ctx, selectPerson, name))
			if errors.Is(err, sql.ErrNoRows) {
				return people.Outcome{}, notFound(name)
			}
			if err != nil {
				return people.Outcome{}, err
			}
			if err := w.CheckETag(old); err != nil {
				return people.Outcome{}, err
			}
		}
		var hobbies string
		err := g.QueryRowContext(ctx, deletePerson, name).Scan(&hobbies)
		if errors.Is(err, sql.ErrNoRows) {
			return people.Outcome{}, notFound(name)
		}
		if err != nil {
			return people.Outcome{}, err
		}
		old, err := decodeHobbies(hobbies)
		if err != nil {
			return people.Outcome{}, err
		}
		if err := setHobbies(ctx, g, name, old, nil); err != nil {
			return people.Outcome{}, err
		}
		return people.Outcome{}, g.record(ctx, people.Deleted, people.Person{Name: name}, stamp(w))
	})
	return o.Revision, err
}

// List returns up to q.Limit people matching q, in name order. Every filter
// is a range of an index, so a page costs the same wherever it starts.
func (s *Store) List(ctx context.Context, q people.Query) ([]people.Person, error) {
	query, args := listQuery(q)
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, s.readError("list people", err)
	}
	defer rows.Close()
	var out []people.Person
	for rows.Next() {
		p, err := scanPerson(rows)
		if err != nil {
			return nil, s.readError("list people", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readError("list people", err)
	}
	return out, nil
}

// Import adds or replaces every person in batch, in one transaction.
func (s *Store) Import(ctx context.Context, batch []people.Person) (people.ImportResult, error) {
	var r people.ImportResult
	w := people.WriteOf(ctx)
	by := stamp(w)
	origin := originArgs(by)
	if len(batch) == 0 && !w.Keyed() {
		rev, err := s.Revision(ctx)
		return people.ImportResult{Revision: rev}, err
	}
	// People are written in name order, so consecutive rows land on the
	// same pages of the name index; the sort is stable, so of two entries
	// for one name the later still wins. Changes are then logged in the
	// batch's own order, as every store does.
	order := make([]int, len(batch))
	for i := range order {
		order[i] = i
	}
	// Ties go by place, which makes the sort stable; SortStableFunc's
	// merges took twice as long (BenchmarkImport).
	slices.SortFunc(order, func(a, b int) int {
		if c := strings.Compare(batch[a].Name, batch[b].Name); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	types := make([]people.ChangeType, len(batch))
	replayed := false
	rev, err := s.inTx(ctx, "import people", func(tx *sql.Tx) error {
		replayed = false
		o, err := once(ctx, tx, w, func() (people.Outcome, error) {
			before, err := latestIn(ctx, tx)
			if err != nil {
				return people.Outcome{}, err
			}
			if err := s.importIn(ctx, tx, batch, order, types, origin, &r); err != nil {
				return people.Outcome{}, err
			}
			after, err := latestIn(ctx, tx)
			if err != nil {
				return people.Outcome{}, err
			}
			// Kept before the commit, which wakes the log's readers;
			// inTx lets them go should the commit fail.
			s.keepImported(batch, types, by, before, after)
			return people.Outcome{Import: &r}, nil
		})
		if err == nil && o.Import != nil && o.Import != &r {
			r, replayed = *o.Import, true // a repeat: what the first import counted
			r.Revision = o.Revision
		}
		if err == nil {
			err = o.Error()
		}
		return err
	})
	if !replayed {
		r.Revision = rev
	}
	return r, err
}

// importIn adds or replaces batch's people in tx, in order, counting them
// in r, and logs the changes with the origin's columns.
func (s *Store) importIn(ctx context.Context, tx *sql.Tx, batch []people.Person, order []int, types []people.ChangeType, origin []any, r *people.ImportResult) error {
	*r = people.ImportResult{}
	clear(types) // a retried transaction starts again
	im := importer{ctx: ctx, tx: tx, batch: batch, types: types, origin: origin, cols: make([]any, 0, 6*len(batch))}
	defer im.close()
	for _, p := range batch {
		im.cols = append(im.cols, personArgs(p)...)
	}
	for chunk := range slices.Chunk(order, importRows) {
		if err := im.add(chunk); err != nil {
			return err
		}
	}
	for chunk := range slices.Chunk(order, importRows) {
		if err := im.replace(chunk); err != nil {
			return err
		}
	}
	for i := range batch {
		switch types[i] {
		case 0:
			r.Unchanged++
		case people.Added:
			r.Added++
		default:
			r.Updated++
		}
	}
	return im.log()
}

// importRows is how many rows one statement of an import writes: one
// statement of many rows costs the driver a round of binding and stepping
// where a statement per row cost one each, which was most of an import's
// time. 256 people are 2,816 parameters in the change log's statement
// (eleven columns with the origin's four), well under SQLite's limit of
// 32,766.
const importRows = 256

// importer writes an import's people in statements of up to importRows
// rows, each prepared once for the transaction. Most imported people are
// new: add inserts them all, and replace then reads and rewrites, one by
// one, only those whose name was taken.
type importer struct {
	ctx   context.Context
	tx    *sql.Tx
	batch []people.Person
	types []people.ChangeType // what each person's change is; 0 for none
	// origin is the arguments of originColumns every change of the
	// import logs.
	origin []any
	// cols holds the arguments of personColumns of every person, six by
	// six in the batch's order: both the people and the change log's
	// statements take them, and making them (the hobbies encoded, every
	// value boxed) once is a twentieth of an import's CPU.
	cols []any

	stmts map[string]*sql.Stmt
	args  []any
}

func (im *importer) close() {
	for _, st := range im.stmts {
		st.Close()
	}
}

// stmt returns the statement made of head, rows copies of row separated
// by commas, and tail, prepared in the import's transaction once.
func (im *importer) stmt(head, row, tail string, rows int) (*sql.Stmt, error) {
	text := head + strings.Repeat(row+",", rows-1) + row + tail
	if st, ok := im.stmts[text]; ok {
		return st, nil
	}
	st, err := im.tx.PrepareContext(im.ctx, text)
	if err != nil {
		return nil, err
	}
	if im.stmts == nil {
		im.stmts = map[string]*sql.Stmt{}
	}
	im.stmts[text] = st
	return st, nil
}

// person returns the arguments of personColumns of the batch's i-th person.
func (im *importer) person(i int) []any { return im.cols[6*i : 6*i+6 : 6*i+6] }

// add inserts the people of chunk (indexes into the batch, in name order)
// whose names are free, with their hobbies, and marks them Added.
func (im *importer) add(chunk []int) error {
	im.args = im.args[:0]
	for _, i := range chunk {
		im.args = append(im.args, im.person(i)...)
	}
	// OR IGNORE rather than ON CONFLICT (name) DO NOTHING: name is the
	// only key and no value is ever NULL, so both skip the same rows, but
	// a statement that can fail midway on a NOT NULL constraint makes
	// SQLite copy every page it changes to a statement journal first, and
	// that copying was a twentieth of an import's CPU.
	st, err := im.stmt("INSERT OR IGNORE INTO people ("+personColumns+") VALUES ", "(?, ?, ?, ?, ?, ?)", " RETURNING name", len(chunk))
	if err != nil {
		return err
	}
	rows, err := st.QueryContext(im.ctx, im.args...)
	if err != nil {
		return err
	}
	added := make(map[string]bool, len(chunk))
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return err
		}
		added[name] = true
	}
	if err := rows.Close(); err != nil {
		return err
	}
	im.args = im.args[:0]
	hobbies := 0
	for _, i := range chunk {
		p := im.batch[i]
		// Of two entries for one name, the first was inserted; the
		// second replaces it.
		if !added[p.Name] {
			continue
		}
		delete(added, p.Name)
		im.types[i] = people.Added
		for _, h := range p.Hobbies {
			im.args = append(im.args, h, p.Name)
			hobbies++
		}
	}
	for hobbies > 0 {
		n := min(hobbies, importRows)
		st, err := im.stmt("INSERT OR IGNORE INTO hobbies (hobby, name) VALUES ", "(?, ?)", "", n) // OR IGNORE: as above
		if err != nil {
			return err
		}
		if _, err := st.ExecContext(im.ctx, im.args[:2*n]...); err != nil {
			return err
		}
		im.args = im.args[2*n:]
		hobbies -= n
	}
	return nil
}

// replace rewrites, one by one, the people of chunk whose names add found
// taken, unless they are equal to the stored person.
func (im *importer) replace(chunk []int) error {
	for _, i := range chunk {
		if im.types[i] != 0 {
			continue
		}
		p := im.batch[i]
		old, err := scanPerson(im.tx.QueryRowContext(im.ctx, "SELECT "+personColumns+" FROM people WHERE name = ?", p.Name))
		if err != nil {
			return err
		}
		if old.Equal(p) {
			continue // unchanged: types[i] stays 0, and nothing is logged
		}
		im.types[i] = people.Updated
		if _, err := im.tx.ExecContext(im.ctx, "UPDATE people SET age = ?, gender = ?, hobbies = ?, street = ?, city = ? WHERE name = ?",
			append(personArgs(p)[1:], p.Name)...); err != nil {
			return err
		}
		if err := setHobbies(im.ctx, im.tx, p.Name, old.Hobbies, p.Hobbies); err != nil {
			return err
		}
	}
	return nil
}

// log appends the import's changes to the log, in the batch's order.
// Every change of an import has the same origin, so a statement binds it
// once (?1 to ?4) rather than in each row: binding a text argument copies
// it into memory of SQLite's, and the origin was three of a row's eleven
// arguments.
func (im *importer) log() error {
	im.args = append(im.args[:0], im.origin...)
	n := 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		st, err := im.stmt("INSERT INTO changes (type, "+personColumns+", "+originColumns+")"+
			" SELECT column1, column2, column3, column4, column5, column6, column7, ?1, ?2, ?3, ?4 FROM (VALUES ",
			"(?, ?, ?, ?, ?, ?, ?)", ")", n)
		if err != nil {
			return err
		}
		_, err = st.ExecContext(im.ctx, im.args...)
		im.args, n = append(im.args[:0], im.origin...), 0
		return err
	}
	for i := range im.batch {
		if im.types[i] == 0 {
			continue
		}
		im.args = append(im.args, int(im.types[i]))
		im.args = append(im.args, im.person(i)...)
		if n++; n == importRows {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// listQuery returns the query List runs for q, and its arguments. The rows
// come in the order of the index walked, so that no query sorts its
// matches: by hobby, the hobbies table's (hobby, name) key, which comes
// first in the join (CROSS JOIN keeps SQLite from reordering it), with the
// name ranges and the order on its name; by city alone, people_by_city;
// otherwise the people table's name key. TestListPlans checks each plan.
func listQuery(q people.Query) (string, []any) {
	var (
		b    strings.Builder
		args []any
	)
	name := "p.name"
	if q.Hobby != "" {
		name = "h.name"
		b.WriteString("SELECT p.name, p.age, p.gender, p.hobbies, p.street, p.city FROM hobbies h CROSS JOIN people p ON p.name = h.name WHERE h.hobby = ? AND h.name > ?")
		args = append(args, q.Hobby, q.After)
	} else {
		b.WriteString("SELECT p.name, p.age, p.gender, p.hobbies, p.street, p.city FROM people p WHERE p.name > ?")
		args = append(args, q.After)
	}
	if q.City != "" {
		b.WriteString(" AND p.city = ?")
		args = append(args, q.City)
	}
	if q.NamePrefix != "" {
		b.WriteString(" AND " + name + " >= ?")
		args = append(args, q.NamePrefix)
		if end, ok := people.PrefixEnd(q.NamePrefix); ok {
			b.WriteString(" AND " + name + " < ?")
			args = append(args, end)
		}
	}
	b.WriteString(" ORDER BY " + name + " LIMIT ?")
	args = append(args, q.Limit)
	return b.String(), args
}

// changeBounds reads the oldest and latest revision in the log. SQLite
// answers a lone min() or max() from one end of the index, but a query with
// both scans the whole table, so each gets its own subquery.
const changeBounds = "SELECT (SELECT min(revision) FROM changes), (SELECT max(revision) FROM changes)"

// Changes returns up to limit changes after revision after.
func (s *Store) Changes(ctx context.Context, after int64, limit int) ([]people.Change, error) {
	if out, ok := s.recent.After(after, s.pruned.Load(), s.latest.Get(), limit); ok {
		return out, nil
	}
	var oldest, latest sql.NullInt64
	if err := s.read.QueryRowContext(ctx, changeBounds).Scan(&oldest, &latest); err != nil {
		return nil, s.readError("read changes", err)
	}
	if err := people.CheckResume(after, oldest.Int64, latest.Int64); err != nil {
		return nil, err
	}
	if out, ok := s.importedAfter(after, latest.Int64, limit); ok {
		return out, nil
	}
	rows, err := s.read.QueryContext(ctx,
		"SELECT "+changeColumns+" FROM changes WHERE revision > ? ORDER BY revision LIMIT ?", after, limit)
	if err != nil {
		return nil, s.readError("read changes", err)
	}
	defer rows.Close()
	var out []people.Change
	for rows.Next() {
		c, err := scanChange(rows)
		if err != nil {
			return nil, s.readError("read changes", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readError("read changes", err)
	}
	if err := people.CheckContiguous(after, latest.Int64, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Revision returns the latest revision.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	var rev sql.NullInt64
	if err := s.read.QueryRowContext(ctx, "SELECT max(revision) FROM changes").Scan(&rev); err != nil {
		return 0, s.readError("read revision", err)
	}
	return rev.Int64, nil
}

// WaitChange blocks until a revision beyond after exists or ctx ends. It
// sees the writes of this process; one SQLite file is served by one process.
func (s *Store) WaitChange(ctx context.Context, after int64) error {
	return s.latest.Wait(ctx, after)
}

// errClosed is what a write gets once the store is closing.
var errClosed = people.Errorf(people.Unavailable, "the directory is closing")

// apply has wr run in the next group of writes and returns the revision
// after it. wr.run runs with a context that keeps ctx's values but is never
// cancelled: an interrupted statement would roll back the whole group, so a
// write that a group has taken runs to the end, and apply waits for its
// outcome even when ctx ends meanwhile. A write whose ctx ends before its
// group starts is not applied.
func (s *Store) apply(ctx context.Context, op string, wr write) (int64, error) {
	w, err := s.group.Submit(ctx, wr, errClosed)
	if err != nil {
		return 0, err
	}
	<-w.Done()
	if w.Err != nil {
		return 0, dbError(op, w.Err)
	}
	return w.Rev, nil
}

// The write path's statements. prepare readies each on the writer once, so
// a write binds and steps them: run as text, each statement was parsed and
// planned anew by the driver, a fifth of a write's time.
const (
	insertPerson = "INSERT INTO people (" + personColumns + ") VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING"
	selectPerson = "SELECT " + personColumns + " FROM people WHERE name = ?"
	updatePerson = "UPDATE people SET age = ?, gender = ?, hobbies = ?, street = ?, city = ? WHERE name = ?"
	deletePerson = "DELETE FROM people WHERE name = ? RETURNING hobbies"
	insertHobby  = "INSERT INTO hobbies (hobby, name) VALUES (?, ?) ON CONFLICT DO NOTHING"
	deleteHobby  = "DELETE FROM hobbies WHERE hobby = ? AND name = ?"
	insertChange = "INSERT INTO changes (revision, type, " + personColumns + ", " + originColumns + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	maxRevision  = "SELECT max(revision) FROM changes"
	savepoint    = "SAVEPOINT write"
	release      = "RELEASE write"
	rollbackTo   = "ROLLBACK TO write"
	trimChanges  = "DELETE FROM changes WHERE revision <= ?"
)

// writeStatements are the statements prepare readies.
var writeStatements = []string{
	insertPerson, selectPerson, updatePerson, deletePerson, insertHobby, deleteHobby, insertChange,
	maxRevision, savepoint, release, rollbackTo, trimChanges,
	selectRequest, insertRequest, sweepExpired,
	batchPeople, batchHobbies, batchChanges, batchRequests, batchKnownRequests,
}

// prepare prepares writeStatements on the writer. It runs in Open, before
// any write: preparing on the writer's one connection while a group holds
// it would wait for ever.
func (s *Store) prepare(ctx context.Context) error {
	s.stmts = make(map[string]*sql.Stmt, len(writeStatements))
	for _, q := range writeStatements {
		st, err := s.write.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", q, err)
		}
		s.stmts[q] = st
	}
	return nil
}

// begin starts a group's transaction (see groupcommit.Tx). Its statements
// run with a context that is never cancelled, as apply says, so ctx is not
// used: the group runs to its end whoever has gone.
func (s *Store) begin(context.Context) (groupcommit.Tx[write], error) {
	ctx := context.Background()
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	g := &groupTx{s: s, tx: tx}
	if err := g.QueryRowContext(ctx, maxRevision).Scan(&g.rev); err != nil {
		tx.Rollback()
		return nil, err
	}
	g.first = g.rev
	return g, nil
}

// groupTx is a group's transaction on SQLite: first the group's additions
// together (RunBatch), then each other write in a savepoint. It counts the
// revisions itself: each change it logs takes the next, so no write reads
// the log's end.
type groupTx struct {
	s     *Store
	tx    *sql.Tx
	first int64                // the latest revision before the group
	rev   int64                // the latest revision in tx
	saved int64                // rev at the last savepoint
	stmts map[string]*sql.Stmt // the store's statements bound to tx, each once

	// logged are the changes the group logged, as Changes reads them
	// back, for Store.recent once the group commits; noKeep is set when
	// one could not be made so (see asRead), and none is kept.
	logged      []people.Change
	loggedSaved int // len(logged) at the last savepoint
	noKeep      bool
}

// stmt returns the store's prepared statement q bound to the transaction,
// or nil when q is not one of writeStatements.
func (g *groupTx) stmt(ctx context.Context, q string) *sql.Stmt {
	if st, ok := g.stmts[q]; ok {
		return st
	}
	ps, ok := g.s.stmts[q]
	if !ok {
		return nil
	}
	if g.stmts == nil {
		g.stmts = make(map[string]*sql.Stmt, 8)
	}
	st := g.tx.StmtContext(ctx, ps)
	g.stmts[q] = st
	return st
}

// ExecContext, QueryContext and QueryRowContext run q in the transaction,
// prepared when it is one of writeStatements.
func (g *groupTx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st := g.stmt(ctx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return g.tx.ExecContext(ctx, q, args...)
}

func (g *groupTx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := g.stmt(ctx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return g.tx.QueryContext(ctx, q, args...)
}

func (g *groupTx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if st := g.stmt(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return g.tx.QueryRowContext(ctx, q, args...)
}

func (g *groupTx) Savepoint() error {
	g.saved, g.loggedSaved = g.rev, len(g.logged)
	_, err := g.ExecContext(context.Background(), savepoint)
	return err
}

func (g *groupTx) Run(w *pending) error { return w.Fn.run(context.WithoutCancel(w.Ctx), g) }

func (g *groupTx) Release() (int64, error) {
	if _, err := g.ExecContext(context.Background(), release); err != nil {
		return 0, err
	}
	return g.rev, nil
}

func (g *groupTx) RollbackTo() error {
	g.rev, g.logged = g.saved, g.logged[:g.loggedSaved]
	if _, err := g.ExecContext(context.Background(), rollbackTo); err != nil {
		return err
	}
	_, err := g.ExecContext(context.Background(), release)
	return err
}

func (g *groupTx) Commit(rev int64) error {
	return g.s.finish(context.Background(), g.tx, rev, func() {
		if !g.noKeep && rev == g.rev && int64(len(g.logged)) == rev-g.first {
			g.s.recent.Add(g.first, g.logged)
		}
	})
}

func (g *groupTx) Rollback() { g.tx.Rollback() }

// record appends a change, made by origin, to the log, as the next
// revision.
func (g *groupTx) record(ctx context.Context, typ people.ChangeType, p people.Person, origin people.Origin) error {
	args := make([]any, 0, 12)
	args = append(args, g.rev+1, int(typ))
	args = append(append(args, personArgs(p)...), originArgs(origin)...)
	if _, err := g.ExecContext(ctx, insertChange, args...); err != nil {
		return err
	}
	g.rev++
	g.log(typ, p, args[5].(string), origin)
	return nil
}

// log notes the change the group logged last, revision g.rev, whose
// hobbies column is hobbies.
func (g *groupTx) log(typ people.ChangeType, p people.Person, hobbies string, origin people.Origin) {
	if g.noKeep {
		return
	}
	c, err := asRead(g.rev, typ, p, hobbies, origin)
	if err != nil {
		g.noKeep, g.logged = true, nil
		return
	}
	g.logged = append(g.logged, c)
}

// latest returns the latest revision in the transaction.
func (g *groupTx) latest(context.Context) (int64, error) { return g.rev, nil }

// inTx runs fn in a write transaction of its own, compacts the change log,
// commits, and returns the latest revision. Imports use it: their batches
// are groups already, and ctx can stop one midway. Errors fn returns that
// are already domain errors pass through; the rest become Unavailable or
// Internal.
func (s *Store) inTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) (int64, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, dbError(op, err)
	}
	defer tx.Rollback()
	committed := false
	defer func() {
		// Before the rollback, so that no later write reuses the
		// revisions of changes still kept.
		if !committed {
			s.imported.Store(nil)
		}
	}()
	if err := fn(tx); err != nil {
		return 0, dbError(op, err)
	}
	rev, err := latestIn(ctx, tx)
	if err != nil {
		return 0, dbError(op, err)
	}
	if err := s.finish(ctx, tx, rev, nil); err != nil {
		return 0, dbError(op, err)
	}
	committed = true
	return rev, nil
}

// latestIn returns the latest revision in tx's change log.
func latestIn(ctx context.Context, tx *sql.Tx) (int64, error) {
	var rev int64
	err := tx.QueryRowContext(ctx, maxRevision).Scan(&rev)
	return rev, err
}

// trimSlack is how far past the last s.retain the change log may grow
// before finish trims it: a trim every few thousand writes instead of a
// few rows in each group, whose pages at the log's start every group
// would otherwise dirty and write again. Small retentions (tests') are
// kept exactly.
func (s *Store) trimSlack() int64 { return int64(min(s.retain/64, 4096)) }

// sweepEvery is how often, at most, finish deletes expired request ids
// and sizes the writer's page cache. A lookup ignores an expired id
// anyway, so sweeping late forgets nothing it should remember.
const sweepEvery = time.Second

// finish ends a write transaction whose latest revision is rev: it drops
// the changes older than the last s.retain (once they exceed it by
// trimSlack), deletes expired request ids and sizes the writer's page
// cache for the file (at most every sweepEvery), commits, calls committed when not nil, and announces rev to WaitChange.
func (s *Store) finish(ctx context.Context, tx *sql.Tx, rev int64, committed func()) error {
	cut := rev - int64(s.retain)
	trim := cut > s.pruned.Load()+s.trimSlack()
	if trim {
		if _, err := tx.StmtContext(ctx, s.stmts[trimChanges]).ExecContext(ctx, cut); err != nil {
			return err
		}
	}
	now := time.Now().UnixMilli()
	sweep := now >= s.nextSweep.Load()
	if sweep {
		if err := sweepRequests(ctx, tx, s.stmts[sweepExpired], now); err != nil {
			return err
		}
		// A size that could not be set leaves the last one until the
		// next sweep: no reason to fail the transaction's writes.
		_ = SizeWriterCache(ctx, tx)
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if trim {
		s.pruned.Store(cut)
	}
	if sweep {
		s.nextSweep.Store(now + sweepEvery.Milliseconds())
	}
	if committed != nil {
		committed()
	}
	s.latest.Advance(rev)
	return nil
}

// execer runs statements: a *sql.Tx or a *groupTx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// setHobbies moves name's rows in the hobbies index from old to new.
func setHobbies(ctx context.Context, tx execer, name string, old, new []string) error {
	for _, h := range old {
		if !slices.Contains(new, h) {
			if _, err := tx.ExecContext(ctx, deleteHobby, h, name); err != nil {
				return err
			}
		}
	}
	for _, h := range new {
		if !slices.Contains(old, h) {
			if _, err := tx.ExecContext(ctx, insertHobby, h, name); err != nil {
				return err
			}
		}
	}
	return nil
}

// personArgs returns p's columns in personColumns order.
func personArgs(p people.Person) []any {
	return []any{p.Name, p.Age, int32(p.Gender), encodeHobbies(p.Hobbies), p.Address.Street, p.Address.City}
}

type scanner interface{ Scan(dest ...any) error }

// scanPerson reads a row of personColumns.
func scanPerson(row scanner) (people.Person, error) {
	var p people.Person
	var hobbies string
	if err := row.Scan(&p.Name, &p.Age, &p.Gender, &hobbies, &p.Address.Street, &p.Address.City); err != nil {
		return people.Person{}, err
	}
	var err error
	p.Hobbies, err = decodeHobbies(hobbies)
	return p, err
}

// encodeHobbies writes h as a JSON array of strings, as json.Marshal
// does. Hobbies made only of printable ASCII that json.Marshal writes as
// they are (nearly every one) are joined directly: json.Marshal took a
// twentieth of an import's CPU. Anything else goes to json.Marshal.
func encodeHobbies(h []string) string {
	if len(h) == 0 {
		return "[]"
	}
	if s, ok := joinHobbies(h); ok {
		return s
	}
	b, _ := json.Marshal(h) // a []string always encodes
	return string(b)
}

// joinHobbies writes h as json.Marshal does when every byte of it is
// printable ASCII that json.Marshal does not escape; ok is false when one
// is not.
func joinHobbies(h []string) (string, bool) {
	n := 1
	for _, s := range h {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
				return "", false
			}
		}
		n += len(s) + 3
	}
	b := make([]byte, 0, n)
	for i, s := range h {
		if i == 0 {
			b = append(b, '[', '"')
		} else {
			b = append(b, ',', '"')
		}
		b = append(append(b, s...), '"')
	}
	return string(append(b, ']')), true
}

// decodeHobbies reads the hobbies column, a JSON array of strings as
// encodeHobbies writes it. An array whose strings hold no escapes (nearly
// every one) is split directly: encoding/json took a fifth of the CPU of
// reading a million people for the read cache's load. Anything else goes
// to encoding/json.
func decodeHobbies(s string) ([]string, error) {
	if h, ok := splitHobbies(s); ok {
		return h, nil
	}
	var h []string
	if err := json.Unmarshal([]byte(s), &h); err != nil {
		return nil, fmt.Errorf("decode hobbies %q: %w", s, err)
	}
	return h, nil
}

// splitHobbies reads s when it is `[]` or `["a","b",...]` with no
// backslash, which is how json.Marshal writes strings that need no
// escapes; ok is false for anything else.
func splitHobbies(s string) (h []string, ok bool) {
	if s == "[]" {
		return nil, true
	}
	if len(s) < 4 || s[0] != '[' || s[1] != '"' || s[len(s)-2] != '"' || s[len(s)-1] != ']' || strings.IndexByte(s, '\\') >= 0 {
		return nil, false
	}
	inner := s[2 : len(s)-2]
	h = make([]string, 0, strings.Count(inner, `","`)+1)
	for part := range strings.SplitSeq(inner, `","`) {
		if strings.IndexByte(part, '"') >= 0 {
			return nil, false // a quote outside the separators: not this shape
		}
		h = append(h, part)
	}
	return h, true
}

func notFound(name string) error {
	return people.Errorf(people.NotFound, "no person named %q", name)
}

// dbError turns a database failure into a domain error: domain errors and
// context errors pass through, a busy or locked database is Unavailable, and
// anything else is Internal. The original error is kept for the log.
func dbError(op string, err error) error {
	var pe *people.Error
	if errors.As(err, &pe) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	kind := people.Internal
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN:
			kind = people.Unavailable
		}
	}
	return &people.Error{Kind: kind, Message: op + " failed", Err: fmt.Errorf("sqlite: %s: %w", op, err)}
}

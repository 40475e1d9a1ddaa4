package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/routeguide/routeguide/internal/people"
)

// The start-up checks keep a damaged or unusable file from being served.
// They read a fixed amount, whatever the file's size: the 100-byte header,
// the schema, and the first and last entry of every table and index (one
// path from the root to each end of each B-tree). SQLite's own
// integrity_check and quick_check read every page, which takes minutes on a
// file of gigabytes, so damage deeper in a large file is found when a read
// meets it (see Store.Ping).

// header is how every SQLite database file begins.
const header = "SQLite format 3\x00"

// checkHeader fails unless the file at path is absent, empty (SQLite then
// creates the database), or begins with a SQLite header with a valid page
// size.
func checkHeader(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	var h [100]byte
	n, err := io.ReadFull(f, h[:])
	if n == 0 && (err == io.EOF || err == nil) {
		return nil
	}
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return err
	}
	if n < len(h) || string(h[:len(header)]) != header {
		return errors.New("it is not a SQLite database: its header is missing or damaged")
	}
	// The page size is a power of two from 512 to 32768, or 1 for 65536.
	if size := binary.BigEndian.Uint16(h[16:18]); size != 1 && (size < 512 || size&(size-1) != 0) {
		return fmt.Errorf("its header is damaged: page size %d", size)
	}
	return nil
}

// tables are the tables and indexes the migrations create, each with a
// query for the first and the last entry of its B-tree. Each subquery
// reads one end of one index; max and min in one query would read it all.
var tables = []struct{ name, ends string }{
	{"people", "SELECT (SELECT name FROM people ORDER BY name LIMIT 1), (SELECT name FROM people ORDER BY name DESC LIMIT 1)"},
	{"people_by_city", "SELECT (SELECT city FROM people INDEXED BY people_by_city ORDER BY city, name LIMIT 1), (SELECT city FROM people INDEXED BY people_by_city ORDER BY city DESC, name DESC LIMIT 1)"},
	{"hobbies", "SELECT (SELECT hobby FROM hobbies ORDER BY hobby, name LIMIT 1), (SELECT hobby FROM hobbies ORDER BY hobby DESC, name DESC LIMIT 1)"},
	{"changes", changeBounds},
	{"requests", "SELECT (SELECT id FROM requests ORDER BY id LIMIT 1), (SELECT id FROM requests ORDER BY id DESC LIMIT 1)"},
}

// check verifies, after the migrations, that the database can be written
// (a write in a transaction that is rolled back: a file the process may only
// read, or an immutable one, fails here rather than on every write later)
// and that its schema and the ends of its tables read back.
func (s *Store) check(ctx context.Context) error {
	// SQLite begins a transaction, even BEGIN IMMEDIATE, on a file it opened
	// read-only; only a write fails. Rewriting user_version with its own
	// value touches the header page, and the rollback leaves the file as
	// it was.
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("it cannot be written: %w", err)
	}
	defer tx.Rollback()
	var version int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("read its schema: %w", err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", version)); err != nil {
		return fmt.Errorf("it cannot be written: %w", err)
	}
	if err := tx.Rollback(); err != nil {
		return fmt.Errorf("it cannot be written: %w", err)
	}
	for _, t := range tables {
		var n int
		if err := s.read.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE name = ?", t.name).Scan(&n); err != nil {
			return fmt.Errorf("read its schema: %w", err)
		}
		if n != 1 {
			return fmt.Errorf("its schema lacks %s", t.name)
		}
		var first, last sql.NullString
		if err := s.read.QueryRowContext(ctx, t.ends).Scan(&first, &last); err != nil {
			return fmt.Errorf("read %s: %w", t.name, err)
		}
	}
	return nil
}

// damaged reports whether err is SQLite finding the file damaged: a page
// that does not parse, or a file that is not a database.
func damaged(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		return true
	}
	return false
}

// readError is dbError for the read paths: it also remembers the first
// error that found the file damaged, which Ping reports from then on.
func (s *Store) readError(op string, err error) error {
	if damaged(err) {
		s.damage.CompareAndSwap(nil, &damage{err: fmt.Errorf("%s: %w", op, err)})
		return &people.Error{Kind: people.Internal, Message: op + " failed", Err: fmt.Errorf("sqlite: %s: %w: %w", op, people.ErrDamaged, err)}
	}
	return dbError(op, err)
}

// damage is the first error that found the file damaged.
type damage struct{ err error }

// Ping reports whether the store can answer: it fails, with kind Internal
// and people.ErrDamaged in its chain, once a read has found the file
// damaged, and stays failed until the process restarts, since a damaged
// file does not mend. Otherwise it returns nil.
func (s *Store) Ping(context.Context) error {
	if d := s.damage.Load(); d != nil {
		return &people.Error{Kind: people.Internal, Message: "the database file is damaged", Err: fmt.Errorf("%w: %s: %w", people.ErrDamaged, s.path, d.err)}
	}
	return nil
}

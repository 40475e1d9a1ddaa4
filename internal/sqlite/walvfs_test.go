package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/routeguide/routeguide/internal/people"
)

// TestWALWritesGathered checks that the store's log is written a
// transaction at a time: an import that logs hundreds of pages reaches the
// file in a few writes, not two a page.
func TestWALWritesGathered(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "people.db"), 0)
	batch := make([]people.Person, 2000)
	for i := range batch {
		batch[i] = people.Person{Name: fmt.Sprintf("person-%05d", i), Age: int32(i % 90), Hobbies: []string{"chess", "go"}, Address: people.Address{Street: "1 Main St", City: "Boston"}}
	}
	gathered, written := walVFS.gathered.Load(), walVFS.written.Load()
	if _, err := s.Import(ctx, batch); err != nil {
		t.Fatal(err)
	}
	gathered, written = walVFS.gathered.Load()-gathered, walVFS.written.Load()-written
	t.Logf("%d appends to the log in %d writes", gathered, written)
	if gathered < 200 || written*20 > gathered {
		t.Errorf("%d appends to the log in %d writes; want at least 200 appends in a twentieth as many writes", gathered, written)
	}
}

// TestWALVFSKeepsEveryWrite drives the log through everything a gathered
// write must survive, on a database whose commits do not sync (so nothing
// but the commit frame flushes what was gathered): transactions larger
// than the page cache (pages spill into the log and are read back and
// rewritten in place), larger than the buffer, small ones, and the log
// starting again after a checkpoint. After each, a connection through
// SQLite's own unix VFS must read exactly what was committed, and the
// database must pass SQLite's integrity check.
func TestWALVFSKeepsEveryWrite(t *testing.T) {
	if err := registerWALVFS(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "wal.db")
	file := "file:" + (&url.URL{Path: path}).EscapedPath() + "?"
	w, err := sql.Open("sqlite", file+url.Values{
		"vfs":     {walVFSName},
		"_pragma": {"journal_mode(WAL)", "synchronous(NORMAL)", "cache_size(8)", "wal_autocheckpoint(0)"},
	}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", file+url.Values{"_pragma": {"journal_mode(WAL)"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	exec := func(db *sql.DB, q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(w, "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB NOT NULL)")
	exec(w, "CREATE INDEX t_by_v ON t (v)")

	want := map[int64][]byte{}
	src := rand.NewChaCha8([32]byte{1})
	rng := rand.New(src)
	value := func() []byte {
		b := make([]byte, 100+rng.IntN(900))
		src.Read(b)
		return b
	}
	digest := func(rows map[int64][]byte) string {
		h := sha256.New()
		for k := range int64(10000) {
			if v, ok := rows[k]; ok {
				h.Write(binary.BigEndian.AppendUint64(nil, uint64(k)))
				h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(v))))
				h.Write(v)
			}
		}
		return fmt.Sprintf("%x", h.Sum(nil))
	}
	check := func(step string) {
		t.Helper()
		rows, err := r.Query("SELECT k, v FROM t")
		if err != nil {
			t.Fatal(err)
		}
		got := map[int64][]byte{}
		for rows.Next() {
			var k int64
			var v []byte
			if err := rows.Scan(&k, &v); err != nil {
				t.Fatal(err)
			}
			got[k] = v
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if len(got) != len(want) || digest(got) != digest(want) {
			t.Fatalf("%s: the unix VFS reads %d rows (digest %s); committed %d (digest %s)", step, len(got), digest(got)[:12], len(want), digest(want)[:12])
		}
		var ok string
		if err := r.QueryRow("PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
			t.Fatalf("%s: integrity_check: %q, %v", step, ok, err)
		}
	}
	txn := func(f func(tx *sql.Tx)) {
		t.Helper()
		tx, err := w.Begin()
		if err != nil {
			t.Fatal(err)
		}
		f(tx)
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	put := func(tx *sql.Tx, k int64) {
		v := value()
		if _, err := tx.Exec("INSERT OR REPLACE INTO t (k, v) VALUES (?, ?)", k, v); err != nil {
			t.Fatal(err)
		}
		want[k] = v
	}

	// Far more than the page cache and the buffer hold, then half of it
	// rewritten in the same transaction.
	txn(func(tx *sql.Tx) {
		for k := range int64(1500) {
			put(tx, k)
		}
		for k := int64(0); k < 1500; k += 2 {
			put(tx, k)
		}
	})
	check("one large transaction")

	for i := range 50 {
		txn(func(tx *sql.Tx) {
			for range 1 + i%7 {
				put(tx, rng.Int64N(10000))
			}
		})
	}
	check("small transactions")

	txn(func(tx *sql.Tx) {
		if _, err := tx.Exec("DELETE FROM t WHERE k % 3 = 0"); err != nil {
			t.Fatal(err)
		}
	})
	for k := range want {
		if k%3 == 0 {
			delete(want, k)
		}
	}
	check("a delete")

	// The log starts again from its beginning after a full checkpoint.
	exec(w, "PRAGMA wal_checkpoint(TRUNCATE)")
	for range 3 {
		txn(func(tx *sql.Tx) {
			for range 400 {
				put(tx, rng.Int64N(10000))
			}
		})
		check("after a checkpoint")
		exec(w, "PRAGMA wal_checkpoint(RESTART)")
	}
}

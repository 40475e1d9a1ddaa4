package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/routeguide/routeguide/internal/people"
)

// TestOpenTwiceRefused checks that one file is open in one Store at a time:
// a second Open fails naming the file and the process holding it, and
// succeeds once the first Store is closed.
func TestOpenTwiceRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "people.db")
	first, err := Open(ctx, path, 0)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Open(ctx, path, 0)
	if err == nil {
		second.Close()
		first.Close()
		t.Fatal("a second Open of the same file succeeded")
	}
	for _, want := range []string{path, fmt.Sprintf("process %d", os.Getpid())} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("second Open: %v; want it to name %q", err, want)
		}
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	open(t, path, 0)
}

// TestOpenRefusesDamagedHeader checks that a file that is not a SQLite
// database, or whose header is damaged, is refused with its name.
func TestOpenRefusesDamagedHeader(t *testing.T) {
	for name, damage := range map[string]func(b []byte){
		"garbage":   func(b []byte) { copy(b, strings.Repeat("not a database ", len(b)/15)) },
		"magic":     func(b []byte) { copy(b, "SQLite format 2") },
		"page size": func(b []byte) { b[16], b[17] = 0x03, 0x00 }, // 768
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "people.db")
			s := open(t, path, 0)
			s.Close()
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			damage(b)
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			s, err = Open(context.Background(), path, 0)
			if err == nil {
				s.Close()
				t.Fatal("Open of a damaged file succeeded")
			}
			if !strings.Contains(err.Error(), "refusing "+path) {
				t.Errorf("Open: %v; want it to refuse %s", err, path)
			}
		})
	}
}

// TestOpenRefusesReadOnly checks that a file this process cannot write is
// refused at start rather than failing every write later. Tests may run as
// root, which writes files whatever their mode, so the file is opened
// read-only through SQLite, and, where chattr works, made immutable.
func TestOpenRefusesReadOnly(t *testing.T) {
	ctx := context.Background()
	t.Run("read-only open", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "people.db")
		open(t, path, 0).Close()
		s, err := openWith(ctx, path, 0, url.Values{"mode": {"ro"}})
		if err == nil {
			s.Close()
			t.Fatal("Open of a read-only file succeeded")
		}
		if want := "refusing " + path + ": it cannot be written"; !strings.Contains(err.Error(), want) {
			t.Errorf("Open: %v; want %q", err, want)
		}
	})
	t.Run("immutable file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "people.db")
		open(t, path, 0).Close()
		if out, err := exec.Command("chattr", "+i", path).CombinedOutput(); err != nil {
			t.Skipf("chattr +i: %v: %s", err, out)
		}
		t.Cleanup(func() { exec.Command("chattr", "-i", path).Run() })
		s, err := Open(ctx, path, 0)
		if err == nil {
			s.Close()
			t.Fatal("Open of an immutable file succeeded")
		}
		if !strings.Contains(err.Error(), "refusing "+path) {
			t.Errorf("Open: %v; want it to refuse %s", err, path)
		}
	})
}

// TestDamagedPages damages a page deep in the people table, which the
// start-up checks do not read: the store opens, the first read that meets
// the page fails with people.ErrDamaged in its chain, and from then on Ping
// reports the damage.
func TestDamagedPages(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "people.db")
	s := open(t, path, 0)
	batch := make([]people.Person, 5000)
	for i := range batch {
		batch[i] = people.Person{Name: fmt.Sprintf("person %05d", i), Age: 30, Address: people.Address{Street: strings.Repeat("street ", 10), City: "Paris"}}
	}
	if _, err := s.Import(ctx, batch); err != nil {
		t.Fatal(err)
	}
	s.Close()
	damagePage(t, path, "people")

	s = open(t, path, 0)
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping before any read of the damaged page: %v", err)
	}
	q := people.Query{Limit: 10_000}
	_, err := s.List(ctx, q)
	if !errors.Is(err, people.ErrDamaged) || people.KindOf(err) != people.Internal {
		t.Fatalf("List over a damaged page: %v; want Internal with people.ErrDamaged", err)
	}
	err = s.Ping(ctx)
	if !errors.Is(err, people.ErrDamaged) || !strings.Contains(err.Error(), path) {
		t.Errorf("Ping after a read met the damage: %v; want people.ErrDamaged naming %s", err, path)
	}
}

// damagePage overwrites, with garbage, the middle leaf page of table's
// B-tree in the closed database at path.
func damagePage(t *testing.T, path, table string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	var pages []int64
	rows, err := db.Query("SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY path", table)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var p int64
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		pages = append(pages, p)
	}
	var pageSize int64
	if err := errors.Join(rows.Err(), db.QueryRow("PRAGMA page_size").Scan(&pageSize), db.Close()); err != nil {
		t.Fatal(err)
	}
	if len(pages) < 3 {
		t.Fatalf("%s has %d leaf pages, want at least 3", table, len(pages))
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	garbage := []byte(strings.Repeat("\xff\x00garbage", int(pageSize)/9+1))[:pageSize]
	if _, err := f.WriteAt(garbage, (pages[len(pages)/2]-1)*pageSize); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestWriterCache checks the writer's page cache: the small one below
// 1 GiB and the large one past it (see writerCache), a new store's, what
// SizeWriterCache (Open's) sets, and the writes that set it again when
// something changed it.
func TestWriterCache(t *testing.T) {
	const page = 4096
	for _, c := range []struct {
		pages int64
		want  int64
	}{
		{2, writerCacheSmall},
		{lockPageOffset / page, writerCacheSmall},
		{lockPageOffset/page + 1, writerCacheLarge},
		{10 * lockPageOffset / page, writerCacheLarge},
	} {
		if got := writerCache(c.pages, page); got != c.want {
			t.Errorf("writerCache(%d pages) = %d, want %d", c.pages, got, c.want)
		}
	}

	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "people.db"), 0)
	cacheKiB := func() int64 {
		t.Helper()
		var kib int64
		if err := s.write.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&kib); err != nil {
			t.Fatal(err)
		}
		return -kib
	}
	if got := cacheKiB(); got != writerCacheSmall>>10 {
		t.Fatalf("a new store's writer caches %d KiB, want %d", got, writerCacheSmall>>10)
	}
	setLarge := func() {
		t.Helper()
		if _, err := s.write.ExecContext(ctx, "PRAGMA cache_size = -262144"); err != nil {
			t.Fatal(err)
		}
	}
	setLarge()
	if err := SizeWriterCache(ctx, s.write); err != nil {
		t.Fatal(err)
	}
	if got := cacheKiB(); got != writerCacheSmall>>10 {
		t.Errorf("SizeWriterCache left the writer caching %d KiB, want %d", got, writerCacheSmall>>10)
	}
	setLarge()
	s.nextSweep.Store(0) // the next write sweeps
	if _, err := s.Add(ctx, people.Person{Name: "Carol"}); err != nil {
		t.Fatal(err)
	}
	if got := cacheKiB(); got != writerCacheSmall>>10 {
		t.Errorf("after a write the writer caches %d KiB, want %d", got, writerCacheSmall>>10)
	}
}

package cache

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/routeguide/routeguide/internal/people"
	"github.com/routeguide/routeguide/internal/sqlite"
	"github.com/routeguide/routeguide/internal/syncbuf"
)

// openSQLite opens the SQLite store at path, keeping retain changes.
func openSQLite(t *testing.T, path string, retain int) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path, retain)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func person(name string, age int32) people.Person {
	return people.Person{Name: name, Age: age, Gender: people.GenderFemale, Hobbies: []string{"chess"},
		Address: people.Address{Street: "1 Oak St", City: "Boston"}}
}

// addPeople adds people prefix-0 to prefix-(n-1), aged age.
func addPeople(t *testing.T, s people.Store, prefix string, n int, age int32) {
	t.Helper()
	batch := make([]people.Person, n)
	for i := range batch {
		batch[i] = person(fmt.Sprintf("%s-%d", prefix, i), age)
	}
	if _, err := s.Import(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
}

// startCache starts a cache with its snapshot at snap in front of s, waits
// until it is ready, and returns it with the store wrapper counting full
// loads, and its log.
func startCache(t *testing.T, s people.Store, snap string) (*Store, *flaky, *syncbuf.Buffer) {
	t.Helper()
	logs := new(syncbuf.Buffer)
	f := &flaky{Store: s}
	c := New(f, Options{Snapshot: snap, Log: slog.New(slog.NewTextHandler(logs, nil))})
	waitReady(t, c)
	return c, f, logs
}

// sameAsStore fails t unless c holds exactly the people s holds.
func sameAsStore(t *testing.T, c *Store, s people.Store) {
	t.Helper()
	ctx := context.Background()
	n := 0
	q := people.Query{Limit: 1000}
	for {
		page, err := s.List(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range page {
			got, err := c.Person(ctx, want.Name)
			if err != nil || !got.Equal(want) {
				t.Fatalf("the cache holds %q as %+v, %v; the store as %+v", want.Name, got, err, want)
			}
		}
		n += len(page)
		if len(page) < q.Limit {
			break
		}
		q.After = page[len(page)-1].Name
	}
	if c.Len() != n {
		t.Fatalf("the cache holds %d people, the store %d", c.Len(), n)
	}
}

// snapshotAt writes a snapshot of s to snap: a cache loads it, and writes
// the snapshot when it closes.
func snapshotAt(t *testing.T, s people.Store, snap string) {
	t.Helper()
	c, _, _ := startCache(t, s, snap)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(snap); err != nil {
		t.Fatalf("no snapshot after Close: %v", err)
	}
}

// copyDB copies the SQLite file at src, closed, to dst: a backup.
func copyDB(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSnapshotCatchesUp checks that a cache starts from its snapshot
// without reading every person, then applies the changes made since, and
// answers as the store does.
func TestSnapshotCatchesUp(t *testing.T) {
	dir := t.TempDir()
	db, snap := filepath.Join(dir, "people.db"), filepath.Join(dir, "people.db-cache")
	s := openSQLite(t, db, 0)
	defer s.Close()
	addPeople(t, s, "p", 3000, 30)
	snapshotAt(t, s, snap)

	// Changes while no cache runs: additions, replacements, deletions.
	ctx := context.Background()
	addPeople(t, s, "p", 1000, 31)
	addPeople(t, s, "q", 500, 32)
	for i := range 100 {
		if _, err := s.Delete(ctx, fmt.Sprintf("p-%d", 2000+i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.Update(ctx, "p-5", people.Update{Fields: people.FieldAge, To: people.Person{Age: 77}}); err != nil {
		t.Fatal(err)
	}

	c, f, logs := startCache(t, s, snap)
	defer c.Close()
	if n := f.loads.Load(); n != 0 {
		t.Errorf("the cache read every person %d times; want it to start from the snapshot\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), "from_snapshot_revision=") {
		t.Errorf("log:\n%s\nwant the load from the snapshot logged", logs)
	}
	sameAsStore(t, c, s)

	// And it follows the store afterwards, as any cache.
	if _, err := c.Delete(ctx, "p-6"); err != nil {
		t.Fatal(err)
	}
	sameAsStore(t, c, s)
}

// notUsed starts a cache on s with the snapshot at snap, and fails t
// unless the cache ignored the snapshot, saying why (want in the log), and
// loaded every person from the store instead.
func notUsed(t *testing.T, s people.Store, snap, want string) {
	t.Helper()
	c, f, logs := startCache(t, s, snap)
	defer c.Close()
	if n := f.loads.Load(); n != 1 {
		t.Errorf("the cache read every person %d times, want once instead of the snapshot", n)
	}
	if !strings.Contains(logs.String(), want) {
		t.Errorf("log:\n%s\nwant the snapshot refused with %q", logs, want)
	}
	sameAsStore(t, c, s)
}

// rewrite changes the snapshot at snap with fn, then makes its checksum
// right again, so that only what fn changed is wrong with it.
func rewrite(t *testing.T, snap string, fn func(b []byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	b = fn(b[:len(b)-4])
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	if err := os.WriteFile(snap, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSnapshotNotUsed(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		// spoil changes the snapshot at snap, or the store at db (closing s
		// and returning the store to start on), after the snapshot.
		spoil func(t *testing.T, s *sqlite.Store, db, snap string) *sqlite.Store
		want  string
	}{
		{"missing", func(t *testing.T, s *sqlite.Store, db, snap string) *sqlite.Store {
			os.Remove(snap)
			return s
		}, "no read cache snapshot"},
		{"corrupt", func(t *testing.T, s *sqlite.Store, db, snap string) *sqlite.Store {
			// A bit flipped in the stored checksum, which nothing but
			// the checksum can tell: one flipped among the people may
			// be caught sooner, as a name twice when "p-42" turns into
			// "p-43", say (as in "corrupt people" below).
			b, _ := os.ReadFile(snap)
			b[len(b)-4] ^= 1
			os.WriteFile(snap, b, 0o600)
			return s
		}, "checksum mismatch"},
		{"corrupt people", func(t *testing.T, s *sqlite.Store, db, snap string) *sqlite.Store {
			b, _ := os.ReadFile(snap)
			b[len(b)/2] ^= 1
			os.WriteFile(snap, b, 0o600)
			return s
		}, "snapshot not used"},
		{"truncated", func(t *testing.T, s *sqlite.Store, db, snap string) *sqlite.Store {
			info, _ := os.Stat(snap)
			os.Truncate(snap, info.Size()-100)
			return s
		}, "snapshot not used"},
		{"empty", func(t *testing.T, s *sqlite.Store, db, snap string) *sqlite.Store {
			os.WriteFile(snap, nil, 0o600)
			return s
		}, "header"},
		{"another format", func(t *testing.T, s *sqlite.Store, db, snap string) *sqlite.Store {
			rewrite(t, snap, func(b []byte) []byte { b[7]++; return b })
			return s
		}, "not a snapshot of this format"},
		{"another encoding", func(t *testing.T, s *sqlite.Store, db, snap string) *sqlite.Store {
			rewrite(t, snap, func(b []byte) []byte { b[8]++; return b })
			return s
		}, "encodes people differently"},
		{"a name twice", func(t *testing.T, s *sqlite.Store, db, snap string) *sqlite.Store {
			rewrite(t, snap, func(b []byte) []byte {
				// The first chunk again, as a second: every name twice.
				l := binary.LittleEndian.Uint32(b[snapshotHeaderSize:])
				first := b[snapshotHeaderSize : snapshotHeaderSize+4+int(l)]
				out := append([]byte(nil), b[:snapshotHeaderSize]...)
				out = append(out, first...)
				out = append(out, b[snapshotHeaderSize:]...)
				return out
			})
			return s
		}, "twice"},
		{"a count too low", func(t *testing.T, s *sqlite.Store, db, snap string) *sqlite.Store {
			rewrite(t, snap, func(b []byte) []byte { b[56]--; return b })
			return s
		}, "snapshot not used"},
		{"revision ahead of the store", func(t *testing.T, s *sqlite.Store, db, snap string) *sqlite.Store {
			// The store restored from a backup older than the snapshot.
			s.Close()
			copyDB(t, db+".backup", db)
			return openSQLite(t, db, 0)
		}, "beyond the store's latest"},
		{"restored and written since", func(t *testing.T, s *sqlite.Store, db, snap string) *sqlite.Store {
			// Restored from the backup, then written to past the
			// snapshot's revision: the same revisions, another history.
			s.Close()
			copyDB(t, db+".backup", db)
			s = openSQLite(t, db, 0)
			addPeople(t, s, "r", 50, 40)
			addPeople(t, s, "s", 50, 41)
			return s
		}, "not the one the snapshot was taken at"},
		{"another database", func(t *testing.T, s *sqlite.Store, db, snap string) *sqlite.Store {
			// A database that went through the same revisions, but with
			// other people.
			s.Close()
			os.Remove(db)
			s = openSQLite(t, db, 0)
			addPeople(t, s, "p", 1000, 50)
			addPeople(t, s, "b", 50, 50)
			return s
		}, "not the one the snapshot was taken at"},
		{"log no longer reaches back", func(t *testing.T, s *sqlite.Store, db, snap string) *sqlite.Store {
			s.Close()
			s = openSQLite(t, db, 10) // keep the last 10 changes
			for i := range 20 {
				if _, err := s.Delete(ctx, fmt.Sprintf("p-%d", i)); err != nil {
					t.Fatal(err)
				}
			}
			return s
		}, "no longer reaches back"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			db, snap := filepath.Join(dir, "people.db"), filepath.Join(dir, "people.db-cache")
			s := openSQLite(t, db, 0)
			addPeople(t, s, "p", 1000, 30)
			s.Close()
			copyDB(t, db, db+".backup")
			s = openSQLite(t, db, 0)
			addPeople(t, s, "a", 50, 30)
			snapshotAt(t, s, snap)
			s = tc.spoil(t, s, db, snap)
			defer s.Close()
			notUsed(t, s, snap, tc.want)
		})
	}
}

// TestSnapshotWrittenEvery checks that a cache writes its snapshot again
// as the directory changes, so that a crash loses no more than that.
func TestSnapshotWrittenEvery(t *testing.T) {
	dir := t.TempDir()
	db, snap := filepath.Join(dir, "people.db"), filepath.Join(dir, "people.db-cache")
	s := openSQLite(t, db, 0)
	defer s.Close()
	c := New(s, Options{Snapshot: snap, SnapshotEvery: 10 * time.Millisecond})
	defer c.Close()
	waitReady(t, c)
	eventually(t, "a snapshot after the load", func() bool { _, err := os.Stat(snap); return err == nil })
	first, _ := os.ReadFile(snap)
	addPeople(t, c, "p", 10, 30)
	eventually(t, "a new snapshot after a change", func() bool {
		b, _ := os.ReadFile(snap)
		return len(b) > len(first)
	})

	// What a crash leaves, the last snapshot, loads with the changes since.
	b, _ := os.ReadFile(snap)
	if err := os.WriteFile(snap+"-crash", b, 0o600); err != nil {
		t.Fatal(err)
	}
	addPeople(t, s, "q", 10, 30)
	c2, f, logs := startCache(t, s, snap+"-crash")
	defer c2.Close()
	if f.loads.Load() != 0 {
		t.Errorf("a full load after a crash; want the last snapshot used\n%s", logs)
	}
	sameAsStore(t, c2, s)
}

// TestSnapshotTempFilesGone checks that writing a snapshot leaves only the
// snapshot beside the store, removing what a write cut short left.
func TestSnapshotTempFilesGone(t *testing.T) {
	dir := t.TempDir()
	db, snap := filepath.Join(dir, "people.db"), filepath.Join(dir, "people.db-cache")
	if err := os.WriteFile(snap+".12345.tmp", []byte("cut short"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := openSQLite(t, db, 0)
	defer s.Close()
	addPeople(t, s, "p", 100, 30)
	snapshotAt(t, s, snap)
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("%s left behind", e.Name())
		}
	}
}

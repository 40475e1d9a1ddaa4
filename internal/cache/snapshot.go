package cache

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/routeguide/routeguide/internal/people"
)

// A snapshot is the read cache's table written to a file beside the store,
// so that a server starting again loads the directory by reading one file
// instead of every row of the store, then catches up through the change
// log. Measured reason, at a million people of bench/genpeople on SQLite
// (2 cores): reading the people table cost 3.7 CPU seconds, most of it
// stepping rows through the SQLite driver and database/sql, which no
// split of the read over connections brings under 1.5 s on two cores;
// the snapshot loads in a small fraction of that (see README's Scale).
//
// A snapshot is used only when it is the store's own past: it records the
// revision it reflects and a digest of the change the store logged at that
// revision (its person, type, who made it and when). At start the store
// must still hold that very change, with that digest, and every change
// after it; a snapshot from another database, of a database since restored
// from a backup or replaced, from a revision the store has not reached, or
// older than the change log reaches back, is not used, nor is one whose
// checksum or structure is wrong, or one written by a build that encodes
// people differently. Then the cache loads every person from the store, as
// without a snapshot.
//
// The file, all integers little-endian:
//
//	magic         8 bytes, snapshotMagic
//	encoding      8 bytes, encodingDigest: how this build encodes a person
//	revision      8 bytes
//	change        32 bytes, changeDigest of the change at revision
//	people        8 bytes, how many entries follow
//	chunks        each a 4-byte length, then that many bytes of whole table
//	              entries (table.append's form); a length of 0 ends them
//	checksum      4 bytes, CRC-32C of everything before it

// snapshotMagic starts every snapshot; its last byte is the format's
// version.
const snapshotMagic = "RGCACHE\x01"

// maxSnapshotChunk bounds a chunk's length, so that a damaged length
// cannot make the load allocate without limit.
const maxSnapshotChunk = 64 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodingDigest digests what the cache keeps of a fixed person: a build
// that encodes people or computes etags differently has another, and does
// not read this build's snapshots.
var encodingDigest = func() [8]byte {
	b, err := encode(nil, people.Person{
		Name: "Encoding Digest", Age: 42, Gender: people.GenderFemale,
		Hobbies: []string{"chess", "rowing"},
		Address: people.Address{Street: "1 Oak St", City: "Boston"},
	})
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(b)
	return [8]byte(sum[:8])
}()

// changeDigest digests a logged change: its revision, type, person and
// origin. Two stores that logged the same change at the same revision, at
// the same nanosecond, for the same request, share their history.
func changeDigest(ch people.Change) ([32]byte, error) {
	h := sha256.New()
	var b []byte
	b = binary.LittleEndian.AppendUint64(b, uint64(ch.Revision))
	b = binary.LittleEndian.AppendUint64(b, uint64(ch.Type))
	enc, err := encode(nil, ch.Person)
	if err != nil {
		return [32]byte{}, err
	}
	b = appendField(b, enc)
	b = appendField(b, []byte(ch.Person.Name))
	b = appendField(b, []byte(ch.Origin.Principal))
	b = appendField(b, []byte(ch.Origin.Peer))
	b = appendField(b, []byte(ch.Origin.RequestID))
	b = binary.LittleEndian.AppendUint64(b, uint64(ch.Origin.Time.UnixNano()))
	h.Write(b)
	return [32]byte(h.Sum(nil)), nil
}

func appendField(b, f []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(f))), f...)
}

// loggedDigest returns the digest of the change the store logged at rev.
// It fails with an error of kind people.OutOfRange when the store no longer
// holds that change or has not reached rev.
func (c *Store) loggedDigest(ctx context.Context, rev int64) ([32]byte, error) {
	if rev <= 0 {
		return [32]byte{}, people.Errorf(people.OutOfRange, "revision %d has no change", rev)
	}
	changes, err := c.Store.Changes(ctx, rev-1, 1)
	if err != nil {
		return [32]byte{}, err
	}
	if len(changes) == 0 || changes[0].Revision != rev {
		return [32]byte{}, people.Errorf(people.OutOfRange, "the store holds no change at revision %d", rev)
	}
	return changeDigest(changes[0])
}

// errNotUsable marks a snapshot the cache does not use: missing, damaged,
// or not the store's own past.
var errNotUsable = errors.New("snapshot not usable")

// snapshotHeaderSize is the bytes before the first chunk.
const snapshotHeaderSize = 8 + 8 + 8 + 32 + 8

// readSnapshot reads the snapshot at path into a new table, after checking
// that it is the store's own past (see the type's comment), and returns the
// table and the revision it reflects. Any reason not to use it is an error
// wrapping errNotUsable; other errors are the store's.
func (c *Store) readSnapshot(ctx context.Context, path string) (*table, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", errNotUsable, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %v", errNotUsable, err)
	}
	unusable := func(format string, args ...any) (*table, int64, error) {
		return nil, 0, fmt.Errorf("%w: %s", errNotUsable, fmt.Sprintf(format, args...))
	}
	sum := crc32.New(castagnoli)
	r := io.TeeReader(bufio.NewReaderSize(f, 64<<10), sum)
	var head [snapshotHeaderSize]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return unusable("header: %v", err)
	}
	if string(head[:8]) != snapshotMagic {
		return unusable("not a snapshot of this format")
	}
	if [8]byte(head[8:16]) != encodingDigest {
		return unusable("written by a build that encodes people differently")
	}
	rev := int64(binary.LittleEndian.Uint64(head[16:24]))
	digest := [32]byte(head[24:56])
	count := binary.LittleEndian.Uint64(head[56:64])
	if count > uint64(info.Size()) { // an entry takes at least a byte
		return unusable("claims %d people in %d bytes", count, info.Size())
	}

	// Is it the store's past? Checked before the file is read, which is
	// the bulk of the work.
	latest, err := c.Store.Revision(ctx)
	if err != nil {
		return nil, 0, err
	}
	if rev > latest {
		return unusable("revision %d is beyond the store's latest, %d", rev, latest)
	}
	logged, err := c.loggedDigest(ctx, rev)
	if people.KindOf(err) == people.OutOfRange {
		return unusable("the change log no longer reaches back to revision %d: %v", rev, err)
	}
	if err != nil {
		return nil, 0, err
	}
	if logged != digest {
		return unusable("the store's change at revision %d is not the one the snapshot was taken at: another database, or one replaced or restored since", rev)
	}

	// One goroutine reads the chunks and sums them while this one files
	// the previous chunk's people: the two take about as long as each
	// other, and overlap on two cores.
	chunks := make(chan []byte, 2)
	var readErr error // set once chunks is closed; nil when the file is whole
	stop := make(chan struct{})
	defer func() {
		close(stop)
		for range chunks { // let the reader end before the file closes
		}
	}()
	go func() {
		defer close(chunks)
		readErr = readChunks(r, sum, info.Size()-snapshotHeaderSize, chunks, stop)
	}()
	t := newTableFor(int(count))
	var n uint64
	for chunk := range chunks {
		k, err := t.adopt(chunk)
		if err != nil {
			return unusable("%v", err)
		}
		n += uint64(k)
		if n > count {
			return unusable("more than the %d people it claims", count)
		}
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
	}
	if readErr != nil {
		return unusable("%v", readErr)
	}
	if n != count {
		return unusable("%d people where it claims %d", n, count)
	}
	return t, rev, nil
}

// readChunks reads a snapshot's chunks from r, which sums what it reads
// into sum, and sends each on chunks until stop closes; left is the bytes
// of the file from r on. It returns nil once it has read the end of the
// chunks and a checksum that matches, and the end of the file.
func readChunks(r io.Reader, sum hash.Hash32, left int64, chunks chan<- []byte, stop <-chan struct{}) error {
	for {
		var l [4]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return fmt.Errorf("chunk length: %v", err)
		}
		size := int64(binary.LittleEndian.Uint32(l[:]))
		left -= 4
		if size == 0 {
			break
		}
		if size > maxSnapshotChunk || size > left {
			return fmt.Errorf("a chunk of %d bytes with %d left", size, left)
		}
		chunk := make([]byte, size)
		if _, err := io.ReadFull(r, chunk); err != nil {
			return fmt.Errorf("chunk: %v", err)
		}
		left -= size
		select {
		case chunks <- chunk:
		case <-stop:
			return errors.New("stopped")
		}
	}
	want := sum.Sum32()
	var got [4]byte
	if _, err := io.ReadFull(r, got[:]); err != nil {
		return fmt.Errorf("checksum: %v", err)
	}
	if binary.LittleEndian.Uint32(got[:]) != want {
		return errors.New("checksum mismatch")
	}
	if _, err := r.Read(got[:1]); err != io.EOF {
		return errors.New("bytes after the checksum")
	}
	return nil
}

// loadSnapshot loads the cache from its snapshot and catches up through
// the change log, and marks the cache ready. Any reason not to use the
// snapshot is an error wrapping errNotUsable, after which the cache is as
// before; a failure to catch up is the store's error, as load's.
func (c *Store) loadSnapshot(ctx context.Context) error {
	c.setReady(false)
	began := time.Now()
	t, rev, err := c.readSnapshot(ctx, c.opts.Snapshot)
	if err != nil {
		return err
	}
	c.snapMu.Lock()
	c.saved = rev // the file holds it already
	c.snapMu.Unlock()
	c.mu.Lock()
	c.people, c.rev, c.exact = t, rev, true
	c.mu.Unlock()
	c.applied.Advance(rev)
	end, err := c.Store.Revision(ctx)
	if err != nil {
		return err
	}
	for c.applied.Get() < end {
		if _, err := c.catchUp(ctx); err != nil {
			return err
		}
	}
	c.opts.Log.Info("read cache loaded", "people", c.Len(), "revision", c.applied.Get(), "from_snapshot_revision", rev, "took", time.Since(began).Round(time.Millisecond))
	c.setReady(true)
	return nil
}

// saveSnapshot writes the table as it is to the snapshot file, replacing
// the file only once the new one is whole and on disk. It writes nothing
// when the cache is not ready or reflects no change yet, or when the
// store no longer holds the change the table reflects last.
func (c *Store) saveSnapshot(ctx context.Context) error {
	c.snapMu.Lock()
	defer c.snapMu.Unlock()
	if !c.ready.Load() {
		return nil
	}
	c.mu.RLock()
	exact := c.exact
	v, rev, n := c.people.view(), c.rev, c.people.n
	c.mu.RUnlock()
	if !exact || rev <= 0 || rev == c.saved {
		return nil
	}
	digest, err := c.loggedDigest(ctx, rev)
	if people.KindOf(err) == people.OutOfRange {
		return nil // the next snapshot will do
	}
	if err != nil {
		return err
	}
	if err := writeSnapshot(c.opts.Snapshot, v, rev, digest, n); err != nil {
		return err
	}
	c.saved = rev
	c.opts.Log.Info("read cache snapshot written", "path", c.opts.Snapshot, "people", n, "revision", rev)
	return nil
}

// writeSnapshot writes the snapshot of v, which reflects revision rev and
// holds n people, to path: to a temporary file first, synced, then renamed
// over path, and the directory synced.
func writeSnapshot(path string, v view, rev int64, digest [32]byte, n int) (err error) {
	dir := filepath.Dir(path)
	removeTemps(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	sum := crc32.New(castagnoli)
	bw := bufio.NewWriterSize(f, 1<<20)
	w := io.MultiWriter(bw, sum)
	var head []byte
	head = append(head, snapshotMagic...)
	head = append(head, encodingDigest[:]...)
	head = binary.LittleEndian.AppendUint64(head, uint64(rev))
	head = append(head, digest[:]...)
	head = binary.LittleEndian.AppendUint64(head, uint64(n))
	if _, err := w.Write(head); err != nil {
		return err
	}
	chunk := make([]byte, 0, chunkSize)
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		if err := writeChunk(w, chunk); err != nil {
			return err
		}
		chunk = chunk[:0]
		return nil
	}
	count := 0
	err = v.each(func(e []byte) error {
		count++
		if len(chunk)+len(e) > chunkSize {
			if err := flush(); err != nil {
				return err
			}
		}
		if len(e) > chunkSize {
			return writeChunk(w, e)
		}
		chunk = append(chunk, e...)
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return err
	}
	if count != n {
		return fmt.Errorf("cache: the table counts %d people but holds %d", n, count)
	}
	if _, err := w.Write([]byte{0, 0, 0, 0}); err != nil {
		return err
	}
	if _, err := bw.Write(binary.LittleEndian.AppendUint32(nil, sum.Sum32())); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func writeChunk(w io.Writer, b []byte) error {
	if _, err := w.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(b)))); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

// removeTemps removes the temporary files of snapshots at path whose
// writing never finished: a process stopped midway leaves one. One
// process serves a store, so none of them is being written.
func removeTemps(path string) {
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		return
	}
	prefix := filepath.Base(path) + "."
	for _, e := range entries {
		if name := e.Name(); strings.HasPrefix(name, prefix) && strings.HasSuffix(name, ".tmp") {
			os.Remove(filepath.Join(filepath.Dir(path), name))
		}
	}
}

package cache

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
)

// table holds people in wire form: each person's name and encoding (for
// the cache, the person's 8-byte etag and wire encoding) are
// appended to large byte chunks, and an open-addressing hash table (linear
// probing) of positions in those chunks finds them by name. Neither the
// chunks nor the positions hold pointers, so the collector never walks the
// people, and a person costs its encoding, its name again, two lengths and
// a slot of 8 bytes (at most 4/3 of a slot, and at least twice that right
// after the slots double).
//
// Measured reason, against a map[string]string from each name (a part of
// the encoding) to the encoding, at a million people of bench/genpeople
// (62 bytes encoded): the map held 86 bytes a person beyond the encodings
// and the collector marked every entry, which cost the cold start's load a
// third of its CPU, and the resident memory of a server reached 450 MiB.
//
// Entries are never written once appended: an encoding get returns stays as
// it is for as long as its holder keeps it, whatever the table does next. A
// replaced or removed person's bytes are dead; when they are more than half
// of the chunks, compact copies the live entries into new chunks.
//
// A table is not safe for concurrent use; the cache guards it.
type table struct {
	seed   maphash.Seed
	slots  []uint64 // 0: empty; else tagOf(hash) | chunk<<32 | offset
	chunks [][]byte
	n      int   // people held
	used   int64 // bytes of the chunks taken by entries, live or dead
	dead   int64 // bytes of entries replaced or removed
	// minCompact is the least dead bytes worth a compaction.
	minCompact int64
	// chunk is the size of a new chunk; 0 means chunkSize. A bounded
	// cache's tables use smaller ones (see newGenerations).
	chunk int
}

const (
	// chunkSize is the size of a chunk: a person is a few hundred bytes at
	// most, so a chunk wastes at most that at its end. A larger entry gets
	// a chunk of its own size.
	chunkSize = 4 << 20
	// tagMask selects a slot's tag: 15 bits of the name's hash, with the
	// top bit set so that no used slot is 0. Comparing tags first skips
	// reading the entry of almost every other name met while probing.
	tagMask = uint64(0xffff) << 48
	// maxChunks is how many chunks a position can name (16 bits).
	maxChunks = 1 << 16
)

func newTable() *table { return newTableFor(0) }

// newTableFor returns a table with slots enough for n people, so that
// filling it never resizes.
func newTableFor(n int) *table {
	slots := 16
	for n*4 > slots*3 {
		slots *= 2
	}
	return &table{seed: maphash.MakeSeed(), slots: make([]uint64, slots), minCompact: 16 << 20}
}

func tagOf(h uint64) uint64 { return (h>>48 | 0x8000) << 48 }

// entry returns the name and encoding of the entry a slot points to. The
// encoding is capped to its length, so an append to it cannot reach the
// chunk.
func (t *table) entry(slot uint64) (name, enc []byte) {
	return parseEntry(t.chunks[(slot>>32)&0xffff][uint32(slot):])
}

// parseEntry returns the name and encoding of the entry b starts with.
func parseEntry(b []byte) (name, enc []byte) {
	n, k := binary.Uvarint(b)
	b = b[k:]
	name, b = b[:n], b[n:]
	n, k = binary.Uvarint(b)
	b = b[k:]
	return name, b[:n:n]
}

// size returns the bytes of the entry a slot points to.
func (t *table) size(slot uint64) int64 {
	name, enc := t.entry(slot)
	return entrySize(len(name), len(enc))
}

func entrySize(name, enc int) int64 {
	var tmp [binary.MaxVarintLen64]byte
	return int64(binary.PutUvarint(tmp[:], uint64(name)) + name + binary.PutUvarint(tmp[:], uint64(enc)) + enc)
}

// find returns the slot holding name, or the empty slot where it would go.
func (t *table) find(name string, h uint64) (i int, found bool) {
	mask := len(t.slots) - 1
	tag := tagOf(h)
	for i = int(h) & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			return i, false
		}
		if s&tagMask == tag {
			if n, _ := t.entry(s); string(n) == name {
				return i, true
			}
		}
	}
}

// get returns the encoding of the person named name. The caller must not
// modify it.
func (t *table) get(name string) ([]byte, bool) {
	i, ok := t.find(name, maphash.String(t.seed, name))
	if !ok {
		return nil, false
	}
	_, enc := t.entry(t.slots[i])
	return enc, true
}

// put adds the person named name with encoding enc, or replaces them.
func (t *table) put(name string, enc []byte) {
	if (t.n+1)*4 > len(t.slots)*3 {
		t.resize(2 * len(t.slots))
	}
	h := maphash.String(t.seed, name)
	i, found := t.find(name, h)
	if found {
		t.dead += t.size(t.slots[i])
	} else {
		t.n++
	}
	t.slots[i] = tagOf(h) | appendEntry(t, name, enc)
	t.maybeCompact()
}

// appendEntry writes an entry at the end of t's chunks and returns its
// position.
func appendEntry[S string | []byte](t *table, name S, enc []byte) uint64 {
	size := entrySize(len(name), len(enc))
	last := len(t.chunks) - 1
	if last < 0 || int64(cap(t.chunks[last])-len(t.chunks[last])) < size {
		if len(t.chunks) == maxChunks {
			// 65,536 chunks of 4 MiB: 256 GiB of people, far beyond any
			// memory this cache is meant for.
			panic("cache: the table is full")
		}
		t.chunks = append(t.chunks, make([]byte, 0, max(cmp.Or(int64(t.chunk), chunkSize), size)))
		last++
	}
	c := t.chunks[last]
	pos := uint64(last)<<32 | uint64(len(c))
	c = binary.AppendUvarint(c, uint64(len(name)))
	c = append(c, name...)
	c = binary.AppendUvarint(c, uint64(len(enc)))
	t.chunks[last] = append(c, enc...)
	t.used += size
	return pos
}

// remove removes the person named name, and reports whether there was one.
// The slots after it that probed past it move back (backward shift), so
// that no tombstone is left.
func (t *table) remove(name string) bool {
	i, ok := t.find(name, maphash.String(t.seed, name))
	if !ok {
		return false
	}
	t.dead += t.size(t.slots[i])
	t.n--
	mask := len(t.slots) - 1
	for j := (i + 1) & mask; t.slots[j] != 0; j = (j + 1) & mask {
		n, _ := t.entry(t.slots[j])
		home := int(maphash.Bytes(t.seed, n)) & mask
		// The entry at j may fill the hole at i unless its home lies
		// cyclically in (i, j].
		if (i <= j && (home <= i || home > j)) || (i > j && home <= i && home > j) {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = 0
	t.maybeCompact()
	return true
}

// resize puts every entry into n slots.
func (t *table) resize(n int) {
	old := t.slots
	t.slots = make([]uint64, n)
	mask := n - 1
	for _, s := range old {
		if s == 0 {
			continue
		}
		name, _ := t.entry(s)
		i := int(maphash.Bytes(t.seed, name)) & mask
		for t.slots[i] != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = s
	}
}

// maybeCompact copies the live entries into new chunks when dead ones take
// more than half of the chunks. Encodings returned before stay valid: the
// old chunks are dropped, not reused.
func (t *table) maybeCompact() {
	if t.dead < t.minCompact || t.dead*2 < t.used {
		return
	}
	old := t.chunks
	t.chunks, t.used, t.dead = nil, 0, 0
	for i, s := range t.slots {
		if s == 0 {
			continue
		}
		name, enc := parseEntry(old[(s>>32)&0xffff][uint32(s):])
		t.slots[i] = s&tagMask | appendEntry(t, name, enc)
	}
}

// adopt takes chunk, a run of whole entries as append writes them, as a
// chunk of t's, and files each of its entries; the caller must not use
// chunk again. It reports how many entries chunk held, and fails, taking
// nothing, when chunk does not parse into whole entries or names a person
// t already holds: a table never holds a name twice. It never resizes, so
// the caller sizes t first (newTableFor).
func (t *table) adopt(chunk []byte) (int, error) {
	if len(t.chunks) == maxChunks {
		return 0, errors.New("too many chunks")
	}
	c := uint64(len(t.chunks))
	t.chunks = append(t.chunks, chunk[:len(chunk):len(chunk)]) // appends go to a chunk of their own
	var filled []int                                           // the slots filled so far, to undo on failure
	undo := func(err error) (int, error) {
		for _, i := range filled {
			t.slots[i] = 0
		}
		t.n -= len(filled)
		t.chunks = t.chunks[:c]
		return 0, err
	}
	mask := len(t.slots) - 1
	for off := 0; off < len(chunk); {
		name, _, size, ok := splitEntry(chunk[off:])
		if !ok {
			return undo(fmt.Errorf("a partial entry at byte %d of a chunk", off))
		}
		if (t.n+1)*4 > len(t.slots)*3 {
			return undo(errors.New("more people than the table was sized for"))
		}
		h := maphash.Bytes(t.seed, name)
		tag := tagOf(h)
		i := int(h) & mask
		for ; t.slots[i] != 0; i = (i + 1) & mask {
			if t.slots[i]&tagMask == tag {
				if n, _ := t.entry(t.slots[i]); bytes.Equal(n, name) {
					return undo(fmt.Errorf("%q twice", name))
				}
			}
		}
		t.slots[i] = tag | c<<32 | uint64(off)
		filled = append(filled, i)
		t.n++
		off += size
	}
	t.used += int64(len(chunk))
	return len(filled), nil
}

// splitEntry is parseEntry for bytes that may be damaged: ok is false
// unless b starts with a whole entry, and size is that entry's length.
func splitEntry(b []byte) (name, enc []byte, size int, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, 0, false
	}
	name, rest := b[k:k+int(n)], b[k+int(n):]
	m, j := binary.Uvarint(rest)
	if j <= 0 || m > uint64(len(rest)-j) {
		return nil, nil, 0, false
	}
	enc = rest[j : j+int(m)]
	return name, enc, k + int(n) + j + int(m), true
}

// view is a table's entries as they were when view was taken: entries are
// never written once appended, so a view stays valid, without a lock,
// whatever the table does next.
type view struct {
	slots  []uint64
	chunks [][]byte
}

// view returns t's entries as they are now. The caller holds the lock that
// guards t for reading.
func (t *table) view() view {
	return view{slots: slices.Clone(t.slots), chunks: slices.Clone(t.chunks)}
}

// each calls fn with the bytes of each entry (name and encoding, as append
// wrote them) in slot order, until fn returns an error.
func (v view) each(fn func(entry []byte) error) error {
	for _, s := range v.slots {
		if s == 0 {
			continue
		}
		b := v.chunks[(s>>32)&0xffff][uint32(s):]
		_, _, size, _ := splitEntry(b)
		if err := fn(b[:size]); err != nil {
			return err
		}
	}
	return nil
}

package cache

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestTableAgainstMap puts and removes people at random, with a table that
// compacts early, and checks after every step that it holds what a map
// does, and that encodings it returned earlier have not changed.
func TestTableAgainstMap(t *testing.T) {
	tab := newTable()
	tab.minCompact = 4 << 10
	want := map[string][]byte{}
	type held struct{ got, want []byte }
	var kept []held
	r := rand.New(rand.NewPCG(1, 2))
	compactions := 0
	for step := range 20_000 {
		name := fmt.Sprintf("person-%d", r.IntN(500))
		if r.IntN(4) == 0 {
			_, had := want[name]
			if got := tab.remove(name); got != had {
				t.Fatalf("step %d: remove(%s) = %v, want %v", step, name, got, had)
			}
			delete(want, name)
		} else {
			enc := []byte(strings.Repeat(fmt.Sprint(step), 1+r.IntN(30)))
			before := tab.used
			tab.put(name, enc)
			if tab.used < before {
				compactions++
			}
			want[name] = enc
		}
		if tab.n != len(want) {
			t.Fatalf("step %d: the table holds %d people, want %d", step, tab.n, len(want))
		}
		if got, ok := tab.get(name); ok != (want[name] != nil) || !bytes.Equal(got, want[name]) {
			t.Fatalf("step %d: get(%s) = %q, %v; want %q", step, name, got, ok, want[name])
		} else if ok && step%50 == 0 {
			kept = append(kept, held{got, bytes.Clone(got)})
		}
	}
	for name, enc := range want {
		if got, ok := tab.get(name); !ok || !bytes.Equal(got, enc) {
			t.Errorf("get(%s) = %q, %v; want %q", name, got, ok, enc)
		}
	}
	if _, ok := tab.get("nobody"); ok {
		t.Error("get(nobody) found someone")
	}
	for _, h := range kept {
		if !bytes.Equal(h.got, h.want) {
			t.Fatalf("an encoding returned earlier changed from %q to %q", h.want, h.got)
		}
	}
	if compactions == 0 {
		t.Error("the table never compacted")
	}
	if tab.dead*2 > tab.used && tab.dead >= tab.minCompact {
		t.Errorf("dead bytes %d of %d used: not compacted", tab.dead, tab.used)
	}
}

// TestTableEncodingIsCapped checks that appending to an encoding get
// returned cannot write into the table.
func TestTableEncodingIsCapped(t *testing.T) {
	tab := newTable()
	tab.put("a", []byte("first"))
	tab.put("b", []byte("second"))
	a, _ := tab.get("a")
	_ = append(a, "XXXXXX"...)
	if b, _ := tab.get("b"); string(b) != "second" {
		t.Fatalf("get(b) = %q after appending to a's encoding, want second", b)
	}
}

// TestTableAdoptRefusesDamage checks that adopt takes a chunk only when it
// holds whole entries of names the table lacks, and leaves the table as
// it was otherwise.
func TestTableAdoptRefusesDamage(t *testing.T) {
	var whole []byte
	for _, name := range []string{"a", "b", "c"} {
		whole = binary.AppendUvarint(whole, uint64(len(name)))
		whole = append(whole, name...)
		whole = binary.AppendUvarint(whole, 2)
		whole = append(whole, "xy"...)
	}
	tb := newTableFor(10)
	if _, err := tb.adopt(slices.Clone(whole[:len(whole)-1])); err == nil {
		t.Error("adopt took a chunk whose last entry is cut short")
	}
	if _, err := tb.adopt(append(slices.Clone(whole), whole[:5]...)); err == nil {
		t.Error("adopt took a chunk holding a name twice")
	}
	if tb.n != 0 || len(tb.chunks) != 0 {
		t.Fatalf("a refused chunk left %d people in %d chunks", tb.n, len(tb.chunks))
	}
	if n, err := tb.adopt(slices.Clone(whole)); n != 3 || err != nil {
		t.Fatalf("adopt = %d, %v; want 3 people", n, err)
	}
	if _, err := tb.adopt(slices.Clone(whole[:5])); err == nil {
		t.Error("adopt took a name the table holds")
	}
	for _, name := range []string{"a", "b", "c"} {
		if enc, ok := tb.get(name); !ok || string(enc) != "xy" {
			t.Errorf("get(%q) = %q, %v", name, enc, ok)
		}
	}
	tb.put("d", []byte("zz")) // appends go to a new chunk, not after the adopted entries
	if enc, ok := tb.get("c"); !ok || string(enc) != "xy" {
		t.Errorf("after a put, get(c) = %q, %v", enc, ok)
	}
}

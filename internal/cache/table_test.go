package cache

import (
	"bytes"
	"fmt"
	"math/rand/v2"
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

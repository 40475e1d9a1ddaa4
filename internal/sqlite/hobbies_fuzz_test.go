package sqlite

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzEncodeHobbies checks that encodeHobbies writes what json.Marshal
// writes, whatever the hobbies, and that decodeHobbies reads it back.
func FuzzEncodeHobbies(f *testing.F) {
	for _, s := range []string{"chess", "chess\x00go", `a "quoted" one`, `back\slash`, "<b>&</b>", "ünïcode\u2028", "\xff", "tab\there", "", "del\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, joined string) {
		h := strings.Split(joined, "\x00")
		want, _ := json.Marshal(h)
		if got := encodeHobbies(h); got != string(want) {
			t.Fatalf("encodeHobbies(%q) = %s; json.Marshal writes %s", h, got, want)
		}
		if utf8.ValidString(joined) { // json.Marshal replaces invalid UTF-8
			if back, err := decodeHobbies(encodeHobbies(h)); err != nil || !slices.Equal(back, h) {
				t.Fatalf("decodeHobbies(encodeHobbies(%q)) = %q, %v", h, back, err)
			}
		}
	})
}

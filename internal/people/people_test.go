package people

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	ok := Person{Name: "Alice", Age: 30, Gender: GenderFemale, Hobbies: []string{"reading"}, Address: Address{Street: "1 Main St", City: "New York"}}
	tests := []struct {
		name   string
		change func(p *Person)
		fields []string
	}{
		{"valid", func(*Person) {}, nil},
		{"100 characters", func(p *Person) { p.Name = strings.Repeat("ä", 100) }, nil},
		{"emoji and scripts", func(p *Person) { p.Name = "Zoë 李 😀 محمد" }, nil},
		{"zero width joiner is allowed", func(p *Person) { p.Name = "👩\u200d💻" }, nil},
		{"empty name", func(p *Person) { p.Name = "" }, []string{"name"}},
		{"blank name", func(p *Person) { p.Name = "   " }, []string{"name"}},
		{"101 characters", func(p *Person) { p.Name = strings.Repeat("a", 101) }, []string{"name"}},
		{"NUL", func(p *Person) { p.Name = "a\x00" }, []string{"name"}},
		{"newline", func(p *Person) { p.Name = "a\nb" }, []string{"name"}},
		{"DEL", func(p *Person) { p.Name = "a\x7f" }, []string{"name"}},
		{"C1 control", func(p *Person) { p.Name = "a\u0085" }, []string{"name"}},
		{"right-to-left override", func(p *Person) { p.Name = "a\u202eb" }, []string{"name"}},
		{"left-to-right isolate", func(p *Person) { p.Name = "a\u2066b" }, []string{"name"}},
		{"invalid UTF-8", func(p *Person) { p.Name = "a\xffb" }, []string{"name"}},
		{"age -1", func(p *Person) { p.Age = -1 }, []string{"age"}},
		{"age 150", func(p *Person) { p.Age = 150 }, nil},
		{"age 151", func(p *Person) { p.Age = 151 }, []string{"age"}},
		{"gender 3", func(p *Person) { p.Gender = 3 }, []string{"gender"}},
		{"32 hobbies", func(p *Person) { p.Hobbies = make([]string, 32); fill(p.Hobbies) }, nil},
		{"33 hobbies", func(p *Person) { p.Hobbies = make([]string, 33); fill(p.Hobbies) }, []string{"hobbies"}},
		{"64-character hobby", func(p *Person) { p.Hobbies = []string{strings.Repeat("h", 64)} }, nil},
		{"65-character hobby", func(p *Person) { p.Hobbies = []string{"ok", strings.Repeat("h", 65)} }, []string{"hobbies[1]"}},
		{"blank hobby", func(p *Person) { p.Hobbies = []string{" "} }, []string{"hobbies[0]"}},
		{"200-character street", func(p *Person) { p.Address.Street = strings.Repeat("s", 200) }, nil},
		{"201-character city", func(p *Person) { p.Address.City = strings.Repeat("c", 201) }, []string{"address.city"}},
		{"empty address", func(p *Person) { p.Address = Address{} }, nil},
		{"several", func(p *Person) { p.Name = ""; p.Age = 999; p.Address.Street = "\x00" }, []string{"name", "age", "address.street"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := ok
			p.Hobbies = append([]string(nil), ok.Hobbies...)
			tt.change(&p)
			err := Validate(p)
			var got []string
			if err != nil {
				if KindOf(err) != Invalid {
					t.Fatalf("Validate: kind %v, want Invalid", KindOf(err))
				}
				for _, v := range err.(*Error).Violations {
					got = append(got, v.Field)
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.fields, ",") {
				t.Errorf("Validate: fields %q, want %q (err %v)", got, tt.fields, err)
			}
		})
	}
}

func fill(hobbies []string) {
	for i := range hobbies {
		hobbies[i] = "h" + string(rune('a'+i%26)) + strings.Repeat("x", i/26)
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{" \tAlice \n", "Alice"},
		{"Alice", "Alice"},
		{"Jose\u0301", "Jos\u00e9"},
		{" Zo\u0308e\u3000", "Z\u00f6e"},
		{"\u00e9", "\u00e9"},
	}
	for _, tt := range tests {
		if got := Normalize(Person{Name: tt.in}).Name; got != tt.want {
			t.Errorf("Normalize name %q = %q, want %q", tt.in, got, tt.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = NormalizeName("Alice") }); n != 0 {
		t.Errorf("NormalizeName(Alice) allocates %v times, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = NormalizeName("Jos\u00e9") }); n != 0 {
		t.Errorf("NormalizeName of an NFC name allocates %v times, want 0", n)
	}
}

func TestNormalizePrefix(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Ann ", "Ann "},
		{" Ann", "Ann"},
		{"Jose\u0301 ", "Jos\u00e9 "},
		{"", ""},
	}
	for _, tt := range tests {
		if got := NormalizePrefix(tt.in); got != tt.want {
			t.Errorf("NormalizePrefix(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestInvisibleAndReservedNames lists names that look like another name, or
// like nothing, or like the seed's not-found answer.
func TestInvisibleAndReservedNames(t *testing.T) {
	tests := []struct {
		name  string
		valid bool
	}{
		{"Not Found", false},
		{"not found", false},
		{"NOT FOUND", false},
		{"Not Found Jr", true},
		{"Alice\u200b", false}, // zero width space
		{"Ali\u200cce", false}, // zero width non-joiner
		{"A\u200dlice", false}, // zero width joiner between letters
		{"\u200d", false},
		{"Alice\ufeff", false}, // byte order mark
		{"Al\u2060ice", false}, // word joiner
		{"Al\u00adice", false}, // soft hyphen
		{"A\u034flice", false}, // combining grapheme joiner
		{"\u3164", false},      // Hangul filler
		{"A\u3164", false},
		{"\uffa0", false},                    // halfwidth Hangul filler
		{"\u2800", false},                    // Braille pattern blank
		{"Al\u2028ice", false},               // line separator
		{"Al\u2029ice", false},               // paragraph separator
		{"\u0301", false},                    // a lone combining mark
		{"\u0301\u0302", false},              // marks only
		{"A\U000e0041", false},               // tag character
		{"Alice\ufe0f", false},               // variation selector after a letter
		{"\u2764\ufe0f", true},               // heavy heart, emoji form
		{"\U0001F469\u200d\U0001F4BB", true}, // woman technologist
		{"\U0001F469\u200d", false},          // a joiner with nothing to join
		{"Jos\u00e9", true},
		{"\u2800A", false},
		{"A\u3000B", true}, // ideographic space is visible space
	}
	for _, tt := range tests {
		err := Validate(Normalize(Person{Name: tt.name}))
		if (err == nil) != tt.valid {
			t.Errorf("Validate(name %+q) = %v, want valid %v", tt.name, err, tt.valid)
			continue
		}
		if err != nil {
			if v := err.(*Error).Violations; len(v) != 1 || v[0].Field != "name" {
				t.Errorf("Validate(name %+q): violations %v, want one on name", tt.name, v)
			}
		}
	}
}

func TestPrefixEnd(t *testing.T) {
	tests := []struct {
		prefix, want string
		ok           bool
	}{
		{"", "", false},
		{"Al", "Am", true},
		{"a\U0010FFFF", "b", true},
		{"\U0010FFFF", "", false},
		{"\uD7FF", "\uE000", true},
		{"É", "Ê", true},
	}
	for _, tt := range tests {
		got, ok := PrefixEnd(tt.prefix)
		if got != tt.want || ok != tt.ok {
			t.Errorf("PrefixEnd(%q) = %q, %v; want %q, %v", tt.prefix, got, ok, tt.want, tt.ok)
		}
	}
}

func TestCheckResume(t *testing.T) {
	tests := []struct {
		after, oldest, latest int64
		want                  Kind
		ok                    bool
	}{
		{0, 1, 5, 0, true},
		{5, 1, 5, 0, true},
		{6, 1, 5, OutOfRange, false},
		{3, 5, 9, OutOfRange, false},
		{4, 5, 9, 0, true},
		{-1, 1, 5, Invalid, false},
		{0, 1, 0, 0, true}, // an empty log
	}
	for _, tt := range tests {
		err := CheckResume(tt.after, tt.oldest, tt.latest)
		if (err == nil) != tt.ok || (err != nil && KindOf(err) != tt.want) {
			t.Errorf("CheckResume(%d, %d, %d) = %v, want ok=%v kind %v", tt.after, tt.oldest, tt.latest, err, tt.ok, tt.want)
		}
	}
}

func TestParseGender(t *testing.T) {
	for in, want := range map[string]Gender{"female": GenderFemale, "MALE": GenderMale, " Unknown ": GenderUnknown, "": GenderUnknown} {
		if got, err := ParseGender(in); err != nil || got != want {
			t.Errorf("ParseGender(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseGender("robot"); KindOf(err) != Invalid {
		t.Errorf("ParseGender(robot) = %v, want an Invalid error", err)
	}
}

func TestCheckContiguous(t *testing.T) {
	changes := func(revs ...int64) []Change {
		var out []Change
		for _, r := range revs {
			out = append(out, Change{Revision: r})
		}
		return out
	}
	tests := []struct {
		after, latest int64
		changes       []Change
		ok            bool
	}{
		{4, 9, changes(5, 6), true},
		{9, 9, nil, true},
		{4, 9, changes(7, 8), false}, // 5 and 6 were trimmed meanwhile
		{4, 9, nil, false},           // everything after 4 was trimmed
	}
	for _, tt := range tests {
		err := CheckContiguous(tt.after, tt.latest, tt.changes)
		if (err == nil) != tt.ok || (err != nil && KindOf(err) != OutOfRange) {
			t.Errorf("CheckContiguous(%d, %d, %v) = %v, want ok=%v", tt.after, tt.latest, tt.changes, err, tt.ok)
		}
	}
}

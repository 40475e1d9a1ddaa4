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
	if got := Normalize(Person{Name: " \tAlice \n"}).Name; got != "Alice" {
		t.Errorf("Normalize name = %q, want Alice", got)
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

package people

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Limits on a person's fields. They bound what one record can cost to store
// and to send, and keep names printable.
const (
	MaxNameLen    = 100 // characters
	MaxAge        = 150
	MaxHobbies    = 32
	MaxHobbyLen   = 64  // characters
	MaxAddressLen = 200 // characters, for street and city each

	// MaxNameBytes is the longest a valid name can be in bytes: MaxNameLen
	// characters of at most utf8.UTFMax bytes each. A longer name is
	// nobody's, whatever it holds.
	MaxNameBytes = MaxNameLen * utf8.UTFMax
	// MaxNameSpelling is the longest a name can be in bytes as a client
	// spells it, without surrounding white space, and still be a valid
	// name once normalized (NormalizeName): NFC composes at most four code
	// points, the longest canonical decomposition, into one character.
	MaxNameSpelling = 4 * MaxNameBytes
	// MaxPersonBytes is the most text a valid person holds, in bytes: a
	// name, MaxHobbies hobbies, a street and a city, each at its longest.
	// The person's memory or wire form adds a small constant to it.
	MaxPersonBytes = MaxNameBytes + MaxHobbies*MaxHobbyLen*utf8.UTFMax + 2*MaxAddressLen*utf8.UTFMax
)

// FieldViolation names one field of a request and what is wrong with it.
type FieldViolation struct {
	Field       string // the field's path, such as "name" or "hobbies[2]"
	Description string
}

// NotFoundName is the name of the person GetPerson answers when nobody has
// the name asked for, as the seed contract defines it. Nobody may be called
// that (see Validate), so that clients can tell the answer from a person.
const NotFoundName = "Not Found"

// NormalizeName returns name as the directory stores and looks it up: without
// leading and trailing white space, in Unicode normalization form C, so that
// one name has one spelling ("e" and a combining acute accent become "é").
// Every method normalizes the names it is given, reads as well as writes, so
// a name a write accepts is found by a read with the same string. A name
// that is already normal (such as any ASCII name without surrounding spaces)
// is returned as it is, without allocating.
func NormalizeName(name string) string {
	if isNormalASCII(name) {
		return name
	}
	return norm.NFC.String(strings.TrimSpace(name))
}

// isNormalASCII reports whether name is ASCII without leading or trailing
// white space, which NormalizeName leaves as it is.
func isNormalASCII(name string) bool {
	if name == "" {
		return true
	}
	if isASCIISpace(name[0]) || isASCIISpace(name[len(name)-1]) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if name[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func isASCIISpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\v' || b == '\f' || b == '\r'
}

// NormalizePrefix returns a name prefix normalized as names are, except that
// trailing white space is kept: "Ann " asks for "Ann Lee" but not "Anna".
func NormalizePrefix(prefix string) string {
	if isNormalASCII(strings.TrimRight(prefix, " ")) {
		return prefix
	}
	return norm.NFC.String(strings.TrimLeftFunc(prefix, unicode.IsSpace))
}

// Normalize returns p as the directory stores it, with its name normalized.
func Normalize(p Person) Person {
	p.Name = NormalizeName(p.Name)
	return p
}

// Validate checks p, which should already be normalized, against the
// directory's rules. It returns nil, or an *Error of kind Invalid that lists
// every violation.
func Validate(p Person) error {
	var v []FieldViolation
	add := func(field, format string, args ...any) {
		v = append(v, FieldViolation{Field: field, Description: fmt.Sprintf(format, args...)})
	}
	if msg := checkName(p.Name); msg != "" {
		add("name", "%s", msg)
	}
	if p.Age < 0 || p.Age > MaxAge {
		add("age", "must be between 0 and %d, got %d", MaxAge, p.Age)
	}
	if p.Gender != GenderUnknown && p.Gender != GenderMale && p.Gender != GenderFemale {
		add("gender", "must be UNKNOWN, MALE or FEMALE, got %d", int32(p.Gender))
	}
	if len(p.Hobbies) > MaxHobbies {
		add("hobbies", "at most %d hobbies, got %d", MaxHobbies, len(p.Hobbies))
	}
	for i, h := range p.Hobbies {
		if msg := checkText(h, MaxHobbyLen, true); msg != "" {
			add(fmt.Sprintf("hobbies[%d]", i), "%s", msg)
		}
	}
	if msg := checkText(p.Address.Street, MaxAddressLen, false); msg != "" {
		add("address.street", "%s", msg)
	}
	if msg := checkText(p.Address.City, MaxAddressLen, false); msg != "" {
		add("address.city", "%s", msg)
	}
	if len(v) > 0 {
		return &Error{Kind: Invalid, Message: "invalid person: " + v[0].Field + " " + v[0].Description, Violations: v}
	}
	return nil
}

// ValidateName checks a name given to change or delete someone, after
// NormalizeName. It applies only the rules every stored name has always met
// (present, valid UTF-8, short, no control characters), not the newer ones on
// invisible and reserved names, so that a person stored before those can
// still be changed or removed; nobody else can have such a name, so those
// calls find nobody. It returns nil or an *Error of kind Invalid.
func ValidateName(name string) error {
	msg := "is required"
	if name != "" {
		msg = checkText(name, MaxNameLen, true)
	}
	if msg != "" {
		return &Error{Kind: Invalid, Message: "invalid name: " + msg, Violations: []FieldViolation{{Field: "name", Description: msg}}}
	}
	return nil
}

// checkName returns what is wrong with a normalized name, or "". Besides
// checkText's rules, a name must show at least one visible character, must
// not hold the invisible characters that let two names look the same
// ("Alice" and "Alice" followed by a zero width space), and must not be the
// seed's NotFoundName in any letter case.
func checkName(name string) string {
	if name == "" {
		return "is required"
	}
	if msg := checkText(name, MaxNameLen, true); msg != "" {
		return msg
	}
	if strings.EqualFold(name, NotFoundName) {
		return fmt.Sprintf("%q is reserved: GetPerson answers it for a name nobody has", NotFoundName)
	}
	visible := false
	var prev rune
	for i, r := range name {
		switch {
		case r == zwj && isEmoji(prev) && isEmoji(nextRune(name, i+utf8.RuneLen(r))):
			// joins two emoji into one, as in a family or a profession
		case isVariationSelector(r) && isEmoji(prev):
			// asks for the emoji or the text form of the symbol before it
		case isInvisible(r):
			return fmt.Sprintf("must not contain invisible character %U", r)
		case unicode.In(r, unicode.L, unicode.N, unicode.P, unicode.S):
			visible = true
		}
		if !isVariationSelector(r) {
			prev = r
		}
	}
	if !visible {
		return "must contain a visible character"
	}
	return ""
}

// zwj is the zero width joiner, which emoji sequences need.
const zwj = '\u200D'

// nextRune returns the rune at s[i:], or -1 at the end of s.
func nextRune(s string, i int) rune {
	if i >= len(s) {
		return -1
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	return r
}

// isEmoji approximates Unicode's Extended_Pictographic property, which the
// standard library lacks, by the Other Symbol category that holds emoji.
func isEmoji(r rune) bool { return unicode.Is(unicode.So, r) }

func isVariationSelector(r rune) bool {
	return (r >= 0xFE00 && r <= 0xFE0F) || (r >= 0xE0100 && r <= 0xE01EF)
}

// isInvisible reports whether r shows nothing, or nothing on its own, yet
// makes a name a different string: format characters (Unicode category Cf,
// such as U+200B ZERO WIDTH SPACE, U+FEFF and U+00AD SOFT HYPHEN), the other
// default-ignorable code points, blanks that are letters or symbols (U+3164
// HANGUL FILLER, U+2800 BRAILLE PATTERN BLANK), and the line and paragraph
// separators.
func isInvisible(r rune) bool {
	return unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp, defaultIgnorable) || r == 0x2800
}

// defaultIgnorable is Unicode's Default_Ignorable_Code_Point property
// (DerivedCoreProperties.txt), which the standard library lacks; most of it
// is also in category Cf.
var defaultIgnorable = &unicode.RangeTable{
	R16: []unicode.Range16{
		{Lo: 0x00AD, Hi: 0x00AD, Stride: 1},
		{Lo: 0x034F, Hi: 0x034F, Stride: 1},
		{Lo: 0x061C, Hi: 0x061C, Stride: 1},
		{Lo: 0x115F, Hi: 0x1160, Stride: 1},
		{Lo: 0x17B4, Hi: 0x17B5, Stride: 1},
		{Lo: 0x180B, Hi: 0x180F, Stride: 1},
		{Lo: 0x200B, Hi: 0x200F, Stride: 1},
		{Lo: 0x202A, Hi: 0x202E, Stride: 1},
		{Lo: 0x2060, Hi: 0x206F, Stride: 1},
		{Lo: 0x3164, Hi: 0x3164, Stride: 1},
		{Lo: 0xFE00, Hi: 0xFE0F, Stride: 1},
		{Lo: 0xFEFF, Hi: 0xFEFF, Stride: 1},
		{Lo: 0xFFA0, Hi: 0xFFA0, Stride: 1},
		{Lo: 0xFFF0, Hi: 0xFFF8, Stride: 1},
	},
	R32: []unicode.Range32{
		{Lo: 0x1BCA0, Hi: 0x1BCA3, Stride: 1},
		{Lo: 0x1D173, Hi: 0x1D17A, Stride: 1},
		{Lo: 0xE0000, Hi: 0xE0FFF, Stride: 1},
	},
}

// checkText returns what is wrong with s, or "". It must be valid UTF-8, at
// most max characters, free of control characters and of the invisible
// characters that reorder text (a right-to-left override can make one name
// display as another). required also refuses a blank s.
func checkText(s string, max int, required bool) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	if required && strings.TrimSpace(s) == "" {
		return "must not be blank"
	}
	if n := utf8.RuneCountInString(s); n > max {
		return fmt.Sprintf("must be at most %d characters, got %d", max, n)
	}
	for _, r := range s {
		if unicode.IsControl(r) || isBidiControl(r) {
			return fmt.Sprintf("must not contain control character %U", r)
		}
	}
	return ""
}

// isBidiControl reports whether r is one of Unicode's explicit
// directional formatting characters.
func isBidiControl(r rune) bool {
	switch {
	case r == 0x061C, r == 0x200E, r == 0x200F:
		return true
	case r >= 0x202A && r <= 0x202E:
		return true
	case r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

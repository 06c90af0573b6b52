package addr

import (
	"strings"
	"testing"
)

// IsCanonicalName must accept exactly names CanonicalName leaves unchanged.
func TestIsCanonicalNameAgreesWithCanonicalName(t *testing.T) {
	for _, s := range []string{
		"example.com", "a-b_c.example", "xn--bcher-kva.example", "Example.com", "example.com.",
		"1.2.3.4", "a.1", "a.0x1f", "a.b1", "0x1f", "-a.example", "a..b", ".a", "a.", "",
		strings.Repeat("a", 63) + ".x", strings.Repeat("a", 64) + ".x", strings.Repeat("a.", 126) + "x",
		strings.Repeat("a.", 127) + "x", "a b", "a*b.c", "ümlaut.example", "a.b.c.d.e",
	} {
		c, err := CanonicalName(s)
		want := err == nil && c == s
		if got := IsCanonicalName([]byte(s)); got && !want {
			t.Errorf("IsCanonicalName(%q) = true, CanonicalName = %q, %v", s, c, err)
		}
	}
	for _, s := range []string{"example.com", "a-b_c.example", "a.b.c.d.e", "x"} {
		if !IsCanonicalName([]byte(s)) {
			t.Errorf("IsCanonicalName(%q) = false", s)
		}
	}
}

func TestCheckHostname(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"example.com", true},
		{"Example.COM", true}, // a SAN is matched without regard to case
		{"a-b_c.example", true},
		{"x", true},
		{strings.Repeat("a", 63) + ".example", true},
		{"", false},
		{"*.example.com", false},
		{"*", false},
		{"a..example.com", false},
		{".example.com", false},
		{"example.com.", false},
		{"exa mple.com", false},
		{"example.com/path", false},
		{"user@example.com", false},
		{"example.com:443", false},
		{"bücher.example", false},
		{"\u212Aelvin.example", false}, // a Kelvin sign is not a K
		{"[::1]", false},
		{strings.Repeat("a", 64) + ".example", false},
		{strings.Repeat("abcdefghi.", 26) + "com", false},
		{"a\x00b", false},
	} {
		if err := CheckHostname(tc.name); (err == nil) != tc.ok {
			t.Errorf("CheckHostname(%q) = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

// FuzzName: the validator's three faces agree with each other and with
// CanonicalName, and never panic.
func FuzzName(f *testing.F) {
	for _, s := range []string{"example.com", "Example.com", "a..b", "1.2.3.4", "a.0x1f", "_srv.x", strings.Repeat("a.", 127) + "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if IsCanonicalName(s) {
			if c, err := CanonicalName(s); err != nil || c != s {
				t.Fatalf("IsCanonicalName(%q) but CanonicalName = %q, %v", s, c, err)
			}
			if err := CheckHostname(s); err != nil {
				t.Fatalf("IsCanonicalName(%q) but CheckHostname: %v", s, err)
			}
		}
		if IsCanonicalName(s) != IsCanonicalName([]byte(s)) {
			t.Fatalf("IsCanonicalName(%q) differs for string and bytes", s)
		}
		lower := strings.Map(func(r rune) rune {
			if r >= 'A' && r <= 'Z' {
				return r + 'a' - 'A'
			}
			return r
		}, s)
		if (CheckHostname(s) == nil) != (checkName(lower) == nil) {
			t.Fatalf("CheckHostname(%q) = %v but checkName(%q) = %v", s, CheckHostname(s), lower, checkName(lower))
		}
	})
}

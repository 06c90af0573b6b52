package mcp

import (
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// IDKey is one identity for ids that any peer reads as one: decoded
// strings, and numbers as the TypeScript client's Number(id) reads them.
func TestIDKey(t *testing.T) {
	for _, tc := range []struct {
		ids  []string // all one id
		not  string   // another id
		want string
	}{
		{[]string{`"rt-5"`, `"rt-\u0035"`, `"\u0072t-5"`}, `"rt-6"`, "s:rt-5"},
		{[]string{`5`, `"5"`, `" 5 "`, `"5.0"`, `"5e0"`, `"0x5"`, `"0b101"`, `"0o5"`, `"+5"`, `"\t5\n"`, `"\u00a05"`}, `"5x"`, "n:5"},
		{[]string{`0`, `""`, `"  "`, `"-0"`, `"0.0"`}, `"0x"`, "n:0"},
		{[]string{`-12`, `"-12"`, `"-1.2e1"`}, `"--12"`, "n:-12"},
		{[]string{`"1.5"`, `"1.50"`, `".15e1"`}, `"1.5.0"`, "n:1.5"},
		{[]string{`9007199254740991`, `"9007199254740991"`}, `"9007199254740990"`, "n:9007199254740991"},
		{[]string{`"Infinity"`}, `"-Infinity"`, "s:Infinity"},
		{[]string{`"1e400"`}, `"1e401"`, "s:1e400"},
		{[]string{`"0x_5"`}, `"0x5"`, "s:0x_5"},
		{[]string{`"5."`, `"5"`}, `"5.1"`, "n:5"},
		{[]string{`"."`}, `"e5"`, "s:."},
	} {
		for _, id := range tc.ids {
			if got := IDKey(jsontext.Value(id)); got != tc.want {
				t.Errorf("IDKey(%s) = %q, want %q", id, got, tc.want)
			}
		}
		if IDKey(jsontext.Value(tc.not)) == tc.want {
			t.Errorf("IDKey(%s) = %q, the same as %s's", tc.not, tc.want, tc.ids[0])
		}
	}
	for _, id := range []string{`null`, ``, `{}`, `true`} {
		if got := IDKey(jsontext.Value(id)); got != "" {
			t.Errorf("IDKey(%s) = %q, want \"\"", id, got)
		}
	}
}

// A second claim of an id in one session fails until the first is released;
// other sessions are apart.
func TestInFlightIDs(t *testing.T) {
	var s inFlightIDs
	if !s.claim("a", "n:1") || s.claim("a", "n:1") || !s.claim("b", "n:1") || !s.claim("a", "n:2") {
		t.Fatal("claims")
	}
	s.release("a", "n:1")
	if !s.claim("a", "n:1") {
		t.Fatal("a released id cannot be claimed again")
	}
}

package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/agentg/agentg/internal/testenv"
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

// jsNumber agrees with JavaScript's own Number(), run by Node 22 (the
// TypeScript client's runtime), on strings built to find where they part.
func TestJSNumberAgreesWithNode(t *testing.T) {
	node, _, err := testenv.Node()
	if err != nil {
		t.Skipf("Node 22 is needed to compare with JavaScript's Number(): %v", err)
	}
	cases := []string{"", " ", "5", " 5 ", "\t5\n", "\u00a05", "\u20285\u2029", "\ufeff5", "\u180e5", "\u200b5", "\u00855",
		"+5", "-5", "--5", "+-5", "5.", ".5", ".", "5.0", "5e0", "5E+0", "5e", "5e+", "0x5", "0X5", "0x", "0xg", "-0x5", "+0x5",
		"0o7", "0o8", "0b101", "0b2", "0x_5", "1_000", "05", "005.50", "-0", "0.0", "1e400", "-1e400", "1e-400", "Infinity",
		"-Infinity", "+Infinity", "infinity", "inf", "NaN", "9007199254740993", "0x1fffffffffffff", "0x" + strings.Repeat("f", 300),
		"1.5", "1.50", ".15e1", "15e-1", "5x", "x5", "5 5", "٥", "５", "0.1e1", "1e21", "123456789012345678901234567890"}
	in, _ := json.Marshal(cases)
	script := `const xs = JSON.parse(require("fs").readFileSync(0, "utf8"));
console.log(JSON.stringify(xs.map(s => { const n = Number(s); return Number.isFinite(n) ? String(n) : null; })));`
	cmd := exec.Command(node, "-e", script)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var js []*string
	if err := json.Unmarshal(out, &js); err != nil || len(js) != len(cases) {
		t.Fatalf("node printed %q: %v", out, err)
	}
	for i, s := range cases {
		f, ok := jsNumber(s)
		if ok != (js[i] != nil) {
			t.Errorf("Number(%q): JavaScript %v, jsNumber finite=%v (%v)", s, js[i], ok, f)
			continue
		}
		if ok {
			want, _ := strconv.ParseFloat(*js[i], 64)
			if f != want {
				t.Errorf("Number(%q): JavaScript %s, jsNumber %v", s, *js[i], f)
			}
		}
	}
}

// FuzzIDKey: an id's key does not depend on how it is escaped, and a
// string JavaScript reads as an integer id has that integer's key.
func FuzzIDKey(f *testing.F) {
	for _, s := range []string{"rt-5", "5", " 0x5 ", "5.0", "-0", "1e400", "Infinity", "\u00a07", ".5e1", "0b11"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		plain, err := json.Marshal(s)
		if err != nil {
			return
		}
		var esc strings.Builder
		esc.WriteByte('"')
		for _, r := range s {
			if r > 0xffff {
				r1, r2 := utf16.EncodeRune(r)
				fmt.Fprintf(&esc, `\u%04x\u%04x`, r1, r2)
			} else {
				fmt.Fprintf(&esc, `\u%04x`, r)
			}
		}
		esc.WriteByte('"')
		k := IDKey(jsontext.Value(plain))
		if k == "" || IDKey(jsontext.Value(esc.String())) != k {
			t.Fatalf("IDKey(%s) = %q, IDKey(%s) = %q", plain, k, esc.String(), IDKey(jsontext.Value(esc.String())))
		}
		if f, ok := jsNumber(s); ok && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			if n := IDKey(jsontext.Value(strconv.FormatInt(int64(f), 10))); n != k {
				t.Fatalf("%q is %v to JavaScript: key %q, the number's %q", s, f, k, n)
			}
		}
	})
}

package creds

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	tokA = "ghp_A1b2C3d4E5f6G7h8"
	tokB = "sk-live/9f8e7d6c+5b4a" // '/' and '+': percent and JSON forms hide them
)

func hitNames(hits []Hit) string {
	var out []string
	for _, h := range hits {
		s := h.Name
		if h.Placeholder {
			s = "ph:" + s
			if h.Unknown {
				s += "?"
			}
		}
		out = append(out, fmt.Sprintf("%s@%d", s, h.Form))
	}
	return strings.Join(out, " ")
}

func TestGuardScan(t *testing.T) {
	st := NewStore(map[string]Source{"a": Inline(tokA), "b": Inline(tokB), "short": Inline("abc"), "lazy": Inline("lazy-value-1234")})
	g := NewGuard(nil)
	rep := <-g.Use(context.Background(), st)
	if fmt.Sprint(rep.Read) != "[a b lazy]" || fmt.Sprint(rep.Short) != "[short]" || len(rep.Failed) != 0 {
		t.Fatalf("report %+v", rep)
	}
	if fmt.Sprint(g.Known()) != "[a b lazy]" {
		t.Fatalf("known %v", g.Known())
	}
	all := FormRaw | FormPercent | FormJSON
	tests := []struct {
		name, text string
		forms      Form
		want       string
	}{
		{"nothing", "plain text with abc in it", all, ""},
		{"raw", "Bearer " + tokA, FormRaw, "a@1"},
		{"at the end, cut", "Bearer " + tokA[:len(tokA)-1], all, ""},
		{"percent", "q=" + strings.NewReplacer("/", "%2F", "+", "%2b").Replace(tokB), all, "b@2"},
		{"percent not asked", "q=" + strings.NewReplacer("/", "%2F").Replace(tokB), FormRaw, ""},
		{"json slash", `{"k":"` + strings.ReplaceAll(tokB, "/", `\/`) + `"}`, all, "b@4"},
		{"json unicode", `{"k":"` + `\u0067\u0068` + tokA[2:] + `"}`, all, "a@4"},
		{"json surrogate noise", `{"k":"\ud83d\ude00 ` + tokA + `"}`, all, "a@1"},
		{"placeholder", "token agentg:a.", all, "ph:a@1"},
		{"unknown placeholder", "agentg:nope", all, "ph:nope?@1"},
		{"placeholder percent", "x=agentg%3Ab", all, "ph:b@2"},
		{"not a placeholder", "agentg: yes", all, ""},
		{"two", tokA + "|agentg:lazy|" + tokB, FormRaw, "a@1 b@1 ph:lazy@1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hitNames(g.ScanString(tt.text, tt.forms, nil)); got != tt.want {
				t.Errorf("%q: %q, want %q", tt.text, got, tt.want)
			}
			if got := hitNames(g.ScanBytes([]byte(tt.text), tt.forms, nil)); got != tt.want {
				t.Errorf("bytes %q: %q, want %q", tt.text, got, tt.want)
			}
		})
	}
	if allocs := testing.AllocsPerRun(100, func() { g.ScanString("GET /nothing/here?x=%41%42 \\u0041", all, nil) }); allocs != 0 && !raceEnabled {
		t.Errorf("a scan that finds nothing allocates %v times", allocs)
	}
}

func TestGuardMask(t *testing.T) {
	g := NewGuard(nil)
	<-g.Use(context.Background(), NewStore(map[string]Source{"a": Inline(tokA), "b": Inline(tokB)}))
	tests := []struct{ in, want string }{
		{"nothing here", "nothing here"},
		{"/v1/" + tokA + "/x", "/v1/secret(a)/x"},
		{tokA + tokB, "secret(a)secret(b)"},
		{"q=" + strings.ReplaceAll(tokB, "/", "%2F"), "q=secret(b)"},
		{`{"k":"` + strings.ReplaceAll(tokB, "/", `\/`) + `"}`, `{"k":"secret(b)"}`},
		{"agentg:a stays", "agentg:a stays"},
	}
	for _, tt := range tests {
		if got := g.Mask(tt.in); got != tt.want {
			t.Errorf("Mask(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// A value read on first use (after a failed preload) joins the scan; a
// reload keeps the old values until the new store is read; Held values
// join and leave; nothing defined is inactive.
func TestGuardLifecycle(t *testing.T) {
	g := NewGuard(NewHeld())
	if g.Active() {
		t.Fatal("active with nothing to look for")
	}
	<-g.Use(context.Background(), NewStore(nil))
	if g.Active() {
		t.Fatal("active for a policy without secrets")
	}
	if hits := g.ScanString("agentg:x", FormRaw, nil); hits != nil {
		t.Fatalf("inactive guard found %v", hits)
	}

	file := filepath.Join(t.TempDir(), "tok")
	st := NewStore(map[string]Source{"f": {Kind: KindFile, Path: file}})
	rep := <-g.Use(context.Background(), st)
	if rep.Failed["f"] == nil || !g.Active() || len(g.Known()) != 0 {
		t.Fatalf("report %+v known %v", rep, g.Known())
	}
	os.WriteFile(file, []byte(tokA+"\n"), 0o600)
	st.now = func() time.Time { return time.Now().Add(FailBackoff) }
	if _, err := st.Get(context.Background(), "f"); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(g.Known()) != "[f]" || hitNames(g.ScanString(tokA, FormRaw, nil)) != "f@1" {
		t.Fatalf("a value read on use is not looked for: %v", g.Known())
	}

	// A reload keeps looking for the old value, before the new store is
	// read and after.
	gate := filepath.Join(t.TempDir(), "gate")
	slow := NewStore(map[string]Source{"f": {Kind: KindCommand, Argv: []string{"sh", "-c", "while [ ! -e " + gate + " ]; do sleep 0.01; done; echo " + tokB}}})
	done := g.Use(context.Background(), slow)
	if hitNames(g.ScanString(tokA, FormRaw, nil)) != "f@1" {
		t.Fatal("the previous load's value was forgotten before the new one was read")
	}
	os.WriteFile(gate, nil, 0o600)
	<-done
	if hitNames(g.ScanString(tokA, FormRaw, nil)) != "f@1" || hitNames(g.ScanString(tokB, FormRaw, nil)) != "f@1" {
		t.Fatalf("after the read: %v", g.Known())
	}
	for i := range maxRetired + 10 {
		<-g.Use(context.Background(), NewStore(map[string]Source{"f": Inline(fmt.Sprintf("rotated-%04d", i))}))
	}
	if hitNames(g.ScanString(tokA, FormRaw, nil)) != "" || hitNames(g.ScanString("rotated-0100", FormRaw, nil)) != "f@1" {
		t.Fatal("the retired values are not the newest maxRetired")
	}

	h := g.Held()
	if err := h.Hold("oauth.srv", "oauth-token-123456", "mcp.example.com"); err != nil {
		t.Fatal(err)
	}
	if hitNames(g.ScanString("Bearer oauth-token-123456", FormRaw, nil)) != "oauth.srv@1" {
		t.Fatal("a held value is not looked for")
	}
	if !h.Allows("oauth.srv", "mcp.example.com") || h.Allows("oauth.srv", "evil.example") {
		t.Fatal("Allows")
	}
	if hitNames(g.ScanString("agentg:oauth.srv", FormRaw, nil)) != "ph:oauth.srv@1" {
		t.Fatal("a held name is not a known placeholder")
	}
	if v, err := g.Lookup(context.Background(), "oauth.srv"); err != nil || v.Reveal() != "oauth-token-123456" {
		t.Fatalf("Lookup %v", err)
	}
	h.Drop("oauth.srv")
	if hitNames(g.ScanString("Bearer oauth-token-123456", FormRaw, nil)) != "" {
		t.Fatal("a dropped value is still looked for")
	}
	if err := h.Hold("x", "a\nb"); err == nil || strings.Contains(err.Error(), "a\nb") {
		t.Fatalf("Hold of a bad value: %v", err)
	}
}

func TestJSONUnescape(t *testing.T) {
	tests := []struct{ in, want string }{
		{`plain`, `plain`},
		{`a\/b\\c\"d\n`, "a/b\\c\"d\n"},
		{`\u0041\u00e9\u20ac`, "Aé€"},
		{`\ud83d\ude00`, "😀"},
		{`\ud83d x`, "\uFFFD x"},
		{`\ude00`, "\uFFFD"},
		{`\u12`, `\u12`},
		{`\x`, `\x`},
		{`end\`, `end\`},
	}
	for _, tt := range tests {
		if got := string(jsonUnescape(nil, tt.in)); got != tt.want {
			t.Errorf("%q: %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzLeakForms: what the guard finds in a text's forms is what a naive
// search of every form finds (the guard decodes a form only when an escape
// could hide a value's byte: that shortcut must never miss one).
func FuzzLeakForms(f *testing.F) {
	f.Add(tokA, "x "+tokA)
	f.Add(tokB, "q="+strings.ReplaceAll(tokB, "/", "%2F"))
	f.Add(tokB, `{"k":"`+strings.ReplaceAll(tokB, "/", `\/`)+`"}`)
	f.Add("caf\u00e9-token-1", `caf\u00e9-token-1`)
	f.Add("line-value-x", `\u006cine-value-x%41`)
	f.Fuzz(func(t *testing.T, value, text string) {
		if len(value) < MinGuarded || strings.ContainsAny(value, "\r\n\x00") {
			return
		}
		g := NewGuard(nil)
		<-g.Use(context.Background(), NewStore(map[string]Source{"v": Inline(value)}))
		all := FormRaw | FormPercent | FormJSON
		found := false
		for _, h := range g.ScanString(text, all, nil) {
			if !h.Placeholder {
				found = true
			}
		}
		want := strings.Contains(text, value) || strings.Contains(string(percentDecode(nil, text)), value) ||
			strings.Contains(string(jsonUnescape(nil, text)), value)
		if found != want {
			t.Fatalf("value %q in %q: guard %v, naive %v", value, text, found, want)
		}
		if want && strings.Contains(g.Mask(text), value) {
			t.Fatalf("Mask(%q) still shows %q: %q", text, value, g.Mask(text))
		}
	})
}

func TestSwapPlaceholders(t *testing.T) {
	vals := map[string]string{"gh": `v"1\x`, "a.b": "V2"}
	tests := []struct {
		in   string
		esc  func(string) string
		want string
	}{
		{"no placeholder", nil, "no placeholder"},
		{"Bearer agentg:gh", nil, `Bearer v"1\x`},
		{`{"t":"agentg:gh"}`, JSONEscape, `{"t":"v\"1\\x"}`},
		{"agentg:a.b. and agentg:a.b", nil, "V2. and V2"},
		{"agentg:other agentg:gh", nil, `agentg:other v"1\x`},
		{"agentg: agentg:", nil, "agentg: agentg:"},
		{"xagentg:ghy", nil, "xagentg:ghy"}, // the name is ghy
	}
	for _, tt := range tests {
		if got := SwapPlaceholders(tt.in, vals, tt.esc); got != tt.want {
			t.Errorf("%q: %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := JSONEscape("a\x01\"\\b"); got != `a\u0001\"\\b` {
		t.Errorf("JSONEscape: %q", got)
	}
}

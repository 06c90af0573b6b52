package creds

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
)

// naive is the reference: every occurrence of every pattern, by
// strings.Index from each position.
func naive(pats []string, text string) []match {
	var out []match
	for i, p := range pats {
		for at := 0; ; {
			j := strings.Index(text[at:], p)
			if j < 0 {
				break
			}
			out = append(out, match{pat: i, start: at + j, end: at + j + len(p)})
			at += j + 1
		}
	}
	return out
}

func sorted(ms []match) []match {
	ms = slices.Clone(ms)
	sort.Slice(ms, func(i, j int) bool {
		if ms[i].start != ms[j].start {
			return ms[i].start < ms[j].start
		}
		return ms[i].pat < ms[j].pat
	})
	return ms
}

func TestScanner(t *testing.T) {
	tests := []struct {
		name string
		pats []string
		text string
		want []match
	}{
		{"empty set", nil, "anything at all", nil},
		{"empty text", []string{"secret-1"}, "", nil},
		{"text shorter than the pattern", []string{"secret-1"}, "secret-", nil},
		{"whole text", []string{"secret-1"}, "secret-1", []match{{0, 0, 8}}},
		{"at the start", []string{"secret-1"}, "secret-1 and more", []match{{0, 0, 8}}},
		{"at the end", []string{"secret-1"}, "more and secret-1", []match{{0, 9, 17}}},
		{"cut at the end", []string{"secret-1"}, "more and secret-", nil},
		{"twice", []string{"abcdefgh"}, "abcdefghabcdefgh", []match{{0, 0, 8}, {0, 8, 16}}},
		{"self-overlapping", []string{"aaaaaaaa"}, "aaaaaaaaaa", []match{{0, 0, 8}, {0, 1, 9}, {0, 2, 10}}},
		{"one inside another", []string{"agentg:", "xxagentg:github"}, "xxagentg:github", []match{{1, 0, 15}, {0, 2, 9}}},
		{"overlapping patterns", []string{"abcdefgh", "efghijkl"}, "..abcdefghijkl..", []match{{0, 2, 10}, {1, 6, 14}}},
		{"same prefix, lengths differ", []string{"token-12", "token-1234"}, "token-1234", []match{{0, 0, 8}, {1, 0, 10}}},
		{"near misses", []string{"secret-1"}, "secret-2 secreT-1 ecret-1 secret1", nil},
		{"three-byte patterns", []string{"abc", "bcd"}, "abcd", []match{{0, 0, 3}, {1, 1, 4}}},
		{"binary", []string{"\x00\xff\x00\xff"}, "\xff\x00\xff\x00\xff\x00", []match{{0, 1, 5}}},
		{"longer than a shift can say", []string{strings.Repeat("x", 299) + "y", strings.Repeat("ab", 200)},
			"z" + strings.Repeat("x", 300) + "y" + strings.Repeat("ab", 201), []match{{0, 2, 302}, {1, 302, 702}, {1, 304, 704}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScanner(tt.pats)
			got := sorted(s.findString(tt.text, nil))
			if fmt.Sprint(got) != fmt.Sprint(sorted(tt.want)) {
				t.Errorf("string: got %v, want %v", got, tt.want)
			}
			if b := sorted(s.find([]byte(tt.text), nil)); fmt.Sprint(b) != fmt.Sprint(got) {
				t.Errorf("bytes: got %v, string %v", b, got)
			}
			if ref := sorted(naive(tt.pats, tt.text)); fmt.Sprint(ref) != fmt.Sprint(got) {
				t.Errorf("naive: %v, scanner %v", ref, got)
			}
		})
	}
}

// FuzzScanner: the scanner finds exactly what strings.Index finds, for
// any text and any set of patterns (cut from the fuzzer's input).
func FuzzScanner(f *testing.F) {
	f.Add("agentg:|secret-token-1|token-1", "x agentg:github secret-token-1 token-1")
	f.Add("aaaa|aaab", "aaaaaaab")
	f.Add("aba|bab|abab", "abababab")
	f.Fuzz(func(t *testing.T, spec, text string) {
		var pats []string
		for _, p := range strings.Split(spec, "|") {
			if len(p) >= minPattern && !slices.Contains(pats, p) {
				pats = append(pats, p)
			}
		}
		s := newScanner(pats)
		got := sorted(s.findString(text, nil))
		want := sorted(naive(pats, text))
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("patterns %q in %q: scanner %v, strings.Index %v", pats, text, got, want)
		}
	})
}

func TestParsePlaceholder(t *testing.T) {
	tests := []struct {
		in   string
		name string
		n    int
		ok   bool
	}{
		{"agentg:github", "github", 13, true},
		{"agentg:github rest", "github", 13, true},
		{"agentg:gh.token.", "gh.token", 15, true},
		{"agentg:a-b_c.d\"", "a-b_c.d", 14, true},
		{"agentg:", "", 0, false},
		{"agentg: x", "", 0, false},
		{"agentg:.", "", 0, false},
		{"Agentg:github", "", 0, false},
		{"agentg", "", 0, false},
		{"agentg:" + strings.Repeat("x", 100), strings.Repeat("x", 65), 107, true},
	}
	for _, tt := range tests {
		name, n, ok := ParsePlaceholder(tt.in)
		if name != tt.name || n != tt.n || ok != tt.ok {
			t.Errorf("%q: %q %d %v, want %q %d %v", tt.in, name, n, ok, tt.name, tt.n, tt.ok)
		}
	}
}

func FuzzPlaceholder(f *testing.F) {
	for _, s := range []string{"agentg:github", "agentg:", "agentg:a.", "agentg:x y", "agentg:%41"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		name, n, ok := ParsePlaceholder(s)
		b, bn, bok := ParsePlaceholder([]byte(s))
		if name != b || n != bn || ok != bok {
			t.Fatalf("%q: string and bytes disagree", s)
		}
		if !ok {
			if n != 0 || name != "" {
				t.Fatalf("%q: not a placeholder, yet %q %d", s, name, n)
			}
			return
		}
		if n > len(s) || !strings.HasPrefix(s, PlaceholderPrefix) || len(name) > maxName+1 || name == "" {
			t.Fatalf("%q: %q %d", s, name, n)
		}
		full := s[len(PlaceholderPrefix):n]
		if !strings.HasPrefix(full, name) || strings.HasSuffix(full, ".") {
			t.Fatalf("%q: name %q of %q", s, name, full)
		}
		for i := 0; i < len(full); i++ {
			if !nameByte(full[i]) {
				t.Fatalf("%q: %q holds a byte no name has", s, full)
			}
		}
		if len(name) <= maxName && ValidName(name) != true {
			t.Fatalf("%q: name %q is not a valid name", s, name)
		}
		// What follows is not part of a name, unless only dots were cut.
		if n < len(s) && nameByte(s[n]) && s[n] != '.' {
			t.Fatalf("%q: the name stops at %d before a name byte", s, n)
		}
		// A round trip: the placeholder of the name reads back as it.
		if len(name) <= maxName {
			if again, _, ok := ParsePlaceholder(Placeholder(name)); !ok || again != name {
				t.Fatalf("%q: Placeholder(%q) reads as %q", s, name, again)
			}
		}
	})
}

// realisticSecrets are n distinct values shaped like API keys.
func realisticSecrets(n int) []string {
	out := make([]string, n)
	prefixes := []string{"ghp_", "sk-live-", "xoxb-", "AKIA", "glpat-", ""}
	for i := range out {
		b := make([]byte, 20)
		rand.Read(b)
		out[i] = prefixes[i%len(prefixes)] + hex.EncodeToString(b)
	}
	return out
}

// BenchmarkLeakScan: 100 secrets held, a 16 KiB JSON body with no hit,
// scanned raw and JSON-unescaped as the proxy does (the body has escapes).
func BenchmarkLeakScan(b *testing.B) {
	srcs := map[string]Source{}
	for i, v := range realisticSecrets(100) {
		srcs[fmt.Sprintf("s%d", i)] = Inline(v)
	}
	st := NewStore(srcs)
	g := NewGuard(nil)
	<-g.Use(b.Context(), st)
	if len(g.Known()) != 100 {
		b.Fatalf("known %d", len(g.Known()))
	}
	// A model API request: prose in JSON messages, with the escapes
	// encoders write (\n, \", \u00e9).
	prose := `Summarise the open issues in the repository and propose a plan.\n` +
		`The build fails on the integration step: \"connection refused\" when the test ` +
		`server starts before the database is ready. Caf\u00e9 owners reported the ` +
		`checkout page times out under load; see the attached logs for request ids.`
	var sb strings.Builder
	sb.WriteString(`{"model":"some-model-2025","max_tokens":1024,"messages":[`)
	for i := 0; sb.Len() < 16<<10; i++ {
		fmt.Fprintf(&sb, `{"role":"user","content":"%d: %s"},`, i, prose)
	}
	body := []byte(sb.String()[:16<<10])
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	// On a shared machine wall time per op counts the waits for a CPU
	// too: the process's CPU time per op is reported beside it.
	cpu0 := cpuTime()
	for b.Loop() {
		if hits := g.ScanBytes(body, FormRaw|FormJSON, nil); len(hits) != 0 {
			b.Fatal(hits)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

package rules

import (
	"fmt"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Path globs of HTTP rules. A glob is compiled into its '/'-separated
// segments at load; matching walks the request path's segments in place
// (no allocation) with the classic greedy algorithm that remembers only
// the last "**" to fall back to. Every other glob segment matches exactly
// one path segment, so that single fallback point is enough for a correct
// answer, and the work is bounded by segments(path) × segments(glob)
// segment comparisons, each itself linear-times-pattern: no exponential
// backtracking, whatever the glob ("/**/**/**/x") or the path.

const (
	segLit  uint8 = iota // literal text
	segWild              // text with '*': any run of bytes within the segment
	segAny               // "**": any run of whole segments, including none
)

type globSeg struct {
	kind uint8
	text string
}

// glob is a compiled path glob; the zero value (no segments) is never used:
// a rule without a path has a nil *glob.
type glob struct {
	segs []globSeg
	// rank is the path specificity: twice the length of the literal text
	// before the first '*' (not counting the '/' that introduces a "**"
	// segment, so "/repos/**" ranks as "/repos"), plus one for a glob
	// without any '*'. A rule without a path ranks -1.
	rank int
}

// compileGlob checks and compiles a path glob: it must start with '/';
// '*' matches within one segment ("/v1/*.json"), "**" must be a whole
// segment and matches any number of segments, including none ("/repos/**"
// matches "/repos" and "/repos/a/b"; "/a/**/b" matches "/a/b").
func compileGlob(s string) (*glob, error) {
	if s == "" || s[0] != '/' {
		return nil, fmt.Errorf("path %q must start with /", s)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c == 0x7f:
			return nil, fmt.Errorf("control character in path %q", s)
		case c == '?' || c == '#':
			return nil, fmt.Errorf("path %q: query strings and fragments are not matched, only the path", s)
		case c == '%':
			return nil, fmt.Errorf("path %q: paths are matched decoded (as net/http's URL.Path); write characters unescaped", s)
		}
	}
	g := &glob{}
	parts := strings.Split(s[1:], "/")
	for i, p := range parts {
		seg := globSeg{kind: segLit, text: p}
		switch {
		case p == "**":
			seg.kind = segAny
		case strings.Contains(p, "**"):
			return nil, fmt.Errorf("bad path glob %q: \"**\" must be a whole segment (\"/a/**\", \"/**/b\")", s)
		case strings.Contains(p, "*"):
			seg.kind = segWild
		case p == "." || p == "..":
			return nil, fmt.Errorf("bad path glob %q: %q segments never match (paths are matched cleaned)", s, p)
		case p == "" && i != len(parts)-1:
			return nil, fmt.Errorf("bad path glob %q: empty segment (paths are matched cleaned, \"//\" never occurs)", s)
		}
		g.segs = append(g.segs, seg)
	}
	switch k := strings.IndexByte(s, '*'); {
	case k < 0:
		g.rank = 2*len(s) + 1
	case strings.HasPrefix(s[k:], "**"):
		g.rank = 2 * (k - 1) // the '/' before "**" is optional
	default:
		g.rank = 2 * k
	}
	return g, nil
}

// match reports whether the cleaned path p (see cleanPath) matches, as
// sent: byte for byte. Allow rules match this way, so an allow never
// widens to a spelling it was not written for.
func (g *glob) match(p string) bool { return g.matchWith(p, false) }

// matchLoose is match for deny rules, which must also catch the spellings
// a server may treat as the same path: each segment matches whole or with
// its ";..." parameters stripped ("/repos;a/x" as "/repos/x"), and
// without regard to case ("/REPOS/x"), Unicode case folding included.
func (g *glob) matchLoose(p string) bool { return g.matchWith(p, true) }

func (g *glob) matchWith(p string, loose bool) bool {
	if p != "" && p[0] == '/' {
		p = p[1:]
	}
	// Path segments are p[start:end] with end at the next '/' or len(p);
	// "" (the path "/") is one empty segment, "a/" is "a" and "".
	segs := g.segs
	gi, pi := 0, 0
	starG, starP := -1, 0
	for pi <= len(p) {
		if gi < len(segs) && segs[gi].kind == segAny {
			starG, starP = gi, pi
			gi++
			continue
		}
		end := segEnd(p, pi)
		if gi < len(segs) && segs[gi].matchSeg(p[pi:end], loose) {
			gi++
			pi = end + 1
			continue
		}
		if starG < 0 {
			return false
		}
		// Let the last "**" swallow one more segment and retry after it.
		starP = segEnd(p, starP) + 1
		gi, pi = starG+1, starP
	}
	for gi < len(segs) && segs[gi].kind == segAny {
		gi++
	}
	return gi == len(segs)
}

func segEnd(p string, from int) int {
	if i := strings.IndexByte(p[from:], '/'); i >= 0 {
		return from + i
	}
	return len(p)
}

func (s *globSeg) matchSeg(v string, loose bool) bool {
	if !loose {
		if s.kind == segLit {
			return s.text == v
		}
		return wildMatch(s.text, v)
	}
	if s.matchFold(v) {
		return true
	}
	if i := strings.IndexByte(v, ';'); i >= 0 {
		return s.matchFold(v[:i])
	}
	return false
}

func (s *globSeg) matchFold(v string) bool {
	if s.kind == segLit {
		return strings.EqualFold(s.text, v)
	}
	return wildMatchFold(s.text, v)
}

// wildMatch matches v against pat, where '*' is any run of bytes: greedy,
// falling back only to the last '*', O(len(pat)×len(v)) at worst.
func wildMatch(pat, v string) bool {
	pi, vi := 0, 0
	star, mark := -1, 0
	for vi < len(v) {
		switch {
		case pi < len(pat) && pat[pi] == '*':
			star, mark = pi, vi
			pi++
		case pi < len(pat) && pat[pi] == v[vi]:
			pi++
			vi++
		case star >= 0:
			mark++
			pi, vi = star+1, mark
		default:
			return false
		}
	}
	for pi < len(pat) && pat[pi] == '*' {
		pi++
	}
	return pi == len(pat)
}

// wildMatchFold is wildMatch rune by rune under Unicode case folding, as
// strings.EqualFold compares (bytes that are not UTF-8 compare as
// U+FFFD, which can only make a deny match more).
func wildMatchFold(pat, v string) bool {
	pi, vi := 0, 0
	star, mark := -1, 0
	for vi < len(v) {
		if pi < len(pat) && pat[pi] == '*' {
			star, mark = pi, vi
			pi++
			continue
		}
		if pi < len(pat) {
			pr, pn := utf8.DecodeRuneInString(pat[pi:])
			vr, vn := utf8.DecodeRuneInString(v[vi:])
			if foldEqual(pr, vr) {
				pi += pn
				vi += vn
				continue
			}
		}
		if star < 0 {
			return false
		}
		_, n := utf8.DecodeRuneInString(v[mark:])
		mark += n
		pi, vi = star+1, mark
	}
	for pi < len(pat) && pat[pi] == '*' {
		pi++
	}
	return pi == len(pat)
}

// foldEqual reports whether a and b are equal under simple Unicode case
// folding, as strings.EqualFold decides for one rune.
func foldEqual(a, b rune) bool {
	if a == b {
		return true
	}
	if a < utf8.RuneSelf && b < utf8.RuneSelf {
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		return a == b
	}
	for r := unicode.SimpleFold(a); r != a; r = unicode.SimpleFold(r) {
		if r == b {
			return true
		}
	}
	return false
}

// cleanPath returns the path HTTP rules are matched against: p itself when
// it is already clean (no allocation), else p with "." and ".." segments
// resolved and repeated slashes collapsed, a leading '/' added and a
// trailing '/' kept. "/public/../admin" is decided as "/admin", so a
// dot segment cannot walk an allowed prefix into a denied one.
func cleanPath(p string) string {
	if isClean(p) {
		return p
	}
	if p == "" {
		return "/"
	}
	c := path.Clean("/" + p)
	if c != "/" && strings.HasSuffix(p, "/") {
		c += "/"
	}
	return c
}

// isClean reports whether p starts with '/' and has no empty (other than a
// final one), "." or ".." segment.
func isClean(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	start := 1
	for i := 1; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		switch seg := p[start:i]; seg {
		case ".", "..":
			return false
		case "":
			if i < len(p) {
				return false // "//"
			}
		}
		start = i + 1
	}
	return true
}

// paramReading returns how a server that strips ";..." parameters from
// every segment before resolving dot segments (Tomcat, Jetty, Spring)
// reads the clean path p, when that reading has another shape: a segment
// that strips to "", "." or ".." ("/public/..;/admin" is "/admin" there).
// It returns "" when no segment does, which is every path without ';'
// (no allocation). Within that shape, matchLoose already tries each
// segment stripped.
func paramReading(p string) string {
	if strings.IndexByte(p, ';') < 0 {
		return ""
	}
	ambiguous := false
	for seg := range strings.SplitSeq(strings.TrimPrefix(p, "/"), "/") {
		if i := strings.IndexByte(seg, ';'); i >= 0 {
			switch seg[:i] {
			case "", ".", "..":
				ambiguous = true
			}
		}
	}
	if !ambiguous {
		return ""
	}
	var b strings.Builder
	b.Grow(len(p))
	for seg := range strings.SplitSeq(strings.TrimPrefix(p, "/"), "/") {
		if i := strings.IndexByte(seg, ';'); i >= 0 {
			seg = seg[:i]
		}
		b.WriteByte('/')
		b.WriteString(seg)
	}
	return cleanPath(b.String())
}

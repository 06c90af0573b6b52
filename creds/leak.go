package creds

import (
	"bytes"
	"context"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// The leak guard. agentg knows every value it holds: the policy's secrets
// (read eagerly at each load, Store.Preload) and what it holds at runtime
// (Held). Guard looks for all of them, and for placeholders
// (placeholder.go), in what an agent sends, with one scan over the text
// however many values there are (scan.go); the caller (the proxy, the MCP
// guard) decides whether what was found may go where the request goes.
//
// The scanner is built again whenever the set changes (a load, a value
// read, a value held or dropped) and swapped atomically: a scan takes one
// atomic load and never a lock, and with nothing to look for (a policy
// with no credentials and nothing held) Active is false and callers skip
// the scan altogether.

// MinGuarded is the shortest value the leak guard looks for: a shorter
// one would be found in ordinary text everywhere. A shorter value is
// still injected where its bindings say; Preload reports it (LoadReport.
// Short) so that agentg can warn.
const MinGuarded = 8

// Guard looks for held values and placeholders. Make one per agentg with
// NewGuard, point it at each policy load's Store with Use. It is safe
// for concurrent use.
type Guard struct {
	held *Held

	mu      sync.Mutex // serialises Use and rebuilds
	store   *Store
	retired []pair // the previous stores' values, the newest maxRetired
	rebuild func()

	snap atomic.Pointer[snapshot]
}

type pair struct{ name, value string }

// maxRetired bounds the values of previous loads still looked for.
const maxRetired = 256

// snapshot is one build: the scanner and what each pattern means.
type snapshot struct {
	active bool     // anything to look for: a secret defined, or a value held
	sc     *scanner // the values; nil when none is known yet
	names  [][]string
	store  *Store
	held   *Held
	known  []string // the names whose values are looked for, sorted
	// relevant are the bytes a value or a placeholder holds: a decoded
	// form is looked in only when an escape gives one of them.
	relevant [256]bool
	nonASCII bool // some value holds a byte beyond ASCII
}

// NewGuard makes a guard that also looks for what held holds (nil:
// nothing is held at runtime).
func NewGuard(held *Held) *Guard {
	g := &Guard{held: held}
	g.rebuild = func() {
		g.mu.Lock()
		g.rebuildLocked()
		g.mu.Unlock()
	}
	g.snap.Store(&snapshot{})
	if held != nil {
		held.watch(g.rebuild)
	}
	return g
}

// Use makes s the store whose values are looked for, and reads them all
// in the background (Preload, bounded by ctx and each source's timeout).
// The previous stores' values are still looked for (the newest
// maxRetired of them): a rotated key an agent was once given may still
// work, and must not go where its secret is not bound any more than the
// new one. The report comes on the channel when the read ends; Use of
// the store in use already reports nothing and closes the channel.
func (g *Guard) Use(ctx context.Context, s *Store) <-chan LoadReport {
	done := make(chan LoadReport, 1)
	g.mu.Lock()
	if g.store == s {
		g.mu.Unlock()
		close(done)
		return done
	}
	if old := g.store; old != nil {
		old.onRead.Store(nil)
		for n, v := range old.known() {
			if p := (pair{n, v}); !slices.Contains(g.retired, p) {
				g.retired = append(g.retired, p)
			}
		}
		if n := len(g.retired) - maxRetired; n > 0 {
			g.retired = slices.Delete(g.retired, 0, n)
		}
	}
	g.store = s
	if s != nil && len(s.entries) > 0 {
		// (A store without secrets, which may be shared, reads nothing.)
		s.onRead.Store(&g.rebuild)
	}
	g.rebuildLocked()
	g.mu.Unlock()
	if s == nil {
		close(done)
		return done
	}
	go func() {
		done <- s.Preload(ctx) // each value read rebuilt the scanner
	}()
	return done
}

func (g *Guard) rebuildLocked() {
	var pairs []pair
	pairs = append(pairs, g.retired...)
	defined := g.store != nil && len(g.store.entries) > 0
	if g.store != nil {
		for n, v := range g.store.known() {
			pairs = append(pairs, pair{n, v})
		}
	}
	held := g.held.values()
	for n, v := range held {
		pairs = append(pairs, pair{n, v})
	}
	sn := &snapshot{store: g.store, held: g.held, active: defined || len(held) > 0 || len(pairs) > 0}
	if !sn.active {
		g.snap.Store(sn)
		return
	}
	byValue := map[string][]string{}
	for _, p := range pairs {
		if len(p.value) < MinGuarded || contains(byValue[p.value], p.name) {
			continue
		}
		byValue[p.value] = append(byValue[p.value], p.name)
	}
	var pats []string
	for v := range byValue {
		if len(pats) < maxPatterns {
			pats = append(pats, v)
		}
	}
	sort.Strings(pats)
	sn.names = make([][]string, len(pats))
	seen := map[string]bool{}
	for i, p := range pats {
		ns := byValue[p]
		sort.Strings(ns)
		sn.names[i] = ns
		for _, n := range ns {
			if !seen[n] {
				seen[n] = true
				sn.known = append(sn.known, n)
			}
		}
		for j := 0; j < len(p); j++ {
			sn.relevant[p[j]] = true
			sn.nonASCII = sn.nonASCII || p[j] >= 0x80
		}
	}
	for i := 0; i < 256; i++ {
		if nameByte(byte(i)) || strings.IndexByte(PlaceholderPrefix, byte(i)) >= 0 {
			sn.relevant[i] = true
		}
	}
	sort.Strings(sn.known)
	sn.sc = newScanner(pats)
	g.snap.Store(sn)
}

// Active reports whether there is anything to look for: false when the
// policy defines no secret and nothing is held.
func (g *Guard) Active() bool { return g != nil && g.snap.Load().active }

// Known lists the names whose values are looked for now.
func (g *Guard) Known() []string {
	if g == nil {
		return nil
	}
	return slices.Clone(g.snap.Load().known)
}

// Held is what the guard looks for beyond the policy (nil: nothing).
func (g *Guard) Held() *Held { return g.held }

// Lookup returns the value of the named secret, for a placeholder's
// swap: the policy's (read on first use) or a held one.
func (g *Guard) Lookup(ctx context.Context, name string) (Secret, error) {
	sn := g.snap.Load()
	if sn.store != nil && sn.store.Has(name) {
		return sn.store.Get(ctx, name)
	}
	if v, ok := g.held.Get(name); ok {
		return v, nil
	}
	return Secret{}, &Error{Secret: name, Source: "no source", Reason: "no such secret is defined or held"}
}

// Form is a form of a text the guard looks in.
type Form uint8

const (
	FormRaw     Form = 1 << iota // as sent
	FormPercent                  // %XX decoded once (URLs, form bodies, cookies)
	FormJSON                     // JSON string escapes undone (\uXXXX, \/, \n ...)
)

// Hit is a held value or a placeholder found in a text. It names the
// secret, never holds a value.
type Hit struct {
	Name        string
	Placeholder bool // agentg:NAME, not a value
	Unknown     bool // a placeholder that names no secret defined or held
	Form        Form // where it was found; Start and End are in that form
	Start, End  int
}

// ScanString looks in s, in each of forms (FormRaw always), and appends
// what it finds to hits. It allocates only when it finds something (or
// decodes a form beyond its pooled buffer).
func (g *Guard) ScanString(s string, forms Form, hits []Hit) []Hit {
	return g.ScanBytes(unsafe.Slice(unsafe.StringData(s), len(s)), forms, hits)
}

// ScanBytes is ScanString on bytes. A decoded form is looked in only when
// one of its escapes gives a byte some value or a placeholder could hold:
// JSON's \u00e9 and \n cannot hide a token, and cost no second pass.
func (g *Guard) ScanBytes(text []byte, forms Form, hits []Hit) []Hit {
	sn := g.snap.Load()
	if !sn.active {
		return hits
	}
	hits = sn.scanOne(text, FormRaw, hits)
	if forms&FormPercent != 0 && sn.hidesPercent(text) {
		bp := decodePool.Get().(*[]byte)
		*bp = percentDecode((*bp)[:0], text)
		hits = sn.scanOne(*bp, FormPercent, hits)
		decodePool.Put(bp)
	}
	if forms&FormJSON != 0 && sn.hidesJSON(text) {
		bp := decodePool.Get().(*[]byte)
		*bp = jsonUnescape((*bp)[:0], text)
		hits = sn.scanOne(*bp, FormJSON, hits)
		decodePool.Put(bp)
	}
	return hits
}

// scanOne is the one pass over the values (scan.go), and the
// placeholders' fixed prefix found by the runtime's vectorised search.
func (sn *snapshot) scanOne(text []byte, form Form, hits []Hit) []Hit {
	var buf [4]match
	for _, m := range sn.sc.find(text, buf[:0]) {
		for _, n := range sn.names[m.pat] {
			hits = append(hits, Hit{Name: n, Form: form, Start: m.start, End: m.end})
		}
	}
	// Every placeholder has a 'g' second: the vectorised byte search
	// skips to each, which on text is a few in a hundred bytes (a bytes.
	// Index of the prefix stops at every 'a' first, which costs more).
	for at := 1; at < len(text); {
		i := bytes.IndexByte(text[at:], 'g')
		if i < 0 {
			break
		}
		at += i
		if name, n, ok := ParsePlaceholder(text[at-1:]); ok {
			hits = append(hits, Hit{Name: name, Placeholder: true, Unknown: !sn.defines(name), Form: form, Start: at - 1, End: at - 1 + n})
			at += n - 1
			continue
		}
		at++
	}
	return hits
}

// defines reports whether name is a secret of the policy or held.
func (sn *snapshot) defines(name string) bool {
	if sn.store != nil && sn.store.Has(name) {
		return true
	}
	_, ok := sn.held.Get(name)
	return ok
}

// hidesPercent reports whether a %XX escape in text gives a byte that a
// value or a placeholder holds.
func (sn *snapshot) hidesPercent(text []byte) bool {
	for at := 0; ; {
		i := bytes.IndexByte(text[at:], '%')
		if i < 0 {
			return false
		}
		at += i
		if at+2 < len(text) && isHex(text[at+1]) && isHex(text[at+2]) && sn.relevant[unhex(text[at+1])<<4|unhex(text[at+2])] {
			return true
		}
		at++
	}
}

// hidesJSON reports whether a JSON escape in text gives a byte that a
// value or a placeholder holds (a \u escape of an ASCII byte, or \/ \"
// \\ of one a value holds).
func (sn *snapshot) hidesJSON(text []byte) bool {
	for at := 0; ; {
		i := bytes.IndexByte(text[at:], '\\')
		if i < 0 || at+i+1 >= len(text) {
			return false
		}
		at += i
		switch e := text[at+1]; e {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			if sn.relevant[unescapeByte(e)] {
				return true
			}
		case 'u':
			if r, ok := hex4(text, at+2); ok && (r >= 0x80 || sn.relevant[r]) {
				// Beyond ASCII the escape may be a value's own byte
				// (values are bytes, not only ASCII): relevant only when
				// some value is not ASCII.
				if r < 0x80 || sn.nonASCII {
					return true
				}
			}
		}
		at += 2
	}
}

// Mask returns s with every held value in it replaced by secret(NAME),
// for what an event or a preview shows. When a value is found only in s's
// percent-decoded or JSON-unescaped form, that form is returned, masked.
// s itself (no allocation) when nothing is found.
func (g *Guard) Mask(s string) string {
	if g == nil {
		return s
	}
	sn := g.snap.Load()
	if sn.sc == nil {
		return s
	}
	out := maskRaw(sn, s)
	if strings.IndexByte(out, '%') >= 0 {
		if d := string(percentDecode(nil, out)); d != maskRaw(sn, d) {
			out = maskRaw(sn, d)
		}
	}
	if strings.IndexByte(out, '\\') >= 0 {
		if d := string(jsonUnescape(nil, out)); d != maskRaw(sn, d) {
			out = maskRaw(sn, d)
		}
	}
	return out
}

// maskRaw replaces the values found in s, the leftmost longest first.
func maskRaw(sn *snapshot, s string) string {
	var buf [4]match
	ms := sn.sc.findString(s, buf[:0])
	var b strings.Builder
	at := 0
	for len(ms) > 0 {
		// The leftmost start, and the longest there.
		best := -1
		for i, m := range ms {
			if m.start < at {
				continue
			}
			if best < 0 || m.start < ms[best].start || m.start == ms[best].start && m.end > ms[best].end {
				best = i
			}
		}
		if best < 0 {
			break
		}
		m := ms[best]
		b.WriteString(s[at:m.start])
		b.WriteString(Secret{name: strings.Join(sn.names[m.pat], ",")}.String())
		at = m.end
	}
	if at == 0 {
		return s
	}
	b.WriteString(s[at:])
	return b.String()
}

var decodePool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// percentDecode appends src with each %XX decoded, once; a '%' that does
// not start an escape is kept.
func percentDecode[T ~string | ~[]byte](dst []byte, src T) []byte {
	for i := 0; i < len(src); i++ {
		c := src[i]
		if c == '%' && i+2 < len(src) && isHex(src[i+1]) && isHex(src[i+2]) {
			dst = append(dst, unhex(src[i+1])<<4|unhex(src[i+2]))
			i += 2
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

// jsonUnescape appends src with JSON's string escapes undone wherever
// they are (the scan need not know where strings begin): \uXXXX (a
// surrogate pair as one rune, a lone surrogate as U+FFFD), \" \\ \/ \b \f
// \n \r \t. Anything else is kept as it is.
func jsonUnescape[T ~string | ~[]byte](dst []byte, src T) []byte {
	for i := 0; i < len(src); i++ {
		c := src[i]
		if c != '\\' || i+1 >= len(src) {
			dst = append(dst, c)
			continue
		}
		switch e := src[i+1]; e {
		case '"', '\\', '/':
			dst = append(dst, e)
			i++
		case 'b':
			dst, i = append(dst, '\b'), i+1
		case 'f':
			dst, i = append(dst, '\f'), i+1
		case 'n':
			dst, i = append(dst, '\n'), i+1
		case 'r':
			dst, i = append(dst, '\r'), i+1
		case 't':
			dst, i = append(dst, '\t'), i+1
		case 'u':
			r, ok := hex4(src, i+2)
			if !ok {
				dst = append(dst, c)
				continue
			}
			i += 5
			if r >= 0xD800 && r < 0xDC00 {
				if lo, ok := hex4(src, i+3); ok && i+2 < len(src) && src[i+1] == '\\' && src[i+2] == 'u' && lo >= 0xDC00 && lo < 0xE000 {
					r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
					i += 6
				} else {
					r = 0xFFFD
				}
			} else if r >= 0xDC00 && r < 0xE000 {
				r = 0xFFFD
			}
			dst = appendRune(dst, r)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

func hex4[T ~string | ~[]byte](s T, at int) (rune, bool) {
	if at+4 > len(s) {
		return 0, false
	}
	var r rune
	for i := at; i < at+4; i++ {
		if !isHex(s[i]) {
			return 0, false
		}
		r = r<<4 | rune(unhex(s[i]))
	}
	return r, true
}

func appendRune(dst []byte, r rune) []byte {
	switch {
	case r < 0x80:
		return append(dst, byte(r))
	case r < 0x800:
		return append(dst, 0xC0|byte(r>>6), 0x80|byte(r)&0x3F)
	case r < 0x10000:
		return append(dst, 0xE0|byte(r>>12), 0x80|byte(r>>6)&0x3F, 0x80|byte(r)&0x3F)
	}
	return append(dst, 0xF0|byte(r>>18), 0x80|byte(r>>12)&0x3F, 0x80|byte(r>>6)&0x3F, 0x80|byte(r)&0x3F)
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// unescapeByte is the byte JSON's one-letter escape \e stands for.
func unescapeByte(e byte) byte {
	switch e {
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	}
	return e
}

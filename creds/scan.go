package creds

import "unsafe"

// scanner finds every occurrence of a fixed set of patterns in a text in
// one pass: Wu–Manber with three-byte blocks. The leak guard runs it over
// every header, URL and body prefix of every request while the policy
// holds credentials, so it must cost little per byte on text where
// nothing is found (the common case): it looks at one block per window
// and moves the window by the block's shift, which on text that shares
// little with the patterns is close to the shortest pattern's length (a
// 40-byte token: 38 bytes a step). Only a block that ends some pattern's
// m-byte prefix (shift 0) is looked at closer, by comparing the few
// patterns whose prefix ends with a block of its hash.
//
// It is built once per change of the set (a policy load, a secret read, a
// token held or dropped) and never written after: any number of
// goroutines may scan with it.
type scanner struct {
	m     int             // the shortest pattern's length, at most 255
	shift [1 << 16]uint8  // block hash -> how far the window may move
	head  [1 << 16]uint16 // block hash -> 1+index of the first pattern whose m-prefix ends with it; 0: none
	next  []uint16        // pattern -> 1+index of the next with the same last block hash; 0: none
	pats  []string
}

// maxPatterns bounds a scanner: its candidate lists are uint16.
const maxPatterns = 1<<16 - 1

// minPattern is the shortest pattern a scanner takes: one block.
const minPattern = 3

// match is one occurrence: pattern pat at text[start:end].
type match struct {
	pat        int
	start, end int
}

// newScanner builds a scanner of pats (each at least minPattern bytes,
// at most maxPatterns of them, no duplicates; the caller ensures it).
// nil when pats is empty: there is nothing to find.
func newScanner(pats []string) *scanner {
	if len(pats) == 0 {
		return nil
	}
	s := &scanner{pats: pats, next: make([]uint16, len(pats)), m: 255}
	for _, p := range pats {
		s.m = min(s.m, len(p))
	}
	def := uint8(s.m - 2) // a block found in no pattern: the window moves past it
	for i := range s.shift {
		s.shift[i] = def
	}
	for i, p := range pats {
		for j := 2; j < s.m; j++ {
			b := block(p[j-2], p[j-1], p[j])
			if sh := uint8(s.m - 1 - j); sh < s.shift[b] {
				s.shift[b] = sh
			}
		}
		b := block(p[s.m-3], p[s.m-2], p[s.m-1])
		s.next[i] = s.head[b]
		s.head[b] = uint16(i + 1)
	}
	return s
}

// block hashes three bytes to 16 bits.
func block(a, b, c byte) uint16 {
	return uint16(uint32(a)<<9 ^ uint32(b)<<5 ^ uint32(c)*0x9b)
}

// find appends every occurrence of every pattern in text to out and
// returns it. It allocates only when it appends.
func (s *scanner) find(text []byte, out []match) []match {
	if s == nil {
		return out
	}
	n, m := len(text), s.m
	shift := &s.shift
	for pos := m - 1; pos < n; {
		b := block(text[pos-2], text[pos-1], text[pos])
		if sh := shift[b]; sh != 0 {
			pos += int(sh)
			continue
		}
		start := pos - m + 1
		for c := s.head[b]; c != 0; c = s.next[c-1] {
			p := s.pats[c-1]
			if end := start + len(p); end <= n && string(text[start:end]) == p {
				out = append(out, match{pat: int(c - 1), start: start, end: end})
			}
		}
		pos++
	}
	return out
}

// findString is find on a string, without copying it.
func (s *scanner) findString(text string, out []match) []match {
	return s.find(unsafe.Slice(unsafe.StringData(text), len(text)), out)
}

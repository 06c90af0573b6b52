package mcp

import (
	"math"
	"math/big"
	"strconv"
	"strings"
	"sync"

	"github.com/go-json-experiment/json/jsontext"

	store "github.com/agentg/agentg/state"
)

// Request ids. A peer matches an answer to its request by the id it
// decoded, not by the id's bytes: "rt-\u0035" and "rt-5" are one id to
// every server, and the TypeScript SDK's client matches an answer with
// Number(response.id), so "5", " 5 ", "5.0", "0x5" and 5 are one id to it.
// agentg keeps one identity for ids, IDKey, the coarsest equality of any
// peer, and uses it everywhere an id is tracked: the requests of a POST,
// of a session across its POSTs, of a 2024-11-05 stream, and the in-flight
// records a resumed stream is matched by. Two requests in flight with
// equal ids could have their answers swapped (a tools/list answer taken
// for a call's, unfiltered), so a second one is refused on every
// transport; and since no two in flight share a key, matching by this
// coarse key is never ambiguous.

// IDKey is the identity of a raw id token: "n:" and the number for a
// number, or for a string a JavaScript client reads as a finite number
// (integers as written in decimal, others in Go's shortest form); "s:"
// and the decoded text for any other string; "" for null, an absent id,
// or one that cannot be decoded.
func IDKey(id jsontext.Value) string {
	switch id.Kind() {
	case '0':
		f, err := strconv.ParseFloat(string(id), 64)
		if err != nil {
			return ""
		}
		return numKey(f)
	case '"':
		s, err := jsontext.AppendUnquote(nil, id)
		if err != nil {
			return ""
		}
		if f, ok := jsNumber(string(s)); ok {
			return numKey(f)
		}
		return "s:" + string(s)
	}
	return ""
}

// numKey is a finite number's key: one text for one value.
func numKey(f float64) string {
	if f == 0 {
		return "n:0" // -0 is 0 to every peer
	}
	if f == math.Trunc(f) && math.Abs(f) <= 1<<53 {
		return "n:" + strconv.FormatInt(int64(f), 10)
	}
	return "n:" + strconv.FormatFloat(f, 'g', -1, 64)
}

// jsNumber is JavaScript's Number(s) (ECMAScript StringToNumber) when it
// is finite: white space and line terminators trimmed, "" is 0, 0x/0o/0b
// integers, decimal literals with an optional sign, fraction and exponent.
func jsNumber(s string) (float64, bool) {
	s = strings.TrimFunc(s, jsSpace)
	if s == "" {
		return 0, true
	}
	if len(s) > 2 && s[0] == '0' {
		base := 0
		switch s[1] {
		case 'x', 'X':
			base = 16
		case 'o', 'O':
			base = 8
		case 'b', 'B':
			base = 2
		}
		if base != 0 {
			n, ok := new(big.Int).SetString(s[2:], base)
			if !ok || strings.ContainsAny(s[2:], "_+-") {
				return 0, false
			}
			f, _ := new(big.Float).SetInt(n).Float64()
			return f, !math.IsInf(f, 0)
		}
	}
	if !decimalLiteral(s) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false // out of range: ±Infinity to JavaScript
	}
	return f, true
}

// decimalLiteral reports ECMAScript's StrDecimalLiteral, Infinity aside:
// [+-] (digits [. [digits]] | . digits) [(e|E) [+-] digits].
func decimalLiteral(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := func() int {
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i - j
	}
	n := digits()
	if i < len(s) && s[i] == '.' {
		i++
		n += digits()
	}
	if n == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// jsSpace is ECMAScript's WhiteSpace and LineTerminator.
func jsSpace(r rune) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', ' ', '\u00a0', '\u1680', '\u2028', '\u2029', '\u202f', '\u205f', '\u3000', '\ufeff':
		return true
	}
	return r >= '\u2000' && r <= '\u200a'
}

// inFlightIDs are the ids of the requests in flight in each session, across
// its POSTs (a POST's own are in its exchange): a second request with an
// equal id in the same session is refused. The zero value is ready;
// sharded, so that sessions rarely meet on a lock. An entry lives as long
// as its exchange: released when the answer is matched, or when the
// exchange ends without one.
type inFlightIDs struct {
	shards [32]idShard
}

type idShard struct {
	mu  sync.Mutex
	ids map[string]struct{}
}

func (s *inFlightIDs) shard(k string) *idShard {
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(k); i++ {
		h = (h ^ uint32(k[i])) * 16777619
	}
	return &s.shards[h%uint32(len(s.shards))]
}

// claim records id in flight in session; false if it already was.
func (s *inFlightIDs) claim(session, id string) bool {
	k := session + "\x00" + id
	sh := s.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, dup := sh.ids[k]; dup {
		return false
	}
	if sh.ids == nil {
		sh.ids = map[string]struct{}{}
	}
	sh.ids[k] = struct{}{}
	return true
}

// release ends what claim recorded.
func (s *inFlightIDs) release(session, id string) {
	k := session + "\x00" + id
	sh := s.shard(k)
	sh.mu.Lock()
	delete(sh.ids, k)
	sh.mu.Unlock()
}

// track puts c among the requests in flight: this POST's, and in a
// stateful session, the session's. It reports false, tracking nothing,
// when a request with an equal id (IDKey) is already in flight in either.
func (ex *exchange) track(c *call) bool {
	k := c.m.IDKey()
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if _, dup := ex.pending[k]; dup {
		return false
	}
	if ex.session != "" {
		sk := ex.x.stateServer() + "\x00" + ex.session
		if !ex.g.inflight.claim(sk, k) {
			return false
		}
		c.claimed = sk
	}
	ex.pending[k] = c
	return true
}

// untrackLocked ends c's claim on its id in the session; ex.mu is held.
func (ex *exchange) untrackLocked(c *call) {
	if c.claimed != "" {
		ex.g.inflight.release(c.claimed, c.m.IDKey())
		c.claimed = ""
	}
}

// duplicate refuses a request whose id is already in flight: two answers
// with equal ids could not be told apart, and one could be rewritten as
// the other (a tools/list answer read as a call's, unfiltered), so the
// second never passes.
func (ex *exchange) duplicate(c *call) []byte {
	c.ev.Decision, c.ev.Rule, c.ev.Reason = "deny", "builtin:mcp-inflight", store.ErrDuplicateID.Error()
	ex.g.emit(c.ev)
	return ErrorResponse(c.m.ID, CodeInvalidRequest, "agentg: "+store.ErrDuplicateID.Error(), map[string]any{"rule": "builtin:mcp-inflight"})
}

package wire

import (
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
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

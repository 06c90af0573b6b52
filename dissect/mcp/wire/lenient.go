package wire

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Detection: could any peer, however lenient, read this body as JSON-RPC?
// Refusal is the strict codec's job (Parse); detection decides only
// whether a body that Parse refused, or one sent under another content
// type, may pass unread to a server no mcp.servers entry names. So it
// must be at least as lenient as the most lenient reader: one that
// decodes the body by its charset first (UTF-7, UTF-16, UTF-32, with or
// without a BOM, as iconv-lite does, or sniffs UTF-16/32 from the first
// bytes as Python's json does), skips a BOM, white space and comments
// (JSON5), reads one
// value and ignores what follows (Go's json.Decoder), takes the last of
// duplicate names (JSON.parse), decodes escapes in names ("jsonrp\u0063";
// JavaScript and JSON5 also \x and unquoted or single-quoted names), and
// matches names case-insensitively under Unicode simple folding
// (encoding/json: "JSONRPC", "jſonrpc" and "\u212Asonrpc"-style spellings
// all fill a Jsonrpc field). A body is JSON-RPC to such a reader when it
// opens an object or array and some name (or string) in it reads as
// "jsonrpc": that is what every JSON-RPC reader needs to find. A charset
// agentg cannot decode makes the body undecidable, and so taken for
// JSON-RPC: it is refused, never passed.

// mayBeJSONRPC reports whether a lenient reader could take b, sent under
// charset (lower case; "" for none), for a JSON-RPC message.
func MayBeJSONRPC(b []byte, charset string) bool { return mayBe(b, charset, true) }

// answerMayBeJSONRPC is mayBeJSONRPC for a server's answer: a client reads
// an answer as JSON or not at all (no client parses a form), so an error
// page that merely mentions "jsonrpc" in its text is not taken for one.
func AnswerMayBeJSONRPC(b []byte, charset string) bool { return mayBe(b, charset, false) }

func mayBe(b []byte, charset string, forms bool) bool {
	scanJSONRPC := func(t []rune) bool { return scanText(t, forms) }
	switch charsetFamily(charset) {
	case famASCII:
	case famUTF7:
		if scanJSONRPC(decodeUTF7(b)) {
			return true
		}
	case famWide:
	default:
		return true // undecidable: taken for JSON-RPC
	}
	// As UTF-8 (or any ASCII-compatible charset) "jsonrpc" needs a j or
	// J, or an escape that spells one: a body with none is not scanned.
	if bytes.IndexAny(b, "jJ\\%") >= 0 && scanJSONRPC(decodeUTF8(b)) {
		return true
	}
	// UTF-16 and UTF-32 in both byte orders: by the charset, by a BOM,
	// or sniffed from NUL bytes among the first four, as readers do.
	if charsetFamily(charset) == famWide || wideHint(b) {
		for _, dec := range [...]func([]byte) []rune{utf16LE, utf16BE, utf32LE, utf32BE} {
			if scanJSONRPC(dec(b)) {
				return true
			}
		}
	}
	return false
}

type family uint8

const (
	famASCII   family = iota // decodes ASCII as ASCII: read as it is
	famUTF7                  // UTF-7 and its aliases
	famWide                  // UTF-16, UTF-32, UCS-2, UCS-4
	famUnknown               // anything else: cannot be decided
)

// charsetFamily sorts a charset name as iconv-lite normalises it (lower
// case, only letters and digits kept).
func charsetFamily(cs string) family {
	if cs == "" {
		return famASCII
	}
	var b strings.Builder
	for _, c := range []byte(strings.ToLower(cs)) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteByte(c)
		}
	}
	n := b.String()
	switch {
	case strings.Contains(n, "utf7"):
		return famUTF7
	case strings.HasPrefix(n, "utf16"), strings.HasPrefix(n, "utf32"), strings.HasPrefix(n, "ucs2"),
		strings.HasPrefix(n, "ucs4"), n == "unicode", strings.HasPrefix(n, "unicodefffe"):
		return famWide
	case n == "utf8", n == "usascii", n == "ascii", n == "latin1", n == "binary",
		strings.HasPrefix(n, "iso8859"), strings.HasPrefix(n, "windows125"), strings.HasPrefix(n, "cp125"),
		strings.HasPrefix(n, "koi8"):
		return famASCII
	}
	return famUnknown
}

// wideHint reports a body that starts like UTF-16 or UTF-32: a BOM for
// either, or a NUL byte among the first four (RFC 4627's detection).
func wideHint(b []byte) bool {
	if len(b) >= 2 && (b[0] == 0xfe && b[1] == 0xff || b[0] == 0xff && b[1] == 0xfe) {
		return true
	}
	for i := 0; i < len(b) && i < 4; i++ {
		if b[i] == 0 {
			return true
		}
	}
	return false
}

func decodeUTF8(b []byte) []rune {
	out := make([]rune, 0, len(b))
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		out = append(out, r)
		b = b[n:]
	}
	return out
}

func utf16LE(b []byte) []rune { return utf16Of(b, binary.LittleEndian) }
func utf16BE(b []byte) []rune { return utf16Of(b, binary.BigEndian) }

func utf16Of(b []byte, o binary.ByteOrder) []rune {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		u = append(u, o.Uint16(b[i:]))
	}
	return utf16.Decode(u)
}

func utf32LE(b []byte) []rune { return utf32Of(b, binary.LittleEndian) }
func utf32BE(b []byte) []rune { return utf32Of(b, binary.BigEndian) }

func utf32Of(b []byte, o binary.ByteOrder) []rune {
	out := make([]rune, 0, len(b)/4)
	for i := 0; i+3 < len(b); i += 4 {
		out = append(out, rune(o.Uint32(b[i:])))
	}
	return out
}

// decodeUTF7 decodes RFC 2152 UTF-7 as iconv-lite does: "+" opens a run
// of modified base64 holding UTF-16BE, which ends at "-" (consumed) or at
// any other byte outside the alphabet; "+-" is "+".
func decodeUTF7(b []byte) []rune {
	var out []rune
	for i := 0; i < len(b); i++ {
		if b[i] != '+' {
			out = append(out, rune(b[i]))
			continue
		}
		i++
		if i < len(b) && b[i] == '-' {
			out = append(out, '+')
			continue
		}
		var bits uint32
		nbits := 0
		var u []uint16
		for ; i < len(b); i++ {
			v := b64val(b[i])
			if v < 0 {
				break
			}
			bits = bits<<6 | uint32(v)
			nbits += 6
			if nbits >= 16 {
				nbits -= 16
				u = append(u, uint16(bits>>nbits))
				bits &= 1<<nbits - 1
			}
		}
		out = append(out, utf16.Decode(u)...)
		if i < len(b) && b[i] != '-' {
			i-- // not part of the run: read it as itself
		}
	}
	return out
}

func b64val(c byte) int {
	switch {
	case c >= 'A' && c <= 'Z':
		return int(c - 'A')
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 26
	case c >= '0' && c <= '9':
		return int(c-'0') + 52
	case c == '+':
		return 62
	case c == '/':
		return 63
	}
	return -1
}

// scanText reports text that opens an object or array (after BOMs,
// white space and comments) in which some name, quoted or not, or some
// string reads as "jsonrpc" once its escapes are decoded, under Unicode
// simple folding; or, with forms, text that is not JSON (a form) with
// such a name once percent-decoded.
func scanText(t []rune, forms bool) bool {
	i := skipSpace(t, 0)
	if i < len(t) && (t[i] == '{' || t[i] == '[') {
		return scanNames(t, i)
	}
	if !forms {
		return false
	}
	// Not JSON: a form that a server's form parser (express.urlencoded,
	// qs, multer) turns into an object it may hand to an MCP transport
	// ("jsonrpc=2.0&method=tools/call&params[name]=..."): its names,
	// percent-decoded.
	return scanNames(percentDecode(t), 0)
}

// scanNames reports a name or string in t[i:] that reads "jsonrpc".
func scanNames(t []rune, i int) bool {
	for i < len(t) {
		switch c := t[i]; {
		case c == '"' || c == '\'' || c == '`':
			var ok bool
			if ok, i = readName(t, i+1, c); ok {
				return true
			}
		case isIdentRune(c) || c == '\\':
			var ok bool
			if ok, i = readName(t, i, 0); ok {
				return true
			}
		default:
			i++
		}
	}
	return false
}

// percentDecode undoes a form's encoding: "+" is a space, %XX a byte
// (bytes decoded as UTF-8); a malformed escape is kept as it is.
func percentDecode(t []rune) []rune {
	if !slices.Contains(t, '%') && !slices.Contains(t, '+') {
		return t
	}
	var b []byte
	for i := 0; i < len(t); i++ {
		switch {
		case t[i] == '+':
			b = append(b, ' ')
		case t[i] == '%' && i+2 < len(t) && hexVal(t[i+1]) >= 0 && hexVal(t[i+2]) >= 0:
			b = append(b, byte(hexVal(t[i+1])<<4|hexVal(t[i+2])))
			i += 2
		default:
			b = utf8.AppendRune(b, t[i])
		}
	}
	return decodeUTF8(b)
}

// skipSpace skips BOMs, white space, NULs and JSON5 / JavaScript
// comments from t[i:].
func skipSpace(t []rune, i int) int {
	for i < len(t) {
		switch {
		case t[i] == 0xfeff || t[i] == 0 || unicode.IsSpace(t[i]):
			i++
		case t[i] == '/' && i+1 < len(t) && t[i+1] == '/':
			for i < len(t) && t[i] != '\n' && t[i] != '\r' && t[i] != 0x2028 && t[i] != 0x2029 {
				i++
			}
		case t[i] == '/' && i+1 < len(t) && t[i+1] == '*':
			i += 2
			for i+1 < len(t) && !(t[i] == '*' && t[i+1] == '/') {
				i++
			}
			i += 2
		default:
			return i
		}
	}
	return len(t)
}

func isIdentRune(r rune) bool {
	return r == '_' || r == '$' || unicode.IsLetter(r) || unicode.IsDigit(r)
}

const target = "jsonrpc"

// readName reads a string closed by quote from t[i:] (quote 0: an
// unquoted name, up to the first rune that cannot be in one), decoding
// escapes, and reports whether it reads as "jsonrpc"; it returns where
// reading stopped (past the closing quote).
func readName(t []rune, i int, quote rune) (bool, int) {
	n, match := 0, true
	for i < len(t) {
		r := t[i]
		if quote != 0 && r == quote {
			i++
			break
		}
		if quote == 0 && !isIdentRune(r) && r != '\\' {
			break
		}
		i++
		if r == '\\' && i < len(t) {
			r, i = unescape(t, i)
		}
		if n < len(target) && !foldEq(r, rune(target[n])) {
			match = false
		}
		n++
	}
	return match && n == len(target), i
}

// unescape decodes the escape after a backslash at t[i-1]: \uXXXX (a
// surrogate pair joined), \u{X...}, \xXX, or the character itself.
func unescape(t []rune, i int) (rune, int) {
	switch t[i] {
	case 'u':
		if i+1 < len(t) && t[i+1] == '{' {
			v, j := 0, i+2
			for j < len(t) && hexVal(t[j]) >= 0 && j-i < 10 {
				v = v<<4 | hexVal(t[j])
				j++
			}
			if j < len(t) && t[j] == '}' {
				return rune(v), j + 1
			}
			return 'u', i + 1
		}
		r, ok := hexRune(t, i+1, 4)
		if !ok {
			return 'u', i + 1
		}
		if utf16.IsSurrogate(r) && i+6 < len(t) && t[i+5] == '\\' && t[i+6] == 'u' {
			if r2, ok := hexRune(t, i+7, 4); ok {
				if p := utf16.DecodeRune(r, r2); p != unicode.ReplacementChar {
					return p, i + 11
				}
			}
		}
		return r, i + 5
	case 'x':
		if r, ok := hexRune(t, i+1, 2); ok {
			return r, i + 3
		}
	}
	return t[i], i + 1
}

func hexRune(t []rune, i, n int) (rune, bool) {
	if i+n > len(t) {
		return 0, false
	}
	v := 0
	for _, c := range t[i : i+n] {
		h := hexVal(c)
		if h < 0 {
			return 0, false
		}
		v = v<<4 | h
	}
	return rune(v), true
}

func hexVal(c rune) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// foldEq reports r and t equal under Unicode simple folding, as
// encoding/json matches names ('ſ' is 's', the Kelvin sign is 'k').
func foldEq(r, t rune) bool {
	if r == t {
		return true
	}
	for f := unicode.SimpleFold(t); f != t; f = unicode.SimpleFold(f) {
		if f == r {
			return true
		}
	}
	return false
}

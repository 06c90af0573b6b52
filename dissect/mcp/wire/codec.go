package wire

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	"golang.org/x/text/unicode/norm"
)

// Default limits, used for a Limits field left zero.
const (
	DefaultMaxMessage   = 4 << 20 // bytes in one JSON-RPC body
	DefaultMaxDepth     = 64      // nesting of objects and arrays
	DefaultMaxNumberLen = 64      // characters in one JSON number
)

// Limits bound what Parse accepts. A zero field takes its default.
type Limits struct {
	MaxMessage   int // bytes in the whole body (a batch counts as one body)
	MaxDepth     int // objects and arrays nested in one another; a message object is 1
	MaxNumberLen int // characters in a number, sign and exponent included
}

func (l Limits) withDefaults() Limits {
	if l.MaxMessage <= 0 {
		l.MaxMessage = DefaultMaxMessage
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxNumberLen <= 0 {
		l.MaxNumberLen = DefaultMaxNumberLen
	}
	return l
}

// The reasons a *ParseError gives, short and stable for events and metrics.
const (
	ReasonTooLarge       = "too-large"        // body over Limits.MaxMessage
	ReasonBOM            = "bom"              // body starts with a UTF-8 byte-order mark
	ReasonInvalidUTF8    = "invalid-utf8"     // invalid UTF-8, or an escape naming a lone surrogate
	ReasonSyntax         = "syntax"           // not JSON at all
	ReasonTrailingData   = "trailing-data"    // bytes after the one top-level value
	ReasonDuplicateKey   = "duplicate-key"    // one object with a name twice (after unescaping)
	ReasonCaseVariantKey = "case-variant-key" // names equal but for case, or a field name in another case
	ReasonProtoKey       = "proto-key"        // a member named __proto__, anywhere
	ReasonEscapedName    = "escaped-name"     // an escape in a method, tool or prompt name, a \u escape in a URI
	ReasonNonNFCName     = "non-nfc-name"     // a method, name or URI not in Unicode NFC
	ReasonTooDeep        = "too-deep"         // nesting past Limits.MaxDepth
	ReasonNumberTooLong  = "number-too-long"  // a number longer than Limits.MaxNumberLen
	ReasonNotJSONRPC     = "not-jsonrpc"      // not a JSON-RPC 2.0 request, notification or response
	ReasonMethodVariant  = "method-variant"   // a method that is a decided one but for case or white space
	ReasonBadID          = "bad-id"           // an id that is not a string or a safe integer
	ReasonEmptyBatch     = "empty-batch"      // a batch with no messages
	ReasonBadParams      = "bad-params"       // params not an object, or missing what the method needs
	ReasonBadResult      = "bad-result"       // a result or error member that is not an object
	ReasonBadToolsList   = "bad-tools-list"   // a tools/list result ParseToolsList cannot read
)

// ParseError is a refusal: the bytes break the rule Reason names, and the
// client is owed a JSON-RPC error with Code.
type ParseError struct {
	Reason string // one of the Reason* constants
	Code   int    // the JSON-RPC error code to answer with
	Detail string // what was seen, for the log line
	Offset int64  // byte offset in the body where the rule fired
	Err    error  // an underlying jsontext error, if any
}

func (e *ParseError) Error() string {
	if e.Detail == "" {
		return "mcp: " + e.Reason
	}
	return "mcp: " + e.Reason + ": " + e.Detail
}

func (e *ParseError) Unwrap() error { return e.Err }

func refuse(reason string, code int, offset int, format string, args ...any) *ParseError {
	return &ParseError{Reason: reason, Code: code, Offset: int64(offset), Detail: fmt.Sprintf(format, args...)}
}

// jsonError turns a jsontext error into the refusal it stands for.
func jsonError(err error) *ParseError {
	var pe *ParseError
	if errors.As(err, &pe) {
		return pe
	}
	e := &ParseError{Reason: ReasonSyntax, Code: CodeParseError, Detail: err.Error(), Err: err}
	var se *jsontext.SyntacticError
	if errors.As(err, &se) {
		e.Offset = se.ByteOffset
	}
	switch {
	case errors.Is(err, jsontext.ErrDuplicateName):
		e.Reason = ReasonDuplicateKey
	case strings.Contains(err.Error(), "surrogate"):
		// A \ud800 on its own decodes to no character at all; JavaScript
		// keeps it, Go replaces it: readers disagree, so it counts as
		// invalid text.
		e.Reason = ReasonInvalidUTF8
	}
	return e
}

// Body is one parsed HTTP body: a single message, or a JSON-RPC batch.
type Body struct {
	Messages []*Message
	Batch    bool // the body was a JSON array, even of one message
}

var BOM = []byte("\xef\xbb\xbf")

// Parse reads one JSON-RPC body strictly (see the package comment) and
// returns its messages, or a *ParseError. The messages alias body.
func Parse(body []byte, lim Limits) (Body, error) {
	lim = lim.withDefaults()
	if len(body) > lim.MaxMessage {
		return Body{}, refuse(ReasonTooLarge, CodeInvalidRequest, lim.MaxMessage, "%d bytes, limit %d", len(body), lim.MaxMessage)
	}
	if bytes.HasPrefix(body, BOM) {
		return Body{}, refuse(ReasonBOM, CodeParseError, 0, "body starts with a UTF-8 byte-order mark")
	}
	if !utf8.Valid(body) {
		return Body{}, refuse(ReasonInvalidUTF8, CodeParseError, invalidUTF8At(body), "body is not valid UTF-8")
	}
	p := newParser(body, lim)
	defer p.release()
	var out Body
	switch p.dec.PeekKind() {
	case '{':
		m, err := p.message(0)
		if err != nil {
			return Body{}, err
		}
		out.Messages = []*Message{m}
	case '[':
		out.Batch = true
		msgs, err := p.batch()
		if err != nil {
			return Body{}, err
		}
		out.Messages = msgs
	default:
		if _, err := p.dec.ReadToken(); err != nil {
			return Body{}, jsonError(err)
		}
		return Body{}, refuse(ReasonNotJSONRPC, CodeInvalidRequest, 0, "body is neither a JSON object nor an array")
	}
	if err := p.end(); err != nil {
		return Body{}, err
	}
	return out, nil
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// span is a half-open byte range in the parser's source.
type span struct{ start, end int }

// parser walks one JSON text with a strict jsontext.Decoder (duplicate
// names and invalid UTF-8 refused) and enforces what jsontext does not:
// depth, number length, names equal but for case.
type parser struct {
	src   []byte
	dec   *jsontext.Decoder
	lim   Limits
	names [][]byte     // names of the objects being walked, innermost last
	in    bytes.Buffer // src, which the decoder reads in place
}

// parsers recycles decoders: a fresh jsontext.Decoder allocates its
// duplicate-name tables anew, which costs more than the rest of a parse.
var parsers = sync.Pool{New: func() any { return &parser{dec: jsontext.NewDecoder(bytes.NewBuffer(nil))} }}

// newParser returns a parser of src from the pool; release returns it.
func newParser(src []byte, lim Limits) *parser {
	p := parsers.Get().(*parser)
	p.src, p.lim = src, lim
	p.in = *bytes.NewBuffer(src)
	p.dec.Reset(&p.in)
	return p
}

// release returns p to the pool. Nothing p parsed may refer to the
// decoder's buffers afterwards (values slice src, never the decoder).
func (p *parser) release() {
	clear(p.names[:cap(p.names)])
	p.src, p.names, p.in = nil, p.names[:0], bytes.Buffer{}
	p.dec.Reset(&p.in)
	parsers.Put(p)
}

// end refuses anything but whitespace after the top-level value. jsontext
// would read it as a second value of a stream.
func (p *parser) end() error {
	off := int(p.dec.InputOffset())
	for i := off; i < len(p.src); i++ {
		switch p.src[i] {
		case ' ', '\t', '\r', '\n':
		default:
			return refuse(ReasonTrailingData, CodeParseError, i, "bytes after the JSON value")
		}
	}
	return nil
}

// token reads the next token and where its text is in src.
func (p *parser) token() (jsontext.Token, span, error) {
	off := int(p.dec.InputOffset())
	tok, err := p.dec.ReadToken()
	if err != nil {
		return tok, span{}, jsonError(err)
	}
	end := int(p.dec.InputOffset())
	for off < end {
		switch p.src[off] {
		case ' ', '\t', '\r', '\n', ',', ':':
			off++
			continue
		}
		break
	}
	return tok, span{off, end}, nil
}

// name returns the decoded text of a name token. Without escapes that is
// the raw text between the quotes, and nothing is allocated.
func (p *parser) name(tok jsontext.Token, sp span) []byte {
	raw := p.src[sp.start+1 : sp.end-1]
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw
	}
	return []byte(tok.String())
}

// value walks any value, refusing what the limits and the case rule forbid.
func (p *parser) value(depth int) (span, error) {
	tok, sp, err := p.token()
	if err != nil {
		return span{}, err
	}
	return p.rest(tok, sp, depth)
}

// rest finishes the value whose first token was just read.
func (p *parser) rest(tok jsontext.Token, sp span, depth int) (span, error) {
	switch tok.Kind() {
	case '{':
		return p.object(sp, depth+1, nil)
	case '[':
		if depth+1 > p.lim.MaxDepth {
			return span{}, refuse(ReasonTooDeep, CodeParseError, sp.start, "nesting deeper than %d", p.lim.MaxDepth)
		}
		for p.dec.PeekKind() != ']' {
			if _, err := p.value(depth + 1); err != nil {
				return span{}, err
			}
		}
		_, end, err := p.token()
		if err != nil {
			return span{}, err
		}
		return span{sp.start, end.end}, nil
	case '0':
		if sp.end-sp.start > p.lim.MaxNumberLen {
			return span{}, refuse(ReasonNumberTooLong, CodeParseError, sp.start, "number of %d characters, limit %d", sp.end-sp.start, p.lim.MaxNumberLen)
		}
	}
	return sp, nil
}

// member handles one member of an object being walked, given its decoded
// name: it reads the value itself and reports true, or reports false to
// have the value walked generically.
type member func(name []byte) (bool, error)

// object walks an object whose '{' (at sp) was just read, at depth.
func (p *parser) object(sp span, depth int, each member) (span, error) {
	if depth > p.lim.MaxDepth {
		return span{}, refuse(ReasonTooDeep, CodeParseError, sp.start, "nesting deeper than %d", p.lim.MaxDepth)
	}
	mark := len(p.names)
	defer func() { p.names = p.names[:mark] }()
	for {
		tok, nsp, err := p.token()
		if err != nil {
			return span{}, err
		}
		if tok.Kind() == '}' {
			if err := foldConflict(p.names[mark:]); err != nil {
				err.Offset = int64(sp.start)
				return span{}, err
			}
			return span{sp.start, nsp.end}, nil
		}
		name := p.name(tok, nsp)
		if string(name) == "__proto__" {
			// JSON.parse keeps it as a plain member, but a server that
			// copies params with Object.assign makes it the prototype,
			// and reads a tool name or argument from it that is not there.
			return span{}, refuse(ReasonProtoKey, CodeInvalidRequest, nsp.start, `a member named "__proto__"`)
		}
		p.names = append(p.names, name)
		handled := false
		if each != nil {
			if handled, err = each(name); err != nil {
				return span{}, err
			}
		}
		if !handled {
			if _, err := p.value(depth); err != nil {
				return span{}, err
			}
		}
	}
}

// foldConflict refuses two names that are equal under case folding, which
// encoding/json would both match to one struct field (the last one wins).
func foldConflict(names [][]byte) *ParseError {
	if len(names) < 2 {
		return nil
	}
	if len(names) <= 16 {
		for i := range names {
			for j := i + 1; j < len(names); j++ {
				if bytes.EqualFold(names[i], names[j]) {
					return refuse(ReasonCaseVariantKey, CodeInvalidRequest, 0, "names %q and %q differ only in case", names[i], names[j])
				}
			}
		}
		return nil
	}
	seen := make(map[string][]byte, len(names))
	for _, n := range names {
		k := string(foldName(n))
		if prev, ok := seen[k]; ok {
			return refuse(ReasonCaseVariantKey, CodeInvalidRequest, 0, "names %q and %q differ only in case", prev, n)
		}
		seen[k] = n
	}
	return nil
}

// caseVariant refuses a name that is one of want in another case: a server
// matching names case-insensitively would read it as that field.
func caseVariant(name []byte, want ...string) *ParseError {
	for _, w := range want {
		if string(name) != w && bytes.EqualFold(name, []byte(w)) {
			return refuse(ReasonCaseVariantKey, CodeInvalidRequest, 0, "name %q where %q belongs", name, w)
		}
	}
	return nil
}

// nameRule is how strictly checkName treats escapes.
type nameRule int

const (
	noEscapes  nameRule = iota // method and tool/prompt names: no escape at all
	noUEscapes                 // URIs: \/ and friends are fine, \u only as encoding/json writes it
)

// htmlEscapesOnly reports whether every \u escape in raw is one Go's
// encoding/json writes by default (for &, <, >, U+2028, U+2029). A Go
// client sends every & of a URI's query that way; any other \u escape in
// a URI is refused.
func htmlEscapesOnly(raw []byte) bool {
	for i := 0; i+1 < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		if raw[i+1] == 'u' {
			if i+6 > len(raw) {
				return false
			}
			switch strings.ToLower(string(raw[i+2 : i+6])) {
			case "0026", "003c", "003e", "2028", "2029":
			default:
				return false
			}
		}
		i++ // the escaped character
	}
	return true
}

// checkName enforces the escape and NFC rules on a string token that names
// what a server will look up, and returns its decoded text.
func (p *parser) checkName(tok jsontext.Token, sp span, what string, rule nameRule) (string, error) {
	raw := p.src[sp.start+1 : sp.end-1]
	esc := bytes.IndexByte(raw, '\\')
	s := ""
	switch {
	case esc < 0:
		s = string(raw)
	case rule == noEscapes:
		return "", refuse(ReasonEscapedName, CodeInvalidRequest, sp.start, "%s %s contains an escape sequence", what, raw)
	case rule == noUEscapes && !htmlEscapesOnly(raw):
		return "", refuse(ReasonEscapedName, CodeInvalidRequest, sp.start, "%s %s contains a \\u escape", what, raw)
	default:
		s = tok.String()
	}
	// A name must not change under any normalisation a server might
	// apply before looking it up (a full-width "ｅcho" is NFC, and NFKC
	// makes it "echo"); a URI only under NFC, since NFKC would rewrite
	// legitimate characters in paths.
	form, formName := norm.NFC, "NFC"
	if rule == noEscapes {
		form, formName = norm.NFKC, "NFKC"
	}
	if !isASCII(s) && !form.IsNormalString(s) {
		return "", refuse(ReasonNonNFCName, CodeInvalidRequest, sp.start, "%s %q is not in Unicode %s", what, s, formName)
	}
	return s, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

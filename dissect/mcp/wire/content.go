package wire

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Reading a Content-Type as the peers do, and refusing what they could
// read differently. MCP's messages are UTF-8 JSON; a peer that honours a
// charset parameter (body-parser and raw-body through iconv-lite, the
// TypeScript SDK's SSE transport, Python clients reading a response's
// text) decodes anything else before it parses, so a body agentg read as
// UTF-8 could say another method to it ("tools+AC8-call" in UTF-7). A JSON
// media type is therefore accepted only with no charset or with one that
// every peer decodes as UTF-8, and with a header no two readers could
// read apart: one Content-Type line, a well-formed media type, no
// parameter twice (Go refuses a duplicate, Node's content-type keeps the
// last), no RFC 2231 parameter (Go decodes charset*=, Node ignores it)
// and no escape in a quoted value (Go keeps "\-", Node drops the "\").
// What agentg forwards after reading a message states exactly what it
// read: the canonical media type, never the header as it came.

// Canonical content types agentg forwards for what it has read.
const (
	ContentTypeJSON = "application/json"
	ContentTypeSSE  = "text/event-stream"
)

// mediaType is a Content-Type as read.
type MediaType struct {
	Kind    ContentKind
	Type    string // the media type, lower case
	Charset string // the charset parameter, unquoted and lower case; "" for none
}

// UTF8 reports a charset every peer decodes as UTF-8: none (JSON's and
// the event stream's default), "utf-8", or iconv-lite's "utf8".
func (m MediaType) UTF8() bool {
	return m.Charset == "" || m.Charset == "utf-8" || m.Charset == "utf8"
}

var errContentType = errors.New("malformed Content-Type")

// contentType reads h's Content-Type. An error is a header two readers
// could read differently: it is never taken for JSON.
func ContentType(h http.Header) (MediaType, error) {
	vs := h.Values("Content-Type")
	switch len(vs) {
	case 0:
		return MediaType{Kind: contentEmpty}, nil
	case 1:
	default:
		return MediaType{Kind: contentOther}, fmt.Errorf("%d Content-Type header fields", len(vs))
	}
	m, err := parseMediaType(vs[0])
	if err != nil {
		return MediaType{Kind: contentOther}, fmt.Errorf("Content-Type %q: %w", vs[0], err)
	}
	return m, nil
}

// parseMediaType reads "type/subtype *(; name=value)" (RFC 9110 8.3.1).
func parseMediaType(s string) (MediaType, error) {
	s = strings.Trim(s, " \t")
	i := 0
	for i < len(s) && s[i] != ';' {
		i++
	}
	full := strings.ToLower(strings.TrimRight(s[:i], " \t"))
	typ, sub, ok := strings.Cut(full, "/")
	if !ok || !IsToken(typ) || !IsToken(sub) {
		return MediaType{Kind: contentOther}, errContentType
	}
	m := MediaType{Type: full, Kind: contentOther}
	if full == ContentTypeJSON || strings.HasSuffix(sub, "+json") {
		m.Kind = ContentJSON
	}
	var seen []string // parameter names so far: a media type has few
	rest := s[i:]
	for len(rest) > 0 {
		rest = strings.TrimLeft(rest[1:], " \t") // the ';'
		if rest == "" {
			break // a trailing ';' is allowed by both readers
		}
		j := 0
		for j < len(rest) && isTokenByte(rest[j]) {
			j++
		}
		name := strings.ToLower(rest[:j])
		rest = strings.TrimLeft(rest[j:], " \t")
		if name == "" || rest == "" || rest[0] != '=' {
			return MediaType{Kind: contentOther}, errContentType
		}
		if strings.Contains(name, "*") {
			return MediaType{Kind: contentOther}, fmt.Errorf("parameter %s: RFC 2231 parameters are read differently by Go and Node", name)
		}
		if slices.Contains(seen, name) {
			return MediaType{Kind: contentOther}, fmt.Errorf("parameter %s twice", name)
		}
		seen = append(seen, name)
		rest = strings.TrimLeft(rest[1:], " \t")
		var val string
		var err error
		if val, rest, err = paramValue(rest); err != nil {
			return MediaType{Kind: contentOther}, err
		}
		rest = strings.TrimLeft(rest, " \t")
		if rest != "" && rest[0] != ';' {
			return MediaType{Kind: contentOther}, errContentType
		}
		if name == "charset" {
			m.Charset = strings.ToLower(val)
		}
	}
	return m, nil
}

// paramValue reads a token or a quoted-string without escapes, unquoted.
func paramValue(s string) (val, rest string, err error) {
	if s == "" {
		return "", "", errContentType
	}
	if s[0] != '"' {
		j := 0
		for j < len(s) && isTokenByte(s[j]) {
			j++
		}
		if j == 0 {
			return "", "", errContentType
		}
		return s[:j], s[j:], nil
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return b.String(), s[i+1:], nil
		case c == '\\':
			// Readers unescape differently (Go's mime keeps "\-",
			// Node drops the backslash): refused, not guessed at.
			return "", "", fmt.Errorf("quoted-pair in a parameter value: %w", errContentType)
		case c < 0x20 && c != '\t' || c == 0x7f:
			return "", "", errContentType
		default:
			b.WriteByte(c)
		}
	}
	return "", "", errContentType // unterminated
}

func isTokenByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// errMediaType is the refusal of a body sent under a content type agentg
// does not read as MCP's.
func ErrMediaType(h http.Header, m MediaType, err error) *ParseError {
	detail := "a JSON-RPC message must be sent as application/json, not " + strconv.Quote(strings.Join(h.Values("Content-Type"), ", "))
	switch {
	case err != nil:
		detail = "a JSON-RPC message must be sent as application/json: " + err.Error()
	case m.Kind == ContentJSON:
		detail = "a JSON-RPC message is UTF-8: charset " + strconv.Quote(m.Charset) + " is refused"
	}
	return &ParseError{Reason: "content-type", Code: CodeInvalidRequest, Detail: detail}
}

// isToken reports whether s is an RFC 9110 token (1*tchar).
func IsToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return s != ""
}

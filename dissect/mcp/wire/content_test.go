package wire

import (
	"mime"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

func TestContentType(t *testing.T) {
	for _, tc := range []struct {
		name    string
		values  []string
		kind    ContentKind
		charset string
		utf8    bool
		bad     bool
	}{
		{"none", nil, contentEmpty, "", true, false},
		{"json", []string{"application/json"}, ContentJSON, "", true, false},
		{"json upper", []string{"Application/JSON"}, ContentJSON, "", true, false},
		{"plus json", []string{"application/vnd.x+json"}, ContentJSON, "", true, false},
		{"utf-8", []string{"application/json; charset=utf-8"}, ContentJSON, "utf-8", true, false},
		{"UTF-8 quoted", []string{`application/json;charset="UTF-8"`}, ContentJSON, "utf-8", true, false},
		{"utf8 alias", []string{"application/json; charset=utf8"}, ContentJSON, "utf8", true, false},
		{"quoted-pair", []string{`application/json; charset="utf\-8"`}, contentOther, "", false, true},
		{"trailing semicolon", []string{"application/json;"}, ContentJSON, "", true, false},
		{"other param", []string{"application/json; profile=x"}, ContentJSON, "", true, false},
		{"utf-7", []string{"application/json; charset=utf-7"}, ContentJSON, "utf-7", false, false},
		{"UTF-7 quoted", []string{`application/json; charset="UTF-7"`}, ContentJSON, "utf-7", false, false},
		{"utf-16", []string{"application/json; charset=utf-16le"}, ContentJSON, "utf-16le", false, false},
		{"latin1", []string{"application/json; charset=iso-8859-1"}, ContentJSON, "iso-8859-1", false, false},
		{"u.t.f-8 is not utf-8", []string{"application/json; charset=u.t.f-8"}, ContentJSON, "u.t.f-8", false, false},
		{"empty charset", []string{`application/json; charset=""`}, ContentJSON, "", true, false},
		{"duplicate charset", []string{"application/json; charset=utf-8; charset=utf-7"}, contentOther, "", false, true},
		{"duplicate charset case", []string{"application/json; charset=utf-8; CHARSET=utf-7"}, contentOther, "", false, true},
		{"rfc 2231", []string{"application/json; charset=utf-8; charset*=utf-8''utf-7"}, contentOther, "", false, true},
		{"two fields", []string{"application/json", "application/json; charset=utf-7"}, contentOther, "", false, true},
		{"no subtype", []string{"application"}, contentOther, "", false, true},
		{"unterminated quote", []string{`application/json; charset="utf-8`}, contentOther, "", false, true},
		{"garbage after value", []string{"application/json; charset=utf-8 x"}, contentOther, "", false, true},
		{"no value", []string{"application/json; charset"}, contentOther, "", false, true},
		{"text", []string{"text/plain"}, contentOther, "", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tc.values {
				h.Add("Content-Type", v)
			}
			m, err := ContentType(h)
			if (err != nil) != tc.bad {
				t.Fatalf("%q: err %v, want bad=%v", tc.values, err, tc.bad)
			}
			if m.Kind != tc.kind || m.Charset != tc.charset || !tc.bad && m.UTF8() != tc.utf8 {
				t.Fatalf("%q: %+v utf8=%v, want kind %v charset %q utf8=%v", tc.values, m, m.UTF8(), tc.kind, tc.charset, tc.utf8)
			}
		})
	}
}

// nodeContentType is Node's content-type 1.0.5 parse (used by the
// TypeScript SDK's SSE transport and body-parser), ported: the type up to
// the first ';', trimmed; then "; *name *= *value *" pairs, each starting
// exactly where the last ended, the last duplicate winning. ok is false
// where it throws.
func nodeContentType(h string) (typ, charset string, hasCharset, ok bool) {
	i := strings.IndexByte(h, ';')
	t := h
	if i >= 0 {
		t = h[:i]
	}
	t = strings.TrimFunc(t, unicode.IsSpace)
	if !nodeType.MatchString(t) {
		return "", "", false, false
	}
	if i < 0 {
		return strings.ToLower(t), "", false, true
	}
	for i < len(h) {
		m := nodeParam.FindStringSubmatchIndex(h[i:])
		if m == nil || m[0] != 0 {
			return "", "", false, false
		}
		key, val := strings.ToLower(h[i+m[2]:i+m[3]]), h[i+m[4]:i+m[5]]
		if val[0] == '"' {
			val = nodeQesc.ReplaceAllString(val[1:len(val)-1], "$1")
		}
		if key == "charset" {
			charset, hasCharset = val, true
		}
		i += m[1]
	}
	return strings.ToLower(t), charset, hasCharset, true
}

var (
	nodeType  = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	nodeParam = regexp.MustCompile("^; *([!#$%&'*+.^_`|~0-9A-Za-z-]+) *= *(\"(?:[\\x0b\\x20\\x21\\x23-\\x5b\\x5d-\\x7e\\x80-\\xff]|\\\\[\\x0b\\x20-\\xff])*\"|[!#$%&'*+.^_`|~0-9A-Za-z-]+) *")
	nodeQesc  = regexp.MustCompile(`\\([\x0b\x20-\xff])`)
)

// FuzzContentType: whenever agentg reads a Content-Type as MCP's (JSON,
// UTF-8), Node's content-type and Go's mime, where they read it at all,
// read UTF-8 too: no charset, or utf-8/utf8.
func FuzzContentType(f *testing.F) {
	for _, s := range []string{"application/json", "application/json; charset=utf-8", `application/json;charset="UTF-8"`,
		"application/json; charset=utf-8; charset=utf-7", "application/json;\tcharset=utf-7", "application/json; charset*=utf-8''utf-7",
		`application/json; charset="utf\-8"`, "application/vnd.x+json ; charset = utf-8 ;", "application/json;charset=utf-7;"} {
		f.Add(s)
	}
	utf8 := func(cs string) bool { cs = strings.ToLower(cs); return cs == "" || cs == "utf-8" || cs == "utf8" }
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ContentType(http.Header{"Content-Type": {s}})
		if err != nil || m.Kind != ContentJSON || !m.UTF8() {
			return
		}
		if typ, cs, _, ok := nodeContentType(s); ok && (typ != m.Type || !utf8(cs)) {
			t.Fatalf("%q: agentg reads %s in UTF-8, Node's content-type %s charset %q", s, m.Type, typ, cs)
		}
		if typ, params, err := mime.ParseMediaType(s); err == nil && (typ != m.Type || !utf8(params["charset"])) {
			t.Fatalf("%q: agentg reads %s in UTF-8, Go's mime %s charset %q", s, m.Type, typ, params["charset"])
		}
	})
}

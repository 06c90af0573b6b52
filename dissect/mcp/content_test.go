package mcp

import (
	"net/http"
	"testing"
)

func TestContentType(t *testing.T) {
	for _, tc := range []struct {
		name    string
		values  []string
		kind    contentKind
		charset string
		utf8    bool
		bad     bool
	}{
		{"none", nil, contentEmpty, "", true, false},
		{"json", []string{"application/json"}, contentJSON, "", true, false},
		{"json upper", []string{"Application/JSON"}, contentJSON, "", true, false},
		{"plus json", []string{"application/vnd.x+json"}, contentJSON, "", true, false},
		{"utf-8", []string{"application/json; charset=utf-8"}, contentJSON, "utf-8", true, false},
		{"UTF-8 quoted", []string{`application/json;charset="UTF-8"`}, contentJSON, "utf-8", true, false},
		{"utf8 alias", []string{"application/json; charset=utf8"}, contentJSON, "utf8", true, false},
		{"quoted-pair", []string{`application/json; charset="utf\-8"`}, contentJSON, "utf-8", true, false},
		{"trailing semicolon", []string{"application/json;"}, contentJSON, "", true, false},
		{"other param", []string{"application/json; profile=x"}, contentJSON, "", true, false},
		{"utf-7", []string{"application/json; charset=utf-7"}, contentJSON, "utf-7", false, false},
		{"UTF-7 quoted", []string{`application/json; charset="UTF-7"`}, contentJSON, "utf-7", false, false},
		{"utf-16", []string{"application/json; charset=utf-16le"}, contentJSON, "utf-16le", false, false},
		{"latin1", []string{"application/json; charset=iso-8859-1"}, contentJSON, "iso-8859-1", false, false},
		{"u.t.f-8 is not utf-8", []string{"application/json; charset=u.t.f-8"}, contentJSON, "u.t.f-8", false, false},
		{"empty charset", []string{`application/json; charset=""`}, contentJSON, "", true, false},
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
			m, err := contentType(h)
			if (err != nil) != tc.bad {
				t.Fatalf("%q: err %v, want bad=%v", tc.values, err, tc.bad)
			}
			if m.kind != tc.kind || m.charset != tc.charset || !tc.bad && m.utf8() != tc.utf8 {
				t.Fatalf("%q: %+v utf8=%v, want kind %v charset %q utf8=%v", tc.values, m, m.utf8(), tc.kind, tc.charset, tc.utf8)
			}
		})
	}
}

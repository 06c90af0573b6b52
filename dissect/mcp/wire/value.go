package wire

import (
	"bytes"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// ValueKind is the JSON type of a Value.
type ValueKind uint8

const (
	ValueString ValueKind = iota + 1
	ValueNumber
	ValueBool
	ValueNull
	ValueObject
	ValueArray
)

func (k ValueKind) String() string {
	switch k {
	case ValueString:
		return "string"
	case ValueNumber:
		return "number"
	case ValueBool:
		return "boolean"
	case ValueNull:
		return "null"
	case ValueObject:
		return "object"
	case ValueArray:
		return "array"
	}
	return "invalid"
}

// Value is one JSON value found by a JSON Pointer, as policy conditions
// compare it.
type Value struct {
	Kind ValueKind
	// Text is the decoded text of a string; a number, true, false or null
	// as written; the raw JSON of an object or array.
	Text string
	Raw  jsontext.Value // the value's exact bytes
}

// Arg resolves an RFC 6901 JSON Pointer ("/command", "/opts/0/path", "" for
// the whole object) in the call's arguments. See Lookup.
func (m *Message) Arg(pointer string) (Value, bool) {
	return Lookup(m.Args, pointer)
}

// Lookup resolves an RFC 6901 JSON Pointer in v. An object member is the
// one with exactly the token's name, or failing that the one whose name
// equals it but for case: a Go server decoding arguments into a struct
// with encoding/json reads {"Command": …} as its command field, so policy
// must too (Parse has refused objects where two names compete for it).
func Lookup(v jsontext.Value, pointer string) (Value, bool) {
	if pointer != "" && pointer[0] != '/' {
		return Value{}, false
	}
	cur := jsontext.Value(bytes.TrimSpace(v))
	for rest := pointer; rest != ""; {
		rest = rest[1:]
		tok := rest
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			tok, rest = rest[:i], rest[i:]
		} else {
			rest = ""
		}
		tok, ok := unescapePointer(tok)
		if !ok {
			return Value{}, false
		}
		if cur, ok = child(cur, tok); !ok {
			return Value{}, false
		}
	}
	return toValue(cur)
}

func unescapePointer(tok string) (string, bool) {
	if strings.IndexByte(tok, '~') < 0 {
		return tok, true
	}
	var b strings.Builder
	for i := 0; i < len(tok); i++ {
		if tok[i] != '~' {
			b.WriteByte(tok[i])
			continue
		}
		if i+1 == len(tok) || (tok[i+1] != '0' && tok[i+1] != '1') {
			return "", false
		}
		b.WriteByte("~/"[tok[i+1]-'0'])
		i++
	}
	return b.String(), true
}

// child finds the member tok of an object, or the element tok of an array.
func child(v jsontext.Value, tok string) (jsontext.Value, bool) {
	d := jsontext.NewDecoder(bytes.NewBuffer(v))
	// next reads one value and returns its bytes within v.
	next := func() (jsontext.Value, bool) {
		off := int(d.InputOffset())
		if d.SkipValue() != nil {
			return nil, false
		}
		end := int(d.InputOffset())
		for off < end && bytes.IndexByte([]byte(" \t\r\n,:"), v[off]) >= 0 {
			off++
		}
		return v[off:end], true
	}
	switch v.Kind() {
	case '{':
		if _, err := d.ReadToken(); err != nil {
			return nil, false
		}
		var folded jsontext.Value
		for d.PeekKind() == '"' {
			name, err := d.ReadToken()
			if err != nil {
				return nil, false
			}
			n := name.String()
			val, ok := next()
			if !ok {
				return nil, false
			}
			if n == tok {
				return val, true
			}
			if folded == nil && strings.EqualFold(n, tok) {
				folded = val
			}
		}
		return folded, folded != nil
	case '[':
		i, err := strconv.Atoi(tok)
		if err != nil || i < 0 || (len(tok) > 1 && tok[0] == '0') || tok[0] == '+' {
			return nil, false
		}
		if _, err := d.ReadToken(); err != nil {
			return nil, false
		}
		for ; d.PeekKind() != ']' && d.PeekKind() != 0; i-- {
			val, ok := next()
			if !ok {
				return nil, false
			}
			if i == 0 {
				return val, true
			}
		}
	}
	return nil, false
}

// topMembers finds several members of object v in one pass, each by the
// rule of child (the exact name, else the first equal to it but for
// case); a member not there is nil.
func topMembers(v jsontext.Value, names ...string) []jsontext.Value {
	out := make([]jsontext.Value, len(names))
	exact := make([]bool, len(names))
	v = bytes.TrimSpace(v)
	if v.Kind() != '{' {
		return out
	}
	d := jsontext.NewDecoder(bytes.NewReader(v))
	if _, err := d.ReadToken(); err != nil {
		return out
	}
	for d.PeekKind() == '"' {
		name, err := d.ReadToken()
		if err != nil {
			return make([]jsontext.Value, len(names))
		}
		n := name.String()
		off := int(d.InputOffset())
		if d.SkipValue() != nil {
			return make([]jsontext.Value, len(names))
		}
		end := int(d.InputOffset())
		for off < end && bytes.IndexByte([]byte(" \t\r\n,:"), v[off]) >= 0 {
			off++
		}
		for i, want := range names {
			switch {
			case exact[i]:
			case n == want:
				out[i], exact[i] = v[off:end], true
			case out[i] == nil && strings.EqualFold(n, want):
				out[i] = v[off:end]
			}
		}
	}
	return out
}

func toValue(v jsontext.Value) (Value, bool) {
	out := Value{Raw: v, Text: string(v)}
	switch v.Kind() {
	case '"':
		s, err := jsontext.AppendUnquote(nil, v)
		if err != nil {
			return Value{}, false
		}
		out.Kind, out.Text = ValueString, string(s)
	case '0':
		out.Kind = ValueNumber
	case 't', 'f':
		out.Kind = ValueBool
	case 'n':
		out.Kind = ValueNull
	case '{':
		out.Kind = ValueObject
	case '[':
		out.Kind = ValueArray
	default:
		return Value{}, false
	}
	return out, true
}

// foldName folds a name the way encoding/json matches names to struct
// fields: foldName(x) == foldName(y) exactly when bytes.EqualFold(x, y).
func foldName(in []byte) []byte {
	out := make([]byte, 0, len(in))
	for i := 0; i < len(in); {
		if c := in[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(in[i:])
		out = utf8.AppendRune(out, foldRune(r))
		i += n
	}
	return out
}

// foldRune returns the smallest rune of r's case-folding orbit.
func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}

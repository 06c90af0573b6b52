package mcp

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/agentg/agentg/dissect/mcp/wire"
	store "github.com/agentg/agentg/state"
)

// 2026-07-28's Mcp-Param-{Name} headers. A server may mark parameters of
// a tool's inputSchema with "x-mcp-header": NAME; a client then mirrors the
// value of each such parameter a call carries into an Mcp-Param-NAME
// header, so that intermediaries can route on it without reading the body.
// A header that disagrees with the body is exactly what lets one component
// act on one value while the server executes another, so the guard checks
// every declared parameter's header against the body (streamable-http,
// "Server Behavior for Custom Headers"): a value the body carries must be
// mirrored (from 2026-07-28 on) and must agree after decoding, and a
// parameter the body does not carry (or carries as null) must have no
// header. Mcp-Param headers no declaration names are forwarded untouched.
// The declarations come from the tools/list answers the guard rewrites;
// for a tool never listed through it there is nothing to check against,
// and the body alone (what the server executes) is decided.

const paramPrefix = "mcp-param-" // compared without regard to case

// ToolParams reads the x-mcp-header declarations of a tool definition (a
// tools/list entry, as Parse checked it). A declaration that breaks the
// specification's constraints makes the whole tool's declarations invalid
// (Invalid says why): x-mcp-header anywhere but on a property reached from
// the schema root through "properties" alone, not a non-empty token, a
// duplicate (without regard to case) within the schema, or on a property
// whose type is not "string", "integer" or "boolean".
func ToolParams(tool jsontext.Value) store.ToolParams {
	schema, ok := wire.Lookup(tool, "/inputSchema")
	if !ok {
		return store.ToolParams{}
	}
	w := declWalk{seen: map[string]string{}}
	if err := w.schema(schema.Raw, "", "/inputSchema", true); err != nil {
		return store.ToolParams{Invalid: err.Error()}
	}
	return store.ToolParams{Headers: w.out}
}

type declWalk struct {
	out  []store.ParamHeader
	seen map[string]string // lower-case name → the pointer declaring it
}

// Keywords whose value is a subschema, an array of them, or a map of
// them: an x-mcp-header inside any of them is not statically reachable.
var (
	subschemaKeywords = []string{"items", "additionalItems", "additionalProperties", "unevaluatedItems",
		"unevaluatedProperties", "contains", "propertyNames", "not", "if", "then", "else",
		"prefixItems", "allOf", "anyOf", "oneOf"}
	schemaMapKeywords = []string{"patternProperties", "dependentSchemas", "dependencies", "$defs", "definitions"}
)

// schema walks one (sub)schema: pointer is where its instance sits in the
// arguments (meaningful only while reachable), at where it sits in the
// tool definition, for reasons.
func (w *declWalk) schema(v jsontext.Value, pointer, at string, reachable bool) error {
	ms, ok := objectMembers(v)
	if !ok {
		return nil // true, false, or not a schema at all: nothing declared
	}
	var typ, hdr jsontext.Value
	for _, m := range ms {
		switch {
		case m.name == "x-mcp-header":
			hdr = m.val
		case m.name == "type":
			typ = m.val
		case m.name == "properties":
			ps, _ := objectMembers(m.val)
			for _, p := range ps {
				if err := w.schema(p.val, pointer+"/"+escapePointer(p.name), at+"/properties/"+escapePointer(p.name), reachable); err != nil {
					return err
				}
			}
		case slices.Contains(subschemaKeywords, m.name):
			subs := []jsontext.Value{m.val}
			if m.val.Kind() == '[' {
				subs = arrayElems(m.val)
			}
			for i, s := range subs {
				where := at + "/" + escapePointer(m.name)
				if m.val.Kind() == '[' {
					where += "/" + strconv.Itoa(i)
				}
				if err := w.schema(s, "", where, false); err != nil {
					return err
				}
			}
		case slices.Contains(schemaMapKeywords, m.name):
			ps, _ := objectMembers(m.val)
			for _, p := range ps {
				if err := w.schema(p.val, "", at+"/"+escapePointer(m.name)+"/"+escapePointer(p.name), false); err != nil {
					return err
				}
			}
		}
	}
	if hdr == nil {
		return nil
	}
	if !reachable || pointer == "" {
		return fmt.Errorf("x-mcp-header at %s is not on a property reached from the schema root through properties alone", at)
	}
	name, ok := jsonString(hdr)
	if !ok || name == "" || !wire.IsToken(name) {
		return fmt.Errorf("x-mcp-header at %s is not a non-empty HTTP token: %.60s", at, hdr)
	}
	if t, _ := jsonString(typ); t != "string" && t != "integer" && t != "boolean" {
		return fmt.Errorf("x-mcp-header %q at %s is on a property of type %.40s, not string, integer or boolean", name, at, typ)
	}
	low := strings.ToLower(name)
	if prev, dup := w.seen[low]; dup {
		return fmt.Errorf("x-mcp-header %q at %s repeats the one of %s", name, at, prev)
	}
	w.seen[low] = at
	w.out = append(w.out, store.ParamHeader{Name: name, Pointer: pointer})
	return nil
}

// paramMismatch checks the request's Mcp-Param headers against its body
// for every parameter the called tool declares; "" when they agree.
// From 2026-07-28 on a value the body carries must be mirrored, and a
// call to a tool whose declarations are invalid (one a conforming client
// drops from its list) cannot be checked, so it is refused.
func (ex *exchange) paramMismatch(h http.Header, body wire.Body) string {
	got := paramHeaderValues(h)
	required := ex.revision >= "2026-07-28"
	if len(got) == 0 && !required {
		return ""
	}
	if len(body.Messages) != 1 {
		// Which element would a header mirror? None can be said to.
		for _, m := range body.Messages {
			if tp, ok := ex.toolParams(m); ok {
				for _, d := range tp.Headers {
					if _, has := got[strings.ToLower(d.Name)]; has {
						return "Mcp-Param-" + d.Name + " header on a body of more than one message"
					}
				}
			}
		}
		return ""
	}
	m := body.Messages[0]
	tp, ok := ex.toolParams(m)
	if !ok {
		return ""
	}
	if tp.Invalid != "" {
		if required {
			return "tool " + m.Tool + " has an invalid x-mcp-header declaration, so its Mcp-Param headers cannot be checked: " + tp.Invalid
		}
		return ""
	}
	for _, d := range tp.Headers {
		if why := paramAgrees(d, got[strings.ToLower(d.Name)], m, required); why != "" {
			return why
		}
	}
	return ""
}

// toolParams are the declarations of the tool m calls, if m is a
// tools/call request of a tool listed with some.
func (ex *exchange) toolParams(m *wire.Message) (store.ToolParams, bool) {
	if m.Kind != wire.KindRequest || m.Method != "tools/call" {
		return store.ToolParams{}, false
	}
	return ex.g.State.ToolParams(ex.server(), m.Tool)
}

// paramAgrees checks one declared parameter: vals are the values of its
// header (every spelling of the name), m the call.
func paramAgrees(d store.ParamHeader, vals []string, m *wire.Message, required bool) string {
	header := "Mcp-Param-" + d.Name
	v, present := m.Arg(d.Pointer)
	if !present || v.Kind == wire.ValueNull {
		if len(vals) > 0 {
			return header + " header for parameter " + d.Pointer + ", which the body does not carry"
		}
		return ""
	}
	switch {
	case len(vals) == 0 && required:
		return "no " + header + " header for parameter " + d.Pointer + ", which the body carries"
	case len(vals) == 0:
		return ""
	case len(vals) > 1:
		return "more than one " + header + " header"
	}
	text, err := headerText(vals[0])
	if err != nil {
		return header + " header: " + err.Error()
	}
	same := false
	switch v.Kind {
	case wire.ValueString, wire.ValueBool:
		same = text == v.Text
	case wire.ValueNumber:
		a, okA := canonInt(text)
		b, okB := canonInt(v.Text)
		same = okA && okB && a == b
	default:
		return header + " header for parameter " + d.Pointer + ", whose value in the body is a " + v.Kind.String() + ", not a string, integer or boolean"
	}
	if !same {
		return header + " header " + strconv.Quote(vals[0]) + " does not match the body's " + d.Pointer + " " + strconv.Quote(v.Text)
	}
	return ""
}

// paramHeaderValues are the request's Mcp-Param headers by lower-case
// name part, every spelling of a name together.
func paramHeaderValues(h http.Header) map[string][]string {
	var out map[string][]string
	for k, vs := range h {
		if len(k) <= len(paramPrefix) || !strings.EqualFold(k[:len(paramPrefix)], paramPrefix) {
			continue
		}
		if out == nil {
			out = map[string][]string{}
		}
		n := strings.ToLower(k[len(paramPrefix):])
		out[n] = append(out[n], vs...)
	}
	return out
}

// headerText decodes an Mcp-Name or Mcp-Param value: the "=?base64?…?="
// sentinel form (strict base64 of UTF-8 text), or plain visible ASCII,
// space and tab (what net/http leaves after trimming the edges).
func headerText(v string) (string, error) {
	if inner, ok := strings.CutPrefix(v, "=?base64?"); ok {
		if inner, ok := strings.CutSuffix(inner, "?="); ok {
			b, err := base64.StdEncoding.Strict().DecodeString(inner)
			if err != nil {
				return "", fmt.Errorf("%q is not valid base64", v)
			}
			if !utf8.Valid(b) {
				return "", fmt.Errorf("%q does not decode to UTF-8 text", v)
			}
			return string(b), nil
		}
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 || c > 0x7e) && c != '\t' {
			return "", fmt.Errorf("%q has a character that must be sent base64-encoded", v)
		}
	}
	return v, nil
}

// canonInt is a JSON number that is an integer (1, -7, 42.0, 4.2e1) in
// the range a client may mirror (±(2^53-1)), in its plain decimal form;
// false for anything else. It works on the digits, so no value is rounded
// and no exponent is expanded beyond what the range allows.
func canonInt(s string) (string, bool) {
	v := jsontext.Value(s)
	if len(s) == 0 || len(s) > 64 || v.Kind() != '0' || !v.IsValid() || s[len(s)-1] == ' ' || s[0] == ' ' {
		return "", false
	}
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	mant, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant = s[:i]
		e, err := strconv.Atoi(strings.TrimPrefix(s[i+1:], "+"))
		if err != nil || e > 64 || e < -64 {
			return "", false
		}
		exp = e
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := intPart + frac
	exp -= len(frac)
	for exp < 0 {
		if !strings.HasSuffix(digits, "0") {
			if strings.Trim(digits, "0") == "" {
				break
			}
			return "", false // a fraction
		}
		digits, exp = digits[:len(digits)-1], exp+1
	}
	digits = strings.TrimLeft(digits, "0")
	if digits == "" {
		return "0", true
	}
	if len(digits)+exp > 16 {
		return "", false
	}
	digits += strings.Repeat("0", exp)
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || n > 1<<53-1 {
		return "", false
	}
	if neg {
		return "-" + digits, true
	}
	return digits, true
}

type schemaMember struct {
	name string
	val  jsontext.Value
}

// objectMembers lists an object's members in order; false when v is not
// an object.
func objectMembers(v jsontext.Value) ([]schemaMember, bool) {
	v = bytes.TrimSpace(v)
	if v.Kind() != '{' {
		return nil, false
	}
	d := jsontext.NewDecoder(bytes.NewReader(v))
	if _, err := d.ReadToken(); err != nil {
		return nil, false
	}
	var out []schemaMember
	for d.PeekKind() == '"' {
		tok, err := d.ReadToken()
		if err != nil {
			return out, false
		}
		name := tok.String() // before ReadValue voids the token
		val, err := d.ReadValue()
		if err != nil {
			return out, false
		}
		out = append(out, schemaMember{name: name, val: val.Clone()})
	}
	return out, true
}

func arrayElems(v jsontext.Value) []jsontext.Value {
	d := jsontext.NewDecoder(bytes.NewReader(v))
	if tok, err := d.ReadToken(); err != nil || tok.Kind() != '[' {
		return nil
	}
	var out []jsontext.Value
	for d.PeekKind() != ']' && d.PeekKind() != 0 {
		val, err := d.ReadValue()
		if err != nil {
			return out
		}
		out = append(out, val.Clone())
	}
	return out
}

func jsonString(v jsontext.Value) (string, bool) {
	v = bytes.TrimSpace(v)
	if v.Kind() != '"' {
		return "", false
	}
	b, err := jsontext.AppendUnquote(nil, v)
	return string(b), err == nil
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

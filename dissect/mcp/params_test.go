package mcp

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/agentg/agentg/dissect/mcp/wire"
	store "github.com/agentg/agentg/state"
)

func TestToolParams(t *testing.T) {
	cases := []struct {
		name    string
		tool    string
		want    []store.ParamHeader
		invalid bool
	}{
		{"spec example", `{"name":"execute_sql","inputSchema":{"type":"object","properties":{
			"region":{"type":"string","x-mcp-header":"Region"},"query":{"type":"string"}},"required":["region","query"]}}`,
			[]store.ParamHeader{{Name: "Region", Pointer: "/region"}}, false},
		{"nested and escaped", `{"name":"t","inputSchema":{"type":"object","properties":{
			"a/b":{"type":"object","properties":{"n~":{"type":"integer","x-mcp-header":"N"}}},
			"flag":{"type":"boolean","x-mcp-header":"Flag"}}}}`,
			[]store.ParamHeader{{Name: "N", Pointer: "/a~1b/n~0"}, {Name: "Flag", Pointer: "/flag"}}, false},
		{"no schema", `{"name":"t"}`, nil, false},
		{"no declarations", `{"name":"t","inputSchema":{"type":"object","properties":{"a":{"type":"string"}}}}`, nil, false},
		{"a property named x-mcp-header", `{"name":"t","inputSchema":{"type":"object","properties":{"x-mcp-header":{"type":"string"}}}}`, nil, false},
		{"under items", `{"name":"t","inputSchema":{"type":"object","properties":{"l":{"type":"array","items":{"type":"string","x-mcp-header":"L"}}}}}`, nil, true},
		{"under anyOf", `{"name":"t","inputSchema":{"type":"object","anyOf":[{"properties":{"a":{"type":"string","x-mcp-header":"A"}}}]}}`, nil, true},
		{"under $defs", `{"name":"t","inputSchema":{"type":"object","$defs":{"d":{"type":"string","x-mcp-header":"D"}},"properties":{"a":{"$ref":"#/$defs/d"}}}}`, nil, true},
		{"on the root", `{"name":"t","inputSchema":{"type":"object","x-mcp-header":"Root"}}`, nil, true},
		{"type number", `{"name":"t","inputSchema":{"type":"object","properties":{"a":{"type":"number","x-mcp-header":"A"}}}}`, nil, true},
		{"type list", `{"name":"t","inputSchema":{"type":"object","properties":{"a":{"type":["string","null"],"x-mcp-header":"A"}}}}`, nil, true},
		{"no type", `{"name":"t","inputSchema":{"type":"object","properties":{"a":{"x-mcp-header":"A"}}}}`, nil, true},
		{"empty name", `{"name":"t","inputSchema":{"type":"object","properties":{"a":{"type":"string","x-mcp-header":""}}}}`, nil, true},
		{"not a token", `{"name":"t","inputSchema":{"type":"object","properties":{"a":{"type":"string","x-mcp-header":"A B"}}}}`, nil, true},
		{"CRLF", `{"name":"t","inputSchema":{"type":"object","properties":{"a":{"type":"string","x-mcp-header":"A\r\nX-Injected: 1"}}}}`, nil, true},
		{"not a string", `{"name":"t","inputSchema":{"type":"object","properties":{"a":{"type":"string","x-mcp-header":7}}}}`, nil, true},
		{"duplicate regardless of case", `{"name":"t","inputSchema":{"type":"object","properties":{
			"a":{"type":"string","x-mcp-header":"Region"},"b":{"type":"string","x-mcp-header":"REGION"}}}}`, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ToolParams(jsontext.Value(c.tool))
			if (got.Invalid != "") != c.invalid {
				t.Fatalf("Invalid = %q, want invalid %v", got.Invalid, c.invalid)
			}
			if !c.invalid && !reflect.DeepEqual(got.Headers, c.want) {
				t.Errorf("Headers = %+v, want %+v", got.Headers, c.want)
			}
		})
	}
}

func TestHeaderText(t *testing.T) {
	cases := []struct {
		in, want string
		ok       bool
	}{
		{"us-west1", "us-west1", true},
		{"=?base64?SGVsbG8sIOS4lueVjA==?=", "Hello, 世界", true},
		{"=?base64?IHBhZGRlZCA=?=", " padded ", true},
		{"=?base64?bGluZTEKbGluZTI=?=", "line1\nline2", true},
		{"=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=", "=?base64?literal?=", true},
		{"=?base64?unterminated", "=?base64?unterminated", true}, // not the sentinel form: plain
		{"=?base64?not base64!?=", "", false},
		{"=?base64?SGVsbG9=?=", "", false}, // non-canonical padding bits: Strict
		{"=?base64?/w==?=", "", false},     // decodes to invalid UTF-8
		{"Hello, \xe4\xb8\x96", "", false}, // non-ASCII sent plain
		{"a\x00b", "", false},
		{"tab\tok", "tab\tok", true},
	}
	for _, c := range cases {
		got, err := headerText(c.in)
		if (err == nil) != c.ok || c.ok && got != c.want {
			t.Errorf("headerText(%q) = %q, %v; want %q, ok %v", c.in, got, err, c.want, c.ok)
		}
	}
}

func TestCanonInt(t *testing.T) {
	cases := []struct {
		in, want string
		ok       bool
	}{
		{"42", "42", true}, {"-7", "-7", true}, {"0", "0", true}, {"-0", "0", true},
		{"42.0", "42", true}, {"4.2e1", "42", true}, {"420e-1", "42", true}, {"0.0", "0", true},
		{"9007199254740991", "9007199254740991", true}, {"-9007199254740991", "-9007199254740991", true},
		{"9007199254740992", "", false}, {"1e16", "", false}, {"1e999999999", "", false},
		{"42.5", "", false}, {"0x2a", "", false}, {"+42", "", false}, {"042", "", false},
		{"Inf", "", false}, {"NaN", "", false}, {"", "", false}, {" 42", "", false}, {"4_2", "", false},
	}
	for _, c := range cases {
		got, ok := canonInt(c.in)
		if ok != c.ok || got != c.want {
			t.Errorf("canonInt(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// TestParamMismatch decides one call to a tool declaring Region (string),
// Count (integer) and Dry (boolean) under each header set.
func TestParamMismatch(t *testing.T) {
	st, err := store.NewMemory(store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.SetToolParams("srv", "sql", ToolParams(jsontext.Value(`{"name":"sql","inputSchema":{"type":"object","properties":{
		"region":{"type":"string","x-mcp-header":"Region"},
		"opts":{"type":"object","properties":{"count":{"type":"integer","x-mcp-header":"Count"}}},
		"dry":{"type":"boolean","x-mcp-header":"Dry"}}}}`)))
	st.SetToolParams("srv", "bad", store.ToolParams{Invalid: "x-mcp-header under items"})
	call := func(args string) []byte {
		return []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"sql","arguments":` + args + `}}`)
	}
	full := `{"region":"us-west1","opts":{"count":42},"dry":false}`
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			h[kv[i]] = append(h[kv[i]], kv[i+1])
		}
		return h
	}
	agree := hdr("Mcp-Param-Region", "us-west1", "Mcp-Param-Count", "42", "Mcp-Param-Dry", "false")
	cases := []struct {
		name     string
		rev      string
		body     []byte
		h        http.Header
		mismatch bool
	}{
		{"agree", "2026-07-28", call(full), agree, false},
		{"agree, names in other cases, integer as 42.0, unknown param", "2026-07-28", call(full),
			hdr("mcp-param-region", "us-west1", "MCP-PARAM-COUNT", "42.0", "Mcp-Param-Dry", "false", "Mcp-Param-Other", "x"), false},
		{"agree base64", "2026-07-28", call(`{"region":"Hello, 世界","opts":{"count":-7},"dry":true}`),
			hdr("Mcp-Param-Region", "=?base64?SGVsbG8sIOS4lueVjA==?=", "Mcp-Param-Count", "-7", "Mcp-Param-Dry", "true"), false},
		{"absent parameters, no headers", "2026-07-28", call(`{}`), hdr(), false},
		{"null parameter, no header", "2026-07-28", call(`{"region":null}`), hdr(), false},
		{"region differs", "2026-07-28", call(full), hdr("Mcp-Param-Region", "eu-west1", "Mcp-Param-Count", "42", "Mcp-Param-Dry", "false"), true},
		{"count differs", "2026-07-28", call(full), hdr("Mcp-Param-Region", "us-west1", "Mcp-Param-Count", "43", "Mcp-Param-Dry", "false"), true},
		{"count hex", "2026-07-28", call(full), hdr("Mcp-Param-Region", "us-west1", "Mcp-Param-Count", "0x2a", "Mcp-Param-Dry", "false"), true},
		{"dry differs in case", "2026-07-28", call(full), hdr("Mcp-Param-Region", "us-west1", "Mcp-Param-Count", "42", "Mcp-Param-Dry", "False"), true},
		{"region missing", "2026-07-28", call(full), hdr("Mcp-Param-Count", "42", "Mcp-Param-Dry", "false"), true},
		{"region missing before 2026-07-28", "2025-11-25", call(full), hdr("Mcp-Param-Count", "42", "Mcp-Param-Dry", "false"), false},
		{"region differs before 2026-07-28", "2025-11-25", call(full), hdr("Mcp-Param-Region", "eu-west1"), true},
		{"header for an absent parameter", "2026-07-28", call(`{}`), hdr("Mcp-Param-Region", "us-west1"), true},
		{"header for a null parameter", "2026-07-28", call(`{"region":null}`), hdr("Mcp-Param-Region", "null"), true},
		{"two values", "2026-07-28", call(full), hdr("Mcp-Param-Region", "us-west1", "Mcp-Param-Region", "eu-west1", "Mcp-Param-Count", "42", "Mcp-Param-Dry", "false"), true},
		{"two spellings", "2026-07-28", call(full), hdr("Mcp-Param-Region", "us-west1", "mcp-param-region", "us-west1", "Mcp-Param-Count", "42", "Mcp-Param-Dry", "false"), true},
		{"base64 of another value", "2026-07-28", call(full), hdr("Mcp-Param-Region", "=?base64?ZXUtd2VzdDE=?=", "Mcp-Param-Count", "42", "Mcp-Param-Dry", "false"), true},
		{"non-ASCII sent plain", "2026-07-28", call(`{"region":"ü"}`), hdr("Mcp-Param-Region", "\xc3\xbc"), true},
		{"object where a string is declared", "2026-07-28", call(`{"region":{"a":1}}`), hdr("Mcp-Param-Region", `{"a":1}`), true},
		{"object where a string is declared, no header", "2026-07-28", call(`{"region":{"a":1}}`), hdr(), true},
		{"invalid declarations", "2026-07-28", []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"bad","arguments":{}}}`), hdr(), true},
		{"invalid declarations before 2026-07-28", "2025-11-25", []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"bad","arguments":{}}}`), hdr(), false},
		{"a tool never listed", "2026-07-28", []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"other","arguments":{"region":"x"}}}`), hdr("Mcp-Param-Region", "y"), false},
		{"batch carrying a declared header", "2025-03-26", []byte(`[` + string(call(full)) + `,` + string(call(full)) + `]`), hdr("Mcp-Param-Region", "us-west1"), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body, err := wire.Parse(c.body, wire.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			ex := &exchange{g: &Guard{State: st}, x: &Exchange{Server: "srv"}, revision: c.rev}
			why := ex.paramMismatch(c.h, body)
			if (why != "") != c.mismatch {
				t.Errorf("paramMismatch = %q, want mismatch %v", why, c.mismatch)
			}
		})
	}
}

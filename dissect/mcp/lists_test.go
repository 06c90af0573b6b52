package mcp

import (
	"testing"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/agentg/agentg/dissect/mcp/wire"
)

func TestParseNamedList(t *testing.T) {
	cases := []struct {
		kind wire.ListKind
		in   string
		keys []string // nil: refused
	}{
		{wire.ListPrompts, `{"prompts":[{"name":"a"},{"name":"b","arguments":[]}],"nextCursor":"c"}`, []string{"a", "b"}},
		{wire.ListResources, `{"resources":[{"uri":"file:///a?x=1\u0026y=2","name":"a"}]}`, []string{"file:///a?x=1&y=2"}},
		{wire.ListTemplates, `{"resourceTemplates":[{"uriTemplate":"file:///{p}","name":"t"}]}`, []string{"file:///{p}"}},
		{wire.ListPrompts, `{"prompts":[]}`, []string{}},
		{wire.ListPrompts, `{"prompts":[{"Name":"a"}]}`, nil},                   // a case variant of name
		{wire.ListPrompts, `{"prompts":[{"title":"no name"}]}`, nil},            // no key
		{wire.ListPrompts, `{"prompts":[{"name":"\u0061dmin"}]}`, nil},          // an escape in a name
		{wire.ListResources, `{"resources":[{"uri":"file:///\u0065tc"}]}`, nil}, // a \u escape in a URI
		{wire.ListResources, `{"resources":[{"uri":7}]}`, nil},
		{wire.ListResources, `{"Resources":[]}`, nil},
		{wire.ListTemplates, `{"resourceTemplates":{}}`, nil},
		{wire.ListPrompts, `{"nextCursor":"x"}`, nil},
	}
	for _, c := range cases {
		nl, err := wire.ParseNamedList(jsontext.Value(c.in), c.kind)
		if c.keys == nil {
			if err == nil {
				t.Errorf("ParseNamedList(%s) = %q, want refused", c.in, nl.Keys)
			}
			continue
		}
		if err != nil || len(nl.Keys) != len(c.keys) {
			t.Errorf("ParseNamedList(%s) = %q, %v; want %q", c.in, nl.Keys, err, c.keys)
			continue
		}
		for i := range c.keys {
			if nl.Keys[i] != c.keys[i] {
				t.Errorf("ParseNamedList(%s) = %q, want %q", c.in, nl.Keys, c.keys)
			}
		}
	}
	nl, err := wire.ParseNamedList(jsontext.Value(`{"prompts":[{"name":"a"}, {"name":"b"},{"name":"c"}],"nextCursor":"n"}`), wire.ListPrompts)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(nl.Filter(func(k string) bool { return k != "b" })); got != `{"prompts":[{"name":"a"},{"name":"c"}],"nextCursor":"n"}` {
		t.Errorf("Filter = %s", got)
	}
}

// FuzzLists feeds server-controlled list results and tool definitions to
// the readers the guard filters and learns from: none may panic, a list
// that is read filters to valid JSON, and a header value decodes the same
// however often it is checked.
func FuzzLists(f *testing.F) {
	f.Add([]byte(`{"prompts":[{"name":"a"},{"name":"b"}],"nextCursor":"c"}`), "us-west1")
	f.Add([]byte(`{"resources":[{"uri":"file:///a"}]}`), "=?base64?SGVsbG8=?=")
	f.Add([]byte(`{"resourceTemplates":[{"uriTemplate":"file:///{p}"}]}`), "4.2e1")
	f.Add([]byte(`{"name":"t","inputSchema":{"type":"object","properties":{"a":{"type":"string","x-mcp-header":"A"},"l":{"items":{"x-mcp-header":"B"}}}}}`), "-0")
	f.Fuzz(func(t *testing.T, b []byte, header string) {
		for _, k := range []wire.ListKind{wire.ListPrompts, wire.ListResources, wire.ListTemplates} {
			nl, err := wire.ParseNamedList(jsontext.Value(b), k)
			if err != nil {
				continue
			}
			if out := nl.Filter(func(string) bool { return false }); !jsontext.Value(out).IsValid() {
				t.Fatalf("Filter(none) of %q is not JSON: %q", b, out)
			}
			if out := nl.Filter(func(string) bool { return true }); string(out) != string(b) {
				t.Fatalf("Filter(all) changed %q into %q", b, out)
			}
		}
		ToolParams(jsontext.Value(b)) // the guard gives it only checked definitions; it must survive any
		a, errA := headerText(header)
		c, errC := headerText(header)
		if a != c || (errA == nil) != (errC == nil) {
			t.Fatal("headerText is not deterministic")
		}
		if n, ok := canonInt(header); ok {
			if again, ok2 := canonInt(n); !ok2 || again != n {
				t.Fatalf("canonInt(%q) = %q, which canonicalises to %q, %v", header, n, again, ok2)
			}
		}
	})
}

package mcp

import (
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

func TestParseNamedList(t *testing.T) {
	cases := []struct {
		kind ListKind
		in   string
		keys []string // nil: refused
	}{
		{ListPrompts, `{"prompts":[{"name":"a"},{"name":"b","arguments":[]}],"nextCursor":"c"}`, []string{"a", "b"}},
		{ListResources, `{"resources":[{"uri":"file:///a?x=1\u0026y=2","name":"a"}]}`, []string{"file:///a?x=1&y=2"}},
		{ListTemplates, `{"resourceTemplates":[{"uriTemplate":"file:///{p}","name":"t"}]}`, []string{"file:///{p}"}},
		{ListPrompts, `{"prompts":[]}`, []string{}},
		{ListPrompts, `{"prompts":[{"Name":"a"}]}`, nil},                   // a case variant of name
		{ListPrompts, `{"prompts":[{"title":"no name"}]}`, nil},            // no key
		{ListPrompts, `{"prompts":[{"name":"\u0061dmin"}]}`, nil},          // an escape in a name
		{ListResources, `{"resources":[{"uri":"file:///\u0065tc"}]}`, nil}, // a \u escape in a URI
		{ListResources, `{"resources":[{"uri":7}]}`, nil},
		{ListResources, `{"Resources":[]}`, nil},
		{ListTemplates, `{"resourceTemplates":{}}`, nil},
		{ListPrompts, `{"nextCursor":"x"}`, nil},
	}
	for _, c := range cases {
		nl, err := ParseNamedList(jsontext.Value(c.in), c.kind)
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
	nl, err := ParseNamedList(jsontext.Value(`{"prompts":[{"name":"a"}, {"name":"b"},{"name":"c"}],"nextCursor":"n"}`), ListPrompts)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(nl.Filter(func(k string) bool { return k != "b" })); got != `{"prompts":[{"name":"a"},{"name":"c"}],"nextCursor":"n"}` {
		t.Errorf("Filter = %s", got)
	}
}

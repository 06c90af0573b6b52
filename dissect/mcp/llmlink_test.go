package mcp

import (
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// The arguments a model wrote and those the agent's MCP client sends are
// the same call whatever their member order, whitespace, escapes or
// number spelling; anything else is another call.
func TestCanonicalArgs(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		same bool
	}{
		{`{"city":"Oslo","n":1}`, `{ "n" : 1.0 , "city" : "Oslo" }`, true},
		{`{"a":{"y":2,"x":[1,"\u00e9"]}}`, `{"a":{"x":[1e0,"é"],"y":2}}`, true},
		{``, `{}`, true},
		{`null`, `{}`, true},
		{`{"city":"Oslo"}`, `{"city":"oslo"}`, false},
		{`{"a":[1,2]}`, `{"a":[2,1]}`, false},
		{`{"a":1}`, `{"a":"1"}`, false},
		{`{"a":1}`, `{"a":1,"b":null}`, false},
	} {
		a, okA := canonicalArgs(jsontext.Value(tt.a))
		b, okB := canonicalArgs(jsontext.Value(tt.b))
		if !okA || !okB || (a == b) != tt.same {
			t.Errorf("%s vs %s: %q %q (%v %v), want same=%v", tt.a, tt.b, a, b, okA, okB, tt.same)
		}
	}
	if _, ok := canonicalArgs(jsontext.Value(`{"a":`)); ok {
		t.Error("broken JSON has a canonical form")
	}
}

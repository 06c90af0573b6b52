package gateway

import (
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

func TestParseStdioMsg(t *testing.T) {
	tests := []struct {
		name, line string
		kind       string // "request", "notification", "answer"; "" for refused
		err        string
	}{
		{"request", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x"}}`, "request", ""},
		{"string id", `{"jsonrpc":"2.0","id":"a","method":"ping"}`, "request", ""},
		{"notification", `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t"}}`, "notification", ""},
		{"answer", `{"jsonrpc":"2.0","id":1,"result":{}}`, "answer", ""},
		{"error answer", `{"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"m"}}`, "answer", ""},
		{"batch", `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, "", "batch"},
		{"duplicate id", `{"jsonrpc":"2.0","id":1,"id":2,"result":{}}`, "", "duplicate"},
		{"duplicate inside params", `{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":1,"a":2}}`, "", "duplicate"},
		{"invalid utf-8", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\"}", "", "UTF-8"},
		{"object id", `{"jsonrpc":"2.0","id":{},"method":"m"}`, "", "string or a number"},
		{"no version", `{"id":1,"method":"m"}`, "", "2.0"},
		{"nothing", `{"jsonrpc":"2.0"}`, "", "neither"},
		{"scalar params", `{"jsonrpc":"2.0","id":1,"method":"m","params":3}`, "", "params"},
		{"null id notification", `{"jsonrpc":"2.0","id":null,"method":"m"}`, "notification", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parseStdioMsg([]byte(tt.line))
			if tt.kind == "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("parse: %v, want an error with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[bool]string{m.isRequest(): "request", m.isNotification(): "notification", m.isAnswer(): "answer"}[true]
			if got != tt.kind {
				t.Fatalf("read as %s, want %s", got, tt.kind)
			}
		})
	}
}

// The multiplexer's rewrites: an id, a progress token in _meta, a
// subscription id; the rest of the message is kept.
func TestStdioMsgRewrite(t *testing.T) {
	m, err := parseStdioMsg([]byte(`{"jsonrpc":"2.0","id":"c-1","method":"tools/call","params":{"name":"echo","arguments":{"text":"x"},"_meta":{"progressToken":5,"other":true}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if tok := m.meta(metaProgressToken); string(tok) != "5" {
		t.Fatalf("progress token %s", tok)
	}
	m.ID = childID(42)
	if err := m.setMeta(metaProgressToken, tokenValue(42)); err != nil {
		t.Fatal(err)
	}
	b, err := m.encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := parseStdioMsg(b)
	if err != nil {
		t.Fatal(err)
	}
	if back.key() != "42" || string(back.meta(metaProgressToken)) != `"agentg-stdio-42"` || string(back.meta("other")) != "true" ||
		string(back.param("name")) != `"echo"` || string(back.param("arguments")) != `{"text":"x"}` {
		t.Fatalf("rewritten: %s", b)
	}
	// A _meta that is not an object is not silently replaced.
	bad, _ := parseStdioMsg([]byte(`{"jsonrpc":"2.0","id":1,"method":"m","params":{"_meta":3}}`))
	if err := bad.setMeta(metaProgressToken, tokenValue(1)); err == nil {
		t.Fatal("a _meta that is no object was rewritten")
	}
	if id, ok := lenientStdioID([]byte("{\"jsonrpc\":\"2.0\",\"id\":3,\"id\":3,\"result\":\"\xff\"}")); !ok || id != "3" {
		t.Fatalf("lenient id %q %v", id, ok)
	}
}

// FuzzStdioMsg: what the multiplexer reads, it writes again as one
// message that reads the same (kind, id, method), and its rewrites never
// fail on what it read, nor panic.
func FuzzStdioMsg(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"_meta":{"progressToken":"p"}}}`,
		`{"jsonrpc":"2.0","id":"x","result":{"_meta":{"io.modelcontextprotocol/subscriptionId":3}}}`,
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1e0}}`,
		`[{"jsonrpc":"2.0"}]`, `{"jsonrpc":"2.0","id":1.50,"method":"m","params":[]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		lenientStdioID(line)
		m, err := parseStdioMsg(line)
		if err != nil {
			return
		}
		kind := [3]bool{m.isRequest(), m.isNotification(), m.isAnswer()}
		b, err := m.encode()
		if err != nil {
			t.Fatalf("read %q, cannot write it: %v", line, err)
		}
		back, err := parseStdioMsg(b)
		if err != nil {
			t.Fatalf("read %q, wrote %q, which does not read: %v", line, b, err)
		}
		if back.key() != m.key() || back.Method != m.Method || [3]bool{back.isRequest(), back.isNotification(), back.isAnswer()} != kind {
			t.Fatalf("read %q, wrote %q, which reads otherwise", line, b)
		}
		if m.Params.Kind() == '{' {
			if meta := m.param("_meta"); len(meta) == 0 || meta.Kind() == '{' {
				if err := m.setMeta(metaProgressToken, jsontext.Value(`"t"`)); err != nil {
					t.Fatalf("setMeta on %q: %v", line, err)
				}
				if string(m.meta(metaProgressToken)) != `"t"` {
					t.Fatalf("setMeta on %q did not set it", line)
				}
			}
		}
	})
}

package mcp

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/dissect/mcp/wire"
	"github.com/agentg/agentg/limit"
	"github.com/agentg/agentg/rules"
	store "github.com/agentg/agentg/state"
)

// sessionFront is a Session whose two sides are recorded.
type sessionFront struct {
	s              *Session
	mu             sync.Mutex
	server, client []string
	log            *bytes.Buffer
}

func newSessionFront(t testing.TB, policy string) *sessionFront {
	eng, err := rules.Parse("policy.yaml", []byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.NewMemory(store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &sessionFront{log: &bytes.Buffer{}}
	g := &Guard{Log: audit.New(f.log), State: st, Limits: limit.NewRates(limit.Options{})}
	f.s = g.NewSession(Exchange{Engine: eng, Agent: "a", Server: "srv", Door: "wrap"}, SessionIO{
		ToServer: func(b []byte) error { f.mu.Lock(); f.server = append(f.server, string(b)); f.mu.Unlock(); return nil },
		ToClient: func(b []byte) error { f.mu.Lock(); f.client = append(f.client, string(b)); f.mu.Unlock(); return nil },
	})
	return f
}

func (f *sessionFront) sides() (server, client []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.server...), append([]string(nil), f.client...)
}

const sessionPolicy = "mcp:\n  tools:\n    - deny: \"srv.delete_*\"\n      id: no-delete\n  redact:\n    - pattern: \"AKIA[0-9A-Z]{16}\"\n      id: aws\n"

// Each line of the client's is decided as a POST's message is: what the
// policy refuses, or the codec cannot read, never reaches the server.
func TestSessionFromClient(t *testing.T) {
	tests := []struct {
		name, line string
		toServer   string // "" for nothing
		clientHas  string // "" for nothing
	}{
		{"allowed", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}`, `"name":"echo"`, ""},
		{"denied", `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete_project","arguments":{}}}`, "", `"id":2,"error"`},
		{"redacted", `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"k":"AKIAABCDEFGHIJKLMNOP"}}}`, `[REDACTED`, ""},
		{"duplicate key", `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"echo","name":"delete_project"}}`, "", `"id":4,"error"`},
		{"not JSON", `{"jsonrpc":`, "", `"id":null,"error"`},
		{"request as notification", `{"jsonrpc":"2.0","method":"tools/call","params":{"name":"echo"}}`, "", ""},
		{"notification", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, `notifications/initialized`, ""},
		{"blank", "  \r", "", ""},
		{"batch after 2025-03-26", `[{"jsonrpc":"2.0","id":5,"method":"ping","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}]`, "", `"id":5,"error"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newSessionFront(t, sessionPolicy)
			f.s.FromClient([]byte(tt.line))
			server, client := f.sides()
			switch {
			case tt.toServer == "" && len(server) != 0:
				t.Fatalf("the server got %q", server)
			case tt.toServer != "" && (len(server) != 1 || !strings.Contains(server[0], tt.toServer)):
				t.Fatalf("the server got %q, want one message with %s", server, tt.toServer)
			case tt.clientHas == "" && len(client) != 0:
				t.Fatalf("the client got %q", client)
			case tt.clientHas != "" && (len(client) != 1 || !strings.Contains(client[0], tt.clientHas)):
				t.Fatalf("the client got %q, want %s", client, tt.clientHas)
			}
			if strings.Contains(f.log.String(), "AKIAABCDEFGHIJKLMNOP") || (tt.name != "blank" && tt.name != "notification" && tt.name != "allowed" && tt.name != "redacted" && !strings.Contains(f.log.String(), `"door":"wrap"`)) {
				t.Fatalf("log: %s", f.log.String())
			}
		})
	}
}

// Answers are matched to the client's requests across lines, filtered
// and redacted; an answer to nothing the client asked is withheld; a
// server line that cannot be read fails the request it answers.
func TestSessionFromServer(t *testing.T) {
	f := newSessionFront(t, sessionPolicy)
	f.s.FromClient([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	f.s.FromServer([]byte(`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo","inputSchema":{"type":"object"}},{"name":"delete_project","inputSchema":{"type":"object"}}]}}`))
	f.s.FromClient([]byte(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{}}}`))
	f.s.FromServer([]byte(`{"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"AKIAABCDEFGHIJKLMNOP"}]}}`))
	f.s.FromServer([]byte(`{"jsonrpc":"2.0","id":9,"result":{}}`))
	f.s.FromClient([]byte(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{}}}`))
	f.s.FromServer([]byte(`{"jsonrpc":"2.0","id":3,"result":{"a":1,"a":2}}`))
	_, client := f.sides()
	if len(client) != 4 {
		t.Fatalf("the client got %d messages: %q", len(client), client)
	}
	if strings.Contains(client[0], "delete_project") || !strings.Contains(client[0], "echo") {
		t.Errorf("tools/list: %s", client[0])
	}
	if strings.Contains(client[1], "AKIA") {
		t.Errorf("the answer was not redacted: %s", client[1])
	}
	if !strings.Contains(client[2], `"id":9,"error"`) {
		t.Errorf("an answer to no request: %s", client[2])
	}
	if !strings.Contains(client[3], `"id":3,"error"`) {
		t.Errorf("an unreadable answer: %s", client[3])
	}
	// A request the server never answers gets an error when the session
	// ends.
	f.s.FromClient([]byte(`{"jsonrpc":"2.0","id":4,"method":"ping"}`))
	f.s.Close(nil)
	_, client = f.sides()
	if last := client[len(client)-1]; !strings.Contains(last, `"id":4,"error"`) || !strings.Contains(last, ruleStreamGone) {
		t.Errorf("the request left when the session closed: %s", last)
	}
}

// FuzzSession: whatever a client or a server writes, the session never
// panics, and what it passes on is what the strict codec reads.
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"k":"AKIAABCDEFGHIJKLMNOP"}}}`,
		`{"jsonrpc":"2.0","id":"x","result":{"content":[]}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"ping"}]`,
		`{"id":1,"id":2}`,
	} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, line []byte, fromClient bool) {
		sf := newSessionFront(t, sessionPolicy)
		sf.s.FromClient([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}`))
		if fromClient {
			sf.s.FromClient(line)
		} else {
			sf.s.FromServer(line)
		}
		sf.s.Close(nil)
		server, client := sf.sides()
		for _, m := range append(server, client...) {
			if _, err := wire.Parse([]byte(m), wire.Limits{}); err != nil {
				t.Fatalf("passed on %q, which the codec refuses: %v", m, err)
			}
		}
	})
}

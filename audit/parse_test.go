package audit

import (
	"bytes"
	"testing"
	"time"
)

// Every field Log writes comes back from ParseJSON.
func TestParseJSONRoundTrip(t *testing.T) {
	ev := &Event{ID: "X-1", Parent: "X-0", Time: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC), Kind: "mcp", Agent: "a",
		Client: "c", Method: "tools/call", Host: "h", Port: 443, Path: "/p", Decision: "deny", Rule: "r", RuleSource: "f:1",
		Reason: "why", Status: 403, Duration: 1500 * time.Microsecond, Error: "e", Door: "wrap", CausedBy: "X-9",
		MCP: &MCP{Action: "act", Server: "s", Session: "sess", Revision: "2025-06-18", Tool: "t", Args: `{"a":1}`,
			Redactions: []string{"x"}, ErrorCode: -32001, IsError: true, ResultBytes: 7, Upstream: time.Millisecond,
			LLMTurn: "X-5", TurnText: "I will", TurnReasoning: "think", Unrequested: true},
		Approval: &Approval{ID: "ap", By: "console", Scope: "call"}}
	line := JSON(ev)
	back, err := ParseJSON(line)
	if err != nil {
		t.Fatal(err)
	}
	if again := JSON(back); !bytes.Equal(again, line) {
		t.Fatalf("round trip:\n%s\n%s", line, again)
	}
}

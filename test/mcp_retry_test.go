package test

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentg/agentg/internal/testenv"
)

// Issue 7, 2026-07-28: a server answers a call with input_required, and
// the client retries it under a new id with inputResponses (and the
// requestState it was given). The retry is a new request, decided again,
// and its event names the first call (retry_of). The Go SDK on both
// sides: its server's tool returns InputRequests, its client fulfils them
// with its elicitation handler and retries on its own.

// addConfirmTool serves "confirm": without inputResponses it asks for a
// confirmation (with a requestState when its arguments say "state": true);
// with them it answers "confirmed". It counts both kinds of run.
func addConfirmTool(s *testenv.MCPServer, asks, runs *atomic.Int64) {
	s.Server.AddTool(&mcp.Tool{Name: "confirm", Description: "Asks before it acts.", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if len(req.Params.InputResponses) == 0 {
				asks.Add(1)
				res := &mcp.CallToolResult{InputRequests: mcp.InputRequestMap{
					"ok": &mcp.ElicitParams{Message: "Really?", RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{}}},
				}}
				if strings.Contains(string(req.Params.Arguments), `"state":true`) {
					res.RequestState = "opaque-state-1"
				}
				return res, nil
			}
			runs.Add(1)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "confirmed"}}}, nil
		})
}

func TestMCPInputRequiredRetry(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limit  bool // a rate limit of one call: the retry is refused
		state  bool
		framed testenv.MCPMode
	}{
		{"requestState/sse", false, true, testenv.MCPStateless},
		{"inputRequests keys/json", false, false, testenv.MCPStatelessJSON},
		{"retry decided again", true, true, testenv.MCPStateless},
	} {
		t.Run(tc.name, func(t *testing.T) {
			section := mcpBase
			if tc.limit {
				section += `
  rate_limits:
    - tools: "srv.confirm"
      limit: 1/h
      id: one-confirm
`
			}
			e := newMCPEnv(t, mcpPolicy(section), testenv.MCPServerConfig{}, tc.framed)
			s := e.peers[tc.framed]
			var asks, runs atomic.Int64
			addConfirmTool(s, &asks, &runs)
			var elicited atomic.Int64
			cl := e.connect(t, mcpCase{tc.framed, "2026-07-28"}, &mcp.ClientOptions{
				ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
					elicited.Add(1)
					return &mcp.ElicitResult{Action: "accept", Content: map[string]any{}}, nil
				}})
			res, err := callTool(t, cl, "confirm", map[string]any{"state": tc.state})
			if asks.Load() != 1 || elicited.Load() != 1 {
				t.Fatalf("the tool asked %d times and the client answered %d, want 1 and 1 (err %v)", asks.Load(), elicited.Load(), err)
			}
			calls := func() []event {
				var out []event
				for _, ev := range e.mcpEvents() {
					if ev.str("method") == "tools/call" && ev.str("tool") == "confirm" {
						out = append(out, ev)
					}
				}
				return out
			}
			waitFor(t, func() bool { return len(calls()) == 2 }, "two tools/call events for confirm: the call and its retry")
			first, retry := calls()[0], calls()[1]
			if first.str("retry_of") != "" {
				first, retry = retry, first
			}
			if retry.str("retry_of") != first.str("id") || first.str("id") == "" {
				t.Fatalf("retry event %v: want retry_of %q, the first call's event", retry, first.str("id"))
			}
			wantLinked(t, e.env, retry)
			if tc.limit {
				// Decided again: the retry is past the limit the first
				// call used up, and never runs.
				wantDenied(t, res, err, "one-confirm")
				if retry.str("decision") != "deny" || retry.str("rule") != "one-confirm" || runs.Load() != 0 {
					t.Fatalf("retry event %v, runs %d: want it denied by one-confirm and never run", retry, runs.Load())
				}
				return
			}
			if err != nil || resultText(res) != "confirmed" || runs.Load() != 1 {
				t.Fatalf("call: %v %v, runs %d: want the retry's answer", res, err, runs.Load())
			}
			if retry.str("decision") != "allow" || first.str("decision") != "allow" {
				t.Errorf("events %v / %v: want both allowed", first, retry)
			}
		})
	}
}

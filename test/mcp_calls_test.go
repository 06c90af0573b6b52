package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/agentg/agentg/internal/testenv"
)

// Issue 7: tool calls are decided inline, on every revision and both
// response framings: an allowed call gets the server's real answer, a
// denied one a JSON-RPC error for the client's own id, and the tool never
// runs.

// exchangeOf is the HTTP exchange event an MCP event names as its parent.
func exchangeOf(e *env, ev event) event {
	for _, x := range e.allLines() {
		if x.str("id") != "" && x.str("id") == ev.str("parent") {
			return x
		}
	}
	return nil
}

// waitCallEvent waits for an MCP event matching want whose exchange went
// to s (the servers of one env differ only by port).
func waitCallEvent(t *testing.T, e *env, s *testenv.MCPServer, want map[string]any) event {
	t.Helper()
	return waitMCPEventWhere(t, e, fmt.Sprintf("matching %v on port %s", want, s.Port), func(ev event) bool {
		if !matches(ev, want) {
			return false
		}
		x := exchangeOf(e, ev)
		return x != nil && strconv.Itoa(int(x.num("port"))) == s.Port
	})
}

func TestMCPAllowedCall(t *testing.T) {
	e := newMCPEnv(t, mcpPolicy(mcpBase), testenv.MCPServerConfig{})
	for _, c := range mcpCases() {
		t.Run(c.String(), func(t *testing.T) {
			s := e.peers[c.mode]
			cl := e.connect(t, c, nil)
			for _, tool := range []string{testenv.MCPToolEcho, testenv.MCPToolDotted} {
				args := map[string]any{"text": "hello from " + c.String(), "n": 7}
				before := s.Calls(tool)
				res, err := callTool(t, cl, tool, args)
				wantEcho(t, res, err, args)
				if got := s.Calls(tool); got != before+1 {
					t.Fatalf("%s ran %d times for one call", tool, got-before)
				}
				ev := waitCallEvent(t, e.env, s, map[string]any{"method": "tools/call", "tool": tool, "server": "srv",
					"revision": c.rev, "decision": "allow"})
				wantLinked(t, e.env, ev)
				switch {
				case c.mode == testenv.MCPLegacySSE:
					if ev.str("session") == "" {
						t.Errorf("legacy call event names no session: %v", ev)
					}
				case c.mode.Stateful():
					if ev.str("session") != cl.ID() || cl.ID() == "" {
						t.Errorf("event session %q, the client's Mcp-Session-Id %q", ev.str("session"), cl.ID())
					}
				default:
					if ev.str("session") != "" {
						t.Errorf("2026-07-28 has no sessions, the event names %q", ev.str("session"))
					}
				}
			}
		})
	}
}

func TestMCPDeniedCall(t *testing.T) {
	e := newMCPEnv(t, mcpPolicy(mcpBase), testenv.MCPServerConfig{})
	type variant struct {
		mcpCase
		h2 bool
	}
	var vs []variant
	for _, c := range mcpCases() {
		vs = append(vs, variant{c, false})
	}
	vs = append(vs, variant{mcpCase{testenv.MCPStateful, "2025-11-25"}, true}, variant{mcpCase{testenv.MCPStateless, "2026-07-28"}, true})
	for _, v := range vs {
		name := v.String()
		if v.h2 {
			name += "/h2"
		}
		t.Run(name, func(t *testing.T) {
			s := e.peers[v.mode]
			cfg := e.via("", "")
			cfg.HTTP2 = v.h2
			cl := e.connectWith(t, v.mcpCase, cfg, nil)
			before := s.Calls(testenv.MCPToolDelete)
			res, err := callTool(t, cl, testenv.MCPToolDelete, map[string]any{"project": "prod"})
			wantDenied(t, res, err, "no-delete")
			if got := s.Calls(testenv.MCPToolDelete); got != before {
				t.Fatalf("the denied tool ran %d times", got-before)
			}
			for _, r := range s.Requests() {
				if strings.Contains(string(r.Body), `"prod"`) {
					t.Fatalf("the denied call reached the server: %s %s %q", r.Method, r.Path, r.Body)
				}
			}
			ev := waitCallEvent(t, e.env, s, map[string]any{"method": "tools/call", "tool": testenv.MCPToolDelete,
				"server": "srv", "revision": v.rev, "decision": "deny", "rule": "no-delete"})
			wantLinked(t, e.env, ev)
			if v.h2 {
				if x := exchangeOf(e.env, ev); x == nil {
					t.Error("no exchange event for the h2 call")
				}
			}
			// The session survives the refusal.
			args := map[string]any{"after": "denial"}
			res, err = callTool(t, cl, testenv.MCPToolEcho, args)
			wantEcho(t, res, err, args)
		})
	}
}

// The error for a denied call answers the client's own id with its JSON
// type: 1 and "1" are different requests, and a client matching answers to
// requests by id would otherwise never see the error.
func TestMCPDeniedCallKeepsIDType(t *testing.T) {
	e := newMCPEnv(t, mcpPolicy(mcpBase), testenv.MCPServerConfig{})
	for _, c := range mcpCases() {
		t.Run(c.String(), func(t *testing.T) {
			s := e.peers[c.mode]
			r := e.raw(t, c)
			ctx := mcpCtx(t)
			answer := func(reply *testenv.MCPReply, id string) json.RawMessage {
				t.Helper()
				if c.mode == testenv.MCPLegacySSE {
					if reply.Status != http.StatusAccepted || len(reply.Body) != 0 {
						t.Fatalf("legacy POST answered %d %q, want 202 with no body: the answer belongs on the GET stream", reply.Status, reply.Body)
					}
					m, err := r.Await(ctx, id)
					if err != nil {
						t.Fatal(err)
					}
					return m
				}
				if reply.Status != http.StatusOK {
					t.Fatalf("POST answered %d %q, want 200", reply.Status, reply.Body)
				}
				return reply.ByID(id)
			}
			for _, id := range []string{`1`, `"1"`, `"delete-me"`, `9007199254740991`} {
				before := s.Calls(testenv.MCPToolDelete)
				reply, err := r.Call(ctx, id, "tools/call", map[string]any{"name": testenv.MCPToolDelete, "arguments": map[string]any{}})
				if err != nil {
					t.Fatal(err)
				}
				wantRawDenied(t, answer(reply, id), id, "no-delete")
				if s.Calls(testenv.MCPToolDelete) != before {
					t.Fatalf("id %s: the denied tool ran", id)
				}
			}
			for _, id := range []string{`2`, `"2"`} {
				reply, err := r.Call(ctx, id, "tools/call", map[string]any{"name": testenv.MCPToolEcho, "arguments": map[string]any{"id": id}})
				if err != nil {
					t.Fatal(err)
				}
				wantRawResult(t, answer(reply, id), id)
			}
		})
	}
}

func TestMCPDenyAsResult(t *testing.T) {
	e := newMCPEnv(t, mcpPolicy(strings.Replace(mcpBase, "deny_as: error", "deny_as: result", 1)), testenv.MCPServerConfig{})
	for _, c := range mcpCases() {
		t.Run(c.String(), func(t *testing.T) {
			s := e.peers[c.mode]
			cl := e.connect(t, c, nil)
			before := s.Calls(testenv.MCPToolDelete)
			res, err := callTool(t, cl, testenv.MCPToolDelete, nil)
			if err != nil {
				t.Fatalf("deny_as: result answered with an error: %v", err)
			}
			if !res.IsError || !strings.Contains(resultText(res), "no-delete") {
				t.Fatalf("deny_as: result: isError=%v %q, want an isError result naming no-delete", res.IsError, resultText(res))
			}
			if s.Calls(testenv.MCPToolDelete) != before {
				t.Fatal("the denied tool ran")
			}
			waitCallEvent(t, e.env, s, map[string]any{"tool": testenv.MCPToolDelete, "decision": "deny", "rule": "no-delete"})
			if c.rev < "2026-07-28" {
				return
			}
			// From 2026-07-28 on every result says its resultType.
			r := e.raw(t, c)
			reply, err := r.Call(mcpCtx(t), `"r"`, "tools/call", map[string]any{"name": testenv.MCPToolDelete, "arguments": map[string]any{}})
			if err != nil {
				t.Fatal(err)
			}
			m := decodeRPC(t, reply.ByID(`"r"`))
			var result struct {
				ResultType string `json:"resultType"`
				IsError    bool   `json:"isError"`
			}
			if json.Unmarshal(m.Result, &result) != nil || result.ResultType != "complete" || !result.IsError {
				t.Fatalf("2026-07-28 refusal as a result: %s, want resultType complete and isError", reply.Body)
			}
		})
	}
}

// Verdicts between rules: an exact name beats a glob, a rule for an agent
// applies to that agent only, an important deny beats every allow; and
// conditions on arguments and annotations.
func TestMCPVerdicts(t *testing.T) {
	policy := mcpPolicy(`
agents:
  - name: builder
    password: s3cret
mcp:
  default: allow
  servers:
    - name: srv
      url: "mcp.test/mcp/**"
  tools:
    - deny: "srv.delete_*"
      id: no-delete
    - allow: "srv.delete_project"
      agents: [builder]
      id: builder-deletes
    - deny: "srv.wipe_*"
      important: true
      id: never-wipe
    - allow: "srv.wipe_cache"
      agents: [builder]
      id: builder-wipes
    - deny: "srv.echo"
      id: no-rm
      when:
        - arg: /command
          matches: 'rm\s+-rf'
    - deny: "srv.files.*"
      id: no-files
    - deny: "*"
      id: no-destructive
      when:
        - annotation: destructiveHint
`)
	e := newMCPEnv(t, policy, testenv.MCPServerConfig{}, testenv.MCPStateful, testenv.MCPStateless, testenv.MCPLegacySSE)
	for _, c := range []mcpCase{{testenv.MCPStateful, "2025-11-25"}, {testenv.MCPStateless, "2026-07-28"}, {testenv.MCPLegacySSE, "2024-11-05"}} {
		t.Run(c.String(), func(t *testing.T) {
			s := e.peers[c.mode]
			anon := e.connect(t, c, nil)
			builder := e.connectWith(t, c, e.via("builder", "s3cret"), nil)
			for _, cl := range []*testenv.MCPClient{anon, builder} {
				// Annotations are learnt from tools/list.
				if _, err := cl.ListTools(mcpCtx(t), nil); err != nil {
					t.Fatal(err)
				}
			}
			tests := []struct {
				who  string
				cl   *testenv.MCPClient
				tool string
				args map[string]any
				rule string // "" allowed
			}{
				{"anonymous", anon, testenv.MCPToolDelete, nil, "no-delete"},
				{"builder", builder, testenv.MCPToolDelete, nil, ""},
				{"builder", builder, testenv.MCPToolWipe, nil, "never-wipe"},
				{"anonymous", anon, testenv.MCPToolEcho, map[string]any{"command": "ls -l"}, ""},
				{"anonymous", anon, testenv.MCPToolEcho, map[string]any{"command": "rm  -rf /"}, "no-rm"},
				{"anonymous", anon, testenv.MCPToolDotted, nil, "no-files"},
				{"anonymous", anon, testenv.MCPToolArchive, nil, ""},                          // destructiveHint: false
				{"anonymous", anon, testenv.MCPToolMutable, map[string]any{"no": "hint"}, ""}, // no annotations at all
			}
			for _, tt := range tests {
				before := s.Calls(tt.tool)
				args := tt.args
				if args == nil {
					args = map[string]any{"as": tt.who}
				}
				res, err := callTool(t, tt.cl, tt.tool, args)
				if tt.rule == "" {
					wantEcho(t, res, err, args)
					if s.Calls(tt.tool) != before+1 {
						t.Errorf("%s %s %v: allowed but did not run", tt.who, tt.tool, args)
					}
					continue
				}
				wantDenied(t, res, err, tt.rule)
				if s.Calls(tt.tool) != before {
					t.Errorf("%s %s %v: denied but ran", tt.who, tt.tool, args)
				}
			}
			ev := waitCallEvent(t, e.env, s, map[string]any{"tool": testenv.MCPToolDelete, "decision": "allow", "rule": "builder-deletes"})
			if ev.str("agent") != "builder" {
				t.Errorf("the builder's call event says agent %q", ev.str("agent"))
			}
		})
	}
}

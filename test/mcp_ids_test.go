package test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/agentg/agentg/internal/testenv"
)

// Issue 14, item 3: one id identity everywhere. While a call is in flight,
// a second request whose id a peer reads as the same id (the same decoded
// string, however escaped; the same number as the TypeScript client's
// Number(id) reads it) is refused with builtin:mcp-inflight on every
// transport, never forwarded: its answer could be matched to the call and
// pass as the call's (a tools/list answer unfiltered, delete_project
// listed). The call itself still gets its answer.
func TestMCPInFlightIDIdentity(t *testing.T) {
	modes := []testenv.MCPMode{testenv.MCPLegacySSE, testenv.MCPStateful, testenv.MCPStatefulJSON}
	e := newMCPEnv(t, mcpPolicy(mcpBase), testenv.MCPServerConfig{}, modes...)
	pairs := []struct{ call, list string }{
		{`"rt-5"`, `"rt-\u0035"`},
		{`7`, `"7"`},
		{`8`, `" 0x8 "`},
	}
	for _, mode := range modes {
		rev := "2025-06-18"
		if mode == testenv.MCPLegacySSE {
			rev = "2024-11-05"
		}
		c := mcpCase{mode, rev}
		for _, p := range pairs {
			t.Run(c.String()+"/"+p.call+"-"+p.list, func(t *testing.T) {
				s := e.peers[mode]
				r := e.raw(t, c)
				ctx := mcpCtx(t)
				before := s.Calls(testenv.MCPToolSlow)
				type answer struct {
					reply *testenv.MCPReply
					err   error
				}
				callDone := make(chan answer, 1) // buffered: the call may end after a failed test
				go func() {
					reply, err := r.Call(ctx, p.call, "tools/call", map[string]any{"name": testenv.MCPToolSlow, "arguments": map[string]any{"steps": 1}})
					callDone <- answer{reply, err}
				}()
				waitFor(t, func() bool { return s.Calls(testenv.MCPToolSlow) > before }, "the slow call running on the server")

				lists := len(requestsWith(s, "tools/list"))
				reply, err := r.Call(ctx, p.list, "tools/list", nil)
				if err != nil {
					t.Fatal(err)
				}
				var m json.RawMessage
				if mode == testenv.MCPLegacySSE {
					if m, err = r.Await(ctx, p.list); err != nil {
						t.Fatalf("no answer to tools/list %s on the stream: %v", p.list, err)
					}
				} else {
					m = reply.ByID(p.list)
				}
				if m == nil || strings.Contains(string(m), testenv.MCPToolDelete) {
					t.Fatalf("tools/list %s while call %s is in flight: %s (reply %d %q)", p.list, p.call, m, reply.Status, reply.Body)
				}
				var rm rpcMsg
				json.Unmarshal(m, &rm)
				if rm.Error == nil || dataRule(rm.Error.Data) != "builtin:mcp-inflight" {
					t.Fatalf("tools/list %s while call %s is in flight: %s, want an error naming builtin:mcp-inflight", p.list, p.call, m)
				}
				if n := len(requestsWith(s, "tools/list")); n != lists {
					t.Fatalf("the refused tools/list reached the server (%d more)", n-lists)
				}
				if err := s.Advance(10 * time.Second); err != nil {
					t.Fatal(err)
				}
				call := <-callDone
				if call.err != nil {
					t.Fatal(call.err)
				}
				var got json.RawMessage
				if mode == testenv.MCPLegacySSE {
					if got, err = r.Await(ctx, p.call); err != nil {
						t.Fatal(err)
					}
				} else {
					got = call.reply.ByID(p.call)
				}
				if text := wantRawResult(t, got, p.call); text != "slow: done" {
					t.Fatalf("the call's answer: %q", text)
				}
				waitMCPEventWhere(t, e.env, "the refusal of tools/list "+p.list, func(ev event) bool {
					return ev.str("method") == "tools/list" && ev.str("rule") == "builtin:mcp-inflight" && ev.str("decision") == "deny"
				})
			})
		}
	}
}

// requestsWith are the requests the server got whose body names method.
func requestsWith(s *testenv.MCPServer, method string) []testenv.MCPRequest {
	var out []testenv.MCPRequest
	for _, rq := range s.Requests() {
		if strings.Contains(string(rq.Body), `"method":"`+method+`"`) {
			out = append(out, rq)
		}
	}
	return out
}

// The same identity inside one batch (2024-11-05 and 2025-03-26 allow
// batches): of two requests whose ids are one id to a peer, the second is
// refused and never forwarded, and the first answered.
func TestMCPInFlightIDBatch(t *testing.T) {
	modes := []testenv.MCPMode{testenv.MCPLegacySSE, testenv.MCPStateful}
	e := newMCPEnv(t, mcpPolicy(mcpBase), testenv.MCPServerConfig{}, modes...)
	for _, c := range []mcpCase{{testenv.MCPLegacySSE, "2024-11-05"}, {testenv.MCPStateful, "2025-03-26"}} {
		t.Run(c.String(), func(t *testing.T) {
			s := e.peers[c.mode]
			r := e.raw(t, c)
			ctx := mcpCtx(t)
			lists := len(requestsWith(s, "tools/list"))
			first := r.Request(`9`, "tools/list", nil)
			second := r.Request(`"\u0039"`, "tools/list", nil)
			reply, err := r.Post(ctx, testenv.MCPPost{Body: []byte("[" + string(first) + "," + string(second) + "]")})
			if err != nil {
				t.Fatal(err)
			}
			answer := func(id string) json.RawMessage {
				if c.mode != testenv.MCPLegacySSE {
					return reply.ByID(id)
				}
				m, err := r.Await(ctx, id)
				if err != nil {
					t.Fatalf("no answer for %s: %v", id, err)
				}
				return m
			}
			var refused rpcMsg
			json.Unmarshal(answer(`"\u0039"`), &refused)
			if refused.Error == nil || dataRule(refused.Error.Data) != "builtin:mcp-inflight" {
				t.Fatalf("the second request of the batch: %+v (reply %d %q), want refused by builtin:mcp-inflight", refused, reply.Status, reply.Body)
			}
			got := requestsWith(s, "tools/list")
			if len(got) != lists+1 || strings.Contains(string(got[len(got)-1].Body), `\u0039`) {
				t.Fatalf("the server got %d bodies with tools/list (last %q), want one, without the refused request", len(got)-lists, got[len(got)-1].Body)
			}
			if c.mode == testenv.MCPLegacySSE {
				return // neither SDK's HTTP+SSE server reads a batch: no answer to wait for
			}
			var ok rpcMsg
			json.Unmarshal(answer(`9`), &ok)
			if ok.Error != nil || ok.Result == nil || strings.Contains(string(ok.Result), testenv.MCPToolDelete) {
				t.Fatalf("the first request of the batch: %+v, want the filtered list", ok)
			}
		})
	}
}

package test

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/agentg/agentg/internal/testenv"
)

// Issue 7: what each revision adds to the wire. 2025-03-26 batches are
// decided element by element; from 2025-06-18 on a batch is refused;
// 2026-07-28's Mcp-Method/Mcp-Name headers must agree with the body; and
// the 2024-11-05 transport answers on its GET stream.

func TestMCPBatch20250326(t *testing.T) {
	e := newMCPEnv(t, mcpPolicy(mcpBase), testenv.MCPServerConfig{}, testenv.MCPStateful, testenv.MCPStatefulJSON)
	for _, m := range []testenv.MCPMode{testenv.MCPStateful, testenv.MCPStatefulJSON} {
		c := mcpCase{m, "2025-03-26"}
		t.Run(c.String(), func(t *testing.T) {
			s := e.peers[m]
			r := e.raw(t, c)
			ctx := mcpCtx(t)
			echo, del := s.Calls(testenv.MCPToolEcho), s.Calls(testenv.MCPToolDelete)
			batch := "[" + strings.Join([]string{
				string(r.Request(`1`, "tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"n": 1}})),
				string(r.Request(`"2"`, "tools/call", map[string]any{"name": "delete_project", "arguments": map[string]any{"project": "batched"}})),
				`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"nothing-in-flight"}}`,
				string(r.Request(`"three"`, "tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"n": 3}})),
			}, ",") + "]"
			reply, err := r.Post(ctx, testenv.MCPPost{Path: "/mcp/batch-mixed", Body: []byte(batch)})
			if err != nil {
				t.Fatal(err)
			}
			if reply.Status != 200 {
				t.Fatalf("mixed batch: %d %q", reply.Status, reply.Body)
			}
			if m.JSON() && !bytes.HasPrefix(bytes.TrimSpace(reply.Body), []byte("[")) {
				t.Errorf("a batch's JSON answer must be an array: %q", reply.Body)
			}
			wantRawResult(t, reply.ByID(`1`), `1`)
			wantRawDenied(t, reply.ByID(`"2"`), `"2"`, "no-delete")
			wantRawResult(t, reply.ByID(`"three"`), `"three"`)
			if len(reply.Messages) != 3 {
				t.Errorf("%d answers to a batch of three calls and a notification: %q", len(reply.Messages), reply.Body)
			}
			if s.Calls(testenv.MCPToolEcho) != echo+2 || s.Calls(testenv.MCPToolDelete) != del {
				t.Errorf("echo ran %d times (want 2), delete_project %d (want 0)", s.Calls(testenv.MCPToolEcho)-echo, s.Calls(testenv.MCPToolDelete)-del)
			}
			for _, rq := range s.RequestsTo("/mcp/batch-mixed") {
				if strings.Contains(string(rq.Body), "batched") {
					t.Errorf("the denied element went upstream: %q", rq.Body)
				}
			}
			waitCallEvent(t, e.env, s, map[string]any{"tool": testenv.MCPToolDelete, "decision": "deny", "rule": "no-delete", "revision": "2025-03-26"})

			// A batch every element of which is denied is answered whole by
			// agentg.
			batch = "[" + string(r.Request(`5`, "tools/call", map[string]any{"name": "delete_project", "arguments": map[string]any{}})) + "," +
				string(r.Request(`6`, "tools/call", map[string]any{"name": "delete_a", "arguments": map[string]any{}})) + "]"
			reply, err = r.Post(ctx, testenv.MCPPost{Path: "/mcp/batch-denied", Body: []byte(batch)})
			if err != nil {
				t.Fatal(err)
			}
			wantRawDenied(t, reply.ByID(`5`), `5`, "no-delete")
			wantRawDenied(t, reply.ByID(`6`), `6`, "no-delete")
			mcpNoRequest(t, r, s, "/mcp/batch-denied")

			// Two requests of one batch with the same id: the second never
			// passes, so no answer can be read as another request's (a
			// tools/list answer taken for a call's would skip the filter).
			batch = "[" + string(r.Request(`7`, "tools/list", map[string]any{})) + "," +
				string(r.Request(`7`, "tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"n": 7}})) + "]"
			echo = s.Calls(testenv.MCPToolEcho)
			reply, err = r.Post(ctx, testenv.MCPPost{Path: "/mcp/batch-dup", Body: []byte(batch)})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(reply.Body), testenv.MCPToolDelete) {
				t.Errorf("a denied tool was listed: %q", reply.Body)
			}
			var refused int
			for _, m := range reply.Messages {
				if r := decodeRPC(t, m); r.Error != nil && dataRule(r.Error.Data) == "builtin:mcp-inflight" {
					refused++
				}
			}
			if refused != 1 || s.Calls(testenv.MCPToolEcho) != echo {
				t.Errorf("duplicate id: %d refusals (want 1), echo ran %d times (want 0): %q", refused, s.Calls(testenv.MCPToolEcho)-echo, reply.Body)
			}
		})
	}
}

func TestMCPBatchRefusedFrom20250618(t *testing.T) {
	e := newMCPEnv(t, mcpPolicy(mcpBase), testenv.MCPServerConfig{}, testenv.MCPStateful, testenv.MCPStatefulJSON, testenv.MCPStateless)
	type tc struct {
		mcpCase
		noHeader bool // the session's negotiated version alone says no batches
	}
	cases := []tc{
		{mcpCase{testenv.MCPStateful, "2025-06-18"}, false},
		{mcpCase{testenv.MCPStatefulJSON, "2025-06-18"}, false},
		{mcpCase{testenv.MCPStateful, "2025-06-18"}, true},
		{mcpCase{testenv.MCPStateful, "2025-11-25"}, false},
		{mcpCase{testenv.MCPStateless, "2026-07-28"}, false},
	}
	for i, c := range cases {
		name := c.String()
		if c.noHeader {
			name += "/without MCP-Protocol-Version"
		}
		t.Run(name, func(t *testing.T) {
			s := e.peers[c.mode]
			r := e.raw(t, c.mcpCase)
			path := "/mcp/batch-refused-" + string(rune('a'+i))
			batch := "[" + string(r.Request(`1`, "tools/call", map[string]any{"name": "echo", "arguments": map[string]any{}})) + "," +
				string(r.Request(`2`, "tools/call", map[string]any{"name": "echo", "arguments": map[string]any{}})) + "]"
			hdr := r.Headers("tools/call", "echo")
			if c.noHeader {
				hdr["Mcp-Protocol-Version"] = nil
			}
			before := s.Calls(testenv.MCPToolEcho)
			reply, err := r.Post(mcpCtx(t), testenv.MCPPost{Path: path, Body: []byte(batch), Header: hdr})
			if err != nil {
				t.Fatal(err)
			}
			if reply.Status < 400 || reply.Status > 499 {
				t.Fatalf("batch under %s: %d %q, want a 4xx refusal", c.rev, reply.Status, reply.Body)
			}
			mcpNoRequest(t, r, s, path)
			if s.Calls(testenv.MCPToolEcho) != before {
				t.Fatal("a refused batch ran")
			}
		})
	}
}

// 2026-07-28: Mcp-Method, Mcp-Name and MCP-Protocol-Version must agree
// with the body, or the request gets 400 with JSON-RPC error -32020 before
// anything reaches the server; the body, never the headers alone, is what
// is decided.
func TestMCPStatelessHeaders(t *testing.T) {
	e := newMCPEnv(t, mcpPolicy(mcpBase), testenv.MCPServerConfig{}, testenv.MCPStateless, testenv.MCPStatelessJSON)
	b64 := func(s string) string { return "=?base64?" + base64.StdEncoding.EncodeToString([]byte(s)) + "?=" }
	for _, m := range []testenv.MCPMode{testenv.MCPStateless, testenv.MCPStatelessJSON} {
		c := mcpCase{m, "2026-07-28"}
		t.Run(c.String(), func(t *testing.T) {
			s := e.peers[m]
			r := e.raw(t, c)
			ctx := mcpCtx(t)
			call := func(tool string) []byte {
				return r.Request(`11`, "tools/call", map[string]any{"name": tool, "arguments": map[string]any{"x": 1}})
			}
			mismatches := []struct {
				name string
				body []byte
				hdr  http.Header
			}{
				{"Mcp-Name echo, body delete_project", call("delete_project"), r.Headers("tools/call", "echo")},
				{"Mcp-Name delete_project, body echo", call("echo"), r.Headers("tools/call", "delete_project")},
				{"Mcp-Method tools/list, body tools/call", call("echo"), r.Headers("tools/list", "echo")},
				{"Mcp-Name base64 of another tool", call("echo"), r.Headers("tools/call", b64("delete_project"))},
				{"MCP-Protocol-Version disagrees with _meta", bytes.Replace(call("echo"), []byte(`"io.modelcontextprotocol/protocolVersion":"2026-07-28"`),
					[]byte(`"io.modelcontextprotocol/protocolVersion":"2025-11-25"`), 1), r.Headers("tools/call", "echo")},
			}
			for i, tt := range mismatches {
				path := "/mcp/hdr-" + string(rune('a'+i))
				echo, del := s.Calls(testenv.MCPToolEcho), s.Calls(testenv.MCPToolDelete)
				reply, err := r.Post(ctx, testenv.MCPPost{Path: path, Body: tt.body, Header: tt.hdr})
				if err != nil {
					t.Fatal(err)
				}
				msg := reply.ByID(`11`)
				if reply.Status != 400 || msg == nil || decodeRPC(t, msg).Error == nil || decodeRPC(t, msg).Error.Code != -32020 {
					t.Errorf("%s: %d %q, want 400 with JSON-RPC error -32020 for id 11", tt.name, reply.Status, reply.Body)
				}
				mcpNoRequest(t, r, s, path)
				if s.Calls(testenv.MCPToolEcho) != echo || s.Calls(testenv.MCPToolDelete) != del {
					t.Errorf("%s: a tool ran", tt.name)
				}
			}

			// An Mcp-Name in the base64 sentinel form that decodes to the
			// body's name agrees: agentg passes it on (what the SDK then
			// says is its own business).
			reply, err := r.Post(ctx, testenv.MCPPost{Path: "/mcp/hdr-b64", Body: call("echo"), Header: r.Headers("tools/call", b64("echo"))})
			if err != nil {
				t.Fatal(err)
			}
			if len(s.RequestsTo("/mcp/hdr-b64")) != 1 {
				t.Errorf("a base64 Mcp-Name agreeing with the body was refused: %d %q", reply.Status, reply.Body)
			}

			// Unknown Mcp-Param-* headers are forwarded.
			hdr := r.Headers("tools/call", "echo")
			hdr.Set("Mcp-Param-Region", "us-west1")
			reply, err = r.Post(ctx, testenv.MCPPost{Path: "/mcp/hdr-param", Body: call("echo"), Header: hdr})
			if err != nil {
				t.Fatal(err)
			}
			wantRawResult(t, reply.ByID(`11`), `11`)
			if got := s.RequestsTo("/mcp/hdr-param"); len(got) != 1 || got[0].Header.Get("Mcp-Param-Region") != "us-west1" {
				t.Errorf("Mcp-Param-Region did not reach the server: %v", got)
			}

			// No MCP headers and no _meta at all: the SDK's stateless
			// endpoint runs such a call (TestMCPPeersDirect), so it is
			// decided on the body.
			bare := func(tool string) []byte {
				return []byte(`{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"` + tool + `","arguments":{}}}`)
			}
			noHeaders := http.Header{"Mcp-Protocol-Version": nil, "Mcp-Method": nil, "Mcp-Name": nil}
			del := s.Calls(testenv.MCPToolDelete)
			reply, err = r.Post(ctx, testenv.MCPPost{Path: "/mcp/hdr-none", Body: bare("delete_project"), Header: noHeaders})
			if err != nil {
				t.Fatal(err)
			}
			wantRawDenied(t, reply.ByID(`12`), `12`, "no-delete")
			mcpNoRequest(t, r, s, "/mcp/hdr-none")
			if s.Calls(testenv.MCPToolDelete) != del {
				t.Fatal("a header-less denied call ran")
			}
			echo := s.Calls(testenv.MCPToolEcho)
			reply, err = r.Post(ctx, testenv.MCPPost{Path: "/mcp/hdr-none-echo", Body: bare("echo"), Header: noHeaders})
			if err != nil {
				t.Fatal(err)
			}
			wantRawResult(t, reply.ByID(`12`), `12`)
			if s.Calls(testenv.MCPToolEcho) != echo+1 {
				t.Error("a header-less allowed call did not run")
			}

			// Required headers missing under 2026-07-28: refused one way
			// or another, and the tool does not run.
			hdr = http.Header{"Mcp-Method": nil, "Mcp-Name": nil}
			reply, err = r.Post(ctx, testenv.MCPPost{Path: "/mcp/hdr-missing", Body: call("delete_project"), Header: hdr})
			if err != nil {
				t.Fatal(err)
			}
			if reply.Status < 400 || s.Calls(testenv.MCPToolDelete) != del {
				t.Errorf("2026-07-28 call without Mcp-Method/Mcp-Name: %d %q, ran %d", reply.Status, reply.Body, s.Calls(testenv.MCPToolDelete)-del)
			}
		})
	}
}

// 2024-11-05: a denied POST is answered 202, like any accepted message,
// and its error is injected into that session's GET stream, where the
// client waits for it.
func TestMCPLegacyDeniedOnStream(t *testing.T) {
	e := newMCPEnv(t, mcpPolicy(mcpBase), testenv.MCPServerConfig{}, testenv.MCPLegacySSE)
	s := e.peers[testenv.MCPLegacySSE]
	c := mcpCase{testenv.MCPLegacySSE, "2024-11-05"}
	r := e.raw(t, c)
	ctx := mcpCtx(t)
	reply, err := r.Call(ctx, `41`, "tools/call", map[string]any{"name": "delete_project", "arguments": map[string]any{"project": "legacy"}})
	if err != nil {
		t.Fatal(err)
	}
	if reply.Status != http.StatusAccepted || len(reply.Body) != 0 {
		t.Fatalf("denied legacy POST: %d %q, want 202 with no body", reply.Status, reply.Body)
	}
	m, err := r.Await(ctx, `41`)
	if err != nil {
		t.Fatalf("the denied call's error never came on the GET stream: %v", err)
	}
	wantRawDenied(t, m, `41`, "no-delete")
	for _, rq := range s.Requests() {
		if strings.Contains(string(rq.Body), `"legacy"`) {
			t.Fatalf("the denied POST reached the server: %q", rq.Body)
		}
	}
	if s.Calls(testenv.MCPToolDelete) != 0 {
		t.Fatal("the denied tool ran")
	}
	// The stream carries on with real answers.
	if _, err := r.Call(ctx, `"42"`, "tools/call", map[string]any{"name": "echo", "arguments": map[string]any{}}); err != nil {
		t.Fatal(err)
	}
	m, err = r.Await(ctx, `"42"`)
	if err != nil {
		t.Fatal(err)
	}
	wantRawResult(t, m, `"42"`)
	ev := waitCallEvent(t, e.env, s, map[string]any{"tool": testenv.MCPToolDelete, "decision": "deny", "rule": "no-delete", "revision": "2024-11-05"})
	wantLinked(t, e.env, ev)
}

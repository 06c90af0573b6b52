package test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentg/agentg/internal/testenv"
)

// 2026-07-28's Mcp-Param-{Name} headers: a tool's inputSchema marks
// parameters with x-mcp-header, the client mirrors their values into
// headers, and a header that disagrees with the body is refused with 400
// and -32020 by agentg, before anything reaches the server (whose own check
// would otherwise be the only one). agentg learns the declarations from
// the tools/list answers it passes.

// paramTools adds to s the tool sql, declaring Region (a string) and
// Count (an integer, nested), and sql_bad, whose x-mcp-header sits under
// items, where the specification forbids it (the SDK server accepts it:
// it only looks along properties).
func paramTools(s *testenv.MCPServer) {
	s.AddEchoTool(&mcp.Tool{Name: "sql", Description: "Runs SQL in a region.", InputSchema: json.RawMessage(`{"type":"object","properties":{
		"region":{"type":"string","x-mcp-header":"Region"},
		"opts":{"type":"object","properties":{"count":{"type":"integer","x-mcp-header":"Count"}}},
		"query":{"type":"string"}}}`)})
	s.AddEchoTool(&mcp.Tool{Name: "sql_bad", Description: "Declares a header where none may be.", InputSchema: json.RawMessage(`{"type":"object","properties":{
		"regions":{"type":"array","items":{"type":"string","x-mcp-header":"Region"}}}}`)})
}

func TestMCPParamHeaders(t *testing.T) {
	modes := []testenv.MCPMode{testenv.MCPStateless, testenv.MCPStatelessJSON}
	e := newMCPEnv(t, mcpPolicy(mcpBase), testenv.MCPServerConfig{}, modes...)
	b64 := func(s string) string { return "=?base64?" + base64.StdEncoding.EncodeToString([]byte(s)) + "?=" }
	for _, m := range modes {
		c := mcpCase{m, "2026-07-28"}
		t.Run(c.String(), func(t *testing.T) {
			s := e.peers[m]
			paramTools(s)
			ctx := mcpCtx(t)

			// The SDK client lists through agentg, which learns the
			// declarations and hides sql_bad (the SDK client itself would
			// keep it: it looks along properties only).
			cl := e.connect(t, c, nil)
			list, err := cl.ListTools(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			names := []string{}
			for _, tool := range list.Tools {
				names = append(names, tool.Name)
			}
			if !slices.Contains(names, "sql") || slices.Contains(names, "sql_bad") {
				t.Fatalf("tools/list through agentg: %v, want sql listed and sql_bad hidden", names)
			}
			waitMCPEvent(t, e.env, map[string]any{"rule": "builtin:mcp-param-declaration", "tool": "sql_bad", "decision": "deny"})

			// The SDK client mirrors the parameters (base64 for non-ASCII)
			// and agentg lets the agreeing call through.
			for _, region := range []string{"us-west1", "Zürich"} {
				args := map[string]any{"region": region, "opts": map[string]any{"count": 42}, "query": "select 1"}
				before := s.Calls("sql")
				res, err := callTool(t, cl, "sql", args)
				wantEcho(t, res, err, args)
				if s.Calls("sql") != before+1 {
					t.Fatal("the agreeing call did not run")
				}
				want := region
				if region != "us-west1" {
					want = b64(region)
				}
				var sent http.Header
				for _, rq := range s.Requests() {
					if strings.Contains(string(rq.Body), `"tools/call"`) && strings.Contains(string(rq.Body), region) {
						sent = rq.Header
					}
				}
				if sent.Get("Mcp-Param-Region") != want || sent.Get("Mcp-Param-Count") != "42" {
					t.Fatalf("the SDK client's call reached the server with Mcp-Param-Region %q, Mcp-Param-Count %q; want %q, 42",
						sent.Get("Mcp-Param-Region"), sent.Get("Mcp-Param-Count"), want)
				}
			}

			r := e.raw(t, c)
			call := func(tool string, args map[string]any) []byte {
				return r.Request(`21`, "tools/call", map[string]any{"name": tool, "arguments": args})
			}
			full := map[string]any{"region": "us-west1", "opts": map[string]any{"count": 42}}
			with := func(kv ...string) http.Header {
				h := r.Headers("tools/call", "sql")
				for i := 0; i+1 < len(kv); i += 2 {
					h[kv[i]] = append(h[kv[i]], kv[i+1])
				}
				return h
			}
			mismatches := []struct {
				name string
				body []byte
				hdr  http.Header
			}{
				{"Region differs", call("sql", full), with("Mcp-Param-Region", "eu-west1", "Mcp-Param-Count", "42")},
				{"Region missing", call("sql", full), with("Mcp-Param-Count", "42")},
				{"Count differs", call("sql", full), with("Mcp-Param-Region", "us-west1", "Mcp-Param-Count", "43")},
				{"Count in hex", call("sql", full), with("Mcp-Param-Region", "us-west1", "Mcp-Param-Count", "0x2a")},
				{"Region base64 of another value", call("sql", full), with("Mcp-Param-Region", b64("eu-west1"), "Mcp-Param-Count", "42")},
				{"Region twice", call("sql", full), with("Mcp-Param-Region", "us-west1", "Mcp-Param-Region", "eu-west1", "Mcp-Param-Count", "42")},
				{"Region for an absent parameter", call("sql", map[string]any{"query": "x"}), with("Mcp-Param-Region", "us-west1")},
				{"Region for a null parameter", call("sql", map[string]any{"region": nil}), with("Mcp-Param-Region", "null")},
				{"a call to sql_bad", call("sql_bad", map[string]any{"regions": []string{"a"}}), r.Headers("tools/call", "sql_bad")},
			}
			for i, tt := range mismatches {
				t.Run(tt.name, func(t *testing.T) {
					path := "/mcp/param-" + string(rune('a'+i))
					before := s.Calls("sql") + s.Calls("sql_bad")
					reply, err := r.Post(ctx, testenv.MCPPost{Path: path, Body: tt.body, Header: tt.hdr})
					if err != nil {
						t.Fatal(err)
					}
					msg := reply.ByID(`21`)
					if reply.Status != 400 || msg == nil {
						t.Fatalf("%d %q, want 400 with JSON-RPC error -32020 for id 21", reply.Status, reply.Body)
					}
					if rpc := decodeRPC(t, msg); rpc.Error == nil || rpc.Error.Code != -32020 || dataRule(rpc.Error.Data) != "builtin:mcp-header-mismatch" {
						t.Errorf("%s, want error -32020 with data.rule builtin:mcp-header-mismatch (agentg's, not the server's)", msg)
					}
					mcpNoRequest(t, r, s, path)
					if s.Calls("sql")+s.Calls("sql_bad") != before {
						t.Error("the tool ran")
					}
				})
			}
			waitMCPEvent(t, e.env, map[string]any{"rule": "builtin:mcp-header-mismatch", "tool": "sql", "decision": "deny"})

			// Agreeing raw headers pass (a value spelt 42.0 is the integer
			// 42), and an Mcp-Param header no declaration names is
			// forwarded as it came.
			hdr := with("Mcp-Param-Region", "us-west1", "Mcp-Param-Count", "42.0", "Mcp-Param-Tenant", "acme")
			reply, err := r.Post(ctx, testenv.MCPPost{Path: "/mcp/param-agree", Body: call("sql", full), Header: hdr})
			if err != nil {
				t.Fatal(err)
			}
			got := s.RequestsTo("/mcp/param-agree")
			if len(got) != 1 || got[0].Header.Get("Mcp-Param-Tenant") != "acme" || got[0].Header.Get("Mcp-Param-Region") != "us-west1" {
				t.Fatalf("agreeing Mcp-Param headers: %d %q; the server got %d request(s)", reply.Status, reply.Body, len(got))
			}
		})
	}
}

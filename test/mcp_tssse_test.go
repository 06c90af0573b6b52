package test

import (
	"net"
	"strings"
	"testing"

	"github.com/agentg/agentg/internal/testenv"
)

// startTSSSEServer runs the TypeScript SDK's SSEServerTransport
// (test/conformance/peers/sse_server.mjs) and returns it and its port.
func startTSSSEServer(t *testing.T) (*testenv.NodePeer, string) {
	t.Helper()
	if _, _, err := testenv.Node(); err != nil {
		t.Skipf("the TypeScript SDK peers need Node 22: %v", err)
	}
	p, err := testenv.StartNodePeer("sse_server.mjs", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	_, port, err := net.SplitHostPort(p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	return p, port
}

// Issue 14, item 10: the TypeScript SDK's HTTP+SSE server answers every
// POST 202 with the text "Accepted" and no Content-Type. That is the
// transport's acknowledgement, not a message, and passes: the Go SDK's SSE
// client works through agentg with it (before, every POST got 502 although
// the server ran the call), and a denied tool is still refused before the
// server sees it.
func TestMCPTypeScriptSSEServer(t *testing.T) {
	peer, port := startTSSSEServer(t)
	e := &mcpEnv{env: startProxyWith(t, mcpPolicy(mcpBase), nil, &tlsOpts{})}
	cfg := e.via("", "")
	cfg.Revision = "2024-11-05"
	cl, err := testenv.ConnectMCP(mcpCtx(t), testenv.MCPLegacySSE, "http://mcp.test:"+port+"/mcp/sse", cfg)
	if err != nil {
		t.Fatalf("the Go SDK's SSE client through agentg to the TypeScript SSE server: %v", err)
	}
	t.Cleanup(func() { cl.Close() })

	args := map[string]any{"via": "agentg"}
	res, err := callTool(t, cl, "echo", args)
	wantEcho(t, res, err, args)
	res, err = callTool(t, cl, "delete_project", map[string]any{"project": "p"})
	wantDenied(t, res, err, "no-delete")
	// A later call the server runs: had the denied one reached it, it
	// would have printed it first.
	res, err = callTool(t, cl, "echo", map[string]any{"n": 2})
	wantEcho(t, res, err, map[string]any{"n": 2})
	waitFor(t, func() bool { return strings.Count(peer.Output(), "ran echo") == 2 }, "the server to run both echo calls")
	if strings.Contains(peer.Output(), "ran delete_project") {
		t.Fatalf("the denied tool ran:\n%s", peer.Output())
	}
	tl, err := cl.ListTools(mcpCtx(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range tl.Tools {
		if tool.Name == "delete_project" {
			t.Fatal("tools/list shows delete_project, which no-delete denies")
		}
	}
	waitMCPEventWhere(t, e.env, "the denied call", func(ev event) bool {
		return ev.str("method") == "tools/call" && ev.str("tool") == "delete_project" && ev.str("decision") == "deny" && ev.str("rule") == "no-delete"
	})
}

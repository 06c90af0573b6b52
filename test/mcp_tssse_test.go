package test

import (
	"encoding/json"
	"net"
	"os/exec"
	"path/filepath"
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

// tsStep is one line sse_client.mjs prints.
type tsStep struct {
	Step   string          `json:"step"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    *int            `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
}

// Issue 14, item 10, with the TypeScript SDK at both ends: its
// SSEClientTransport (test/conformance/peers/sse_client.mjs), through
// agentg as its HTTP proxy, to its SSEServerTransport. The calls work, the
// denied tool is refused and never runs, and tools/list hides it.
func TestMCPTypeScriptSSEClient(t *testing.T) {
	peer, port := startTSSSEServer(t)
	e := &mcpEnv{env: startProxyWith(t, mcpPolicy(mcpBase), nil, &tlsOpts{})}
	node, dir, err := testenv.Node()
	if err != nil {
		t.Fatal(err)
	}
	ctx := mcpCtx(t)
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "peers", "sse_client.mjs"),
		"http://mcp.test:"+port+"/mcp/sse", e.proxyURL("", "").String())
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sse_client.mjs: %v\n%s", err, out)
	}
	steps := map[string]tsStep{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var s tsStep
		if json.Unmarshal([]byte(line), &s) != nil {
			t.Fatalf("sse_client.mjs printed %q", line)
		}
		steps[s.Step] = s
	}
	for _, name := range []string{"connect", "list", "echo", "echo2"} {
		if s := steps[name]; s.Error != nil || s.Result == nil {
			t.Fatalf("the TypeScript client's %s through agentg: %+v\n%s", name, s.Error, out)
		}
	}
	if strings.Contains(string(steps["list"].Result), "delete_project") {
		t.Fatalf("tools/list shows delete_project: %s", steps["list"].Result)
	}
	if !strings.Contains(string(steps["echo"].Result), `\"from\":\"ts\"`) {
		t.Fatalf("echo: %s", steps["echo"].Result)
	}
	d := steps["delete"]
	if d.Error == nil || d.Error.Code == nil || *d.Error.Code != -32001 || dataRule(d.Error.Data) != "no-delete" {
		t.Fatalf("delete_project: %+v %s, want error -32001 naming no-delete", d.Error, d.Result)
	}
	waitFor(t, func() bool { return strings.Count(peer.Output(), "ran echo") == 2 }, "the server to run both echo calls")
	if strings.Contains(peer.Output(), "ran delete_project") {
		t.Fatalf("the denied tool ran:\n%s", peer.Output())
	}
}

package test

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentg/agentg/internal/testenv"
)

// Issue 17, protocol completeness through the gateway: an upstream that
// speaks only 2024-11-05 HTTP+SSE beside a Streamable HTTP one, with
// prefixes, for the Go SDK's client and the TypeScript SDK's; and the
// parent of every event of a call.

// startMixedGateway puts alpha (prefix "a") and beta behind agentg's
// gateway, alpha in mode alphaMode, beta in Streamable HTTP.
func startMixedGateway(t *testing.T, alphaMode testenv.MCPMode) *gatewayPeers {
	t.Helper()
	p := &gatewayPeers{}
	var err error
	if p.alpha, err = testenv.StartMCPServer(testenv.MCPServerConfig{Mode: alphaMode, Name: "alpha-srv"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.alpha.Close)
	if p.beta, err = testenv.StartMCPServer(testenv.MCPServerConfig{Mode: testenv.MCPStateful, Name: "beta-srv"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.beta.Close)
	p.adm = startAdminGateway(t, gatewayPolicy("http://"+p.alpha.Addr+"/mcp", "http://"+p.beta.Addr+"/mcp", ""))
	p.ag = p.adm.Agentg
	p.endpoint = "http://" + p.ag.Gateway + "/mcp"
	return p
}

// tsGatewayClient runs the TypeScript SDK's client (gateway_client.mjs)
// against endpoint: it lists the tools and calls each of tools. It
// returns each step's outcome by name.
func tsGatewayClient(t *testing.T, ctx context.Context, endpoint string, tools ...string) map[string]tsStep {
	t.Helper()
	node, dir, err := testenv.Node()
	if err != nil {
		t.Skip(err)
	}
	cmd := exec.CommandContext(ctx, node, append([]string{filepath.Join(dir, "peers", "gateway_client.mjs"), endpoint}, tools...)...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gateway_client.mjs: %v\n%s", err, out)
	}
	steps := map[string]tsStep{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var s tsStep
		if json.Unmarshal([]byte(line), &s) != nil {
			t.Fatalf("gateway_client.mjs printed %q", line)
		}
		steps[s.Step] = s
	}
	return steps
}

// TestGatewayLegacyUpstreamServed: alpha speaks only the 2024-11-05
// HTTP+SSE transport and refuses the gateway's Streamable HTTP
// initialize; the gateway falls back (a report event says so) and the Go
// SDK's and the TypeScript SDK's clients see the merged list of both
// servers and call tools on both; the tool the policy denies on the old
// server is hidden and never runs.
func TestGatewayLegacyUpstreamServed(t *testing.T) {
	p := startMixedGateway(t, testenv.MCPLegacySSE)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	c := connectGateway(t, ctx, p.endpoint, "2025-11-25", nil)
	names := toolNames(t, ctx, c)
	for _, want := range []string{"a.echo", "beta.echo", "a.files.read"} {
		if !slices.Contains(names, want) {
			t.Errorf("tools/list lacks %s: %v\n%s", want, names, gatewayLog(t, p.ag))
		}
	}
	if slices.Contains(names, "a.delete_project") {
		t.Errorf("tools/list has the denied a.delete_project: %v", names)
	}
	for _, tool := range []string{"a.echo", "beta.echo"} {
		res, err := c.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: map[string]any{"msg": "go " + tool}})
		if err != nil {
			t.Fatalf("call %s: %v\n%s", tool, err, gatewayLog(t, p.ag))
		}
		if !strings.Contains(gwText(res), "go "+tool) {
			t.Errorf("call %s: %q", tool, gwText(res))
		}
	}
	if _, err := c.CallTool(ctx, &mcp.CallToolParams{Name: "a.delete_project", Arguments: map[string]any{}}); err == nil {
		t.Fatal("a.delete_project: called")
	}

	steps := tsGatewayClient(t, ctx, p.endpoint, "a.echo", "beta.echo", "a.delete_project")
	for _, name := range []string{"connect", "list", "call a.echo", "call beta.echo"} {
		if s := steps[name]; s.Error != nil || s.Result == nil {
			t.Fatalf("TypeScript client, step %s: %+v\n%s", name, s, gatewayLog(t, p.ag))
		}
	}
	var tsNames []string
	if err := json.Unmarshal(steps["list"].Result, &tsNames); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(tsNames, "a.echo") || !slices.Contains(tsNames, "beta.echo") || slices.Contains(tsNames, "a.delete_project") {
		t.Errorf("the TypeScript client listed %v", tsNames)
	}
	if s := steps["call a.delete_project"]; s.Error == nil && !strings.Contains(string(s.Result), `"isError":true`) {
		t.Errorf("a.delete_project through the TypeScript client: %s", s.Result)
	}

	// A later call the old server ran, after both denials.
	if _, err := c.CallTool(ctx, &mcp.CallToolParams{Name: "a.echo", Arguments: map[string]any{}}); err != nil {
		t.Fatal(err)
	}
	if n := p.alpha.Calls("echo"); n != 3 {
		t.Errorf("alpha ran echo %d times, want 3", n)
	}
	if n := p.beta.Calls("echo"); n != 2 {
		t.Errorf("beta ran echo %d times, want 2", n)
	}
	if n := p.alpha.Calls(testenv.MCPToolDelete); n != 0 {
		t.Errorf("alpha ran the denied tool %d times", n)
	}
	if _, err := p.ag.WaitEvent(ctx, func(m map[string]any) bool {
		return m["door"] == "gateway" && m["server"] == "alpha" && m["action"] == "legacy-transport" && m["decision"] == "report"
	}); err != nil {
		t.Fatalf("no legacy-transport event: %v\n%s", err, gatewayLog(t, p.ag))
	}
}

// TestGatewayEventParent: the guard's events of a call through the
// gateway (the allowed call and the denied one) name, as their parent,
// the event of the gateway request that carried the call.
func TestGatewayEventParent(t *testing.T) {
	p := startMixedGateway(t, testenv.MCPStateful)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := connectGateway(t, ctx, p.endpoint, "2025-11-25", nil)
	if _, err := c.CallTool(ctx, &mcp.CallToolParams{Name: "beta.echo", Arguments: map[string]any{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CallTool(ctx, &mcp.CallToolParams{Name: "a.delete_project", Arguments: map[string]any{}}); err == nil {
		t.Fatal("a.delete_project: called")
	}
	for _, want := range []struct{ server, tool, decision string }{{"beta", "echo", "allow"}, {"alpha", "delete_project", "deny"}} {
		ev, err := p.ag.WaitEvent(ctx, func(m map[string]any) bool {
			return m["kind"] == "mcp" && m["door"] == "gateway" && m["method"] == "tools/call" &&
				m["server"] == want.server && m["tool"] == want.tool && m["decision"] == want.decision
		})
		if err != nil {
			t.Fatalf("%v\n%s", err, gatewayLog(t, p.ag))
		}
		parent, _ := ev["parent"].(string)
		if parent == "" {
			t.Fatalf("%s.%s (%s): no parent: %v", want.server, want.tool, want.decision, ev)
		}
		req, err := p.ag.WaitEvent(ctx, func(m map[string]any) bool { return m["id"] == parent })
		if err != nil {
			t.Fatalf("the parent %s of %s.%s: %v\n%s", parent, want.server, want.tool, err, gatewayLog(t, p.ag))
		}
		if req["kind"] != "http" || req["door"] != "gateway" || req["method"] != "POST" || req["agent"] != ev["agent"] {
			t.Errorf("the parent of %s.%s is %v", want.server, want.tool, req)
		}
	}
}

package test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentg/agentg/internal/testenv"
)

// Issue 17, the gateway door: agentg as one MCP server in front of the
// policy's servers, every call decided by the same guard as through the
// proxy. The upstreams are Go SDK servers on loopback; the clients the Go
// SDK's (and the TypeScript SDK's, gateway_ts_test.go).

// gatewayPeers are two Go SDK servers, alpha (prefix "a") and beta
// (default prefix, its name), behind one agentg gateway.
type gatewayPeers struct {
	alpha, beta *testenv.MCPServer
	ag          *testenv.Agentg
	adm         *adminAgentg
	endpoint    string // the gateway's MCP URL
}

// gatewayPolicy puts alpha and beta behind the gateway with the rules
// every gateway test shares: alpha's delete is denied, AWS keys redacted
// both ways, beta's archive tool rate-limited; tools are more tool rules.
func gatewayPolicy(alpha, beta, tools string) string {
	return `
mcp:
  servers:
    - name: alpha
      endpoint: ` + alpha + `
      prefix: a
      timeout: 2s
    - name: beta
      endpoint: ` + beta + `
      timeout: 2s
  tools:
    - deny: alpha.delete_project
      id: no-alpha-delete
` + tools + `  redact:
    - pattern: "AKIA[0-9A-Z]{16}"
      id: aws-key
  rate_limits:
    - tools: beta.archive
      limit: 2/h
      id: archive-rate
`
}

func startGateway(t *testing.T, mode testenv.MCPMode, tools string) *gatewayPeers {
	t.Helper()
	p := &gatewayPeers{}
	var err error
	if p.alpha, err = testenv.StartMCPServer(testenv.MCPServerConfig{Mode: mode, Name: "alpha-srv"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.alpha.Close)
	if p.beta, err = testenv.StartMCPServer(testenv.MCPServerConfig{Mode: mode, Name: "beta-srv"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.beta.Close)
	p.adm = startAdminGateway(t, gatewayPolicy("http://"+p.alpha.Addr+"/mcp", "http://"+p.beta.Addr+"/mcp", tools))
	p.ag = p.adm.Agentg
	p.endpoint = "http://" + p.ag.Gateway + "/mcp"
	return p
}

func startGatewayAgentg(t *testing.T, policy string) *testenv.Agentg {
	t.Helper()
	return startAdminGateway(t, policy).Agentg
}

// gatewayFloor opens loopback to the gateway's upstreams: they are
// reached through agentg's checked client, under the host and IP rules
// like any upstream, and loopback is closed unless a rule opens it.
const gatewayFloor = "ips:\n  - allow: 127.0.0.1/32\nhosts:\n  - allow: localhost\n"

// withFloor is policy with gatewayFloor, unless it has host or IP rules
// of its own.
func withFloor(policy string) string {
	for _, key := range []string{"ips:", "hosts:"} {
		if strings.HasPrefix(policy, key) || strings.Contains(policy, "\n"+key) {
			return policy
		}
	}
	return gatewayFloor + policy
}

// startAdminGateway starts agentg with its gateway on a free loopback
// port, and a client of its admin API.
func startAdminGateway(t *testing.T, policy string) *adminAgentg {
	t.Helper()
	ag := startAdminAgentg(t, testenv.AgentgConfig{Policy: withFloor(policy), Args: []string{"--gateway", "127.0.0.1:0"}})
	if ag.Gateway == "" {
		t.Fatal("agentg did not say where its gateway listens")
	}
	return ag
}

// connectGateway connects a Go SDK client to the gateway at revision rev.
func connectGateway(t *testing.T, ctx context.Context, endpoint, rev string, opts *mcp.ClientOptions) *testenv.MCPClient {
	t.Helper()
	mode := testenv.MCPStateful
	if rev == "2024-11-05" {
		mode = testenv.MCPLegacySSE
	}
	c, err := testenv.ConnectMCP(ctx, mode, endpoint, testenv.MCPClientConfig{Revision: rev, Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func toolNames(t *testing.T, ctx context.Context, c *testenv.MCPClient) []string {
	t.Helper()
	var names []string
	for tool, err := range c.Tools(ctx, nil) {
		if err != nil {
			t.Fatalf("tools/list: %v", err)
		}
		names = append(names, tool.Name)
	}
	return names
}

// TestGatewayMergedCatalogue: one client sees both servers' tools under
// their prefixes, calls tools on both, and never sees or runs the tool
// the policy denies, in every revision: the 2024-11-05 HTTP+SSE
// transport, the three with sessions, and the stateless one.
func TestGatewayMergedCatalogue(t *testing.T) {
	for _, rev := range []string{"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"} {
		t.Run(rev, func(t *testing.T) {
			mode := testenv.MCPStateful
			if rev == "2026-07-28" {
				mode = testenv.MCPStateless
			}
			p := startGateway(t, mode, "")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c := connectGateway(t, ctx, p.endpoint, rev, nil)
			names := toolNames(t, ctx, c)
			for _, want := range []string{"a.echo", "beta.echo", "beta.delete_project", "a.files.read"} {
				if !slices.Contains(names, want) {
					t.Errorf("tools/list lacks %s: %v", want, names)
				}
			}
			for _, hidden := range []string{"a.delete_project", "alpha.echo", "echo"} {
				if slices.Contains(names, hidden) {
					t.Errorf("tools/list has %s: %v", hidden, names)
				}
			}
			for _, tc := range []struct {
				tool string
				srv  *testenv.MCPServer
			}{{"a.echo", p.alpha}, {"beta.echo", p.beta}} {
				res, err := c.CallTool(ctx, &mcp.CallToolParams{Name: tc.tool, Arguments: map[string]any{"msg": "hi " + tc.tool}})
				if err != nil {
					t.Fatalf("call %s: %v", tc.tool, err)
				}
				if !strings.Contains(gwText(res), "hi "+tc.tool) {
					t.Errorf("call %s: %q", tc.tool, gwText(res))
				}
				if n := tc.srv.Calls("echo"); n != 1 {
					t.Errorf("%s: the server ran echo %d times, want 1", tc.tool, n)
				}
			}
			// The denied tool: refused by the guard, never run.
			_, err := c.CallTool(ctx, &mcp.CallToolParams{Name: "a.delete_project", Arguments: map[string]any{}})
			if err == nil {
				t.Fatal("a.delete_project: called")
			}
			ev, err := p.ag.WaitEvent(ctx, func(m map[string]any) bool {
				return m["kind"] == "mcp" && m["door"] == "gateway" && m["tool"] == "delete_project" && m["decision"] == "deny"
			})
			if err != nil {
				t.Fatalf("%v\n%s", err, gatewayLog(t, p.ag))
			}
			if ev["rule"] != "no-alpha-delete" {
				t.Errorf("deny event: rule %v", ev["rule"])
			}
			// A later call the same server saw, so the denied one was
			// decided before it: its count is still zero.
			if _, err := c.CallTool(ctx, &mcp.CallToolParams{Name: "a.echo", Arguments: map[string]any{}}); err != nil {
				t.Fatal(err)
			}
			if n := p.alpha.Calls("echo"); n != 2 {
				t.Errorf("alpha ran echo %d times, want 2", n)
			}
			if n := p.alpha.Calls(testenv.MCPToolDelete); n != 0 {
				t.Errorf("alpha ran the denied tool %d times", n)
			}
			// An allowed call's event: same fields as through the proxy, door gateway.
			if _, err := p.ag.WaitEvent(ctx, func(m map[string]any) bool {
				return m["door"] == "gateway" && m["server"] == "beta" && m["tool"] == "echo" && m["method"] == "tools/call" && m["decision"] == "allow"
			}); err != nil {
				t.Fatalf("%v\n%s", err, gatewayLog(t, p.ag))
			}
		})
	}
}

// gatewayLog is everything agentg wrote: its event log and stderr.
func gatewayLog(t *testing.T, ag *testenv.Agentg) string {
	t.Helper()
	b, err := os.ReadFile(ag.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + ag.Stderr()
}

func gwText(r *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range r.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// TestGatewayTypeScriptClient: the TypeScript SDK's Streamable HTTP
// client sees the merged list and calls tools on both servers; the denied
// tool is hidden, refused, and never runs.
func TestGatewayTypeScriptClient(t *testing.T) {
	node, dir, err := testenv.Node()
	if err != nil {
		t.Skip(err)
	}
	p := startGateway(t, testenv.MCPStateful, "")
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "peers", "gateway_client.mjs"), p.endpoint, "a.echo", "beta.echo", "a.delete_project")
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
	for _, name := range []string{"connect", "list", "call a.echo", "call beta.echo"} {
		if s := steps[name]; s.Error != nil || s.Result == nil {
			t.Fatalf("step %s: %+v\n%s", name, s, out)
		}
	}
	var names []string
	if err := json.Unmarshal(steps["list"].Result, &names); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(names, "a.echo") || !slices.Contains(names, "beta.echo") || slices.Contains(names, "a.delete_project") {
		t.Errorf("the TypeScript client listed %v", names)
	}
	if !strings.Contains(string(steps["call a.echo"].Result), `\"from\":\"ts\"`) && !strings.Contains(string(steps["call a.echo"].Result), `"from":"ts"`) {
		t.Errorf("a.echo: %s", steps["call a.echo"].Result)
	}
	if s := steps["call a.delete_project"]; s.Error == nil {
		if !strings.Contains(string(s.Result), `"isError":true`) {
			t.Errorf("a.delete_project: %s", s.Result)
		}
	}
	if p.alpha.Calls("echo") != 1 || p.beta.Calls("echo") != 1 || p.alpha.Calls(testenv.MCPToolDelete) != 0 {
		t.Errorf("runs: alpha echo %d, beta echo %d, alpha delete %d", p.alpha.Calls("echo"), p.beta.Calls("echo"), p.alpha.Calls(testenv.MCPToolDelete))
	}
}

// TestGatewayPagination: servers that page their lists (100 a page) with
// 600 tools each are read whole, and the merged list of 1200 and more is
// paged to the client (the SDK's 1000 a page) with cursors of the
// gateway's own; every name arrives once.
func TestGatewayPagination(t *testing.T) {
	var srvs [2]*testenv.MCPServer
	for i := range srvs {
		s, err := testenv.StartMCPServer(testenv.MCPServerConfig{Mode: testenv.MCPStateful, PageSize: 100, Filler: 600})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		srvs[i] = s
	}
	ag := startGatewayAgentg(t, `mcp:
  servers:
    - name: one
      endpoint: http://`+srvs[0].Addr+`/mcp
      timeout: 30s
    - name: two
      endpoint: http://`+srvs[1].Addr+`/mcp
      timeout: 30s
`)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	c := connectGateway(t, ctx, "http://"+ag.Gateway+"/mcp", "2025-11-25", nil)
	first, err := c.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if first.NextCursor == "" {
		t.Fatalf("one page of %d tools: the merged list was not paged", len(first.Tools))
	}
	names := toolNames(t, ctx, c)
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			t.Fatalf("%s listed twice", n)
		}
		seen[n] = true
	}
	for _, want := range []string{"one.filler_000", "one.filler_599", "two.filler_000", "two.filler_599", "one.echo", "two.echo"} {
		if !seen[want] {
			t.Errorf("%s is not listed", want)
		}
	}
	if len(names) < 1200 {
		t.Errorf("%d tools listed", len(names))
	}
}

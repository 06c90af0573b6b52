package test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentg/agentg/gateway/auth"
	"github.com/agentg/agentg/internal/testenv"
)

// TestGatewayAuthBearer: with a gateway: section, `agentg serve
// --gateway` asks every request for a credential (gateway/auth in front
// of the door). Without one, or with a wrong one, the answer is 401 with
// WWW-Authenticate and one event, and nothing reaches the upstream: its
// request log stays empty until the agent with the right token comes,
// whose calls then run as that agent.
func TestGatewayAuthBearer(t *testing.T) {
	up, err := testenv.StartMCPServer(testenv.MCPServerConfig{Mode: testenv.MCPStateful, Name: "up"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	tok, digest, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	testenv.Secrets(t, tok)
	ag := startAdminGateway(t, `agents:
  - name: coder
gateway:
  tokens:
    - {agent: coder, sha256: `+digest+`, id: coder-laptop}
mcp:
  servers:
    - name: up
      endpoint: http://`+up.Addr+`/mcp
`)
	endpoint := "http://" + ag.Gateway + "/mcp"
	ctx := gwCtx(t)

	for _, bearer := range []string{"", "Bearer not-the-token"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, endpoint,
			strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if bearer != "" {
			req.Header.Set("Authorization", bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
			t.Fatalf("%q: %s, WWW-Authenticate %q; want 401 with a Bearer challenge", bearer, resp.Status, resp.Header.Get("WWW-Authenticate"))
		}
	}
	if _, err := ag.WaitEvents(ctx, 2, func(m map[string]any) bool {
		return m["rule"] == "builtin:gateway-auth" && m["door"] == "gateway"
	}); err != nil {
		t.Fatal(err)
	}
	if n := len(up.Requests()); n != 0 {
		t.Fatalf("the upstream saw %d requests from refused clients", n)
	}

	// The agent with its token: the upstream is reached, as coder.
	c, err := testenv.ConnectMCP(ctx, testenv.MCPStateful, endpoint, testenv.MCPClientConfig{
		Revision: "2025-11-25", Header: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if names := toolNames(t, ctx, c); !slices.Contains(names, "up.echo") {
		t.Fatalf("tools/list: %v", names)
	}
	if _, err := c.CallTool(ctx, &mcp.CallToolParams{Name: "up.echo", Arguments: map[string]any{"text": "hi"}}); err != nil {
		t.Fatal(err)
	}
	if up.Calls("echo") != 1 || len(up.Requests()) == 0 {
		t.Fatalf("upstream: %d echo calls, %d requests", up.Calls("echo"), len(up.Requests()))
	}
	if _, err := ag.WaitEvent(ctx, func(m map[string]any) bool {
		return m["kind"] == "mcp" && m["method"] == "tools/call" && m["agent"] == "coder" && m["door"] == "gateway"
	}); err != nil {
		t.Fatal(err)
	}
}

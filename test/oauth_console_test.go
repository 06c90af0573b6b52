package test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The console's Connect button: a person signed in to the console
// connects an oauth binding with a click (the authorization page opens
// in a new tab, the provider sends the browser back to agentg's
// callback), and the agent's calls then carry agentg's token. The
// binding names its resource, so it is connected before any call.
func TestConsoleOAuthConnect(t *testing.T) {
	m, up, base := startOIDCMCP(t)
	a := startAgentgEnv(t, oidcPolicy(m, `, resource: "`+base+`/mcp"`), "AGENTG_TEST_OIDC_SECRET="+m.ClientSecret)
	tok, err := a.AdminToken()
	if err != nil {
		t.Fatal(err)
	}
	b := startBrowser(t)
	b.signIn(t, a.AdminAddr, tok)
	b.do(t, "open the MCP view", chromedp.Navigate("http://"+a.AdminAddr+"/console/#mcp"))
	b.waitJS(t, "the binding, not connected", hasCard("#oauth-bindings li", "upstream", "not connected"))
	b.do(t, "click Connect", chromedp.Click(chromedp.CSS("#oauth-bindings li button")))
	b.waitJS(t, "the binding connected", hasCard("#oauth-bindings li", "upstream", "· connected", "Connect again"))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(a.URL())}}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: base + "/mcp", HTTPClient: hc}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatalf("connect after the console connected the binding: %v", err)
	}
	defer cs.Close()
	if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}}); err != nil || res.IsError {
		t.Fatalf("whoami = %+v, %v", res, err)
	}
	up.mu.Lock()
	seen := append([]string(nil), up.seen...)
	up.mu.Unlock()
	if len(seen) == 0 {
		t.Fatal("the server saw no token")
	}
	page := b.text()
	for _, v := range append(seen, m.ClientSecret) {
		if strings.Contains(page, v) {
			t.Fatal("the console shows a token or the client secret")
		}
	}
	if _, err := a.WaitEvent(ctx, func(ev map[string]any) bool {
		return ev["rule"] == "oauth:connect-completed" && ev["binding"] == "upstream"
	}); err != nil {
		t.Fatal(err)
	}
}

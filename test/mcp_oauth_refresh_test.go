package test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/agentg/agentg/admin"
	"github.com/agentg/agentg/internal/testenv"
)

// A refresh token in use: an official Go SDK MCP server behind the SDK's
// own bearer-token check and protected-resource metadata, an OpenID
// provider (mockoidc) that issues refresh tokens, and a client that
// holds no credential. Once connected, the server revokes the access
// token it saw; agentg, answered 401, refreshes and sends the call once
// more, and the client never learns any of it.

// oauthMCP is the MCP server: its verifier accepts the provider's tokens
// until revoked.
type oauthMCP struct {
	mu      sync.Mutex
	seen    []string
	revoked map[string]bool
}

func (o *oauthMCP) verify(m *mockoidc.MockOIDC) auth.TokenVerifier {
	return func(ctx context.Context, tok string, _ *http.Request) (*auth.TokenInfo, error) {
		o.mu.Lock()
		defer o.mu.Unlock()
		if o.revoked[tok] {
			return nil, auth.ErrInvalidToken
		}
		if _, err := m.Keypair.VerifyJWT(tok, m.Now); err != nil {
			return nil, auth.ErrInvalidToken
		}
		o.seen = append(o.seen, tok)
		return &auth.TokenInfo{Expiration: time.Now().Add(time.Hour)}, nil
	}
}

func (o *oauthMCP) revokeLast() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	last := o.seen[len(o.seen)-1]
	o.revoked[last] = true
	return last
}

// startOIDCMCP starts the provider and the MCP server behind the SDK's
// bearer check; base is the server's origin, on localhost.
func startOIDCMCP(t *testing.T) (m *mockoidc.MockOIDC, up *oauthMCP, base string) {
	t.Helper()
	m, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base = "http://localhost:" + strings.TrimPrefix(ln.Addr().String(), "127.0.0.1:")
	srv := mcp.NewServer(&mcp.Implementation{Name: "oauth-upstream", Version: "1"}, nil)
	mcp.AddTool(srv, &mcp.Tool{Name: "whoami"}, func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ok"}}}, nil, nil
	})
	up = &oauthMCP{revoked: map[string]bool{}}
	prm := base + "/.well-known/oauth-protected-resource/mcp"
	mux := http.NewServeMux()
	mux.Handle("/mcp", auth.RequireBearerToken(up.verify(m), &auth.RequireBearerTokenOptions{ResourceMetadataURL: prm})(
		mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, &mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true})))
	mux.Handle("/.well-known/oauth-protected-resource/mcp", auth.ProtectedResourceMetadataHandler(&oauthex.ProtectedResourceMetadata{
		Resource: base + "/mcp", AuthorizationServers: []string{m.Issuer()}}))
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return m, up, base
}

// oidcPolicy binds the MCP server at base to the provider's client.
func oidcPolicy(m *mockoidc.MockOIDC, extra string) string {
	return `default: deny
ips:
  - allow: 127.0.0.1/32
hosts:
  - allow: localhost
resolve:
  localhost: [127.0.0.1]
credentials:
  secrets:
    oidc: {env: AGENTG_TEST_OIDC_SECRET}
  bindings:
    - id: upstream
      host: localhost
      path: /mcp
      insecure_http: true
      oauth: {client_id: ` + m.ClientID + `, client_secret: oidc, token_auth: client_secret_post, scopes: [openid]` + extra + `}
`
}

func TestMCPOAuthRefreshThroughAgentg(t *testing.T) {
	m, up, base := startOIDCMCP(t)
	a := startAgentgEnv(t, oidcPolicy(m, ""), "AGENTG_TEST_OIDC_SECRET="+m.ClientSecret)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(a.URL())}}
	client := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil)
	connect := func() (*mcp.ClientSession, error) {
		return client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: base + "/mcp", HTTPClient: hc}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	}
	// No token yet: the agent's call is refused in JSON-RPC, naming what a
	// person must do.
	if _, err := connect(); err == nil || !strings.Contains(err.Error(), "agentg oauth connect upstream") {
		t.Fatalf("connect before any token = %v, want agentg's refusal naming the connect command", err)
	}
	if _, err := a.WaitEvent(ctx, func(ev map[string]any) bool { return ev["rule"] == "oauth:refused" && ev["binding"] == "upstream" }); err != nil {
		t.Fatal(err)
	}
	personConnects(t, ctx, a, "upstream")
	cs, err := connect()
	if err != nil {
		t.Fatalf("connect once connected: %v", err)
	}
	defer cs.Close()
	call := func() {
		t.Helper()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
		if err != nil || res.IsError || res.Content[0].(*mcp.TextContent).Text != "ok" {
			t.Fatalf("whoami = %+v, %v", res, err)
		}
	}
	call()
	// A policy reload keeps the token: the broker outlives a load.
	tok, err := a.AdminToken()
	if err != nil {
		t.Fatal(err)
	}
	ac, err := admin.NewClient(a.AdminAddr, tok)
	if err != nil {
		t.Fatal(err)
	}
	if err := ac.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	call()
	first := up.revokeLast()
	// The provider's tokens are JWTs of the second they are issued in:
	// one issued later differs.
	m.FastForward(2 * time.Second)
	call() // 401, refresh, sent once more: the agent sees only the answer
	if _, err := a.WaitEvent(ctx, func(ev map[string]any) bool {
		return ev["rule"] == "oauth:token-refreshed" && ev["binding"] == "upstream"
	}); err != nil {
		t.Fatal(err)
	}
	up.mu.Lock()
	seen := append([]string(nil), up.seen...)
	up.mu.Unlock()
	if seen[len(seen)-1] == first {
		t.Fatal("the server saw the revoked token again, not a refreshed one")
	}
	// What the admin API says of the binding: connected, never a value.
	items, err := ac.OAuthBindings(ctx)
	if err != nil || len(items) != 1 || !items[0].Connected || !items[0].Refresh || items[0].NeedsConnect != "" {
		t.Fatalf("GET /v1/oauth = %+v, %v", items, err)
	}
	api, _ := json.Marshal(items)
	a.Stop(5 * time.Second)
	logb, _ := os.ReadFile(a.LogFile)
	for _, text := range []string{string(logb), a.Stderr(), string(api)} {
		for _, v := range append(seen, m.ClientSecret) {
			if strings.Contains(text, v) {
				t.Fatalf("agentg wrote a token or the client secret")
			}
		}
	}
}

func startAgentgEnv(t *testing.T, policy string, env ...string) *testenv.Agentg {
	t.Helper()
	a, err := testenv.StartAgentg(testenv.AgentgConfig{Dir: t.TempDir(), Policy: policy, Env: append(os.Environ(), env...)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Stop(5 * time.Second) })
	return a
}

// personConnects runs agentg oauth connect and opens the URL it prints,
// following the provider's redirect to agentg's callback.
func personConnects(t *testing.T, ctx context.Context, a *testenv.Agentg, binding string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, a.Binary, "oauth", "connect", binding, "--admin", a.AdminAddr, "--data-dir", a.DataDir, "--timeout", "30s")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	var authURL string
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); strings.HasPrefix(l, "http") {
			authURL = l
			break
		}
	}
	go io.Copy(io.Discard, out)
	if authURL == "" {
		cmd.Wait()
		t.Fatalf("agentg oauth connect printed no URL: %s", stderr.String())
	}
	browser := &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if h := req.URL.Hostname(); h != "127.0.0.1" && h != "localhost" {
			return errors.New("redirect off loopback")
		}
		return nil
	}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	resp, err := browser.Do(req)
	if err != nil {
		t.Fatalf("the browser: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("agentg oauth connect: %v: %s (callback page: %s)", err, stderr.String(), body)
	}
	if !strings.Contains(string(body), "agentg is connected") {
		t.Fatalf("callback page: %s", body)
	}
}

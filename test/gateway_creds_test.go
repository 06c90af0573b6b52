package test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/agentg/agentg/gateway/auth"
	"github.com/agentg/agentg/internal/testenv"
)

// Issue 17 × issue 16: the credentials of auth fan-out on the gateway's
// upstream requests. A binding attaches to a gateway upstream call
// exactly as it would to the same agent's request through the proxy:
// chosen for the agent the gateway authenticated (never agentg), by
// server (server:), host and path; the leak guard swaps a placeholder
// only toward a server a binding of its secret names for that agent; the
// upstream (Go SDK servers over HTTPS on loopback) sees the credential,
// the client and everything agentg writes never do.

const (
	gwAlphaKey = "gw-alpha-7f3c91d0e2b4-KEY"
	gwBetaKey  = "gw-beta-5a1e88c4f0d7-KEY"
)

// noteTool is a tool that keeps the arguments it got and answers
// "noted": it never hands back what it was sent, so the client reads no
// value a placeholder stood for.
type noteTool struct {
	mu   sync.Mutex
	args []string
}

func (n *noteTool) add(srv *mcp.Server) {
	mcp.AddTool(srv, &mcp.Tool{Name: "note"}, func(_ context.Context, _ *mcp.CallToolRequest, in map[string]any) (*mcp.CallToolResult, any, error) {
		n.mu.Lock()
		n.args = append(n.args, strings.TrimSpace(stringOf(in["text"])))
		n.mu.Unlock()
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "noted"}}}, nil, nil
	})
}

func stringOf(v any) string {
	s, _ := v.(string)
	return s
}

func (n *noteTool) all() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.args)
}

// gwCredsPeers is the HTTPS upstreams and the agentg in front of them.
type gwCredsPeers struct {
	alpha, beta *testenv.MCPServer
	notes       *noteTool // alpha's note tool
	ag          *adminAgentg
	endpoint    string
	coder       string // coder's gateway token
	other       string // other's
}

func startGatewayCreds(t *testing.T) *gwCredsPeers {
	t.Helper()
	dir := t.TempDir()
	upCA, err := testenv.NewCA("gateway upstream root")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "upstream-ca.pem")
	if err := upCA.WriteCert(caFile); err != nil {
		t.Fatal(err)
	}
	p := &gwCredsPeers{notes: &noteTool{}}
	if p.alpha, err = testenv.StartMCPServer(testenv.MCPServerConfig{Mode: testenv.MCPStateful, CA: upCA, Hosts: []string{"alpha.gw.test"}, Name: "alpha-srv"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.alpha.Close)
	p.notes.add(p.alpha.Server)
	if p.beta, err = testenv.StartMCPServer(testenv.MCPServerConfig{Mode: testenv.MCPStateful, CA: upCA, Hosts: []string{"beta.gw.test"}, Name: "beta-srv"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.beta.Close)
	var d1, d2 string
	if p.coder, d1, err = auth.NewToken(); err != nil {
		t.Fatal(err)
	}
	if p.other, d2, err = auth.NewToken(); err != nil {
		t.Fatal(err)
	}
	testenv.Secrets(t, p.coder, p.other, gwAlphaKey, gwBetaKey)
	policy := `default: deny
ips:
  - allow: 127.0.0.1/32
hosts:
  - allow: [alpha.gw.test, beta.gw.test]
resolve:
  alpha.gw.test: [127.0.0.1]
  beta.gw.test: [127.0.0.1]
agents:
  - name: coder
  - name: other
gateway:
  tokens:
    - {agent: coder, sha256: ` + d1 + `, id: coder-laptop}
    - {agent: other, sha256: ` + d2 + `, id: other-laptop}
mcp:
  default: allow
  servers:
    - name: alpha
      endpoint: ` + p.alpha.URL + `
    - name: beta
      endpoint: ` + p.beta.URL + `
credentials:
  secrets:
    alpha-key: {env: AGENTG_TEST_GW_ALPHA}
    beta-key: {env: AGENTG_TEST_GW_BETA}
  bindings:
    - id: alpha-coder
      server: alpha
      agents: [coder]
      secret: alpha-key
      header: {name: Authorization, value: "Bearer {{secret}}"}
    - id: beta-coder
      host: beta.gw.test
      path: /mcp
      agents: [coder]
      secret: beta-key
      header: {name: X-Api-Key, value: "{{secret}}"}
`
	p.ag = startAdminAgentg(t, testenv.AgentgConfig{Policy: policy,
		Env:  append(os.Environ(), "AGENTG_TEST_GW_ALPHA="+gwAlphaKey, "AGENTG_TEST_GW_BETA="+gwBetaKey),
		Args: []string{"--gateway", "127.0.0.1:0", "--upstream-ca", caFile}})
	if p.ag.Gateway == "" {
		t.Fatal("agentg did not say where its gateway listens")
	}
	p.endpoint = "http://" + p.ag.Gateway + "/mcp"
	return p
}

// connectAs connects a Go SDK client to the gateway with an agent's token.
func (p *gwCredsPeers) connectAs(t *testing.T, ctx context.Context, tok string) *testenv.MCPClient {
	t.Helper()
	c, err := testenv.ConnectMCP(ctx, testenv.MCPStateful, p.endpoint, testenv.MCPClientConfig{
		Revision: "2025-11-25", Header: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// callText calls a tool and returns its text, failing on any error.
func callText(t *testing.T, ctx context.Context, c *testenv.MCPClient, tool string, args map[string]any) string {
	t.Helper()
	res, err := c.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	if res.IsError {
		t.Fatalf("%s: error result %s", tool, gwText(res))
	}
	return gwText(res)
}

// TestGatewayCredsHeaderBinding: coder's calls through the gateway carry
// the credential its bindings attach (alpha by server:, beta by host and
// path); other's calls to the same servers carry none; each upstream
// request's event names the binding.
func TestGatewayCredsHeaderBinding(t *testing.T) {
	p := startGatewayCreds(t)
	ctx := gwCtx(t)

	coder := p.connectAs(t, ctx, p.coder)
	if names := toolNames(t, ctx, coder); !slices.Contains(names, "alpha.echo") || !slices.Contains(names, "beta.echo") {
		t.Fatalf("tools/list: %v", names)
	}
	for _, tool := range []string{"alpha.echo", "beta.echo"} {
		if got := callText(t, ctx, coder, tool, map[string]any{"text": "from coder"}); !strings.Contains(got, "from coder") {
			t.Fatalf("%s answered %q", tool, got)
		}
	}
	ra, rb := p.alpha.Requests(), p.beta.Requests()
	if len(ra) < 2 || len(rb) < 2 {
		t.Fatalf("the upstreams saw %d and %d requests of coder's session", len(ra), len(rb))
	}
	for i, r := range ra {
		if got := r.Header.Values("Authorization"); len(got) != 1 || got[0] != "Bearer "+gwAlphaKey {
			t.Errorf("alpha request %d (%s %s) of coder's: Authorization is not the binding's (%d values)", i, r.Method, r.Path, len(got))
		}
	}
	for i, r := range rb {
		if got := r.Header.Values("X-Api-Key"); len(got) != 1 || got[0] != gwBetaKey {
			t.Errorf("beta request %d (%s %s) of coder's: X-Api-Key is not the binding's (%d values)", i, r.Method, r.Path, len(got))
		}
		if len(r.Header.Values("Authorization")) != 0 {
			t.Errorf("beta request %d got an Authorization: the gateway's own credential went on", i)
		}
	}
	waitEventOf(t, p.ag.Agentg, "alpha's upstream request naming its binding", func(e map[string]any) bool {
		return e["kind"] == "http" && e["door"] == "gateway" && e["agent"] == "coder" && e["host"] == "alpha.gw.test" &&
			e["binding"] == "alpha-coder" && e["credential"] == "alpha-key" && e["method"] == "POST"
	})
	waitEventOf(t, p.ag.Agentg, "beta's upstream request naming its binding", func(e map[string]any) bool {
		return e["kind"] == "http" && e["door"] == "gateway" && e["agent"] == "coder" && e["host"] == "beta.gw.test" &&
			e["binding"] == "beta-coder" && e["credential"] == "beta-key"
	})

	// Another agent, the same servers: no binding is its, so nothing is
	// attached, and what it sends gets to the servers (positive evidence
	// that the requests looked at below are its).
	other := p.connectAs(t, ctx, p.other)
	for _, tool := range []string{"alpha.echo", "beta.echo"} {
		if got := callText(t, ctx, other, tool, map[string]any{"text": "from other"}); !strings.Contains(got, "from other") {
			t.Fatalf("%s answered %q", tool, got)
		}
	}
	for _, c := range []struct {
		name string
		reqs []testenv.MCPRequest
	}{{"alpha", p.alpha.Requests()[len(ra):]}, {"beta", p.beta.Requests()[len(rb):]}} {
		if len(c.reqs) < 2 {
			t.Fatalf("%s saw %d requests of other's session", c.name, len(c.reqs))
		}
		for i, r := range c.reqs {
			if len(r.Header.Values("Authorization")) != 0 || len(r.Header.Values("X-Api-Key")) != 0 {
				t.Errorf("%s request %d (%s) of other's carries a credential", c.name, i, r.Method)
			}
		}
	}
	ev := waitEventOf(t, p.ag.Agentg, "other's upstream request", func(e map[string]any) bool {
		return e["kind"] == "http" && e["door"] == "gateway" && e["agent"] == "other" && e["host"] == "alpha.gw.test" && e["method"] == "POST"
	})
	if ev["binding"] != nil {
		t.Errorf("other's request names binding %v", ev["binding"])
	}
}

// TestGatewayCredsPlaceholder: a placeholder in a tool call's arguments
// is swapped for its value toward the server a binding of that secret
// names for the agent (a server: binding, matched by the entry's name),
// and refused toward any other server, or from another agent: the call
// never runs there (the tool's own record, after a later marker call).
func TestGatewayCredsPlaceholder(t *testing.T) {
	p := startGatewayCreds(t)
	ctx := gwCtx(t)
	coder := p.connectAs(t, ctx, p.coder)
	if got := callText(t, ctx, coder, "alpha.note", map[string]any{"text": "agentg:alpha-key"}); got != "noted" {
		t.Fatalf("note answered %q", got)
	}
	if got := p.notes.all(); len(got) != 1 || got[0] != gwAlphaKey {
		t.Fatalf("alpha's note tool got %d notes, not the placeholder's value", len(got))
	}
	waitEventOf(t, p.ag.Agentg, "the swap's tools/call event", func(e map[string]any) bool {
		return e["kind"] == "mcp" && e["method"] == "tools/call" && e["agent"] == "coder" && e["credential"] == "alpha-key" && e["decision"] == "allow"
	})

	refused := func(c *testenv.MCPClient, agent, placeholder string) {
		t.Helper()
		res, err := c.CallTool(ctx, &mcp.CallToolParams{Name: "alpha.note", Arguments: map[string]any{"text": placeholder}})
		if err == nil && !res.IsError {
			t.Fatalf("%s's %s toward alpha was not refused: %q", agent, placeholder, gwText(res))
		}
		waitEventOf(t, p.ag.Agentg, "the refusal of "+agent+"'s placeholder", func(e map[string]any) bool {
			return e["kind"] == "mcp" && e["agent"] == agent && e["rule"] == "builtin:placeholder" && e["decision"] == "deny"
		})
	}
	// beta-key's binding names beta only.
	refused(coder, "coder", "agentg:beta-key")
	// alpha-key's binding is coder's only.
	other := p.connectAs(t, ctx, p.other)
	refused(other, "other", "agentg:alpha-key")
	// The marker: the tool runs for what may go, and it saw nothing
	// between the first note and this one.
	callText(t, ctx, other, "alpha.note", map[string]any{"text": "marker"})
	if got := p.notes.all(); len(got) != 2 || got[1] != "marker" {
		t.Fatalf("alpha's note tool got %d notes; a refused call ran", len(got))
	}
}

// TestGatewayCredsOAuth: an oauth binding (server:, coder's only) on the
// gateway's upstream calls. Before anyone connected the server, coder's
// session is refused by agentg naming agentg oauth connect; once a
// person connected, the broker's token goes on coder's calls, and a
// revoked token is refreshed and the call sent once more without the
// client knowing. other's calls carry no token: the server is reached
// without one and refuses it. Nothing agentg writes holds a token or
// the client secret.
func TestGatewayCredsOAuth(t *testing.T) {
	m, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	dir := t.TempDir()
	upCA, err := testenv.NewCA("gateway oauth upstream root")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "upstream-ca.pem")
	if err := upCA.WriteCert(caFile); err != nil {
		t.Fatal(err)
	}
	leaf, err := upCA.Leaf([]string{"oauth.gw.test"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	srv := mcp.NewServer(&mcp.Implementation{Name: "oauth-upstream", Version: "1"}, nil)
	mcp.AddTool(srv, &mcp.Tool{Name: "whoami"}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ok"}}}, nil, nil
	})
	up := &oauthMCP{revoked: map[string]bool{}}
	var mu sync.Mutex
	var auths [][]string // every /mcp request's Authorization values
	mux := http.NewServeMux()
	var base string
	prm := func() string { return base + "/.well-known/oauth-protected-resource/mcp" }
	mux.Handle("/mcp", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auths = append(auths, r.Header.Values("Authorization"))
		mu.Unlock()
		sdkauth.RequireBearerToken(up.verify(m), &sdkauth.RequireBearerTokenOptions{ResourceMetadataURL: prm()})(
			mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv },
				&mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true, DisableLocalhostProtection: true})).ServeHTTP(w, r)
	}))
	mux.HandleFunc("/.well-known/oauth-protected-resource/mcp", func(w http.ResponseWriter, r *http.Request) {
		sdkauth.ProtectedResourceMetadataHandler(&oauthex.ProtectedResourceMetadata{
			Resource: base + "/mcp", AuthorizationServers: []string{m.Issuer()}}).ServeHTTP(w, r)
	})
	u := testenv.StartUpstream(testenv.UpstreamOptions{Cert: &leaf, Handler: mux, Quiet: true})
	t.Cleanup(u.Close)
	base = "https://oauth.gw.test:" + u.Port

	coderTok, d1, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	otherTok, d2, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	testenv.Secrets(t, coderTok, otherTok)
	policy := `default: deny
ips:
  - allow: 127.0.0.1/32
hosts:
  - allow: oauth.gw.test
resolve:
  oauth.gw.test: [127.0.0.1]
agents:
  - name: coder
  - name: other
gateway:
  tokens:
    - {agent: coder, sha256: ` + d1 + `}
    - {agent: other, sha256: ` + d2 + `}
mcp:
  default: allow
  servers:
    - name: up
      endpoint: ` + base + `/mcp
      timeout: 3s
credentials:
  secrets:
    oidc: {env: AGENTG_TEST_GW_OIDC_SECRET}
  bindings:
    - id: up-oauth
      server: up
      agents: [coder]
      oauth: {client_id: ` + m.ClientID + `, client_secret: oidc, token_auth: client_secret_post, scopes: [openid]}
`
	ag := startAdminAgentg(t, testenv.AgentgConfig{Policy: policy,
		Env:  append(os.Environ(), "AGENTG_TEST_GW_OIDC_SECRET="+m.ClientSecret),
		Args: []string{"--gateway", "127.0.0.1:0", "--upstream-ca", caFile}})
	endpoint := "http://" + ag.Gateway + "/mcp"
	ctx := gwCtx(t)
	connect := func(tok string) *testenv.MCPClient {
		t.Helper()
		c, err := testenv.ConnectMCP(ctx, testenv.MCPStateful, endpoint, testenv.MCPClientConfig{
			Revision: "2025-11-25", Header: http.Header{"Authorization": {"Bearer " + tok}}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	// No token yet: the server is left out, and agentg says who must do what.
	c := connect(coderTok)
	if names := toolNames(t, ctx, c); slices.Contains(names, "up.whoami") {
		t.Fatalf("tools/list before any token: %v", names)
	}
	waitEventOf(t, ag.Agentg, "the refusal naming the binding", func(e map[string]any) bool {
		return e["rule"] == "oauth:refused" && e["binding"] == "up-oauth" && e["agent"] == "coder"
	})
	// What went before a token (the broker learns the server from its
	// challenge, as through the proxy) carried none: not the agent's
	// gateway token either.
	mu.Lock()
	n0 := len(auths)
	for i, a := range auths {
		if len(a) != 0 {
			t.Errorf("request %d before any token carries Authorization", i)
		}
	}
	mu.Unlock()

	personConnects(t, ctx, ag.Agentg, "up-oauth")
	c = connect(coderTok)
	if names := toolNames(t, ctx, c); !slices.Contains(names, "up.whoami") {
		t.Fatalf("tools/list once connected: %v", names)
	}
	if got := callText(t, ctx, c, "up.whoami", map[string]any{}); got != "ok" {
		t.Fatalf("whoami = %q", got)
	}
	waitEventOf(t, ag.Agentg, "the upstream call naming the oauth binding", func(e map[string]any) bool {
		return e["kind"] == "http" && e["door"] == "gateway" && e["agent"] == "coder" && e["binding"] == "up-oauth" && e["status"] == float64(200)
	})
	first := up.revokeLast()
	m.FastForward(2 * time.Second) // a token issued later differs
	if got := callText(t, ctx, c, "up.whoami", map[string]any{}); got != "ok" {
		t.Fatalf("whoami after the revocation = %q", got)
	}
	waitEventOf(t, ag.Agentg, "the refresh", func(e map[string]any) bool {
		return e["rule"] == "oauth:token-refreshed" && e["binding"] == "up-oauth"
	})
	up.mu.Lock()
	seen := slices.Clone(up.seen)
	up.mu.Unlock()
	testenv.Secrets(t, seen...)
	if seen[len(seen)-1] == first {
		t.Fatal("the server saw the revoked token again, not a refreshed one")
	}
	mu.Lock()
	for i, a := range auths[n0:] {
		if len(a) != 1 || !slices.Contains(seen, strings.TrimPrefix(a[0], "Bearer ")) && a[0] != "Bearer "+first {
			t.Errorf("coder's request %d reached the server without the broker's token (%d Authorization values)", i, len(a))
		}
	}
	n := len(auths)
	mu.Unlock()

	// other: no binding of its own, so no token; the server is reached
	// and refuses, and other's list goes on without it.
	o := connect(otherTok)
	if names := toolNames(t, ctx, o); slices.Contains(names, "up.whoami") {
		t.Fatalf("other's tools/list: %v", names)
	}
	mu.Lock()
	later := slices.Clone(auths[n:])
	mu.Unlock()
	if len(later) == 0 {
		t.Fatal("other's session never reached the server")
	}
	for i, a := range later {
		if len(a) != 0 {
			t.Errorf("other's request %d carries Authorization", i)
		}
	}
}

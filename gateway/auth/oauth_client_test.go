package auth

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"
)

// An MCP client that knows nothing but the gateway's URL and its own
// registration at the identity provider: the Go SDK's OAuth client meets
// the 401, follows resource_metadata to the metadata, discovers the
// provider (mockoidc), runs the authorization code flow with PKCE, and
// calls the tool with the token it got, which the gateway accepts.
func TestMCPOAuthClientDiscovers(t *testing.T) {
	p := startIDP(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	pol := &livePolicy{}
	pol.e.Store(loadPolicy(t, t.TempDir(), jwtPolicy(p, "  resource_metadata: "+base+"/.well-known/oauth-protected-resource\n")))
	a, err := New(Options{Policy: pol, Client: plainClient()})
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	var agent atomic.Value
	srv := mcp.NewServer(&mcp.Implementation{Name: "upstream", Version: "1"}, nil)
	mcp.AddTool(srv, &mcp.Tool{Name: "count"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		calls.Add(1)
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "counted"}}}, nil, nil
	})
	sdk := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	mux := http.NewServeMux()
	mux.Handle("/.well-known/oauth-protected-resource", a.MetadataHandler(base+"/mcp"))
	mux.Handle("/mcp", a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := FromContext(r.Context())
		agent.Store(id.Agent)
		sdk.ServeHTTP(w, r)
	})))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })

	noRedirect := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var authorized atomic.Int32
	h, err := sdkauth.NewAuthorizationCodeHandler(&sdkauth.AuthorizationCodeHandlerConfig{
		PreregisteredClient: &oauthex.ClientCredentials{ClientID: p.m.ClientID,
			ClientSecretAuth: &oauthex.ClientSecretAuth{ClientSecret: p.m.ClientSecret}},
		RedirectURL: "http://127.0.0.1/callback",
		// The user's browser: the provider logs its default user in and
		// redirects with the code.
		AuthorizationCodeFetcher: func(ctx context.Context, args *sdkauth.AuthorizationArgs) (*sdkauth.AuthorizationResult, error) {
			authorized.Add(1)
			resp, err := noRedirect.Get(args.URL)
			if err != nil {
				return nil, err
			}
			resp.Body.Close()
			loc, err := url.Parse(resp.Header.Get("Location"))
			if err != nil || loc.Query().Get("code") == "" {
				return nil, fmt.Errorf("authorize: %d %q", resp.StatusCode, resp.Header.Get("Location"))
			}
			return &sdkauth.AuthorizationResult{Code: loc.Query().Get("code"), State: loc.Query().Get("state")}, nil
		},
		ScopeFilter: func([]string) []string { return []string{"openid"} }, // mockoidc issues for openid
		Client:      plainClient(),
		NewTokenSource: func(ctx context.Context, c *oauth2.Config, tok *oauth2.Token) (oauth2.TokenSource, error) {
			return oauth2.StaticTokenSource(tok), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil)
	s, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: base + "/mcp", MaxRetries: -1,
		HTTPClient: plainClient(), OAuthHandler: h}, nil)
	if err != nil {
		t.Fatalf("connect with the SDK's OAuth client: %v", err)
	}
	defer s.Close()
	if _, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "count"}); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 1 || agent.Load() != "coder" || authorized.Load() != 1 {
		t.Fatalf("calls %d, agent %v, authorizations %d", calls.Load(), agent.Load(), authorized.Load())
	}
}

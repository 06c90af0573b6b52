package auth

import (
	"context"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// An MCP client meeting the gateway without a token reads the challenge
// (parsed here by the Go SDK's own parser), follows resource_metadata to
// the metadata (fetched and checked by the SDK's own client function),
// and finds the identity provider and the scopes to ask it for.
func TestMetadataDiscovery(t *testing.T) {
	p := startIDP(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	pol := &livePolicy{}
	pol.e.Store(loadPolicy(t, t.TempDir(), jwtPolicy(p, "    scopes: [mcp:tools, mcp:read]\n  realm: agentg gateway\n  resource_metadata: "+base+"/.well-known/oauth-protected-resource\n")))
	a, err := New(Options{Policy: pol, Client: plainClient()})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/.well-known/oauth-protected-resource", a.MetadataHandler(base+"/mcp"))
	mux.Handle("/mcp", a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })

	resp, err := plainClient().Post(base+"/mcp", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d", resp.StatusCode)
	}
	chs, err := oauthex.ParseWWWAuthenticate(resp.Header.Values("WWW-Authenticate"))
	if err != nil || len(chs) != 1 || chs[0].Scheme != "bearer" {
		t.Fatalf("challenges %+v, %v", chs, err)
	}
	ps := chs[0].Params
	if ps["realm"] != "agentg gateway" || ps["scope"] != "mcp:tools mcp:read" || ps["error"] != "" {
		t.Errorf("challenge params %v", ps)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	md, err := oauthex.GetProtectedResourceMetadata(ctx, ps["resource_metadata"], base+"/mcp", plainClient())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(md.AuthorizationServers, []string{p.m.Issuer()}) || !slices.Equal(md.ScopesSupported, []string{"mcp:tools", "mcp:read"}) ||
		!slices.Equal(md.BearerMethodsSupported, []string{"header"}) {
		t.Errorf("metadata %+v", md)
	}

	// With a bad token the challenge says why, in the SDK's reading too.
	req, _ := http.NewRequest(http.MethodPost, base+"/mcp", nil)
	req.Header.Set("Authorization", "Bearer not-a-token")
	resp, err = plainClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	chs, err = oauthex.ParseWWWAuthenticate(resp.Header.Values("WWW-Authenticate"))
	if err != nil || len(chs) != 1 || chs[0].Params["error"] != "invalid_token" || chs[0].Params["error_description"] != "bearer unknown-token" {
		t.Errorf("bad token challenges %+v, %v", chs, err)
	}

	// Without a jwt sub-section there is no provider to point to.
	pol.e.Store(loadPolicy(t, t.TempDir(), "gateway:\n  tokens:\n    - {agent: a, sha256: "+Digest("x")+"}\n"))
	if r, err := plainClient().Get(base + "/.well-known/oauth-protected-resource"); err != nil || r.StatusCode != http.StatusNotFound {
		t.Errorf("metadata without jwt: %v %v", r, err)
	}
}

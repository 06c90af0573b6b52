package auth

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/agentg/agentg/audit"
)

// bearerTransport adds the agent's credential to every request, as an MCP
// client configured with a token does.
type bearerTransport struct{ token string }

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if b.token != "" {
		r.Header.Set("Authorization", "Bearer "+b.token)
	}
	return (&http.Transport{Proxy: nil}).RoundTrip(r)
}

// The auth test line with the official Go SDK on both sides: an
// MCP server behind the Middleware and an MCP client in front of it.
// Missing, wrong, expired and wrong-audience credentials get 401 and the
// server's tool never runs (its own counter, after a later good call, is
// the evidence); a good one calls the tool as its agent.
func TestMCPBehindAuth(t *testing.T) {
	p := startIDP(t, nil)
	good, _ := p.login(t, nil, "openid")
	p.set(func(m *mockoidc.MockOIDC) { m.FastForward(-20 * time.Minute) })
	expired, _ := p.login(t, nil, "openid")
	p.set(func(m *mockoidc.MockOIDC) { m.FastForward(20 * time.Minute) })
	var aud string
	p.set(func(m *mockoidc.MockOIDC) { aud, m.ClientID = m.ClientID, "not-the-gateway" })
	wrongAud, _ := p.login(t, nil, "openid")
	p.set(func(m *mockoidc.MockOIDC) { m.ClientID = aud })
	tok, digest, _ := NewToken()
	wrong, _, _ := NewToken()

	pol := &livePolicy{}
	pol.e.Store(loadPolicy(t, t.TempDir(), jwtPolicy(p, "  tokens:\n    - {agent: builder, sha256: "+digest+"}\n")))
	log := &lockedBuffer{}
	a, err := New(Options{Policy: pol, Client: plainClient(), Log: audit.New(log)})
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	var lastAgent atomic.Value
	srv := mcp.NewServer(&mcp.Implementation{Name: "upstream", Version: "1"}, nil)
	mcp.AddTool(srv, &mcp.Tool{Name: "count", Description: "counts its calls"},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			calls.Add(1)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "counted"}}}, nil, nil
		})
	sdk := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	h := a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, ok := FromContext(r.Context()); ok {
			lastAgent.Store(id.Agent)
		}
		sdk.ServeHTTP(w, r)
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	endpoint := "http://" + ln.Addr().String() + "/mcp"

	call := func(token string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil)
		s, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, MaxRetries: -1,
			HTTPClient: &http.Client{Transport: bearerTransport{token}}}, nil)
		if err != nil {
			return err
		}
		defer s.Close()
		res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "count"})
		if err == nil && res.IsError {
			t.Fatalf("tool error: %+v", res)
		}
		return err
	}
	for _, tc := range []struct{ name, token, agent string }{
		{"jwt", good, "coder"},
		{"bearer", tok, "builder"},
		{"missing", "", ""},
		{"wrong", wrong, ""},
		{"expired", expired, ""},
		{"wrong audience", wrongAud, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := calls.Load()
			err := call(tc.token)
			if tc.agent != "" {
				if err != nil || calls.Load() != before+1 || lastAgent.Load() != tc.agent {
					t.Fatalf("err %v, calls %d -> %d, agent %v", err, before, calls.Load(), lastAgent.Load())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "Unauthorized") && !strings.Contains(err.Error(), "401") {
				t.Fatalf("err %v, want a 401", err)
			}
			if err := call(good); err != nil {
				t.Fatalf("the good call after it: %v", err)
			}
			if n := calls.Load() - before; n != 1 {
				t.Fatalf("the tool ran %d times, want once (the good call)", n)
			}
		})
	}
	noSecrets(t, log.String(), good, expired, wrongAud, tok, wrong)
}

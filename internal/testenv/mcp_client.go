package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/url"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// MCPClientConfig says how an MCP client reaches a server: through a proxy
// (agentg), or directly.
type MCPClientConfig struct {
	// Proxy is the explicit proxy every request goes through (CONNECT for
	// https://, absolute-form for http://), with user info to claim an
	// agent. It is set on the client's own transport: Go's environment
	// proxy never proxies loopback.
	Proxy *url.URL
	// Direct, without a Proxy, is the address dialled whatever host the
	// URL names (an MCPServer's Addr), so the URL keeps naming mcp.test.
	Direct string
	// Dial, without a Proxy or Direct, dials every connection (a client
	// inside a network namespace, resolving names itself).
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Roots verify the server certificate: agentg's CA through agentg
	// (which intercepts), the server's own CA directly.
	Roots *x509.CertPool
	// HTTP2 offers h2 by ALPN; otherwise HTTP/1.1 only.
	HTTP2 bool
	// Revision pins the protocol version the client asks for; empty is the
	// SDK's latest (2026-07-28, falling back to initialize at 2025-11-25
	// when the server does not discover).
	Revision string
	// Options are the SDK client's (notification handlers and the like).
	Options *mcp.ClientOptions
	// Header is added to every request the client sends (a gateway
	// credential: Authorization).
	Header http.Header
}

// MCPHTTPClient is the HTTP client an MCP client of cfg uses. It has no
// overall timeout, since SSE streams stay open; bound requests with their
// contexts.
func MCPHTTPClient(cfg MCPClientConfig) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: cfg.Roots},
		ForceAttemptHTTP2: cfg.HTTP2,
	}
	switch {
	case cfg.Proxy != nil:
		tr.Proxy = http.ProxyURL(cfg.Proxy)
	case cfg.Direct != "":
		d := &net.Dialer{}
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, cfg.Direct)
		}
	case cfg.Dial != nil:
		tr.DialContext = cfg.Dial
	}
	if cfg.Header != nil {
		return &http.Client{Transport: withHeader{tr, cfg.Header}}
	}
	return &http.Client{Transport: tr}
}

// withHeader adds its header to every request it sends.
type withHeader struct {
	rt http.RoundTripper
	h  http.Header
}

func (w withHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, vs := range w.h {
		r.Header[k] = vs
	}
	return w.rt.RoundTrip(r)
}

// CloseIdleConnections lets MCPClient.Close drop the connections.
func (w withHeader) CloseIdleConnections() {
	if c, ok := w.rt.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// MCPClient is a connected SDK client session with its HTTP client.
type MCPClient struct {
	*mcp.ClientSession
	HTTP *http.Client
}

// Revision is the protocol version the session negotiated.
func (c *MCPClient) Revision() string { return c.InitializeResult().ProtocolVersion }

// Close ends the session (the SDK sends DELETE for a stateful session) and
// drops idle connections.
func (c *MCPClient) Close() error {
	err := c.ClientSession.Close()
	c.HTTP.CloseIdleConnections()
	return err
}

// ConnectMCP connects an SDK client to endpoint, served in mode: the SSE
// client transport for MCPLegacySSE, the Streamable HTTP one (reconnects
// off, so a failure shows at once) otherwise. With a Revision it fails
// unless the session negotiated exactly that revision.
func ConnectMCP(ctx context.Context, mode MCPMode, endpoint string, cfg MCPClientConfig) (*MCPClient, error) {
	hc := MCPHTTPClient(cfg)
	var tr mcp.Transport
	if mode == MCPLegacySSE {
		tr = &mcp.SSEClientTransport{Endpoint: endpoint, HTTPClient: hc}
	} else {
		tr = &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc, MaxRetries: -1}
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "agentg-test-client", Version: "1.0.0"}, cfg.Options)
	cs, err := client.Connect(ctx, tr, &mcp.ClientSessionOptions{ProtocolVersion: cfg.Revision})
	if err != nil {
		hc.CloseIdleConnections()
		return nil, fmt.Errorf("connect MCP client (%v, %s) to %s: %w", mode, orLatest(cfg.Revision), endpoint, err)
	}
	c := &MCPClient{ClientSession: cs, HTTP: hc}
	if cfg.Revision != "" && c.Revision() != cfg.Revision {
		c.Close()
		return nil, fmt.Errorf("connect MCP client (%v) to %s: asked for %s, negotiated %s", mode, endpoint, cfg.Revision, c.Revision())
	}
	return c, nil
}

func orLatest(rev string) string {
	if rev == "" {
		return "latest"
	}
	return rev
}

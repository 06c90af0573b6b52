package test

import (
	"bufio"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"
)

// HTTP/1 sent inside a CONNECT tunnel is an HTTP request like any other:
// it goes through the exchange path (authority agrees, host and http
// rules), whether or not the tunnel's host is intercepted.

// tunnelEventOf waits for the tunnel event of the client connection c
// (written when the tunnel closes) and returns its id.
func tunnelEventOf(t *testing.T, e *env, c net.Conn) string {
	t.Helper()
	ev := waitEventT(t, e, map[string]any{"kind": "connect", "client": c.LocalAddr().String()})
	if ev.str("id") == "" {
		t.Fatalf("tunnel event without an id: %v", ev)
	}
	return ev.str("id")
}

// Issue 11: a plain tunnel whose first bytes are HTTP/1 carried a request
// for any Host to the upstream unchecked.
func TestTunnelHTTPRequestsDecided(t *testing.T) {
	up := newUpstream(t, false, nil)
	p := up.port
	e := startProxy(t, basePolicy(gatePolicyHosts+`
http:
  - deny: "GET allowed.test/secret/**"
    id: no-secret
`), nil)
	target := "allowed.test:" + p
	tests := []struct {
		name, path, host string
		status           int
		rule             string
	}{
		{"Host names another host", "/x", "denied.test:" + p, 421, ""},
		{"Host agrees", "/x", target, 200, ""},
		{"http rule denies", "/secret/a", target, 403, "no-secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := connectTunnel(t, e, target)
			resp, body := roundTrip(t, c, bufio.NewReader(c), "GET "+tt.path+" HTTP/1.1\r\nHost: "+tt.host+"\r\n\r\n")
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d %q, want %d", resp.StatusCode, body, tt.status)
			}
			if tt.status == 200 && body != "GET "+tt.path+" host="+target+" len=0" {
				t.Fatalf("upstream answer %q", body)
			}
			if tt.rule != "" && resp.Header.Get("X-Agentg-Rule") != tt.rule {
				t.Fatalf("rule %q, want %q", resp.Header.Get("X-Agentg-Rule"), tt.rule)
			}
			req := waitEventT(t, e, map[string]any{"kind": "http", "client": c.LocalAddr().String(),
				"path": tt.path, "status": tt.status})
			c.Close()
			if id := tunnelEventOf(t, e, c); req.str("parent") != id {
				t.Fatalf("request event parent %q, want the tunnel's id %q", req.str("parent"), id)
			}
		})
	}

	t.Run("keep-alive", func(t *testing.T) {
		c := connectTunnel(t, e, target)
		br := bufio.NewReader(c)
		for _, path := range []string{"/a", "/b"} {
			if resp, body := roundTrip(t, c, br, "GET "+path+" HTTP/1.1\r\nHost: "+target+"\r\n\r\n"); resp.StatusCode != 200 {
				t.Fatalf("%s: %d %q", path, resp.StatusCode, body)
			}
		}
		c.Close()
		id := tunnelEventOf(t, e, c)
		for _, path := range []string{"/a", "/b"} {
			ev := waitEventT(t, e, map[string]any{"kind": "http", "client": c.LocalAddr().String(), "path": path})
			if ev.str("parent") != id || ev.str("id") == "" || ev.str("id") == id {
				t.Errorf("%s: event id %q parent %q, tunnel %q", path, ev.str("id"), ev.str("parent"), id)
			}
		}
	})
}

// Issue 11: Node's proxy agent tunnels http:// URLs through CONNECT; to an
// intercepted host those first bytes are HTTP/1, not TLS. agentg used to
// drop the request while its event said 200.
func TestTunnelHTTPToInterceptedHost(t *testing.T) {
	up := newUpstream(t, false, nil)
	e, _ := newMitmEnv(t, mitmPolicy(""), nil)
	target := "plain.test:" + up.port
	c := connectTunnel(t, e, target)
	resp, body := roundTrip(t, c, bufio.NewReader(c), "GET /node HTTP/1.1\r\nHost: "+target+"\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != 200 || body != "GET /node host="+target+" len=0" {
		t.Fatalf("HTTP/1 in an intercepted tunnel: %d %q", resp.StatusCode, body)
	}
	waitEventT(t, e, map[string]any{"kind": "http", "client": c.LocalAddr().String(), "path": "/node", "status": 200})
}

// Issue 11: a client that sends its ClientHello in the same write as the
// CONNECT (the bytes arrive buffered behind the request) hung when the
// host was intercepted.
func TestTunnelHelloWithConnectIntercepted(t *testing.T) {
	e, upCA := newMitmEnv(t, mitmPolicy(""), nil)
	up := tlsUpstream(t, upCA.leaf(t, "example.com", time.Now().Add(-time.Hour), time.Now().Add(time.Hour)), nil)
	target := "example.com:" + up.port
	cc := newCoalescedConn(t, e, target)
	tc := tls.Client(cc, &tls.Config{ServerName: "example.com", RootCAs: e.caPool(), NextProtos: []string{"http/1.1"}})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS with agentg when the hello came with the CONNECT: %v", err)
	}
	resp, body := roundTrip(t, tc, bufio.NewReader(tc), "GET /coalesced HTTP/1.1\r\nHost: "+target+"\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "GET /coalesced") {
		t.Fatalf("request: %d %q", resp.StatusCode, body)
	}
}

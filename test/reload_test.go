package test

import (
	"bufio"
	"io"
	"strings"
	"testing"
	"time"
)

// A reload reaches what is already open: tunnels the new policy denies are
// closed, and requests inside intercepted tunnels are decided by the
// policy in force when they arrive. The test only reloads the policy; the
// proxy must learn of it from the policy itself.

// Issue 11: an open plain tunnel outlived a reload that denies its host.
func TestReloadClosesDeniedTunnel(t *testing.T) {
	e := startProxy(t, basePolicy(gatePolicyHosts), nil)
	up := newRawUpstream(t, bannerThenEcho)
	c := connectTunnel(t, e, "allowed.test:"+up.port)
	io.WriteString(c, "SSH-2.0-x\r\n")
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "SSH-2.0-upstream\r\n" {
		t.Fatalf("tunnel before the reload: %q %v", line, err)
	}
	e.rewritePolicy(basePolicy("hosts:\n  - deny: allowed.test\n    id: now-denied\n"))
	waitClosed(t, c, "tunnel to a host the reload denies")
	ev := e.waitEvent(map[string]any{"kind": "connect", "client": c.LocalAddr().String(), "decision": "deny"})
	t.Logf("closed tunnel: rule %q reason %q", ev.str("rule"), ev.str("reason"))
}

// Issue 11: inside an intercepted tunnel, each request was checked against
// the addresses resolved when the tunnel opened, so a reload that denies
// the upstream's address, or points the name elsewhere, did not reach the
// next request on the same connection.
func TestReloadReachesInterceptedRequests(t *testing.T) {
	tests := []struct {
		name, from, to string
	}{
		{"address now denied", "- allow: 127.0.0.1/32", "- deny: 127.0.0.1/32"},
		{"name resolved elsewhere", "example.com: [127.0.0.1]", "example.com: [10.0.0.1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			policy := mitmPolicy("")
			if !strings.Contains(policy, tt.from) {
				t.Fatalf("policy lacks %q", tt.from)
			}
			e, upCA := newMitmEnv(t, policy, nil)
			up := tlsUpstream(t, upCA.leaf(t, "example.com", time.Now().Add(-time.Hour), time.Now().Add(time.Hour)), nil)
			target := "example.com:" + up.port
			tc, _ := mitmTLS(t, e, target, "http/1.1")
			br := bufio.NewReader(tc)
			if resp, body := roundTrip(t, tc, br, "GET /before HTTP/1.1\r\nHost: "+target+"\r\n\r\n"); resp.StatusCode != 200 {
				t.Fatalf("before the reload: %d %q", resp.StatusCode, body)
			}
			e.rewritePolicy(strings.Replace(policy, tt.from, tt.to, 1))
			// The same TLS connection, so the same tunnel.
			resp, body := roundTrip(t, tc, br, "GET /after HTTP/1.1\r\nHost: "+target+"\r\n\r\n")
			if resp.StatusCode != 403 {
				t.Fatalf("after the reload, same connection: %d %q, want 403", resp.StatusCode, body)
			}
			waitEventT(t, e, map[string]any{"kind": "http", "path": "/after", "decision": "deny", "status": 403})
		})
	}
}

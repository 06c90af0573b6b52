package test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// basePolicy maps test names to loopback and opens loopback by CIDR, so
// the only thing deciding is the host rules under test.
func basePolicy(extra string) string { return policyWithDefault("deny", extra) }

func policyWithDefault(def, extra string) string {
	return `
default: ` + def + `
ips:
  - allow: 127.0.0.1/32
    id: open-loopback
resolve:
  allowed.test: [127.0.0.1]
  denied.test: [127.0.0.1]
  sub.wild.test: [127.0.0.1]
  example.com: [127.0.0.1]
  xn--bcher-kva.test: [127.0.0.1]
  internal.test: [10.0.0.1]
  metadata.test: [169.254.169.254]
` + extra
}

func TestAllowAndDenyPlainHTTP(t *testing.T) {
	up := newUpstream(t, false, nil)
	e := startProxy(t, basePolicy(`
hosts:
  - allow: allowed.test
    id: allow-test
  - deny: denied.test
    id: deny-test
`), nil)
	c := e.client("", "", nil)

	resp, body := get(t, c, "http://allowed.test:"+up.port+"/hello")
	if resp.StatusCode != 200 || body != "GET /hello host=allowed.test:"+up.port+" len=0" {
		t.Fatalf("allowed: %d %q", resp.StatusCode, body)
	}
	ev := e.waitEvent(map[string]any{"host": "allowed.test", "decision": "allow"})
	for k, want := range map[string]any{
		"kind": "http", "method": "GET", "scheme": "http", "rule": "allow-test", "ip": "127.0.0.1",
		"path": "/hello", "status": 200, "port": atoi(up.port), "agent": "127.0.0.1",
	} {
		if !matches(ev, map[string]any{k: want}) {
			t.Errorf("allow event %s = %v, want %v (event %v)", k, ev[k], want, ev)
		}
	}
	if ev.num("bytes_down") != float64(len(body)) || ev.str("client") == "" || ev.str("time") == "" || ev["duration_ms"] == nil {
		t.Errorf("allow event lacks counters/client/time: %v", ev)
	}
	if !strings.HasSuffix(ev.str("rule_source"), "policy.yaml:16") {
		t.Errorf("rule_source = %q, want policy.yaml:16", ev.str("rule_source"))
	}

	resp, body = get(t, c, "http://denied.test:"+up.port+"/")
	if resp.StatusCode != 403 || resp.Header.Get("X-Agentg-Rule") != "deny-test" || !strings.Contains(body, "deny-test") {
		t.Fatalf("denied: %d %q rule header %q", resp.StatusCode, body, resp.Header.Get("X-Agentg-Rule"))
	}
	e.waitEvent(map[string]any{"host": "denied.test", "decision": "deny", "rule": "deny-test", "status": 403})

	// Not in any rule: the default (deny) decides.
	resp, _ = get(t, c, "http://example.com:"+up.port+"/")
	if resp.StatusCode != 403 || resp.Header.Get("X-Agentg-Rule") != "default" {
		t.Fatalf("default: %d rule %q", resp.StatusCode, resp.Header.Get("X-Agentg-Rule"))
	}
	if up.connCount() != 1 {
		t.Errorf("upstream saw %d connections, want 1 (only the allowed request)", up.connCount())
	}
}

func TestKeepAliveReusesUpstream(t *testing.T) {
	up := newUpstream(t, false, nil)
	e := startProxy(t, basePolicy("hosts:\n  - allow: allowed.test\n"), nil)
	c := e.client("", "", nil)
	for i := 0; i < 20; i++ {
		resp, _ := get(t, c, "http://allowed.test:"+up.port+"/")
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	if n := up.connCount(); n != 1 {
		t.Errorf("20 sequential requests used %d upstream connections, want 1", n)
	}
}

func TestPostBodyCounted(t *testing.T) {
	up := newUpstream(t, false, nil)
	e := startProxy(t, basePolicy("hosts:\n  - allow: allowed.test\n"), nil)
	c := e.client("", "", nil)
	resp, err := c.Post("http://allowed.test:"+up.port+"/p", "text/plain", strings.NewReader(strings.Repeat("x", 5000)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasSuffix(string(body), "len=5000") {
		t.Fatalf("upstream got %q", body)
	}
	e.waitEvent(map[string]any{"method": "POST", "bytes_up": 5000})
}

func TestReportMode(t *testing.T) {
	up := newUpstream(t, false, nil)
	e := startProxy(t, basePolicy(`
hosts:
  - deny: denied.test
    mode: report
    id: would-deny
`), nil)
	resp, _ := get(t, e.client("", "", nil), "http://denied.test:"+up.port+"/")
	if resp.StatusCode != 200 {
		t.Fatalf("report-mode deny blocked: %d", resp.StatusCode)
	}
	e.waitEvent(map[string]any{"host": "denied.test", "decision": "report", "rule": "would-deny", "status": 200})
}

func TestPolicyWideReportMode(t *testing.T) {
	up := newUpstream(t, false, nil)
	e := startProxy(t, "mode: report\n"+basePolicy(""), nil)
	resp, _ := get(t, e.client("", "", nil), "http://denied.test:"+up.port+"/")
	if resp.StatusCode != 200 {
		t.Fatalf("report-mode default deny blocked: %d", resp.StatusCode)
	}
	e.waitEvent(map[string]any{"host": "denied.test", "decision": "report", "rule": "default"})
}

func TestConnectAllowAndDeny(t *testing.T) {
	up := newUpstream(t, true, nil)
	e := startProxy(t, basePolicy(`
hosts:
  - allow: example.com
  - deny: denied.test
    id: no-tunnel
`), nil)
	roots := tlsTrusting(up.Server)
	c := e.client("", "", roots)
	resp, body := get(t, c, "https://example.com:"+up.port+"/secure")
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "GET /secure") {
		t.Fatalf("tunnel: %d %q", resp.StatusCode, body)
	}
	c.Transport.(*http.Transport).CloseIdleConnections() // end the tunnel: its event is written at close
	ev := e.waitEvent(map[string]any{"kind": "connect", "host": "example.com", "decision": "allow", "status": 200})
	if ev.num("bytes_up") < 100 || ev.num("bytes_down") < 100 || ev.str("ip") != "127.0.0.1" || ev.str("scheme") != "tunnel" {
		t.Errorf("tunnel event: %v", ev)
	}

	before := up.connCount()
	_, err := c.Get("https://denied.test:" + up.port + "/")
	if err == nil || !strings.Contains(err.Error(), "Forbidden") {
		t.Fatalf("denied CONNECT: err = %v, want a 403 from the proxy", err)
	}
	e.waitEvent(map[string]any{"kind": "connect", "host": "denied.test", "decision": "deny", "rule": "no-tunnel", "status": 403})
	if up.connCount() != before {
		t.Error("a denied CONNECT reached the upstream")
	}

	// The raw answer carries the rule, before any tunnel exists.
	resp, rawBody := rawRequest(t, e.addr, "CONNECT denied.test:443 HTTP/1.1\r\nHost: denied.test:443\r\n\r\n")
	if resp.StatusCode != 403 || resp.Header.Get("X-Agentg-Rule") != "no-tunnel" || !strings.Contains(rawBody, "no-tunnel") {
		t.Errorf("raw denied CONNECT: %d %q %q", resp.StatusCode, resp.Header, rawBody)
	}
}

func TestUpstreamUnreachable(t *testing.T) {
	up := newUpstream(t, false, nil)
	port := up.port
	up.Close() // nothing listens there now
	e := startProxy(t, basePolicy("hosts:\n  - allow: allowed.test\n"), nil)
	resp, body := get(t, e.client("", "", nil), "http://allowed.test:"+port+"/")
	if resp.StatusCode != 502 || !strings.Contains(body, "refused") {
		t.Fatalf("plain: %d %q", resp.StatusCode, body)
	}
	e.waitEvent(map[string]any{"kind": "http", "status": 502, "decision": "allow"})
	resp, body = rawRequest(t, e.addr, "CONNECT allowed.test:"+port+" HTTP/1.1\r\nHost: allowed.test\r\n\r\n")
	if resp.StatusCode != 502 || !strings.Contains(body, "refused") {
		t.Fatalf("connect: %d %q", resp.StatusCode, body)
	}
	e.waitEvent(map[string]any{"kind": "connect", "status": 502})
}

func TestProxyRefusesItself(t *testing.T) {
	e := startProxy(t, policyWithDefault("allow", ""), nil)
	resp, body := rawRequest(t, e.addr, "CONNECT "+e.addr+" HTTP/1.1\r\nHost: "+e.addr+"\r\n\r\n")
	if resp.StatusCode != 403 || resp.Header.Get("X-Agentg-Rule") != "builtin:self" {
		t.Fatalf("CONNECT to itself: %d %q", resp.StatusCode, body)
	}
	resp, _ = rawRequest(t, e.addr, "GET http://"+e.addr+"/ HTTP/1.1\r\nHost: "+e.addr+"\r\n\r\n")
	if resp.StatusCode != 403 {
		t.Fatalf("GET to itself: %d", resp.StatusCode)
	}
}

func TestNonProxyRequest(t *testing.T) {
	e := startProxy(t, basePolicy(""), nil)
	resp, body := rawRequest(t, e.addr, "GET /index.html HTTP/1.1\r\nHost: allowed.test\r\n\r\n")
	if resp.StatusCode != 400 || !strings.Contains(body, "forward proxy") {
		t.Fatalf("origin-form: %d %q", resp.StatusCode, body)
	}
	e.waitEvent(map[string]any{"status": 400, "decision": "deny"})
}

func TestHTTPSAbsoluteFormRefused(t *testing.T) {
	e := startProxy(t, policyWithDefault("allow", ""), nil)
	resp, _ := rawRequest(t, e.addr, "GET https://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\n\r\n")
	if resp.StatusCode != 400 {
		t.Fatalf("https absolute-form: %d", resp.StatusCode)
	}
}

func atoi(s string) int {
	var n int
	fmt.Sscan(s, &n)
	return n
}

// A plain (not intercepted) tunnel still refuses TLS for another name than
// the CONNECT host: no domain fronting through a permitted tunnel.
func TestTunnelSNIMustAgree(t *testing.T) {
	up := newUpstream(t, true, nil)
	e := startProxy(t, basePolicy("hosts:\n  - allow: [example.com, allowed.test]\n"), nil)
	conf := tlsTrusting(up.Server)
	conf.ServerName = "denied.test" // fronting: CONNECT an allowed host, ask TLS for another
	tc := tls.Client(connectTunnel(t, e, "allowed.test:"+up.port), conf)
	if err := tc.Handshake(); err == nil {
		t.Fatal("TLS for another name went through an allowed tunnel")
	}
	ev := e.waitEvent(map[string]any{"kind": "connect", "host": "allowed.test", "rule": "builtin:sni-mismatch", "decision": "deny"})
	if ev.num("bytes_up") != 0 {
		t.Errorf("the refused ClientHello reached the upstream: %v", ev)
	}

	// The same name as the CONNECT host goes through.
	conf.ServerName = "example.com"
	tc = tls.Client(connectTunnel(t, e, "example.com:"+up.port), conf)
	if err := tc.Handshake(); err != nil {
		t.Fatalf("agreeing SNI: %v", err)
	}
	tc.Close()
}

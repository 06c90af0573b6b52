package test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/agentg/agentg/addr"
	"github.com/agentg/agentg/rules"
)

// Issue 14, item 18: DNS over HTTPS and over TLS around the DNS filter.

// The embedded default policy refuses the public resolvers' published
// service addresses, and port 853 everywhere. Decided by agentg check,
// which never dials: these addresses are public, and no test sends them
// a packet.
func TestDefaultPolicyRefusesResolverAddresses(t *testing.T) {
	pol := "../cmd/agentg/default-policy.yaml"
	addrs := []string{
		"223.5.5.5", "223.6.6.6", "[2400:3200::1]", "[2400:3200:baba::1]", // AliDNS
		"119.29.29.29", "1.12.12.12", "120.53.53.53", // DNSPod
		"75.75.75.75", "75.75.76.76", // Comcast
		"74.82.42.42", "[2001:470:20::2]", // Hurricane Electric
		"116.202.176.26",                                                                    // LibreDNS
		"146.255.56.98",                                                                     // Applied Privacy
		"45.90.28.0", "45.90.28.193", "45.90.30.7", "[2a07:a8c0::1b:2c]", "[2a07:a8c1::99]", // NextDNS
	}
	for _, a := range addrs {
		for _, port := range []string{"443", "853"} {
			code, out := runAgentg(t, "check", pol, a+":"+port)
			if code != 0 || !strings.Contains(out, " deny ") || !strings.Contains(out, "rule=builtin:public-resolver") {
				t.Errorf("%s:%s: exit %d:\n%s", a, port, code, out)
			}
		}
	}
	// Through the proxy: CONNECT to each address literal is refused with
	// its event. Each is first decided in-process by the same policy, and
	// the CONNECT is sent only when that decision is a deny, which the
	// proxy reaches before any dial: no packet leaves for them.
	body, err := os.ReadFile(pol)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := rules.Parse(pol, body)
	if err != nil {
		t.Fatal(err)
	}
	e := startProxy(t, string(body), nil)
	for _, a := range addrs {
		h, err := addr.ParseAuthority(a+":443", 443)
		if err != nil {
			t.Fatal(err)
		}
		if d := eng.Host("", h); d.Allowed() || d.Rule != rules.RulePublicResolver {
			t.Errorf("%s: %+v; not sent through the proxy", a, d)
			continue
		}
		resp, _ := rawRequest(t, e.addr, "CONNECT "+a+":443 HTTP/1.1\r\nHost: "+a+":443\r\n\r\n")
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Agentg-Rule") != rules.RulePublicResolver {
			t.Errorf("CONNECT %s: %d %v", a, resp.StatusCode, resp.Header)
		}
		e.waitEvent(map[string]any{"host": h.IP.String(), "decision": "deny", "rule": rules.RulePublicResolver})
	}
	// Port 853 (DNS over TLS) by any address or name, not just the listed.
	for _, h := range []string{"93.184.216.34:853", "[2606:2800:220:1:248:1893:25c8:1946]:853", "resolver.example:853"} {
		code, out := runAgentg(t, "check", pol, h)
		if code != 0 || !strings.Contains(out, " deny ") || !strings.Contains(out, "rule=builtin:dot-port") {
			t.Errorf("%s: exit %d:\n%s", h, code, out)
		}
	}
	// Other ports of other hosts stay open: the default allows.
	if code, out := runAgentg(t, "check", pol, "93.184.216.34:443"); code != 0 || !strings.Contains(out, " allow ") {
		t.Errorf("93.184.216.34:443: exit %d:\n%s", code, out)
	}
}

// countingListener counts the connections it accepted and serves HTTP.
func countingListener(t *testing.T, addr string) (*atomic.Int64, string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s (port 853 needs root): %v", addr, err)
	}
	var n atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				n.Add(1)
			}
		}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return &n, ln.Addr().String()
}

// dns.deny_dot refuses port 853 before any dial, even to an address a
// CIDR rule opens; the same address at another port is reached.
func TestDoTPortRefused(t *testing.T) {
	ip := fmt.Sprintf("127.%d.%d.%d", 1+rand.IntN(250), 1+rand.IntN(250), 1+rand.IntN(250))
	dot, dotAddr := countingListener(t, ip+":853")
	marker, markerAddr := countingListener(t, ip+":0")
	e := startProxy(t, "default: deny\nips:\n  - allow: "+ip+"/32\ndns:\n  deny_dot: true\n", nil)

	resp, _ := rawRequest(t, e.addr, "CONNECT "+dotAddr+" HTTP/1.1\r\nHost: "+dotAddr+"\r\n\r\n")
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Agentg-Rule") != "builtin:dot-port" {
		t.Fatalf("CONNECT %s: %d %v", dotAddr, resp.StatusCode, resp.Header)
	}
	e.waitEvent(map[string]any{"host": ip, "port": 853, "decision": "deny", "rule": "builtin:dot-port"})
	resp, _ = rawRequest(t, e.addr, "GET http://"+dotAddr+"/ HTTP/1.1\r\nHost: "+dotAddr+"\r\n\r\n")
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Agentg-Rule") != "builtin:dot-port" {
		t.Fatalf("GET http://%s/: %d %v", dotAddr, resp.StatusCode, resp.Header)
	}
	// The marker: a later request to the same address, another port.
	resp, body := rawRequest(t, e.addr, "GET http://"+markerAddr+"/ HTTP/1.1\r\nHost: "+markerAddr+"\r\n\r\n")
	if resp.StatusCode != 200 || body != "ok" || marker.Load() != 1 {
		t.Fatalf("marker: %d %q (%d connections)", resp.StatusCode, body, marker.Load())
	}
	if n := dot.Load(); n != 0 {
		t.Fatalf("port 853 was dialled %d times", n)
	}
}

// A DoH-shaped exchange on an intercepted host that dns.doh_resolvers
// does not name is refused before the upstream sees it, however it is
// spelled; the same host named there gets it.
func TestDoHExchangeRefused(t *testing.T) {
	q := new(dns.Msg)
	q.SetQuestion("example.org.", dns.TypeA)
	wire, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString(wire)

	var mu sync.Mutex
	var seen []string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.Path)
		mu.Unlock()
		io.WriteString(w, "ok")
	})
	upCA := newTestCA(t)
	up := tlsUpstream(t, upCA.leaf(t, "example.com", time.Now().Add(-time.Hour), time.Now().Add(time.Hour)), h)
	policy := func(extra string) string {
		return "default: deny\nips:\n  - allow: 127.0.0.1/32\nhosts:\n  - allow: example.com\nresolve:\n  example.com: [127.0.0.1]\nintercept: [example.com]\n" + extra
	}
	base := "https://example.com:" + up.port

	type req struct {
		name, method, path string
		header             http.Header
		body               []byte
	}
	reqs := []req{
		{"post", "POST", "/dns-query", http.Header{"Content-Type": {"application/dns-message"}}, wire},
		{"post-case-params", "POST", "/p1", http.Header{"Content-Type": {"Application/DNS-Message; charset=binary"}}, wire},
		{"get-param", "GET", "/p2?dns=" + b64, nil, nil},
		{"get-param-padded-semicolon", "GET", "/p3?x=1;dns=" + base64.URLEncoding.EncodeToString(wire), nil, nil},
		{"get-param-encoded-key", "GET", "/p4?%64ns=" + b64, nil, nil},
		{"accept", "GET", "/p5?name=example.org", http.Header{"Accept": {"text/html, application/dns-message;q=0.9"}}, nil},
		{"json", "GET", "/resolve?name=example.org&type=A", http.Header{"Accept": {"application/dns-json"}}, nil},
	}
	send := func(c *http.Client, r req) *http.Response {
		t.Helper()
		hr, _ := http.NewRequest(r.method, base+r.path, bytes.NewReader(r.body))
		for k, v := range r.header {
			hr.Header[k] = v
		}
		resp, err := c.Do(hr)
		if err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}

	e := startProxyWith(t, policy(""), nil, &tlsOpts{roots: upCA.pool()})
	ie := &interceptEnv{env: e, upCA: upCA, up: up}
	for _, h2 := range []bool{false, true} {
		c := ie.mitmClient(h2)
		for _, r := range reqs {
			if resp := send(c, r); resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Agentg-Rule") != "builtin:doh" {
				t.Errorf("%s (h2 %v): %d %v", r.name, h2, resp.StatusCode, resp.Header)
			}
		}
		// Not DoH: a dns= that is no DNS message, a plain GET.
		for _, p := range []string{"/m1?dns=on", "/marker"} {
			if resp := send(c, req{name: p, method: "GET", path: p}); resp.StatusCode != 200 {
				t.Fatalf("%s: %d", p, resp.StatusCode)
			}
		}
	}
	e.waitEvent(map[string]any{"host": "example.com", "path": "/dns-query", "decision": "deny", "rule": "builtin:doh"})
	mu.Lock()
	got := strings.Join(seen, " ")
	mu.Unlock()
	if got != "/m1 /marker /m1 /marker" {
		t.Fatalf("upstream saw %q, want only the markers", got)
	}

	// A resolver the policy names gets its DoH.
	e2 := startProxyWith(t, policy("dns:\n  doh_resolvers: [example.com]\n"), nil, &tlsOpts{roots: upCA.pool()})
	ie2 := &interceptEnv{env: e2, upCA: upCA, up: up}
	if resp := send(ie2.mitmClient(false), reqs[0]); resp.StatusCode != 200 {
		t.Fatalf("DoH to a named resolver: %d %v", resp.StatusCode, resp.Header)
	}
}

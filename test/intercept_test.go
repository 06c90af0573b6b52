package test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

const interceptPolicy = `
default: deny
ips:
  - allow: 127.0.0.1/32
hosts:
  - allow: [example.com, pinned.test, badcert.test, expired.test, reset.test]
resolve:
  example.com: [127.0.0.1]
  pinned.test: [127.0.0.1]
  badcert.test: [127.0.0.1]
  expired.test: [127.0.0.1]
  reset.test: [127.0.0.1]
intercept: [example.com, badcert.test, expired.test, reset.test, .test]
passthrough: [pinned.test]
http:
  - deny: "DELETE example.com/repos/**"
    id: no-delete
  - deny: "POST example.com/admin"
    id: no-admin-post
`

// interceptEnv is a proxy that intercepts, with an upstream PKI of the
// test's own given to it as extra roots.
type interceptEnv struct {
	*env
	upCA *testCA
	up   *upstream // example.com, certificate from upCA
}

func newInterceptEnv(t *testing.T, h http.Handler) *interceptEnv {
	t.Helper()
	upCA := newTestCA(t)
	up := tlsUpstream(t, upCA.leaf(t, "example.com", time.Now().Add(-time.Hour), time.Now().Add(time.Hour)), h)
	e := startProxyWith(t, interceptPolicy, nil, &tlsOpts{roots: upCA.pool()})
	return &interceptEnv{env: e, upCA: upCA, up: up}
}

// mitmClient trusts agentg's CA only: every intercepted answer must come
// with a leaf agentg issued.
func (ie *interceptEnv) mitmClient(h2 bool) *http.Client {
	tr := &http.Transport{
		Proxy:             http.ProxyURL(ie.proxyURL("", "")),
		TLSClientConfig:   &tls.Config{RootCAs: ie.caPool()},
		ForceAttemptHTTP2: h2,
	}
	ie.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func TestInterceptRequests(t *testing.T) {
	ie := newInterceptEnv(t, nil)
	c := ie.mitmClient(false)
	base := "https://example.com:" + ie.up.port

	resp, body := get(t, c, base+"/hello")
	if resp.StatusCode != 200 || body != "GET /hello host=example.com:"+ie.up.port+" len=0" {
		t.Fatalf("GET: %d %q", resp.StatusCode, body)
	}
	if iss := resp.TLS.PeerCertificates[0].Issuer.CommonName; iss != "agentg CA" {
		t.Errorf("client saw a leaf issued by %q, want agentg CA", iss)
	}
	ev := ie.waitEvent(map[string]any{"kind": "http", "scheme": "https", "path": "/hello", "status": 200})
	if ev.str("tls") != "intercepted" || ev.str("tls_version") == "" || ev.str("ip") != "127.0.0.1" || ev.str("rule") != "http:default" {
		t.Errorf("intercepted event: %v", ev)
	}

	// A body of known length, and a chunked one.
	for name, rd := range map[string]io.Reader{
		"content-length": strings.NewReader(strings.Repeat("a", 3000)),
		"chunked":        io.MultiReader(strings.NewReader(strings.Repeat("b", 1000)), strings.NewReader(strings.Repeat("c", 2000))),
	} {
		req, _ := http.NewRequest("POST", base+"/upload", rd)
		if name == "chunked" {
			req.ContentLength = -1
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s POST: %v", name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.HasSuffix(string(b), "len=3000") {
			t.Errorf("%s POST: upstream got %q", name, b)
		}
	}
	ie.waitEvent(map[string]any{"method": "POST", "path": "/upload", "bytes_up": 3000})

	// Method and path rules, request by request inside one tunnel.
	tests := []struct {
		method, path string
		status       int
		rule         string
	}{
		{"GET", "/repos/a/b", 200, "http:default"},
		{"DELETE", "/repos/a/b", 403, "no-delete"},
		{"DELETE", "/repos", 403, "no-delete"},
		{"DELETE", "/other", 200, "http:default"},
		{"POST", "/admin", 403, "no-admin-post"},
		{"TRACE", "/", 403, "builtin:trace"},
		{"DELETE", "/x/../repos/a", 400, "request"},
		{"DELETE", "/repos%2Fa", 400, "request"},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, base+tt.path, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tt.method, tt.path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s %s: %d, want %d", tt.method, tt.path, resp.StatusCode, tt.status)
		}
		if tt.status == 403 && resp.Header.Get("X-Agentg-Rule") != tt.rule {
			t.Errorf("%s %s: rule %q, want %q", tt.method, tt.path, resp.Header.Get("X-Agentg-Rule"), tt.rule)
		}
		ie.waitEvent(map[string]any{"method": tt.method, "path": tt.path, "rule": tt.rule, "status": tt.status})
	}

	// Host inside the tunnel must be the tunnel's host.
	req, _ := http.NewRequest("GET", base+"/", nil)
	req.Host = "other.test:" + ie.up.port
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 421 {
		t.Errorf("Host mismatch inside the tunnel: %d, want 421", resp.StatusCode)
	}
}

func TestInterceptHTTP2(t *testing.T) {
	ie := newInterceptEnv(t, nil)
	c := ie.mitmClient(true)
	for i := 0; i < 3; i++ {
		resp, body := get(t, c, "https://example.com:"+ie.up.port+"/h2")
		if resp.ProtoMajor != 2 || !strings.HasPrefix(body, "GET /h2") {
			t.Fatalf("HTTP/2 through interception: proto %s body %q", resp.Proto, body)
		}
	}
	c.Transport.(*http.Transport).CloseIdleConnections()
	ie.waitEvent(map[string]any{"kind": "connect", "tls": "intercepted", "alpn": "h2"})
}

func TestInterceptWebSocket(t *testing.T) {
	ie := newInterceptEnv(t, websocket.Handler(func(ws *websocket.Conn) {
		for { // echo message by message
			var msg string
			if websocket.Message.Receive(ws, &msg) != nil || websocket.Message.Send(ws, msg) != nil {
				return
			}
		}
	}))
	conn := connectTunnel(t, ie.env, "example.com:"+ie.up.port)
	tc := tls.Client(conn, &tls.Config{ServerName: "example.com", RootCAs: ie.caPool(), NextProtos: []string{"http/1.1"}})
	cfg, _ := websocket.NewConfig("wss://example.com:"+ie.up.port+"/ws", "https://example.com/")
	ws, err := websocket.NewClient(cfg, tc)
	if err != nil {
		t.Fatalf("websocket through interception: %v", err)
	}
	for _, msg := range []string{"hello", strings.Repeat("x", 5000)} {
		if err := websocket.Message.Send(ws, msg); err != nil {
			t.Fatal(err)
		}
		var got string
		if err := websocket.Message.Receive(ws, &got); err != nil || got != msg {
			t.Fatalf("echo: %d bytes, %v", len(got), err)
		}
	}
	ws.Close()
	ev := ie.waitEvent(map[string]any{"kind": "http", "path": "/ws", "status": 101})
	if ev.num("bytes_up") < 5005 || ev.num("bytes_down") < 5005 {
		t.Errorf("websocket bytes not counted: %v", ev)
	}
}

// connectTunnel opens a CONNECT tunnel through the proxy by hand.
func connectTunnel(t *testing.T, e *env, target string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", e.addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT %s: %v %v", target, resp, err)
	}
	if br.Buffered() > 0 {
		t.Fatal("bytes after the CONNECT answer")
	}
	return c
}

func TestInterceptSNI(t *testing.T) {
	ie := newInterceptEnv(t, nil)
	target := "example.com:" + ie.up.port

	// SNI naming another host than the CONNECT: refused in the handshake.
	tc := tls.Client(connectTunnel(t, ie.env, target), &tls.Config{ServerName: "evil.test", RootCAs: ie.caPool()})
	if err := tc.Handshake(); err == nil {
		t.Fatal("handshake with a mismatched SNI succeeded")
	}
	ie.waitEvent(map[string]any{"kind": "connect", "decision": "deny", "rule": "builtin:sni-mismatch"})

	// No SNI: served the CONNECT host's leaf, and reported.
	tc = tls.Client(connectTunnel(t, ie.env, target), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake without SNI: %v", err)
	}
	leaf := tc.ConnectionState().PeerCertificates[0]
	if err := leaf.VerifyHostname("example.com"); err != nil {
		t.Errorf("leaf without SNI: %v", err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ie.caPool(), DNSName: "example.com"}); err != nil {
		t.Errorf("leaf does not chain to agentg's CA: %v", err)
	}
	io.WriteString(tc, "GET /nosni HTTP/1.1\r\nHost: "+target+"\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("request without SNI: %v %v", resp, err)
	}
	tc.Close()
	ev := ie.waitEvent(map[string]any{"kind": "connect", "tls": "intercepted", "decision": "allow"})
	if !strings.Contains(ev.str("reason"), "no SNI") {
		t.Errorf("no-SNI tunnel event does not say so: %v", ev)
	}

	// Garbage instead of a ClientHello (a TLS record that is no hello):
	// the tunnel fails, the proxy lives. (HTTP/1 here would be served:
	// see TestTunnelHTTPToInterceptedHost.)
	raw := connectTunnel(t, ie.env, target)
	io.WriteString(raw, "\x16\x03\x01\x00\x05hello")
	raw.Read(make([]byte, 64))
	raw.Close()
	ev = ie.waitEvent(map[string]any{"kind": "connect", "tls": "intercepted"})
	waitFor(t, func() bool {
		for _, ev := range ie.events() {
			if strings.Contains(ev.str("error"), "handshake") {
				return true
			}
		}
		return false
	}, "an event for the failed handshake")
	if resp, _ := get(t, ie.mitmClient(false), "https://"+target+"/after"); resp.StatusCode != 200 {
		t.Fatalf("proxy unhealthy after garbage: %d", resp.StatusCode)
	}
}

func TestInterceptUpstreamFailures(t *testing.T) {
	ie := newInterceptEnv(t, nil)
	stranger := newTestCA(t) // not among agentg's upstream roots
	bad := tlsUpstream(t, stranger.leaf(t, "badcert.test", time.Now().Add(-time.Hour), time.Now().Add(time.Hour)), nil)
	expired := tlsUpstream(t, ie.upCA.leaf(t, "expired.test", time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)), nil)
	resetLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer resetLn.Close()
	go func() {
		for {
			c, err := resetLn.Accept()
			if err != nil {
				return
			}
			c.(*net.TCPConn).SetLinger(0) // RST instead of FIN
			c.Read(make([]byte, 10))      // part of the ClientHello, then reset
			c.Close()
		}
	}()
	_, resetPort, _ := net.SplitHostPort(resetLn.Addr().String())

	c := ie.mitmClient(false)
	tests := []struct{ url, want string }{
		{"https://badcert.test:" + bad.port + "/", "unknown authority"},
		{"https://expired.test:" + expired.port + "/", "expired"},
		{"https://reset.test:" + resetPort + "/", "reset"},
	}
	for _, tt := range tests {
		resp, body := get(t, c, tt.url)
		if resp.StatusCode != 502 || !strings.Contains(body, tt.want) {
			t.Errorf("%s: %d %q, want 502 mentioning %q", tt.url, resp.StatusCode, body, tt.want)
		}
	}
	for _, want := range []string{"unknown authority", "expired", "reset"} {
		waitFor(t, func() bool {
			for _, ev := range ie.events() {
				if ev.num("status") == 502 && strings.Contains(ev.str("error"), want) {
					return true
				}
			}
			return false
		}, "a 502 event mentioning "+want)
	}
}

func TestPassthroughStaysOpaque(t *testing.T) {
	ie := newInterceptEnv(t, nil)
	pinned := tlsUpstream(t, ie.upCA.leaf(t, "pinned.test", time.Now().Add(-time.Hour), time.Now().Add(time.Hour)), nil)
	tr := &http.Transport{
		Proxy:           http.ProxyURL(ie.proxyURL("", "")),
		TLSClientConfig: &tls.Config{RootCAs: ie.upCA.pool()},
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("https://pinned.test:" + pinned.port + "/")
	if err != nil {
		t.Fatalf("passthrough: %v", err)
	}
	resp.Body.Close()
	if iss := resp.TLS.PeerCertificates[0].Issuer.CommonName; iss != "upstream test root" {
		t.Errorf("passthrough host was intercepted: leaf issued by %q", iss)
	}
	tr.CloseIdleConnections()
	ev := ie.waitEvent(map[string]any{"kind": "connect", "host": "pinned.test"})
	if ev.str("tls") != "" {
		t.Errorf("passthrough tunnel event says tls=%q", ev.str("tls"))
	}
}

func TestLeafCacheReuse(t *testing.T) {
	ie := newInterceptEnv(t, nil)
	for i := 0; i < 10; i++ {
		tr := &http.Transport{Proxy: http.ProxyURL(ie.proxyURL("", "")), TLSClientConfig: &tls.Config{RootCAs: ie.caPool()}}
		resp, err := (&http.Client{Transport: tr}).Get("https://example.com:" + ie.up.port + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		tr.CloseIdleConnections()
	}
	if n := ie.issuer.Issued(); n != 1 {
		t.Errorf("10 tunnels to one host issued %d leaves, want 1", n)
	}
}

func TestInterceptCurl(t *testing.T) {
	bin := needCurl(t)
	ie := newInterceptEnv(t, nil)
	caFile := filepath.Join(t.TempDir(), "agentg-ca.pem")
	writePEM(t, caFile, ie.ca.Certificate().Raw)
	base := "https://example.com:" + ie.up.port
	code, out := curl(t, bin, "-x", "http://"+ie.addr, "--cacert", caFile, base+"/curl")
	if code != "200" || !strings.HasPrefix(out, "GET /curl") {
		t.Fatalf("curl through interception: %s %q", code, out)
	}
	code, _ = curl(t, bin, "-x", "http://"+ie.addr, "--cacert", caFile, "-X", "DELETE", base+"/repos/x")
	if code != "403" {
		t.Errorf("curl DELETE: %s, want 403", code)
	}
	code, out = curl(t, bin, "-x", "http://"+ie.addr, "--cacert", caFile, "--http2", base+"/h2")
	if code != "200" || !strings.HasPrefix(out, "GET /h2") {
		t.Errorf("curl --http2: %s %q", code, out)
	}
}

func TestCACommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if code, out := runAgentg(t, "ca", "init", "--data-dir", dir); code != 0 || !strings.Contains(out, "agentg CA") {
		t.Fatalf("ca init: %d %s", code, out)
	}
	if code, _ := runAgentg(t, "ca", "init", "--data-dir", dir); code == 0 {
		t.Error("ca init over an existing CA succeeded without --force")
	}
	code, out := runAgentg(t, "ca", "show", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "agentg CA") {
		t.Errorf("ca show: %d %s", code, out)
	}
	code, pemOut := runAgentg(t, "ca", "export", "--data-dir", dir)
	if code != 0 || strings.Contains(pemOut, "PRIVATE") || !strings.Contains(pemOut, "BEGIN CERTIFICATE") {
		t.Fatalf("ca export: %d %s", code, pemOut)
	}
	if openssl, err := exec.LookPath("openssl"); err == nil {
		cmd := exec.Command(openssl, "x509", "-noout", "-subject")
		cmd.Stdin = strings.NewReader(pemOut)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "agentg CA") {
			t.Errorf("openssl x509 on ca export: %v %s", err, out)
		}
	}
	code, der := runAgentg(t, "ca", "export", "--format", "der", "--data-dir", dir)
	if _, err := x509.ParseCertificate([]byte(der)); code != 0 || err != nil {
		t.Errorf("ca export --format der: %d %v", code, err)
	}
	code, out = runAgentg(t, "ca", "trust-env", "--data-dir", dir)
	for _, v := range []string{"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO", "DENO_CERT", "update-ca-certificates"} {
		if code != 0 || !strings.Contains(out, v) {
			t.Errorf("ca trust-env lacks %s: %s", v, out)
		}
	}

	// Bring your own CA: a chain and a key file, or the key as a KMS URI.
	for _, key := range []string{filepath.Join(dir, "ca.key"), "softkms:path=" + filepath.Join(dir, "ca.key")} {
		code, out = runAgentg(t, "ca", "show", "--ca-cert", filepath.Join(dir, "ca.crt"), "--ca-key", key)
		if code != 0 || !strings.Contains(out, "agentg CA") {
			t.Errorf("ca show with --ca-key %s: %d %s", key, code, out)
		}
	}
	if code, _ = runAgentg(t, "ca", "show", "--ca-cert", filepath.Join(dir, "ca.crt")); code == 0 {
		t.Error("--ca-cert without --ca-key accepted")
	}

	// A key readable by others stops serve with a clear error.
	if err := chmod(filepath.Join(dir, "ca.key"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out = runAgentg(t, "serve", "--data-dir", dir, "--listen", "127.0.0.1:0")
	if code == 0 || !strings.Contains(out, "chmod 600") {
		t.Errorf("serve with a 0644 key: %d %q", code, out)
	}
	// A corrupt CA directory is an error too, not a silent new CA.
	writeFile(t, filepath.Join(dir, "ca.crt"), "not a certificate")
	chmod(filepath.Join(dir, "ca.key"), 0o600)
	if code, out = runAgentg(t, "serve", "--data-dir", dir, "--listen", "127.0.0.1:0"); code == 0 {
		t.Errorf("serve with a corrupt CA: %d %q", code, out)
	}
}

// Server-sent events (MCP's Streamable HTTP) must flow through an
// intercepted tunnel event by event, never held until the body ends: the
// upstream sends the second event only after the client has the first.
func TestInterceptStreamsSSE(t *testing.T) {
	gotFirst := make(chan struct{})
	ie := newInterceptEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-gotFirst:
		case <-time.After(5 * time.Second):
			return
		}
		io.WriteString(w, "data: two\n\n")
	}))
	for _, h2 := range []bool{false, true} {
		resp, err := ie.mitmClient(h2).Get("https://example.com:" + ie.up.port + "/events")
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(resp.Body)
		line, err := br.ReadString('\n')
		if err != nil || line != "data: one\n" {
			t.Fatalf("h2=%v: first event %q %v", h2, line, err)
		}
		select {
		case gotFirst <- struct{}{}:
		case <-time.After(6 * time.Second):
			t.Fatalf("h2=%v: the upstream gave up waiting: the first event was held back", h2)
		}
		rest, _ := io.ReadAll(br)
		resp.Body.Close()
		if string(rest) != "\ndata: two\n\n" {
			t.Fatalf("h2=%v: rest %q", h2, rest)
		}
	}
}

package test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentg/agentg/internal/testenv"
)

// Issue 16, mTLS: a binding presents agentg's client certificate to an
// upstream that requires one, although the agent has none; a request the
// binding does not match never presents it, not even on a connection
// pooled by a request that did.

const mtlsHeaderValue = "hk-31f7a0c2d9-MTLS-HEADER"

// clientLeaf issues a client certificate (clientAuth) for cn from ca and
// writes it to dir/NAME.pem and its key to dir/NAME.key (0600); it
// returns the key's PEM, to grep agentg's output for.
func clientLeaf(t *testing.T, ca *testenv.CA, dir, name, cn string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	if err := os.WriteFile(filepath.Join(dir, name+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".key"), keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return keyPEM
}

// mtlsUpstream is a loopback TLS server that verifies client certificates
// against its own CA and records, for every request, the client
// certificate's CN ("" for none) and the header a binding sets.
type mtlsUpstream struct {
	*httptest.Server
	port  string
	conns atomic.Int64 // TCP connections accepted
	mu    sync.Mutex
	seen  []mtlsSeen
}

type mtlsSeen struct {
	path, cn, proto string
	key             []string
}

// startMTLSUpstream serves TLS with leaf; auth is RequireAndVerifyClientCert
// (no handshake without a certificate of clients) or VerifyClientCertIfGiven
// (records who presented none). h2 offers HTTP/2.
func startMTLSUpstream(t *testing.T, leaf tls.Certificate, clients *x509.CertPool, auth tls.ClientAuthType, h2 bool) *mtlsUpstream {
	u := &mtlsUpstream{}
	u.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := mtlsSeen{path: r.URL.Path, key: r.Header.Values("X-Api-Key"), proto: r.Proto}
		if len(r.TLS.PeerCertificates) > 0 {
			s.cn = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		u.mu.Lock()
		u.seen = append(u.seen, s)
		u.mu.Unlock()
		io.WriteString(w, "cn="+s.cn)
	}))
	u.TLS = &tls.Config{Certificates: []tls.Certificate{leaf}, ClientAuth: auth, ClientCAs: clients}
	u.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshakes refused on purpose
	u.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			u.conns.Add(1)
		}
	}
	u.EnableHTTP2 = h2
	u.StartTLS()
	_, u.port, _ = net.SplitHostPort(u.Listener.Addr().String())
	t.Cleanup(u.Close)
	return u
}

func (u *mtlsUpstream) last() mtlsSeen {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.seen) == 0 {
		return mtlsSeen{}
	}
	return u.seen[len(u.seen)-1]
}

func (u *mtlsUpstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.seen)
}

func mtlsPolicy(dir string) string {
	return `
default: deny
ips:
  - allow: 127.0.0.1/32
agents:
  - {name: coder, password: coder-pw}
  - {name: other, password: other-pw}
hosts:
  - allow: [mtls.cred.test, kms.cred.test]
resolve:
  mtls.cred.test: [127.0.0.1]
  kms.cred.test: [127.0.0.1]
intercept: [mtls.cred.test, kms.cred.test]
credentials:
  secrets:
    client-key: {file: client.key}
    kms-key: {kms: "softkms:path=` + dir + `/kmsclient.key"}
    api: {env: AGENTG_TEST_MTLS_HEADER}
  bindings:
    - id: mtls-coder
      host: mtls.cred.test
      path: /m/**
      agents: [coder]
      secret: api
      header: {name: X-Api-Key, value: "{{secret}}"}
      client_cert: {cert: client.pem, key: client-key}
    - id: mtls-kms
      host: kms.cred.test
      client_cert: {cert: kmsclient.pem, key: kms-key}
`
}

func TestCredMTLS(t *testing.T) {
	dir := t.TempDir()
	upCA, err := testenv.NewCA("mtls upstream root")
	if err != nil {
		t.Fatal(err)
	}
	clientCA, err := testenv.NewCA("mtls client root")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := upCA.Leaf([]string{"mtls.cred.test", "kms.cred.test"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	keys := [][]byte{
		clientLeaf(t, clientCA, dir, "client", "agentg-client"),
		clientLeaf(t, clientCA, dir, "kmsclient", "agentg-kms-client"),
	}
	strict := startMTLSUpstream(t, leaf, clientCA.Pool(), tls.RequireAndVerifyClientCert, false)
	lenient := startMTLSUpstream(t, leaf, clientCA.Pool(), tls.VerifyClientCertIfGiven, true)

	caFile := filepath.Join(dir, "upstream-ca.pem")
	if err := upCA.WriteCert(caFile); err != nil {
		t.Fatal(err)
	}
	policy := mtlsPolicy(dir)
	if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	a, err := testenv.StartAgentg(testenv.AgentgConfig{T: t, Binary: agentgBin, Dir: dir, Policy: policy,
		Stderr: stderr, Env: append(os.Environ(), "AGENTG_TEST_MTLS_HEADER="+mtlsHeaderValue),
		Args: []string{"--upstream-ca", caFile, "--reload-interval", "0", "--shutdown-timeout", "2s"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Kill)
	pool, err := a.CAPool()
	if err != nil {
		t.Fatal(err)
	}
	// Each agent has its own client (its own tunnels); agentg's upstream
	// connections are pooled across them. Neither client has a
	// certificate.
	client := func(agent, pw string) *http.Client {
		u := a.URL()
		u.User = url.UserPassword(agent, pw)
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(u),
			TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}
	coder, other := client("coder", "coder-pw"), client("other", "other-pw")
	get := func(c *http.Client, u string) (int, string) {
		t.Helper()
		resp, err := c.Get(u)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}

	// The upstream requires a client certificate: the request the binding
	// matches gets agentg's, and the header the same binding sets.
	strictURL := "https://mtls.cred.test:" + strict.port
	if st, body := get(coder, strictURL+"/m/1"); st != 200 || body != "cn=agentg-client" {
		t.Fatalf("coder's request to the mTLS upstream: %d %q", st, body)
	}
	if got := strict.last(); len(got.key) != 1 || got.key[0] != mtlsHeaderValue {
		t.Fatalf("the upstream saw X-Api-Key %q beside the certificate", got.key)
	}
	waitEventOf(t, a, "the mTLS request's event", func(e map[string]any) bool {
		return e["path"] == "/m/1" && e["binding"] == "mtls-coder" && e["credential"] == "api,client-key" && e["status"] == float64(200)
	})

	// Another agent, to the same upstream, right after: the binding does
	// not match, so no certificate, although an idle connection that
	// presented one is pooled for the same address. The upstream's
	// handshake fails (agentg answers 502); the marker after it shows the
	// upstream still serves the binding's requests.
	before := strict.count()
	if st, body := get(other, strictURL+"/m/1"); st != http.StatusBadGateway {
		t.Fatalf("another agent's request to the mTLS upstream: %d %q, want 502 (no certificate)", st, body)
	}
	waitEventOf(t, a, "the unmatched request's event", func(e map[string]any) bool {
		return e["path"] == "/m/1" && e["agent"] == "other" && e["binding"] == nil && e["status"] == float64(502)
	})
	if st, _ := get(coder, strictURL+"/m/marker"); st != 200 {
		t.Fatalf("marker: %d", st)
	}
	if n := strict.count() - before; n != 1 || strict.last().path != "/m/marker" {
		t.Fatalf("after the unmatched request the upstream served %d requests, want the marker only", n)
	}

	// Where the upstream (HTTP/2 this time) only verifies a certificate
	// that is given, it says who presented one: the binding's requests, on
	// one pooled connection; another agent's and another path's, on their
	// own connection, none.
	lenientURL := "https://mtls.cred.test:" + lenient.port
	for i, c := range []struct {
		client *http.Client
		path   string
		cn     string
		conns  int64 // the upstream's connections after the request
	}{
		{coder, "/m/a", "agentg-client", 1},
		{other, "/m/b", "", 2},              // not the binding's agent: a connection of its own
		{coder, "/m/c", "agentg-client", 2}, // the binding's connection, reused
		{coder, "/elsewhere", "", 2},        // not the binding's path: the connection without a certificate
		{other, "/m/d", "", 2},
	} {
		if st, body := get(c.client, lenientURL+c.path); st != 200 || body != "cn="+c.cn {
			t.Fatalf("request %d (%s): %d %q, want the upstream to see cn=%q", i, c.path, st, body, c.cn)
		}
		if p := lenient.last().proto; p != "HTTP/2.0" {
			t.Fatalf("request %d went upstream as %s, want HTTP/2", i, p)
		}
		if n := lenient.conns.Load(); n != c.conns {
			t.Fatalf("after request %d (%s) the upstream has had %d connections, want %d", i, c.path, n, c.conns)
		}
	}

	// A key served by softkms.
	if st, body := get(other, "https://kms.cred.test:"+strict.port+"/any"); st != 200 || body != "cn=agentg-kms-client" {
		t.Fatalf("the softkms binding's request: %d %q", st, body)
	}
	waitEventOf(t, a, "the kms request's event", func(e map[string]any) bool {
		return e["path"] == "/any" && e["binding"] == "mtls-kms" && e["credential"] == "kms-key"
	})

	// agentg check names the certificate a request would present.
	code, out := runAgentg(t, "check", filepath.Join(dir, "policy.yaml"), "--agent", "coder", "--request", "GET https://mtls.cred.test/m/x")
	if code != 0 || !strings.Contains(out, "presents CN=agentg-client") || !strings.Contains(out, "key client-key") {
		t.Errorf("check: %d\n%s", code, out)
	}

	// Nothing agentg wrote holds a value: the header's, or any line of
	// either key.
	a.Stop(2 * time.Second)
	logText, err := os.ReadFile(a.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	written := string(logText) + stderr.String() + a.Stderr() + out
	values := []string{mtlsHeaderValue}
	for _, k := range keys {
		for _, l := range strings.Split(string(k), "\n") {
			if len(l) > 16 && !strings.HasPrefix(l, "-----") {
				values = append(values, l)
			}
		}
	}
	for _, v := range values {
		if n := strings.Count(written, v); n != 0 {
			t.Errorf("agentg's log, stderr or check output holds a secret value %d times", n)
		}
	}
	if !strings.Contains(string(logText), `"credential":"api,client-key"`) {
		t.Error("the log names no credential: the grep above proved nothing")
	}
}

// A certificate and key that do not belong together, or a certificate
// that cannot be read, are load errors at the binding's line, which
// agentg check reports.
func TestCredMTLSLoadErrors(t *testing.T) {
	dir := t.TempDir()
	ca, err := testenv.NewCA("mtls client root")
	if err != nil {
		t.Fatal(err)
	}
	clientLeaf(t, ca, dir, "client", "agentg-client")
	clientLeaf(t, ca, dir, "kmsclient", "agentg-kms-client")
	if err := os.WriteFile(filepath.Join(dir, "junk.pem"), []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := mtlsPolicy(dir)
	line := 0
	for i, l := range strings.Split(base, "\n") {
		if strings.Contains(l, "client_cert: {cert: client.pem") {
			line = i + 1
		}
	}
	for _, tc := range []struct{ name, from, to, want string }{
		{"key of another certificate", "{cert: client.pem, key: client-key}", "{cert: client.pem, key: kms-key}", "client key does not match certificate CN=agentg-client"},
		{"missing certificate", "{cert: client.pem,", "{cert: nope.pem,", "nope.pem: no such file"},
		{"unparsable certificate", "{cert: client.pem,", "{cert: junk.pem,", "junk.pem"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pol := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
			if err := os.WriteFile(pol, []byte(strings.Replace(base, tc.from, tc.to, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			code, out := runAgentg(t, "check", pol)
			want := filepath.Base(pol) + ":" + strconv.Itoa(line) + ": binding mtls-coder client_cert: "
			if code == 0 || !strings.Contains(out, want) || !strings.Contains(out, tc.want) {
				t.Fatalf("check: %d, want an error with %q and %q:\n%s", code, want, tc.want, out)
			}
		})
	}
}

const mcpTokenValue = "mcp-7c2e94b1f0-BEARER"

// An MCP server (the official Go SDK) behind a bearer-token check, bound
// by server: NAME, is reached with the injected token: a tools/call
// through agentg works while the SDK client holds no credential, and
// works too when the client sends a wrong Authorization of its own, which
// is replaced. A path of the same host that the server's entry does not
// bind gets no token.
func TestCredMCPServerBinding(t *testing.T) {
	dir := t.TempDir()
	upCA, err := testenv.NewCA("mcp upstream root")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := upCA.Leaf([]string{"mcp.cred.test"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	srv := mcp.NewServer(&mcp.Implementation{Name: "bearer-peer", Version: "1.0.0"}, nil)
	var calls atomic.Int64
	mcp.AddTool(srv, &mcp.Tool{Name: "echo"}, func(_ context.Context, _ *mcp.CallToolRequest, in map[string]any) (*mcp.CallToolResult, any, error) {
		calls.Add(1)
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprint(in["text"])}}}, nil, nil
	})
	sdk := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv },
		&mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true, DisableLocalhostProtection: true})
	var mu sync.Mutex
	var auths [][]string // every request's Authorization values, as the server got them
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auths = append(auths, r.Header.Values("Authorization"))
		mu.Unlock()
		if got := r.Header.Values("Authorization"); len(got) != 1 || got[0] != "Bearer "+mcpTokenValue {
			w.Header().Set("WWW-Authenticate", `Bearer realm="test"`)
			http.Error(w, "bearer token required", http.StatusUnauthorized)
			return
		}
		if r.URL.Path != "/mcp" {
			io.WriteString(w, "not mcp")
			return
		}
		sdk.ServeHTTP(w, r)
	})
	up := testenv.StartUpstream(testenv.UpstreamOptions{Cert: &leaf, Handler: h, Quiet: true})
	defer up.Close()
	caFile := filepath.Join(dir, "upstream-ca.pem")
	if err := upCA.WriteCert(caFile); err != nil {
		t.Fatal(err)
	}
	policy := `
default: deny
ips:
  - allow: 127.0.0.1/32
hosts:
  - allow: mcp.cred.test
resolve:
  mcp.cred.test: [127.0.0.1]
mcp:
  default: allow
  servers:
    - {name: tools, url: mcp.cred.test/mcp}
credentials:
  secrets:
    mcp-token: {env: AGENTG_TEST_MCP_TOKEN}
  bindings:
    - id: tools-bearer
      server: tools
      secret: mcp-token
      header: {name: Authorization, value: "Bearer {{secret}}"}
`
	stderr := &syncBuffer{}
	a, err := testenv.StartAgentg(testenv.AgentgConfig{T: t, Binary: agentgBin, Dir: filepath.Join(dir, "agentg"), Policy: policy,
		Stderr: stderr, Env: append(os.Environ(), "AGENTG_TEST_MCP_TOKEN="+mcpTokenValue),
		Args: []string{"--upstream-ca", caFile, "--reload-interval", "0", "--shutdown-timeout", "2s"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Kill)
	pool, err := a.CAPool()
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "https://mcp.cred.test:" + up.Port + "/mcp"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	call := func(hc *http.Client, text string) {
		t.Helper()
		cl := mcp.NewClient(&mcp.Implementation{Name: "no-credential-client", Version: "1.0.0"}, nil)
		cs, err := cl.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc, MaxRetries: -1}, nil)
		if err != nil {
			t.Fatalf("connect through agentg: %v", err)
		}
		defer cs.Close()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": text}})
		if err != nil || res.IsError || len(res.Content) != 1 || res.Content[0].(*mcp.TextContent).Text != text {
			t.Fatalf("tools/call through agentg: %+v, %v", res, err)
		}
	}
	cfg := testenv.MCPClientConfig{Proxy: a.URL(), Roots: pool}

	// The client holds no credential.
	call(testenv.MCPHTTPClient(cfg), "first")
	// The client sends a wrong token of its own: it is replaced.
	hc := testenv.MCPHTTPClient(cfg)
	hc.Transport = withHeader{hc.Transport, "Authorization", "Bearer agent-own-wrong"}
	call(hc, "second")
	if calls.Load() != 2 {
		t.Fatalf("the tool ran %d times, want 2", calls.Load())
	}
	mu.Lock()
	for i, got := range auths {
		if len(got) != 1 || got[0] != "Bearer "+mcpTokenValue {
			t.Errorf("request %d reached the server with Authorization %q", i, got)
		}
	}
	n := len(auths)
	mu.Unlock()
	if n < 4 {
		t.Fatalf("the server saw %d requests, want at least two sessions' worth", n)
	}
	waitEventOf(t, a, "the tools/call exchange's event", func(e map[string]any) bool {
		return e["path"] == "/mcp" && e["binding"] == "tools-bearer" && e["credential"] == "mcp-token" && e["method"] == "POST"
	})

	// Another path of the host is not the server's: no token.
	resp, err := (&http.Client{Timeout: 10 * time.Second, Transport: testenv.MCPHTTPClient(cfg).Transport}).Get("https://mcp.cred.test:" + up.Port + "/other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /other: %d, want the server's 401", resp.StatusCode)
	}
	mu.Lock()
	last := auths[len(auths)-1]
	mu.Unlock()
	if len(last) != 0 {
		t.Fatalf("a path the server's entry does not bind got Authorization %q", last)
	}

	// agentg check names the binding for the server's path, and none for
	// another path of the host.
	code, out := runAgentg(t, "check", filepath.Join(dir, "agentg", "policy.yaml"),
		"--request", "POST https://mcp.cred.test/mcp", "--request", "GET https://mcp.cred.test/other")
	if code != 0 || strings.Count(out, "binding=tools-bearer") != 1 || !strings.Contains(out, "attaches secret mcp-token from env AGENTG_TEST_MCP_TOKEN") {
		t.Errorf("check: %d\n%s", code, out)
	}

	a.Stop(2 * time.Second)
	logText, err := os.ReadFile(a.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(logText)+stderr.String()+a.Stderr()+out, mcpTokenValue); n != 0 {
		t.Errorf("agentg's log, stderr or check output holds the token %d times", n)
	}
	if !strings.Contains(string(logText), `"binding":"tools-bearer"`) {
		t.Error("the log names no binding: the grep above proved nothing")
	}
}

// withHeader sets a header on every request, as a client that sends its
// own credential does.
type withHeader struct {
	rt          http.RoundTripper
	name, value string
}

func (w withHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(w.name, w.value)
	return w.rt.RoundTrip(r)
}

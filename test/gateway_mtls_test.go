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
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentg/agentg/internal/testenv"
)

// Issue 17, agents at the gateway by client certificate: with
// --gateway-tls-cert and --gateway-tls-key the gateway door serves TLS
// and asks every client for a certificate; the policy's gateway: mtls
// section checks it per request. A certificate from the configured CA is
// the agent its name maps to; none, one from another CA, or an expired
// one gets 401 with WWW-Authenticate and one event, and nothing reaches
// the upstream (a Go SDK server over HTTPS on loopback).

// gwCert issues a certificate for cn from ca, valid from notBefore to
// notAfter: a client certificate (clientAuth), or a server one for cn and
// 127.0.0.1.
func gwCert(t *testing.T, ca *testenv.CA, cn string, notBefore, notAfter time.Time, server bool) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{cn}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// writePair writes c's certificate and key as PEM files.
func writePair(t *testing.T, c tls.Certificate, certFile, keyFile string) {
	t.Helper()
	kder, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestGatewayMTLS(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	mk := func(name string) *testenv.CA {
		ca, err := testenv.NewCA(name)
		if err != nil {
			t.Fatal(err)
		}
		return ca
	}
	upCA, gwCA, clientCA, foreignCA := mk("upstream root"), mk("gateway server root"), mk("gateway clients"), mk("someone else's clients")
	up, err := testenv.StartMCPServer(testenv.MCPServerConfig{Mode: testenv.MCPStateful, CA: upCA, Hosts: []string{"up.gw.test"}, Name: "up"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	for file, ca := range map[string]*testenv.CA{"upstream-ca.pem": upCA, "clients-ca.pem": clientCA} {
		if err := ca.WriteCert(filepath.Join(dir, file)); err != nil {
			t.Fatal(err)
		}
	}
	// The door's own certificate, for the name clients dial.
	writePair(t, gwCert(t, gwCA, "gateway.gw.test", now.Add(-time.Hour), now.Add(time.Hour), true),
		filepath.Join(dir, "gw.pem"), filepath.Join(dir, "gw.key"))
	ag := startAdminAgentg(t, testenv.AgentgConfig{Dir: dir, Policy: `default: deny
ips:
  - allow: 127.0.0.1/32
hosts:
  - allow: up.gw.test
resolve:
  up.gw.test: [127.0.0.1]
agents:
  - name: coder
gateway:
  mtls:
    ca: clients-ca.pem
    name_from: cn
    agents: {laptop-7.corp.test: coder}
mcp:
  default: allow
  servers:
    - name: up
      endpoint: ` + up.URL + `
`, Args: []string{"--gateway", "127.0.0.1:0", "--upstream-ca", filepath.Join(dir, "upstream-ca.pem"),
		"--gateway-tls-cert", filepath.Join(dir, "gw.pem"), "--gateway-tls-key", filepath.Join(dir, "gw.key")}})
	// By its loopback address: the gateway's MCP server refuses a Host
	// that is not on loopback arriving there (DNS rebinding).
	endpoint := "https://" + ag.Gateway + "/mcp"
	// A client that dials the door and verifies its certificate, with a
	// certificate of its own or none.
	client := func(cert *tls.Certificate) *http.Client {
		tc := &tls.Config{RootCAs: gwCA.Pool()}
		if cert != nil {
			tc.Certificates = []tls.Certificate{*cert}
		}
		d := &net.Dialer{}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, ag.Gateway)
			}}}
	}
	ctx := gwCtx(t)
	call := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"up.echo","arguments":{"text":"refused"}}}`
	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`
	good := gwCert(t, clientCA, "laptop-7.corp.test", now.Add(-time.Hour), now.Add(time.Hour), false)
	for _, tc := range []struct {
		name, check string
		cert        *tls.Certificate
	}{
		{"no certificate", "missing", nil},
		{"another CA's", "chain", ptr(gwCert(t, foreignCA, "laptop-7.corp.test", now.Add(-time.Hour), now.Add(time.Hour), false))},
		{"expired", "chain", ptr(gwCert(t, clientCA, "laptop-7.corp.test", now.Add(-2*time.Hour), now.Add(-time.Hour), false))},
		{"no agent's name", "name", ptr(gwCert(t, clientCA, "kiosk.corp.test", now.Add(-time.Hour), now.Add(time.Hour), false))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hc := client(tc.cert)
			defer hc.CloseIdleConnections()
			for _, body := range []string{init, call} {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
				resp, err := hc.Do(req)
				if err != nil {
					t.Fatalf("the handshake failed (the door should answer 401, not a TLS alert): %v", err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
					t.Fatalf("%s: WWW-Authenticate %q; want 401 with a Bearer challenge", resp.Status, resp.Header.Get("WWW-Authenticate"))
				}
				if tc.cert != nil && !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
					t.Errorf("a refused certificate's challenge %q has no invalid_token", resp.Header.Get("WWW-Authenticate"))
				}
			}
			waitEventOf(t, ag.Agentg, "the refusal ("+tc.check+")", func(e map[string]any) bool {
				return e["rule"] == "builtin:gateway-auth" && e["door"] == "gateway" && e["scheme"] == "https" &&
					strings.Contains(stringOf(e["reason"]), "mtls") == (tc.cert != nil)
			})
		})
	}

	// The right certificate: the agent it maps to, through TLS, to the
	// upstream. Its one call is the first the upstream ever ran.
	hc := client(&good)
	defer hc.CloseIdleConnections()
	cl := mcp.NewClient(&mcp.Implementation{Name: "laptop", Version: "1"}, nil)
	cs, err := cl.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc, MaxRetries: -1},
		&mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatalf("connect with the right certificate: %v", err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "up.echo", Arguments: map[string]any{"text": "marker"}})
	if err != nil || res.IsError || !strings.Contains(gwText(res), "marker") {
		t.Fatalf("up.echo with the right certificate: %+v, %v", res, err)
	}
	if n := up.Calls("echo"); n != 1 {
		t.Fatalf("the upstream ran echo %d times: a refused client's call reached it", n)
	}
	for _, r := range up.Requests() {
		if strings.Contains(string(r.Body), "refused") {
			t.Fatalf("a refused client's message reached the upstream: %s %s", r.Method, r.Body)
		}
	}
	waitEventOf(t, ag.Agentg, "the call as coder", func(e map[string]any) bool {
		return e["kind"] == "mcp" && e["method"] == "tools/call" && e["agent"] == "coder" && e["door"] == "gateway" && e["decision"] == "allow"
	})
}

func ptr[T any](v T) *T { return &v }

// TestGatewayTLSFlags: the door's TLS flags are checked at start, with an
// error naming the flag; nothing listens half-configured.
func TestGatewayTLSFlags(t *testing.T) {
	dir := t.TempDir()
	ca, err := testenv.NewCA("gateway server root")
	if err != nil {
		t.Fatal(err)
	}
	writePair(t, gwCert(t, ca, "gateway.gw.test", time.Now().Add(-time.Hour), time.Now().Add(time.Hour), true),
		filepath.Join(dir, "gw.pem"), filepath.Join(dir, "gw.key"))
	os.WriteFile(filepath.Join(dir, "junk.pem"), []byte("not a certificate\n"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"cert without key", []string{"--gateway", "127.0.0.1:0", "--gateway-tls-cert", filepath.Join(dir, "gw.pem")}, "--gateway-tls-cert and --gateway-tls-key go together"},
		{"no such file", []string{"--gateway", "127.0.0.1:0", "--gateway-tls-cert", filepath.Join(dir, "nope.pem"), "--gateway-tls-key", filepath.Join(dir, "gw.key")}, "nope.pem"},
		{"not PEM", []string{"--gateway", "127.0.0.1:0", "--gateway-tls-cert", filepath.Join(dir, "junk.pem"), "--gateway-tls-key", filepath.Join(dir, "gw.key")}, "junk.pem"},
		{"without --gateway", []string{"--gateway-tls-cert", filepath.Join(dir, "gw.pem"), "--gateway-tls-key", filepath.Join(dir, "gw.key")}, "need --gateway"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := testenv.StartAgentg(testenv.AgentgConfig{Binary: agentgBin, Dir: t.TempDir(), Args: tc.args, StartTimeout: 5 * time.Second})
			if err == nil {
				a.Kill()
				t.Fatal("agentg started")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

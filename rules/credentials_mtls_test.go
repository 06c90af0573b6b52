package rules

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// clientPair writes a self-signed client certificate and its key (0600)
// into dir as NAME.pem and NAME.key.
func clientPair(t *testing.T, dir, name string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// loadIn writes policy.yaml into dir and loads it.
func loadIn(t *testing.T, dir, policy string) (*Engine, error) {
	t.Helper()
	p := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(p, []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	return Load(p)
}

const mtlsPolicy = `hosts:
  - allow: .example.test
credentials:
  secrets:
    a-key: {file: a.key}
    b-key: {kms: "softkms:path=%s/b.key;pin-value=hunter2"}
    tok: {env: T}
  bindings:
    - id: a
      host: a.example.test
      client_cert: {cert: a.pem, key: a-key}
    - id: b
      host: b.example.test
      secret: tok
      header: {name: Authorization, value: "Bearer {{secret}}"}
      client_cert: {cert: b.pem, key: b-key}
    - id: a-again
      host: c.example.test
      client_cert: {cert: a.pem, key: a-key}
`

// A binding presents a client certificate whose key is a file or a kms
// secret; each binding's connections are its own (PoolKey), the key's
// secret is recorded with the binding, and the certificate is watched.
func TestCredentialsClientCert(t *testing.T) {
	dir := t.TempDir()
	clientPair(t, dir, "a")
	clientPair(t, dir, "b")
	e, err := loadIn(t, dir, fmt.Sprintf(mtlsPolicy, dir))
	if err != nil {
		t.Fatal(err)
	}
	c := e.Credentials()
	a := c.Match("", host(t, "a.example.test", 443), "https", "/")
	b := c.Match("", host(t, "b.example.test", 443), "https", "/")
	again := c.Match("", host(t, "c.example.test", 443), "https", "/")
	if a == nil || b == nil || again == nil || a.Cert == nil || b.Cert == nil || again.Cert == nil {
		t.Fatalf("bindings: %+v %+v %+v", a, b, again)
	}
	if a.Kind != 0 || a.Secrets != "a-key" || b.Kind != InjectHeader || b.Secrets != "tok,b-key" {
		t.Errorf("a = %v %q, b = %v %q", a.Kind, a.Secrets, b.Kind, b.Secrets)
	}
	if a.Cert.Subject() != "CN=a" || b.Cert.Subject() != "CN=b" || a.Cert.Certificate().PrivateKey == nil {
		t.Errorf("subjects %s %s", a.Cert.Subject(), b.Cert.Subject())
	}
	// The same certificate for another binding is another pool: a
	// connection is reused only by requests of the binding that opened it.
	if a.Cert.PoolKey() == b.Cert.PoolKey() || a.Cert.PoolKey() == again.Cert.PoolKey() {
		t.Errorf("pool keys %q %q %q", a.Cert.PoolKey(), b.Cert.PoolKey(), again.Cert.PoolKey())
	}
	if !slices.Contains(e.Files(), filepath.Join(dir, "a.pem")) || !slices.Contains(e.Files(), filepath.Join(dir, "a.key")) {
		t.Errorf("certificate or key not watched: %v", e.Files())
	}
	if c.Match("", host(t, "a.example.test", 443), "http", "/") != nil {
		t.Error("a client certificate binding matched plain http")
	}
	// The certificates expire within the hour: agentg check says so.
	var expiring int
	for _, w := range e.Warnings() {
		if strings.Contains(w.Text, "client certificate CN=a") && strings.Contains(w.Text, "expires on") {
			expiring++
		}
	}
	if expiring != 2 { // bindings a and a-again
		t.Errorf("warnings %v, want two about CN=a expiring", e.Warnings())
	}
	src, _ := c.Store().Source("b-key")
	if s := fmt.Sprintf("%v %+v", src, c.Bindings()); strings.Contains(s, "hunter2") || !strings.Contains(src.String(), "pin-value=REDACTED") {
		t.Errorf("printed %s", s)
	}
}

// Every way a client_cert can be wrong is a load error at its line.
func TestCredentialsClientCertLoadErrors(t *testing.T) {
	dir := t.TempDir()
	clientPair(t, dir, "a")
	clientPair(t, dir, "b")
	if err := os.WriteFile(filepath.Join(dir, "junk.pem"), []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	head := "hosts:\n  - allow: a.test\ncredentials:\n  secrets:\n    a-key: {file: a.key}\n    b-key: {file: b.key}\n    e-key: {env: K}\n    k-key: {kms: \"softkms:path=" + dir + "/a.key;pin-value=hunter2\"}\n  bindings:\n"
	for _, tt := range []struct{ name, binding, want string }{
		{"mismatched key", "    - id: x\n      host: a.test\n      client_cert: {cert: a.pem, key: b-key}\n", ":12: binding x client_cert: load client certificate " + dir + "/a.pem with key file " + dir + "/b.key: client key does not match certificate CN=a"},
		{"missing cert", "    - host: a.test\n      client_cert: {cert: nope.pem, key: a-key}\n", ":11: client_cert: load client certificate " + dir + "/nope.pem"},
		{"unparsable cert", "    - host: a.test\n      client_cert: {cert: junk.pem, key: a-key}\n", ":11: client_cert: load client certificate " + dir + "/junk.pem"},
		{"kms mismatched", "    - host: a.test\n      client_cert: {cert: b.pem, key: k-key}\n", "does not match certificate CN=b"},
		{"key from env", "    - host: a.test\n      client_cert: {cert: a.pem, key: e-key}\n", ":11: client_cert key e-key comes from env K: a key is a file: or a kms: secret"},
		{"undefined key", "    - host: a.test\n      client_cert: {cert: a.pem, key: nope}\n", `:11: secret "nope" is not defined`},
		{"key sent in a header", "    - host: a.test\n      client_cert: {cert: a.pem, key: a-key}\n    - host: a.test\n      header: {name: X, value: \"{{secret a-key}}\"}\n", ":13: secret a-key is a client_cert key: it is never sent"},
		{"kms sent as a query", "    - host: a.test\n      secret: k-key\n      query: k\n", ":12: secret k-key is a kms key: only a client_cert can use it"},
		{"insecure_http", "    - host: a.test\n      insecure_http: true\n      client_cert: {cert: a.pem, key: a-key}\n", ":12: a client certificate is presented in TLS only"},
		{"secret without a header", "    - host: a.test\n      secret: e-key\n      client_cert: {cert: a.pem, key: a-key}\n", ":11: secret: names what a header, basic or query sends"},
		{"unknown key", "    - host: a.test\n      client_cert: {cert: a.pem, key: a-key, pass: x}\n", `:11: unknown client_cert key "pass"`},
		{"no key", "    - host: a.test\n      client_cert: {cert: a.pem}\n", ":11: a client_cert needs a cert"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadIn(t, dir, head+tt.binding)
			if err == nil {
				t.Fatalf("loaded, want %q", tt.want)
			}
			if !strings.HasPrefix(err.Error(), "load policy ") || !strings.Contains(err.Error(), "policy.yaml"+tt.want) && !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want %q", err, tt.want)
			}
			if strings.HasPrefix(tt.want, ":") && !strings.Contains(err.Error(), "policy.yaml"+tt.want) {
				t.Fatalf("error %q, want policy.yaml%s", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error shows the PIN: %v", err)
			}
		})
	}
	checkLoadErrors(t, []loadErrorCase{
		{"bad kms uri", "credentials:\n  secrets:\n    k: {kms: \"/etc/key.pem\"}\n", `:3: bad kms URI "/etc/key.pem"`},
		{"kms uri pin shown", "credentials:\n  secrets:\n    k: {kms: \"Soft:pin-value=hunter2\"}\n", `:3: bad kms URI "Soft:pin-value=REDACTED"`},
	})
}

const serverPolicy = `hosts:
  - allow: [.example.test]
mcp:
  servers:
    - {name: gh, url: mcp.example.test/gh/**}
    - {name: gh-admin, url: mcp.example.test/gh/admin/**}
    - {name: jira, url: "*.jira.example.test", ports: [8443]}
    - {name: other, url: other.example.test}
credentials:
  secrets:
    s: {env: T}
  bindings:
    - {id: gh, server: gh, secret: s, query: k}
    - {id: many, servers: [jira, other], path: /api/**, agents: [coder], secret: s, query: k}
    - {id: by-host, host: mcp.example.test, secret: s, query: k}
`

// A binding by server name matches exactly what mcp servers binds to the
// name: host pattern, ports and path glob, the most specific entry first.
func TestCredentialsServerBinding(t *testing.T) {
	e := mustLoad(t, serverPolicy, nil)
	c := e.Credentials()
	for _, tt := range []struct {
		agent, host string
		port        uint16
		path, want  string
	}{
		{"", "mcp.example.test", 443, "/gh/mcp", "gh"},
		{"", "MCP.example.test", 8080, "/gh/x/y", "gh"},
		{"", "mcp.example.test", 443, "/gh/admin/mcp", "by-host"}, // gh-admin's, not gh's
		{"", "mcp.example.test", 443, "/other", "by-host"},
		{"coder", "a.jira.example.test", 8443, "/api/mcp", "many"},
		{"coder", "a.jira.example.test", 443, "/api/mcp", ""}, // not jira's port
		{"other", "a.jira.example.test", 8443, "/api/mcp", ""},
		{"coder", "a.jira.example.test", 8443, "/mcp", ""}, // the binding's path
		{"coder", "other.example.test", 443, "/api/x", "many"},
		{"coder", "x.other.example.test", 443, "/api/x", ""},
	} {
		b := c.Match(tt.agent, host(t, tt.host, tt.port), "https", tt.path)
		got := ""
		if b != nil {
			got = b.ID
		}
		if got != tt.want {
			t.Errorf("%s https://%s:%d%s: binding %q, want %q", tt.agent, tt.host, tt.port, tt.path, got, tt.want)
		}
	}
	h := host(t, "a.jira.example.test", 8443)
	if n := testing.AllocsPerRun(100, func() { c.Match("coder", h, "https", "/api/mcp") }); n != 0 {
		t.Errorf("Match by server allocates %v times", n)
	}

	sec := "mcp:\n  servers:\n    - {name: gh, url: gh.test}\ncredentials:\n  secrets:\n    s: {env: T}\n  bindings:\n"
	checkLoadErrors(t, []loadErrorCase{
		{"unknown server", sec + "    - server: nope\n      secret: s\n      query: k\n", `:8: a binding names mcp server "nope", which mcp servers does not define`},
		{"unknown in list", sec + "    - id: x\n      servers:\n        - gh\n        - nope\n      secret: s\n      query: k\n", `:11: binding x names mcp server "nope"`},
		{"no mcp section", "credentials:\n  secrets:\n    s: {env: T}\n  bindings:\n    - {server: gh, secret: s, query: k}\n", `:5: a binding names mcp server "gh"`},
		{"host and server", sec + "    - host: gh.test\n      server: gh\n      secret: s\n      query: k\n", ":9: a binding names a host or an mcp server, not both"},
		{"bad server name", sec + "    - server: a.b\n      secret: s\n      query: k\n", `:8: bad mcp server name "a.b"`},
		{"neither", sec + "    - secret: s\n      query: k\n", ":8: a binding needs a host or a server"},
		{"server twice", sec + "    - server: gh\n      servers: [gh]\n      secret: s\n      query: k\n", ":9: a binding names its servers once"},
	})
}

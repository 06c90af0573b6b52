package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentg/agentg/addr"
	"github.com/agentg/agentg/rules"
)

// loadCertBindings loads a policy with two client_cert bindings (one
// certificate, two bindings) and returns their certificates.
func loadCertBindings(t *testing.T) (a, b *rules.ClientCert) {
	t.Helper()
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "c"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, name), data, mode); err != nil {
			t.Fatal(err)
		}
	}
	write("c.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	write("c.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	write("policy.yaml", []byte(`credentials:
  secrets:
    k: {file: c.key}
  bindings:
    - {id: a, host: a.test, client_cert: {cert: c.pem, key: k}}
    - {id: b, host: b.test, client_cert: {cert: c.pem, key: k}}
`), 0o644)
	e, err := rules.Load(filepath.Join(dir, "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	bs := e.Credentials().Bindings()
	return bs[0].Cert, bs[1].Cert
}

// A request a client_cert binding matched is pooled by the binding and
// its certificate, apart from every other request to the same checked
// destination; only its transport presents the certificate, and it
// resumes no session another transport stored.
func TestPoolKeyClientCert(t *testing.T) {
	ca, cb := loadCertBindings(t)
	h := addr.Host{Name: "a.test", Port: 443}
	ips := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	flows := []*flow{
		{scheme: "https", host: h, ips: ips},
		{scheme: "https", host: h, ips: ips, clientCert: ca},
		{scheme: "https", host: h, ips: ips, clientCert: cb},
		{scheme: "https", host: h, ips: []netip.Addr{netip.MustParseAddr("127.0.0.2")}, clientCert: ca},
	}
	seen := map[string]int{}
	for i, f := range flows {
		k := poolKey(f)
		if j, dup := seen[k]; dup {
			t.Errorf("flows %d and %d share the pool key %q", j, i, k)
		}
		seen[k] = i
	}
	if poolKey(flows[1]) != poolKey(&flow{scheme: "https", host: h, ips: ips, clientCert: ca}) {
		t.Error("one binding's requests do not share a pool")
	}

	tmpl := &http.Transport{TLSClientConfig: &tls.Config{ClientSessionCache: tls.NewLRUClientSessionCache(8)}}
	p := newTransportPool(&http.Transport{}, tmpl, 16)
	plain := p.get(poolKey(flows[0]), true, nil)
	withCert := p.get(poolKey(flows[1]), true, ca)
	if plain == withCert || p.get(poolKey(flows[1]), true, ca) != withCert {
		t.Fatal("the pools are not kept apart, or not reused")
	}
	for name, tr := range map[string]*http.Transport{"template": tmpl, "plain": plain} {
		if tr.TLSClientConfig.GetClientCertificate != nil || len(tr.TLSClientConfig.Certificates) != 0 {
			t.Errorf("the %s transport presents a certificate", name)
		}
	}
	if plain.TLSClientConfig.ClientSessionCache == nil {
		t.Error("the plain transport lost the template's session cache")
	}
	cfg := withCert.TLSClientConfig
	if cfg.GetClientCertificate == nil || cfg.ClientSessionCache != nil {
		t.Fatalf("the binding's transport: GetClientCertificate %v, session cache %v", cfg.GetClientCertificate != nil, cfg.ClientSessionCache)
	}
	if c, err := cfg.GetClientCertificate(&tls.CertificateRequestInfo{}); err != nil || c != ca.Certificate() {
		t.Errorf("presents %v, %v", c, err)
	}
	if c := p.get("http x", false, ca).TLSClientConfig; c != nil && c.GetClientCertificate != nil {
		t.Error("a plain http transport was given a certificate")
	}
}

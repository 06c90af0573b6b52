package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentg/agentg/internal/testenv"
)

// clientCert issues a client certificate from ca.
func clientCert(t *testing.T, ca *testenv.CA, cn string, dns []string, uris []string, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		DNSNames: dns, NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: notAfter,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	for _, u := range uris {
		pu, _ := url.Parse(u)
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tlsDoor serves the door over TLS with ConfigureTLS; clients trust it.
func tlsDoor(t *testing.T, o Options) (*door, func(cert *tls.Certificate) *http.Client) {
	t.Helper()
	srvCA, err := testenv.NewCA("door")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := srvCA.Leaf([]string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{leaf}, MinVersion: tls.VersionTLS12}
	ConfigureTLS(cfg)
	d := startDoor(t, o, cfg)
	client := func(cert *tls.Certificate) *http.Client {
		tc := &tls.Config{RootCAs: srvCA.Pool()}
		if cert != nil {
			tc.Certificates = []tls.Certificate{*cert}
		}
		return &http.Client{Transport: &http.Transport{Proxy: nil, TLSClientConfig: tc}, Timeout: 10 * time.Second}
	}
	return d, client
}

func TestMTLS(t *testing.T) {
	dir := t.TempDir()
	ca, _ := testenv.NewCA("gateway clients")
	foreign, _ := testenv.NewCA("someone else")
	if err := os.WriteFile(filepath.Join(dir, "clients.pem"), ca.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	tok, digest, _ := NewToken()
	pol := &livePolicy{}
	pol.e.Store(loadPolicy(t, dir, `gateway:
  tokens:
    - {agent: builder, sha256: `+digest+`}
  mtls:
    ca: clients.pem
`))
	d, client := tlsDoor(t, Options{Policy: pol})
	later := time.Now().Add(time.Hour)
	coder := clientCert(t, ca, "coder", nil, nil, later)
	builder := clientCert(t, ca, "builder", nil, nil, later)
	stranger := clientCert(t, foreign, "coder", nil, nil, later)
	expired := clientCert(t, ca, "coder", nil, nil, time.Now().Add(-time.Hour))
	noName := clientCert(t, ca, "two words", nil, nil, later)

	tests := []struct {
		name   string
		cert   *tls.Certificate
		bearer string
		agent  string
		check  string
	}{
		{"good cert", &coder, "", "coder", ""},
		{"good cert again, a new connection", &coder, "", "coder", ""},
		{"no cert", nil, "", "", "missing"},
		{"cert from another CA", &stranger, "", "", "chain"},
		{"expired cert", &expired, "", "", "chain"},
		{"a name that is no agent name", &noName, "", "", "name"},
		{"cert and token agree", &builder, tok, "builder", ""},
		{"cert and token disagree", &coder, tok, "", "disagree"},
		{"a foreign cert beside a good token", &stranger, tok, "", "chain"},
	}
	refused := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(d.seen())
			var auth []string
			if tt.bearer != "" {
				auth = []string{"Bearer " + tt.bearer}
			}
			got := d.call(t, client(tt.cert), auth...)
			if tt.agent != "" {
				s := d.seen()
				if got.status != http.StatusOK || len(s) != before+1 || s[len(s)-1].Agent != tt.agent {
					t.Fatalf("got %d %q, handler saw %+v; want %s", got.status, got.body, s, tt.agent)
				}
				return
			}
			refused++
			if got.status != http.StatusUnauthorized {
				t.Fatalf("got %d %q, want 401", got.status, got.body)
			}
			if g := d.call(t, client(&coder)); g.status != http.StatusOK {
				t.Fatalf("the good cert after it got %d", g.status)
			}
			if n := len(d.seen()) - before; n != 1 {
				t.Fatalf("handler reached %d times, want once", n)
			}
			evs := d.refusals(t)
			if len(evs) != refused {
				t.Fatalf("%d refusal events, want %d", len(evs), refused)
			}
			if !strings.Contains(got.body, tt.check) {
				t.Errorf("answer %q, want check %s (event %q)", got.body, tt.check, evs[len(evs)-1]["reason"])
			}
		})
	}
	noSecrets(t, d.log.String(), tok)

	// A reload to another CA refuses the certificate that was verified
	// (and remembered) under the old one.
	if err := os.WriteFile(filepath.Join(dir, "clients.pem"), foreign.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	pol.e.Store(loadPolicy(t, dir, "gateway:\n  mtls:\n    ca: clients.pem\n"))
	if got := d.call(t, client(&coder)); got.status != http.StatusUnauthorized || !strings.Contains(got.body, "chain") {
		t.Fatalf("old CA's cert after the reload: %d %q", got.status, got.body)
	}
	if got := d.call(t, client(&stranger)); got.status != http.StatusOK || got.body != "reached coder" {
		t.Fatalf("new CA's cert after the reload: %d %q", got.status, got.body)
	}
}

// name_from and the agents table pick the name out of the SANs.
func TestMTLSNames(t *testing.T) {
	dir := t.TempDir()
	ca, _ := testenv.NewCA("gateway clients")
	os.WriteFile(filepath.Join(dir, "clients.pem"), ca.CertPEM(), 0o600)
	later := time.Now().Add(time.Hour)
	for _, tc := range []struct {
		name, policy string
		cert         tls.Certificate
		want         string // agent, or "" refused
	}{
		{"one dns name", "name_from: dns", clientCert(t, ca, "x", []string{"coder.agents.example"}, nil, later), "coder.agents.example"},
		{"two dns names", "name_from: dns", clientCert(t, ca, "x", []string{"a.example", "b.example"}, nil, later), ""},
		{"two dns names, mapped", "name_from: dns\n    agents: {b.example: builder}", clientCert(t, ca, "x", []string{"a.example", "b.example"}, nil, later), "builder"},
		{"uri", "name_from: uri\n    agents: {\"spiffe://corp/agent/coder\": coder}", clientCert(t, ca, "x", nil, []string{"spiffe://corp/agent/coder"}, later), "coder"},
		{"cn not in the table", "agents: {coder: coder}", clientCert(t, ca, "other", nil, nil, later), ""},
		{"no dns name", "name_from: dns", clientCert(t, ca, "coder", nil, nil, later), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pol := &livePolicy{}
			pol.e.Store(loadPolicy(t, dir, "gateway:\n  mtls:\n    ca: clients.pem\n    "+tc.policy+"\n"))
			d, client := tlsDoor(t, Options{Policy: pol})
			got := d.call(t, client(&tc.cert))
			switch {
			case tc.want == "" && (got.status != http.StatusUnauthorized || !strings.Contains(got.body, "mtls name")):
				t.Fatalf("got %d %q, want 401 mtls name", got.status, got.body)
			case tc.want != "" && got.body != "reached "+tc.want:
				t.Fatalf("got %d %q, want %s", got.status, got.body, tc.want)
			}
		})
	}
}

// A client certificate issued by an intermediate verifies when the client
// sends the intermediate along, and not without it: the policy's CA file
// holds the root alone.
func TestMTLSIntermediate(t *testing.T) {
	dir := t.TempDir()
	root, _ := testenv.NewCA("clients root")
	os.WriteFile(filepath.Join(dir, "clients.pem"), root.CertPEM(), 0o600)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "clients issuing"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root.Cert, &key.PublicKey, root.Key)
	if err != nil {
		t.Fatal(err)
	}
	interCert, _ := x509.ParseCertificate(der)
	inter := &testenv.CA{Cert: interCert, Key: key}
	leaf := clientCert(t, inter, "coder", nil, nil, time.Now().Add(time.Hour))
	withChain := leaf
	withChain.Certificate = append(withChain.Certificate[:1:1], der)

	pol := &livePolicy{}
	pol.e.Store(loadPolicy(t, dir, "gateway:\n  mtls:\n    ca: clients.pem\n"))
	d, client := tlsDoor(t, Options{Policy: pol})
	if got := d.call(t, client(&leaf)); got.status != http.StatusUnauthorized || !strings.Contains(got.body, "mtls chain") {
		t.Fatalf("without the intermediate: %d %q", got.status, got.body)
	}
	if got := d.call(t, client(&withChain)); got.status != http.StatusOK || got.body != "reached coder" {
		t.Fatalf("with the intermediate: %d %q", got.status, got.body)
	}
}

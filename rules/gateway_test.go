package rules

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// testCert makes a certificate signed by parent (self-signed when parent
// is nil), a CA when isCA.
func testCert(t *testing.T, cn string, isCA bool, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: isCA, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

func certPEM(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

func gatewayCA(t *testing.T) string {
	t.Helper()
	ca, _ := testCert(t, "gateway clients", true, nil, nil)
	return certPEM(ca)
}

func TestGatewaySection(t *testing.T) {
	tokA := sha256.Sum256([]byte("token-a"))
	tokB := sha256.Sum256([]byte("token-b"))
	pol := `gateway:
  realm: agentg gw
  tokens:
    - {agent: coder, sha256: ` + hexOf(tokA) + `, id: coder-laptop}
    - {agent: builder, sha256: ` + strings.ToUpper(hexOf(tokB)) + `}
  jwt:
    issuer: https://idp.example
    audience: agentg
    jwks_url: https://idp.example/keys
    agents: {"00u1": coder}
  mtls:
    ca: ca.pem
    name_from: dns
`
	e := mustLoad(t, pol, map[string]string{"ca.pem": gatewayCA(t)})
	g := e.Gateway()
	if !g.Defined() || g.Realm != "agentg gw" || !strings.HasSuffix(g.Source, "policy.yaml:1") {
		t.Fatalf("gateway = %+v", g)
	}
	if tk := g.Token(tokA); tk == nil || tk.Agent != "coder" || tk.ID != "coder-laptop" {
		t.Errorf("Token(a) = %+v", tk)
	}
	if tk := g.Token(tokB); tk == nil || tk.Agent != "builder" || !strings.HasSuffix(tk.ID, "policy.yaml:5") {
		t.Errorf("Token(b) = %+v", tk)
	}
	if tk := g.Token(sha256.Sum256([]byte("token-c"))); tk != nil {
		t.Errorf("Token(c) = %+v, want nil", tk)
	}
	j := g.JWT
	if j == nil || j.Issuer != "https://idp.example" || !slices.Equal(j.Audience, []string{"agentg"}) ||
		!slices.Equal(j.Algorithms, []string{"RS256", "ES256"}) || j.Leeway != 30*time.Second || j.Claim != "sub" || j.Refetch != 30*time.Second {
		t.Fatalf("jwt = %+v", j)
	}
	if a, ok := j.Agent("00u1"); !ok || a != "coder" {
		t.Errorf("Agent(00u1) = %q, %v", a, ok)
	}
	if a, ok := j.Agent("coder"); ok {
		t.Errorf("Agent(coder) = %q: a mapped claim takes only the table's values", a)
	}
	m := g.MTLS
	if m == nil || m.NameFrom != "dns" || len(m.CAs) != 1 || m.Pool == nil || m.Mapped() {
		t.Fatalf("mtls = %+v", m)
	}
	if a, ok := m.Agent("laptop.example"); !ok || a != "laptop.example" {
		t.Errorf("unmapped Agent = %q, %v", a, ok)
	}
	if _, ok := m.Agent("two words"); ok {
		t.Error("an unmapped value that is no valid agent name was taken")
	}
	// The CA file is watched with the policy.
	if !slices.ContainsFunc(e.Files(), func(f string) bool { return filepath.Base(f) == "ca.pem" }) {
		t.Errorf("Files() = %v, want the CA file", e.Files())
	}
	if e := mustLoad(t, "default: deny\n", nil); e.Gateway().Defined() || e.Gateway().Realm != "agentg" {
		t.Errorf("no section: %+v", e.Gateway())
	}
}

func hexOf(d [32]byte) string { return hex.EncodeToString(d[:]) }

func TestGatewayLoadErrors(t *testing.T) {
	d := hexOf(sha256.Sum256([]byte("x")))
	checkLoadErrors(t, []loadErrorCase{
		{"unknown key", "gateway:\n  token: []\n", `:2: unknown gateway key "token"`},
		{"tokens not a list", "gateway:\n  tokens: {agent: a}\n", ":2: gateway tokens must be a list"},
		{"token without digest", "gateway:\n  tokens:\n    - agent: a\n", ":3: a gateway token needs an agent and a sha256"},
		{"token without agent", "gateway:\n  tokens:\n    - sha256: " + d + "\n", ":3: a gateway token needs an agent"},
		{"short digest", "gateway:\n  tokens:\n    - {agent: a, sha256: abcd}\n", ":3: bad sha256"},
		{"password hash", "gateway:\n  tokens:\n    - {agent: a, sha256: \"$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA\"}\n", ":3: bad sha256"},
		{"bad agent", "gateway:\n  tokens:\n    - {agent: \"a b\", sha256: " + d + "}\n", `:3: bad agent name "a b"`},
		{"same digest twice", "gateway:\n  tokens:\n    - {agent: a, sha256: " + d + "}\n    - {agent: b, sha256: " + d + "}\n", ":4: the same token digest is given twice (also at line 3)"},
		{"same id twice", "gateway:\n  tokens:\n    - {agent: a, id: t, sha256: " + d + "}\n    - {agent: b, id: t, sha256: " + hexOf(sha256.Sum256([]byte("y"))) + "}\n", `:4: gateway token id "t" used twice`},
		{"jwt without issuer", "gateway:\n  jwt:\n    audience: a\n    jwks_url: https://x.example/k\n", ":3: gateway jwt needs an issuer"},
		{"jwt without audience", "gateway:\n  jwt:\n    issuer: https://x.example\n    jwks_url: https://x.example/k\n", ":3: gateway jwt needs an audience"},
		{"jwt without jwks", "gateway:\n  jwt:\n    issuer: https://x.example\n    audience: a\n", ":3: gateway jwt needs a jwks_url"},
		{"jwks over http", "gateway:\n  jwt:\n    jwks_url: http://idp.example/k\n", ":3: jwks_url \"http://idp.example/k\" must be https"},
		{"jwks not a url", "gateway:\n  jwt:\n    jwks_url: idp.example\n", ":3: bad jwks_url"},
		{"alg none", "gateway:\n  jwt:\n    algorithms: [RS256, none]\n", `:3: algorithm "none" is not allowed`},
		{"alg hmac", "gateway:\n  jwt:\n    algorithms: HS256\n", `:3: algorithm "HS256" is not allowed`},
		{"leeway too long", "gateway:\n  jwt:\n    leeway: 1h\n", ":3: bad duration"},
		{"bad scope", "gateway:\n  jwt:\n    scopes: [\"a b\"]\n", `:3: bad scope "a b"`},
		{"empty agents table", "gateway:\n  jwt:\n    agents: {}\n", ":3: empty agents table"},
		{"bad mapped agent", "gateway:\n  jwt:\n    agents: {x: \"a b\"}\n", `:3: bad agent name "a b"`},
		{"mtls without ca", "gateway:\n  mtls:\n    name_from: cn\n", ":3: gateway mtls needs a ca"},
		{"mtls bad name_from", "gateway:\n  mtls:\n    name_from: ou\n", `:3: "ou" is not one of cn, dns, uri, email`},
		{"mtls missing ca file", "gateway:\n  mtls:\n    ca: nope.pem\n", ":3: gateway mtls ca: open"},
		{"bad realm", "gateway:\n  realm: 'a\"b'\n", ":2: bad realm"},
		{"realm not ASCII", "gateway:\n  realm: agentg\u00e9\n", ":2: bad realm"},
		{"resource metadata not https", "gateway:\n  resource_metadata: http://x.example/m\n", `:2: resource_metadata "http://x.example/m" must be https`},
		{"resource metadata with a quote", "gateway:\n  resource_metadata: 'https://x.example/\"'\n", ":2: bad resource_metadata"},
	})
}

// A CA file that holds anything but CA certificates is refused: a leaf
// in it would let that one certificate sign others' names.
func TestGatewayCAFile(t *testing.T) {
	ca, caKey := testCert(t, "clients", true, nil, nil)
	leaf, _ := testCert(t, "leaf.example", false, ca, caKey)
	keyDER, err := x509.MarshalECPrivateKey(caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	for name, tc := range map[string]struct{ body, want string }{
		"leaf":     {certPEM(leaf), "is not a CA certificate"},
		"key":      {certPEM(ca) + string(keyPEM), "block (want CERTIFICATE blocks only)"},
		"empty":    {"", "no PEM certificate"},
		"trailing": {certPEM(ca) + "junk\n", "not PEM after the certificates"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "ca.pem"), []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, "policy.yaml")
			os.WriteFile(p, []byte("gateway:\n  mtls:\n    ca: ca.pem\n"), 0o600)
			_, err := Load(p)
			if err == nil || !strings.Contains(err.Error(), "policy.yaml:3: gateway mtls ca") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestGatewayWarnings(t *testing.T) {
	d := hexOf(sha256.Sum256([]byte("x")))
	pol := `agents:
  - {name: coder, cidrs: [10.0.0.0/8]}
gateway:
  tokens:
    - {agent: coder, sha256: ` + d + `}
    - {agent: codr, sha256: ` + hexOf(sha256.Sum256([]byte("y"))) + `, id: typo}
  jwt:
    issuer: https://idp.example
    audience: a
    jwks_url: https://idp.example/k
    agents: {s1: coder, s2: buildr}
`
	var got []string
	for _, w := range mustLoad(t, pol, nil).Warnings() {
		if strings.Contains(w.Text, "gateway") {
			got = append(got, w.Text)
			if strings.Contains(w.Text, "token typo") && !strings.HasSuffix(w.Source, "policy.yaml:6") {
				t.Errorf("the token's warning is at %s, want its line", w.Source)
			}
		}
	}
	want := []string{
		"gateway token typo names agent codr, which the agents section does not define: no rule scoped to an agent applies to it",
		"the gateway jwt agents table names agent buildr, which the agents section does not define: no rule scoped to an agent applies to it",
	}
	if !slices.Equal(got, want) {
		t.Errorf("warnings\n%q\nwant\n%q", got, want)
	}
	// Without an agents section every name is free: nothing to warn of.
	for _, w := range mustLoad(t, "gateway:\n  tokens:\n    - {agent: codr, sha256: "+d+"}\n", nil).Warnings() {
		if strings.Contains(w.Text, "gateway") {
			t.Errorf("warning %v", w)
		}
	}
}

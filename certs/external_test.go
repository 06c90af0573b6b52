package certs

import (
	"crypto/x509"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// stepLikeIntermediate builds what `step certificate create --profile
// intermediate-ca` produces: a root and a path-length-0 intermediate it signs.
func stepLikeIntermediate(t *testing.T) (root, inter *testCert) {
	t.Helper()
	root = makeCert(t, certSpec{cn: "Test Root CA", isCA: true})
	inter = makeCert(t, certSpec{cn: "agentg intermediate", isCA: true, parent: root})
	return root, inter
}

func TestLoadExternalIntermediate(t *testing.T) {
	root, inter := stepLikeIntermediate(t)
	dir := t.TempDir()
	chainFile := writeFile(t, filepath.Join(dir, "agentg-int.crt"), certsPEM(inter.cert, root.cert), 0o644)
	interOnly := writeFile(t, filepath.Join(dir, "int-only.crt"), certsPEM(inter.cert), 0o644)
	keyFile := writeFile(t, filepath.Join(dir, "agentg-int.key"), keyPEM(t, inter.key), 0o600)

	for _, tc := range []struct {
		name, cert, key string
		chainLen        int
		source          string
	}{
		{name: "key file", cert: chainFile, key: keyFile, chainLen: 2, source: "file " + keyFile},
		{name: "softkms path param", cert: chainFile, key: "softkms:path=" + keyFile, chainLen: 2, source: "kms softkms:path="},
		{name: "softkms opaque path", cert: chainFile, key: "softkms:" + keyFile, chainLen: 2, source: "kms softkms:"},
		{name: "intermediate only", cert: interOnly, key: keyFile, chainLen: 1, source: "file "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca, err := LoadExternal(tc.cert, tc.key)
			if err != nil {
				t.Fatal(err)
			}
			defer ca.Close()
			chain := ca.Chain()
			if len(chain) != tc.chainLen || !chain[0].Equal(inter.cert) || !ca.Certificate().Equal(inter.cert) {
				t.Fatalf("chain order: got %d certs, first %s", len(chain), chain[0].Subject)
			}
			if tc.chainLen == 2 && !chain[1].Equal(root.cert) {
				t.Fatalf("chain[1] = %s, want root", chain[1].Subject)
			}
			if !strings.Contains(ca.Show(), "Key source:   "+tc.source) {
				t.Errorf("Show() lacks key source %q:\n%s", tc.source, ca.Show())
			}

			iss := newTestIssuer(t, ca, IssuerOptions{})
			cert, err := iss.Leaf("through.intermediate.example")
			if err != nil {
				t.Fatal(err)
			}
			if len(cert.Certificate) != 1+tc.chainLen {
				t.Fatalf("tls chain has %d certs, want leaf + %d", len(cert.Certificate), tc.chainLen)
			}
			chains := verifyLeaf(t, cert, poolOf(root.cert), "through.intermediate.example", time.Now())
			if got := chains[0]; len(got) != 3 || !got[1].Equal(inter.cert) || !got[2].Equal(root.cert) {
				t.Fatalf("verified chain does not go leaf → intermediate → root: %d certs", len(got))
			}
			if cert.Leaf.Issuer.CommonName != "agentg intermediate" {
				t.Errorf("leaf issuer %q", cert.Leaf.Issuer)
			}
		})
	}
}

// A key the operator provides may be shared with a group (a Kubernetes
// secret mounted with an fsGroup is 0440), not with others.
func TestLoadExternalGroupReadableKey(t *testing.T) {
	root, inter := stepLikeIntermediate(t)
	dir := t.TempDir()
	chainFile := writeFile(t, filepath.Join(dir, "chain.crt"), certsPEM(inter.cert, root.cert), 0o644)
	groupKey := writeFile(t, filepath.Join(dir, "group.key"), keyPEM(t, inter.key), 0o440)
	ca, err := LoadExternal(chainFile, groupKey)
	if err != nil {
		t.Fatalf("LoadExternal with a 0440 key: %v", err)
	}
	ca.Close()
}

func TestLoadExternalErrors(t *testing.T) {
	root, inter := stepLikeIntermediate(t)
	other := makeCert(t, certSpec{cn: "unrelated", isCA: true})
	dir := t.TempDir()
	chainFile := writeFile(t, filepath.Join(dir, "chain.crt"), certsPEM(inter.cert, root.cert), 0o644)
	reversed := writeFile(t, filepath.Join(dir, "reversed.crt"), certsPEM(root.cert, inter.cert), 0o644)
	wrongParent := writeFile(t, filepath.Join(dir, "wrong-parent.crt"), certsPEM(inter.cert, other.cert), 0o644)
	keyFile := writeFile(t, filepath.Join(dir, "int.key"), keyPEM(t, inter.key), 0o600)
	openKey := writeFile(t, filepath.Join(dir, "open.key"), keyPEM(t, inter.key), 0o644)
	otherKey := writeFile(t, filepath.Join(dir, "other.key"), keyPEM(t, other.key), 0o600)
	encKey := writeFile(t, filepath.Join(dir, "enc.key"), []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"), 0o600)

	for _, tc := range []struct {
		name, cert, key string
		notExist        bool
		contains        []string
	}{
		{name: "reversed chain", cert: reversed, key: keyFile, contains: []string{"out of order"}},
		{name: "wrong parent", cert: wrongParent, key: keyFile, contains: []string{"out of order"}},
		{name: "key readable by others", cert: chainFile, key: openKey, contains: []string{"0644", "chmod 640 " + openKey}},
		{name: "softkms key readable by others", cert: chainFile, key: "softkms:path=" + openKey, contains: []string{"chmod 600 " + openKey}},
		{name: "mismatched key", cert: chainFile, key: otherKey, contains: []string{"does not match"}},
		{name: "mismatched softkms key", cert: chainFile, key: "softkms:path=" + otherKey, contains: []string{"does not match"}},
		{name: "encrypted key", cert: chainFile, key: encKey, contains: []string{"password-protected"}},
		{name: "missing cert", cert: filepath.Join(dir, "nope.crt"), key: keyFile, notExist: true},
		{name: "missing key file", cert: chainFile, key: filepath.Join(dir, "nope.key"), notExist: true},
		{name: "missing softkms key", cert: chainFile, key: "softkms:path=" + filepath.Join(dir, "nope.key"), notExist: true},
		{name: "unsupported kms", cert: chainFile, key: "pkcs11:id=7331;object=agentg?pin-value=123456", contains: []string{"pkcs11", "pin-value=REDACTED"}},
		{name: "empty key", cert: chainFile, key: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca, err := LoadExternal(tc.cert, tc.key)
			if err == nil {
				ca.Close()
				t.Fatal("LoadExternal succeeded, want error")
			}
			t.Log(err)
			if got := errors.Is(err, fs.ErrNotExist); got != tc.notExist {
				t.Errorf("errors.Is(err, fs.ErrNotExist) = %v, want %v (%v)", got, tc.notExist, err)
			}
			for _, s := range tc.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			if strings.Contains(err.Error(), "123456") {
				t.Errorf("error leaks the PIN: %v", err)
			}
		})
	}
}

func TestRedactURI(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"softkms:path=/x/key.pem", "softkms:path=/x/key.pem"},
		{"pkcs11:module-path=/lib/p11.so;token=agentg;pin-value=1234", "pkcs11:module-path=/lib/p11.so;token=agentg;pin-value=REDACTED"},
		{"pkcs11:id=1?pin-value=1234&x=y", "pkcs11:id=1?pin-value=REDACTED&x=y"},
		{"yubikey:slot-id=9c?pin=1234", "yubikey:slot-id=9c?pin=REDACTED"},
	} {
		if got := redactURI(tc.in); got != tc.want {
			t.Errorf("redactURI(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestIsKMSURI(t *testing.T) {
	dir := t.TempDir()
	weird := writeFile(t, filepath.Join(dir, "softkms:odd.key"), []byte("x"), 0o600)
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"/etc/agentg/ca.key", false},
		{"ca.key", false},
		{"softkms:path=/x/key.pem", true},
		{"pkcs11:id=1", true},
		{"awskms:key-id=abc", true},
		{weird, false},
	} {
		if got := isKMSURI(tc.in); got != tc.want {
			t.Errorf("isKMSURI(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// The CA chain must not be mutable through Chain().
func TestChainIsACopy(t *testing.T) {
	root, inter := stepLikeIntermediate(t)
	dir := t.TempDir()
	ca, err := LoadExternal(
		writeFile(t, filepath.Join(dir, "c.crt"), certsPEM(inter.cert, root.cert), 0o644),
		writeFile(t, filepath.Join(dir, "k.key"), keyPEM(t, inter.key), 0o600))
	if err != nil {
		t.Fatal(err)
	}
	ch := ca.Chain()
	ch[0] = &x509.Certificate{}
	if !ca.Certificate().Equal(inter.cert) {
		t.Fatal("modifying Chain() result changed the CA")
	}
}

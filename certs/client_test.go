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

// A client certificate loads with its key from a file or a softkms URI;
// every way a pair can be wrong is an error at load that names the file,
// never a handshake that fails later, and a URI's PIN is never shown.
func TestLoadClientCert(t *testing.T) {
	root := makeCert(t, certSpec{cn: "client root", isCA: true})
	leaf := makeCert(t, certSpec{cn: "agent-client", parent: root, keyUsage: x509.KeyUsageDigitalSignature})
	other := makeCert(t, certSpec{cn: "other-client", parent: root, keyUsage: x509.KeyUsageDigitalSignature})
	expired := makeCert(t, certSpec{cn: "old-client", parent: root, notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-24 * time.Hour)})
	dir := t.TempDir()
	certFile := writeFile(t, filepath.Join(dir, "client.crt"), certsPEM(leaf.cert, root.cert), 0o644)
	badOrder := writeFile(t, filepath.Join(dir, "order.crt"), certsPEM(leaf.cert, other.cert), 0o644)
	expiredFile := writeFile(t, filepath.Join(dir, "expired.crt"), certsPEM(expired.cert), 0o644)
	garbage := writeFile(t, filepath.Join(dir, "garbage.crt"), []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"), 0o644)
	keyFile := writeFile(t, filepath.Join(dir, "client.key"), keyPEM(t, leaf.key), 0o600)
	otherKey := writeFile(t, filepath.Join(dir, "other.key"), keyPEM(t, other.key), 0o600)
	openKey := writeFile(t, filepath.Join(dir, "open.key"), keyPEM(t, leaf.key), 0o644)
	expiredKey := writeFile(t, filepath.Join(dir, "expired.key"), keyPEM(t, expired.key), 0o600)

	for _, tc := range []struct {
		name     string
		cert     string
		key      ClientKey
		contains []string // "" : loads
		notExist bool
	}{
		{name: "key file", cert: certFile, key: ClientKey{File: keyFile}},
		{name: "softkms", cert: certFile, key: ClientKey{URI: "softkms:path=" + keyFile}},
		{name: "softkms with a pin", cert: certFile, key: ClientKey{URI: "softkms:path=" + keyFile + ";pin-value=hunter2"}},
		{name: "mismatched key", cert: certFile, key: ClientKey{File: otherKey}, contains: []string{"client key does not match certificate CN=agent-client", certFile}},
		{name: "mismatched softkms key", cert: certFile, key: ClientKey{URI: "softkms:path=" + otherKey + ";pin-value=hunter2"}, contains: []string{"does not match", "pin-value=REDACTED"}},
		{name: "missing cert", cert: filepath.Join(dir, "nope.crt"), key: ClientKey{File: keyFile}, notExist: true},
		{name: "missing key", cert: certFile, key: ClientKey{File: filepath.Join(dir, "nope.key")}, notExist: true},
		{name: "unparsable cert", cert: garbage, key: ClientKey{File: keyFile}, contains: []string{garbage}},
		{name: "a device", cert: "/dev/zero", key: ClientKey{File: keyFile}, contains: []string{"/dev/zero: not a regular file"}},
		{name: "key in the cert's place", cert: keyFile, key: ClientKey{File: keyFile}, contains: []string{keyFile}},
		{name: "key readable by others", cert: certFile, key: ClientKey{File: openKey}, contains: []string{"chmod 640 " + openKey}},
		{name: "expired", cert: expiredFile, key: ClientKey{File: expiredKey}, contains: []string{"expired"}},
		{name: "chain out of order", cert: badOrder, key: ClientKey{File: keyFile}, contains: []string{"out of order"}},
		{name: "no key", cert: certFile, key: ClientKey{}, contains: []string{"exactly one"}},
		{name: "two keys", cert: certFile, key: ClientKey{File: keyFile, URI: "softkms:path=" + keyFile}, contains: []string{"exactly one"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := LoadClientCert(tc.cert, tc.key)
			if tc.contains == nil && !tc.notExist {
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if got := c.Certificate(); len(got.Certificate) != 2 || !got.Leaf.Equal(leaf.cert) || got.PrivateKey == nil {
					t.Fatalf("loaded %d certificates, leaf %v", len(got.Certificate), got.Leaf.Subject)
				}
				if c.Fingerprint() != fingerprint(leaf.cert.Raw) || c.Subject() != "CN=agent-client" {
					t.Errorf("fingerprint %s, subject %s", c.Fingerprint(), c.Subject())
				}
				return
			}
			if err == nil {
				c.Close()
				t.Fatal("loaded")
			}
			if tc.notExist && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("error %v does not wrap fs.ErrNotExist", err)
			}
			for _, want := range tc.contains {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows the PIN: %v", err)
			}
		})
	}
}

// A certificate for servers only would be refused by every upstream that
// checks: it is refused at load.
func TestLoadClientCertServerOnly(t *testing.T) {
	root := makeCert(t, certSpec{cn: "client root", isCA: true})
	srv := makeCert(t, certSpec{cn: "server-only", parent: root})
	tmpl := *srv.cert
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	if err := checkClientChain([]*x509.Certificate{&tmpl}, time.Now()); err == nil || !strings.Contains(err.Error(), "clientAuth") {
		t.Fatalf("a serverAuth-only certificate: %v", err)
	}
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	if err := checkClientChain([]*x509.Certificate{&tmpl}, time.Now()); err != nil {
		t.Fatalf("a serverAuth+clientAuth certificate: %v", err)
	}
}

package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testCert is a certificate with its key, built with plain crypto/x509 so the
// tests do not depend on the code under test to make their fixtures.
type testCert struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

type certSpec struct {
	cn        string
	isCA      bool
	notBefore time.Time
	notAfter  time.Time
	parent    *testCert // nil: self-signed
	keyUsage  x509.KeyUsage
}

func makeCert(t testing.TB, s certSpec) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if s.notBefore.IsZero() {
		s.notBefore = time.Now().Add(-time.Hour)
	}
	if s.notAfter.IsZero() {
		s.notAfter = time.Now().Add(365 * 24 * time.Hour)
	}
	if s.keyUsage == 0 && s.isCA {
		s.keyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: s.cn},
		NotBefore:             s.notBefore,
		NotAfter:              s.notAfter,
		KeyUsage:              s.keyUsage,
		BasicConstraintsValid: true,
		IsCA:                  s.isCA,
	}
	parent, signer := tmpl, crypto.Signer(key)
	if s.parent != nil {
		parent, signer = s.parent.cert, s.parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCert{cert: cert, key: key}
}

func certsPEM(cs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range cs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

func keyPEM(t testing.TB, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

func writeFile(t testing.TB, path string, data []byte, mode os.FileMode) string {
	t.Helper()
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // WriteFile is subject to umask
		t.Fatal(err)
	}
	return path
}

// writeDir writes cert and key as a data directory LoadDir understands.
func writeDir(t testing.TB, certPEM, keyPEMData []byte, keyMode os.FileMode) string {
	t.Helper()
	dir := t.TempDir()
	if certPEM != nil {
		writeFile(t, filepath.Join(dir, CertFile), certPEM, 0o644)
	}
	if keyPEMData != nil {
		writeFile(t, filepath.Join(dir, KeyFile), keyPEMData, keyMode)
	}
	return dir
}

// newTestCA creates agentg's own CA in a fresh temporary directory.
func newTestCA(t testing.TB) *CA {
	t.Helper()
	ca, err := Init(filepath.Join(t.TempDir(), "agentg"), false)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func poolOf(cs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range cs {
		p.AddCert(c)
	}
	return p
}

package test

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"testing"
	"time"

	"github.com/agentg/agentg/internal/testenv"
)

// testCA is an upstream PKI of the test's own, unrelated to agentg's CA: a
// testenv.CA (the test environment bench/ shares), under the names the
// tests use.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	ca   *testenv.CA
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	ca, err := testenv.NewCA("upstream test root")
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: ca.Cert, key: ca.Key, ca: ca}
}

func (ca *testCA) pool() *x509.CertPool { return ca.ca.Pool() }

// leaf issues a server certificate for host valid from notBefore to
// notAfter.
func (ca *testCA) leaf(t *testing.T, host string, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	cert, err := ca.ca.Leaf([]string{host}, notBefore, notAfter)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// tlsUpstream serves h (nil: echoHandler) over TLS with cert on loopback.
func tlsUpstream(t *testing.T, cert tls.Certificate, h http.Handler) *upstream {
	t.Helper()
	return wrapUpstream(t, testenv.StartUpstream(testenv.UpstreamOptions{Cert: &cert, Handler: h}))
}

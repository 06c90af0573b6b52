package certs

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/agentg/agentg/internal/filetrust"
	"io"
	"os"
	"slices"
	"time"

	"go.step.sm/crypto/kms"
	"go.step.sm/crypto/pemutil"
)

// Client certificates for mTLS toward upstreams (issue 16): a credential
// binding may present one. It is loaded the way an external CA is (a PEM
// chain, and a key from a 0600 file or a go.step.sm/crypto/kms URI), with
// the same probe signature proving the key belongs to the certificate, so
// a wrong pair is an error when the policy loads, never a handshake that
// fails later.

// ClientKey says where a client certificate's key is: exactly one of a
// file (an unencrypted PEM key, 0600) or a KMS URI (softkms:path=...).
type ClientKey struct {
	File string
	URI  string
}

// String says where the key is, a KMS URI's PIN or password redacted.
func (k ClientKey) String() string {
	if k.URI != "" {
		return "kms " + RedactKeyURI(k.URI)
	}
	return "file " + k.File
}

// ClientCert is a loaded client certificate and its key. It is immutable
// and safe for concurrent use.
type ClientCert struct {
	cert        tls.Certificate
	km          kms.KeyManager // non-nil when the key came from a KMS
	fingerprint string
}

// LoadClientCert loads certFile (PEM: the client certificate first, then
// any intermediates the upstream needs) and its key. It fails on a missing
// or unparsable file, a certificate not valid now, one whose extended key
// usage excludes client authentication, a chain out of order, a key file
// readable by others, and a key that does not match the certificate.
func LoadClientCert(certFile string, key ClientKey) (*ClientCert, error) {
	if (key.File == "") == (key.URI == "") {
		return nil, errors.New("load client certificate: give the key as a file or a KMS URI, exactly one")
	}
	data, err := readCertFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("load client certificate %s: %w", certFile, err)
	}
	chain, err := pemutil.ParseCertificateBundle(data)
	if err != nil {
		return nil, fmt.Errorf("load client certificate %s: %w", certFile, err)
	}
	if err := checkClientChain(chain, time.Now()); err != nil {
		return nil, fmt.Errorf("load client certificate %s: %w", certFile, err)
	}
	var (
		signer crypto.Signer
		km     kms.KeyManager
	)
	if key.URI != "" {
		signer, km, err = kmsSigner("client key", key.URI)
	} else {
		signer, err = readKeyFile("client key", key.File, filetrust.Provided)
	}
	if err != nil {
		return nil, err
	}
	if err := checkSignerMatches("client key", chain[0], signer); err != nil {
		if km != nil {
			_ = km.Close()
		}
		return nil, fmt.Errorf("load client certificate %s with key %s: %w", certFile, key, err)
	}
	c := &ClientCert{km: km, fingerprint: fingerprint(chain[0].Raw)}
	c.cert.PrivateKey = signer
	c.cert.Leaf = chain[0]
	for _, x := range chain {
		c.cert.Certificate = append(c.cert.Certificate, x.Raw)
	}
	return c, nil
}

// maxCertFile bounds a certificate file: a chain is a few KiB, and a
// policy naming a device or a huge file must fail, not hang the load.
const maxCertFile = 1 << 20

func readCertFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	data, err := io.ReadAll(io.LimitReader(f, maxCertFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxCertFile {
		return nil, fmt.Errorf("larger than %d bytes", maxCertFile)
	}
	return data, nil
}

func checkClientChain(chain []*x509.Certificate, now time.Time) error {
	if len(chain) == 0 {
		return errors.New("no certificate in the file")
	}
	leaf := chain[0]
	if now.After(leaf.NotAfter) {
		return fmt.Errorf("certificate %s expired on %s", certName(leaf), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(leaf.NotBefore) {
		return fmt.Errorf("certificate %s is not valid before %s", certName(leaf), leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	if len(leaf.ExtKeyUsage) > 0 && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) &&
		!slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny) {
		return fmt.Errorf("certificate %s may not authenticate a client (its extended key usage lacks clientAuth)", certName(leaf))
	}
	for i := 1; i < len(chain); i++ {
		if err := chain[i-1].CheckSignatureFrom(chain[i]); err != nil {
			return fmt.Errorf("chain out of order or broken: certificate %d (%s) is not signed by certificate %d (%s); give the client certificate first, then its issuers: %w",
				i-1, certName(chain[i-1]), i, certName(chain[i]), err)
		}
	}
	return nil
}

// Certificate is what a TLS client presents. The caller must not modify it.
func (c *ClientCert) Certificate() *tls.Certificate { return &c.cert }

// Fingerprint is the SHA-256 of the client certificate's DER, as
// CA.Fingerprint: connections that presented it are pooled by it.
func (c *ClientCert) Fingerprint() string { return c.fingerprint }

// NotAfter is when the client certificate expires.
func (c *ClientCert) NotAfter() time.Time { return c.cert.Leaf.NotAfter }

// Subject names the certificate for check output and errors.
func (c *ClientCert) Subject() string { return certName(c.cert.Leaf) }

// Close releases the KMS behind the key, if any; a no-op for a file key.
func (c *ClientCert) Close() error {
	if c.km == nil {
		return nil
	}
	if err := c.km.Close(); err != nil {
		return fmt.Errorf("close client key manager: %w", err)
	}
	return nil
}

// RedactKeyURI hides the PIN, password or token a KMS URI may carry, so
// the URI can be shown (errors, agentg check, agentg secrets list).
func RedactKeyURI(raw string) string { return redactURI(raw) }

// Package certs is the certificate authority agentg uses for TLS interception:
// it creates, loads and exports the CA, and issues (and caches) the short-lived
// leaf certificates that mitm presents to clients. It knows nothing about hosts
// or rules beyond "issue a certificate for this DNS name or IP address".
//
// Signing goes through smallstep's CertificateAuthorityService
// (github.com/smallstep/certificates/cas/softcas), whose signer is any
// crypto.Signer: a key file, or a go.step.sm/crypto/kms signer, so the CA key
// can live in a file, a KMS or an HSM.
//
// # agentg's own CA
//
// Init creates an ECDSA P-256 root ("agentg CA", 10 years, path length 0) in a
// data directory (DefaultDir): ca.crt and ca.key, the key 0600 in a 0700
// directory. LoadDir refuses a key file readable by group or others, a corrupt
// or expired certificate, a certificate that is not a CA, and a key that does
// not match the certificate. LoadOrInit is what a first `agentg serve` uses.
//
// # Bring your own CA
//
// LoadExternal takes a PEM chain file (the signing certificate first, then its
// parents) and a key given as a file path or as a go.step.sm/crypto/kms URI.
// For example, with a step-ca root, create a dedicated intermediate for agentg
// (path length 0, unencrypted key or a KMS-held key; LoadExternal does not
// prompt for passwords):
//
//	step certificate create "agentg intermediate" agentg-int.crt agentg-int.key \
//	    --profile intermediate-ca --ca $(step path)/certs/root_ca.crt \
//	    --ca-key $(step path)/secrets/root_ca_key --not-after 8760h \
//	    --no-password --insecure --bundle
//	chmod 600 agentg-int.key
//
// then LoadExternal("agentg-int.crt", "agentg-int.key") or, equivalently,
// LoadExternal("agentg-int.crt", "softkms:path=/abs/agentg-int.key"). Only the
// softkms type is compiled in by this package; a binary that wants pkcs11,
// yubikey, awskms, cloudkms, ... adds a blank import of the matching
// go.step.sm/crypto/kms/<type> package and passes that KMS's URI as key.
//
// # Leaves
//
// An Issuer signs leaves with one ECDSA P-256 key shared by all leaves of that
// issuer: CN and SAN exactly the requested host (never a wildcard), ServerAuth,
// 7 days by default, backdated 1 hour, never outliving the CA. Leaves are held
// in a bounded, sharded LRU; concurrent first requests for one host sign once;
// a leaf is renewed once less than a third of its validity remains.
package certs

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/smallstep/certificates/cas/apiv1"
	"github.com/smallstep/certificates/cas/softcas"
	"go.step.sm/crypto/kms"
)

// CA is a loaded certificate authority: its certificate chain and a
// crypto.Signer for the first certificate of the chain. It is safe for
// concurrent use and immutable once loaded.
type CA struct {
	chain       []*x509.Certificate
	signer      crypto.Signer
	km          kms.KeyManager // non-nil when the key came from a KMS; closed by Close
	keySource   string         // "file /path" or "kms <redacted uri>", for Show
	pem         []byte
	fingerprint string
	cas         apiv1.CertificateAuthorityService
}

// newCA checks that chain and signer form a usable CA at time now and wires the
// smallstep SoftCAS that signs leaves with them.
func newCA(chain []*x509.Certificate, signer crypto.Signer, km kms.KeyManager, keySource string, now time.Time) (*CA, error) {
	if len(chain) == 0 {
		return nil, errors.New("no certificate in CA chain")
	}
	if signer == nil {
		return nil, errors.New("no CA signer")
	}
	for i, c := range chain {
		name := certName(c)
		if !c.BasicConstraintsValid || !c.IsCA {
			return nil, fmt.Errorf("certificate %d (%s) is not a CA certificate (basicConstraints CA:TRUE missing)", i, name)
		}
		if c.KeyUsage != 0 && c.KeyUsage&x509.KeyUsageCertSign == 0 {
			return nil, fmt.Errorf("certificate %d (%s) may not sign certificates (keyUsage lacks keyCertSign)", i, name)
		}
		if now.After(c.NotAfter) {
			return nil, fmt.Errorf("certificate %d (%s) expired on %s", i, name, c.NotAfter.UTC().Format(time.RFC3339))
		}
		if now.Before(c.NotBefore) {
			return nil, fmt.Errorf("certificate %d (%s) is not valid before %s", i, name, c.NotBefore.UTC().Format(time.RFC3339))
		}
		if i > 0 {
			if err := chain[i-1].CheckSignatureFrom(c); err != nil {
				return nil, fmt.Errorf("CA chain out of order or broken: certificate %d (%s) is not signed by certificate %d (%s); give the signing certificate first, then its parents: %w",
					i-1, certName(chain[i-1]), i, name, err)
			}
		}
	}
	if err := checkSignerMatches("CA key", chain[0], signer); err != nil {
		return nil, err
	}
	cas, err := softcas.New(context.Background(), apiv1.Options{
		Type:             apiv1.SoftCAS,
		CertificateChain: chain,
		Signer:           signer,
		KeyManager:       km,
	})
	if err != nil {
		return nil, fmt.Errorf("create softcas: %w", err)
	}
	var buf bytes.Buffer
	for _, c := range chain {
		_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return &CA{
		chain:       chain,
		signer:      signer,
		km:          km,
		keySource:   keySource,
		pem:         buf.Bytes(),
		fingerprint: fingerprint(chain[0].Raw),
		cas:         cas,
	}, nil
}

// checkSignerMatches verifies that signer holds the private key of cert: the
// public keys must be equal and a probe signature must verify, which also
// proves a KMS/HSM signer is reachable (PIN, session) at load time. what
// names the key in errors ("CA key").
func checkSignerMatches(what string, cert *x509.Certificate, signer crypto.Signer) error {
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return fmt.Errorf("%s does not match certificate %s", what, certName(cert))
	}
	msg := []byte("agentg CA key probe")
	digest := sha256.Sum256(msg)
	switch k := cert.PublicKey.(type) {
	case *ecdsa.PublicKey:
		sig, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			return fmt.Errorf("%s probe signature: %w", what, err)
		}
		if !ecdsa.VerifyASN1(k, digest[:], sig) {
			return fmt.Errorf("%s probe signature does not verify against the certificate", what)
		}
	case *rsa.PublicKey:
		sig, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			return fmt.Errorf("%s probe signature: %w", what, err)
		}
		if err := rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig); err != nil {
			// Some KMS keys only do PSS; try that before giving up.
			sig, perr := signer.Sign(rand.Reader, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256})
			if perr != nil || rsa.VerifyPSS(k, crypto.SHA256, digest[:], sig, nil) != nil {
				return fmt.Errorf("%s probe signature does not verify against the certificate: %w", what, err)
			}
		}
	case ed25519.PublicKey:
		sig, err := signer.Sign(rand.Reader, msg, crypto.Hash(0))
		if err != nil {
			return fmt.Errorf("%s probe signature: %w", what, err)
		}
		if !ed25519.Verify(k, msg, sig) {
			return fmt.Errorf("%s probe signature does not verify against the certificate", what)
		}
	}
	return nil
}

// Certificate returns the CA (or intermediate) certificate that signs leaves.
func (c *CA) Certificate() *x509.Certificate { return c.chain[0] }

// Chain returns the signing certificate first, then any parents given by the
// user. The slice is a copy; the certificates must not be modified.
func (c *CA) Chain() []*x509.Certificate {
	return append([]*x509.Certificate(nil), c.chain...)
}

// PEM returns the public CA certificate(s) as PEM, signing certificate first:
// what `agentg ca export` prints and what clients must trust.
func (c *CA) PEM() []byte { return bytes.Clone(c.pem) }

// Fingerprint returns the SHA-256 of the signing certificate's DER as
// upper-case hex bytes separated by colons (as `openssl x509 -fingerprint
// -sha256` prints it).
func (c *CA) Fingerprint() string { return c.fingerprint }

// Close releases the KMS behind the CA key, if any. Leaves cannot be issued
// after Close. It is a no-op for file keys.
func (c *CA) Close() error {
	if c.km == nil {
		return nil
	}
	if err := c.km.Close(); err != nil {
		return fmt.Errorf("close CA key manager: %w", err)
	}
	return nil
}

// Show describes the CA for `agentg ca show`: subject, fingerprint, validity,
// key algorithm, where the key lives and the parents in the chain.
func (c *CA) Show() string {
	cert := c.chain[0]
	var b strings.Builder
	fmt.Fprintf(&b, "Subject:      %s\n", cert.Subject)
	fmt.Fprintf(&b, "Issuer:       %s\n", cert.Issuer)
	fmt.Fprintf(&b, "SHA-256:      %s\n", c.fingerprint)
	fmt.Fprintf(&b, "Serial:       %s\n", strings.ToUpper(cert.SerialNumber.Text(16)))
	fmt.Fprintf(&b, "Not before:   %s\n", cert.NotBefore.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "Not after:    %s\n", cert.NotAfter.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "Key:          %s\n", keyAlgorithm(cert.PublicKey))
	fmt.Fprintf(&b, "Signature:    %s\n", cert.SignatureAlgorithm)
	if c.keySource != "" {
		fmt.Fprintf(&b, "Key source:   %s\n", c.keySource)
	}
	for i, p := range c.chain[1:] {
		fmt.Fprintf(&b, "Parent %d:     %s (SHA-256 %s, expires %s)\n", i+1, p.Subject, fingerprint(p.Raw), p.NotAfter.UTC().Format(time.RFC3339))
	}
	return b.String()
}

func keyAlgorithm(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case ed25519.PublicKey:
		return "Ed25519"
	default:
		return fmt.Sprintf("%T", pub)
	}
}

func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	b.Grow(len(h) + len(h)/2)
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

func certName(c *x509.Certificate) string {
	if c.Subject.CommonName != "" {
		return "CN=" + c.Subject.CommonName
	}
	return c.Subject.String()
}

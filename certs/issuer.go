package certs

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/agentg/agentg/addr"
	"github.com/smallstep/certificates/cas/apiv1"
	"go.step.sm/crypto/keyutil"
	"go.step.sm/crypto/x509util"
	"golang.org/x/sync/singleflight"
)

// Issuer issues leaf certificates for intercepted hosts. It is safe for
// concurrent use. The *tls.Certificate values it returns are shared between
// callers and must not be modified.
type Issuer struct {
	ca       *CA
	key      crypto.Signer // one ECDSA P-256 key shared by every leaf
	skid     []byte
	chainDER [][]byte
	notAfter time.Time // earliest NotAfter in the CA chain: no leaf outlives it
	validity time.Duration
	backdate time.Duration
	now      func() time.Time
	cache    *leafCache
	flight   singleflight.Group
	issued   atomic.Uint64
	hits     atomic.Uint64 // Leaf answered from the cache (stats.go)
}

// IssuerOptions tune an Issuer. Zero values select the defaults.
type IssuerOptions struct {
	Validity  time.Duration    // leaf lifetime from issuance; default 7*24h
	Backdate  time.Duration    // NotBefore = now - Backdate, for clock skew; default 1h
	CacheSize int              // maximum number of cached leaves; default 10000
	Now       func() time.Time // clock, for tests; default time.Now
}

// Defaults for IssuerOptions.
const (
	DefaultLeafValidity = 7 * 24 * time.Hour
	DefaultLeafBackdate = time.Hour
	DefaultCacheSize    = 10000
)

// maxCommonName is ub-common-name (RFC 5280): longer hosts get no CN, only
// the SAN (which is what clients check).
const maxCommonName = 64

// NewIssuer returns an Issuer signing with ca. It generates the issuer's one
// shared leaf key.
func NewIssuer(ca *CA, opt IssuerOptions) (*Issuer, error) {
	if ca == nil {
		return nil, errors.New("new issuer: nil CA")
	}
	if opt.Validity < 0 || opt.Backdate < 0 || opt.CacheSize < 0 {
		return nil, fmt.Errorf("new issuer: negative option (validity %s, backdate %s, cache size %d)", opt.Validity, opt.Backdate, opt.CacheSize)
	}
	if opt.Validity == 0 {
		opt.Validity = DefaultLeafValidity
	}
	if opt.Backdate == 0 {
		opt.Backdate = DefaultLeafBackdate
	}
	if opt.CacheSize == 0 {
		opt.CacheSize = DefaultCacheSize
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	key, err := keyutil.GenerateSigner("EC", "P-256", 0)
	if err != nil {
		return nil, fmt.Errorf("new issuer: generate leaf key: %w", err)
	}
	skid, err := x509util.GenerateSubjectKeyID(key.Public())
	if err != nil {
		return nil, fmt.Errorf("new issuer: leaf subject key id: %w", err)
	}
	i := &Issuer{
		ca:       ca,
		key:      key,
		skid:     skid,
		validity: opt.Validity,
		backdate: opt.Backdate,
		now:      opt.Now,
		cache:    newLeafCache(opt.CacheSize),
	}
	for _, c := range ca.chain {
		i.chainDER = append(i.chainDER, c.Raw)
		if i.notAfter.IsZero() || c.NotAfter.Before(i.notAfter) {
			i.notAfter = c.NotAfter
		}
	}
	return i, nil
}

// Leaf returns a certificate for host, which must already be canonical: a DNS
// name (no wildcard, no trailing dot) or an IP address string. The SAN is
// exactly host. The result has Leaf set and Certificate holding the leaf
// followed by the CA chain. Leaves are cached per host and renewed once less
// than a third of their validity remains; concurrent first requests for the
// same host sign once.
func (i *Issuer) Leaf(host string) (*tls.Certificate, error) {
	if c, ok := i.cache.get(host, i.now()); ok {
		i.hits.Add(1)
		return c, nil
	}
	v, err, _ := i.flight.Do(host, func() (any, error) {
		now := i.now()
		if c, ok := i.cache.get(host, now); ok {
			return c, nil
		}
		c, renewAt, err := i.issue(host, now)
		if err != nil {
			return nil, err
		}
		i.cache.put(host, c, renewAt)
		return c, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*tls.Certificate), nil
}

// Issued returns how many leaf certificates this issuer has signed.
func (i *Issuer) Issued() uint64 { return i.issued.Load() }

// issue signs a fresh leaf for host through the CA's SoftCAS.
func (i *Issuer) issue(host string, now time.Time) (*tls.Certificate, time.Time, error) {
	ip, err := parseHost(host)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("issue leaf: %w", err)
	}
	notAfter := now.Add(i.validity)
	if notAfter.After(i.notAfter) {
		notAfter = i.notAfter
	}
	if !notAfter.After(now) {
		return nil, time.Time{}, fmt.Errorf("issue leaf for %q: CA certificate expired on %s", host, i.notAfter.UTC().Format(time.RFC3339))
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("issue leaf for %q: %w", host, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		NotBefore:             now.Add(-i.backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		PublicKey:             i.key.Public(),
		SubjectKeyId:          i.skid,
	}
	if len(host) <= maxCommonName {
		tmpl.Subject = pkix.Name{CommonName: host}
	}
	if ip.IsValid() {
		tmpl.IPAddresses = []net.IP{ip.AsSlice()}
	} else {
		tmpl.DNSNames = []string{host}
	}
	resp, err := i.ca.cas.CreateCertificate(&apiv1.CreateCertificateRequest{
		Template: tmpl,
		Lifetime: notAfter.Sub(now),
		Backdate: i.backdate,
	})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("issue leaf for %q: %w", host, err)
	}
	i.issued.Add(1)
	leaf := resp.Certificate
	der := make([][]byte, 0, 1+len(i.chainDER))
	der = append(der, leaf.Raw)
	der = append(der, i.chainDER...)
	renewAt := notAfter.Add(-notAfter.Sub(now) / 3)
	return &tls.Certificate{Certificate: der, PrivateKey: i.key, Leaf: leaf}, renewAt, nil
}

// parseHost accepts an IP address (returned valid) or a DNS name made of
// letters, digits, '-' and '_' in dot-separated labels of 1-63 characters,
// at most 253 in all. Wildcards, empty labels, a trailing dot, IPv6 zones and
// any other character are refused: they cannot be an exact SAN.
func parseHost(host string) (netip.Addr, error) {
	if host == "" {
		return netip.Addr{}, errors.New("empty host")
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return netip.Addr{}, fmt.Errorf("host %q: IP address with a zone cannot be a SAN", host)
		}
		return ip, nil
	}
	if err := addr.CheckHostname(host); err != nil {
		return netip.Addr{}, fmt.Errorf("host %q: %w", host, err)
	}
	return netip.Addr{}, nil
}

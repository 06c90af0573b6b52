package auth

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/agentg/agentg/rules"
)

// Client certificates: the door asks for one (ConfigureTLS) without
// verifying it in the handshake; checkCert verifies the chain against the
// CA of the policy in force and reads the agent's name from where the
// policy says. A verified leaf is remembered by its digest until it
// expires or certCacheTTL passes, so a connection's requests cost one
// SHA-256 each, not a chain verification.

const (
	certCacheSize = 1024
	certCacheTTL  = 10 * time.Minute
)

// certEntry is a verified certificate for one mtls sub-section.
type certEntry struct {
	cfg   *rules.GatewayMTLS
	id    Identity
	until time.Time
}

// ConfigureTLS makes a door's TLS config ask clients for a certificate.
// The handshake accepts any (or none): Authenticate checks it against
// the policy in force, so that a refused certificate is a 401 with an
// event, and a reload that changes the CA needs no new listener.
func ConfigureTLS(c *tls.Config) {
	c.ClientAuth = tls.RequestClientCert
}

func (a *Authenticator) checkCert(cfg *rules.GatewayMTLS, chain []*x509.Certificate) (Identity, *Failure) {
	now := a.o.Now()
	leaf := chain[0]
	d := sha256.Sum256(leaf.Raw)
	key := string(d[:])
	if e, ok := a.certs.Get(key); ok && e.cfg == cfg && now.Before(e.until) {
		return e.id, nil
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: cfg.Pool, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		return Identity{}, fail("mtls", "chain", fmt.Sprintf("client certificate %q does not verify against the gateway's client CA: %v", clip(leaf.Subject.String()), err))
	}
	names := certNames(leaf, cfg.NameFrom)
	var agent string
	switch {
	case cfg.Mapped():
		for _, n := range names {
			if a, ok := cfg.Agent(n); ok {
				agent = a
				break
			}
		}
	case len(names) == 1:
		agent, _ = cfg.Agent(names[0])
	case len(names) > 1:
		return Identity{}, fail("mtls", "name", fmt.Sprintf("client certificate %q has %d %s names: map one with the mtls agents table", clip(leaf.Subject.String()), len(names), cfg.NameFrom))
	}
	if agent == "" {
		return Identity{}, fail("mtls", "name", fmt.Sprintf("client certificate %q has no %s that names an agent", clip(leaf.Subject.String()), cfg.NameFrom))
	}
	id := Identity{Agent: agent, Method: "mtls", Credential: clip(leaf.Subject.String())}
	until := now.Add(certCacheTTL)
	for _, c := range chain {
		if c.NotAfter.Before(until) {
			until = c.NotAfter
		}
	}
	a.certs.Put(key, certEntry{cfg: cfg, id: id, until: until})
	return id, nil
}

// certNames are the leaf's names of the kind the policy reads.
func certNames(c *x509.Certificate, from string) []string {
	switch from {
	case "dns":
		return c.DNSNames
	case "uri":
		out := make([]string, len(c.URIs))
		for i, u := range c.URIs {
			out[i] = u.String()
		}
		return out
	case "email":
		return c.EmailAddresses
	}
	if c.Subject.CommonName == "" {
		return nil
	}
	return []string{c.Subject.CommonName}
}

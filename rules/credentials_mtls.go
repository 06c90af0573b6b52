package rules

import (
	"crypto/tls"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/agentg/agentg/certs"
	"github.com/agentg/agentg/creds"
)

// Client certificates (issue 16): a binding may present one to the
// upstream for mTLS, instead of or besides a header:
//
//	credentials:
//	  secrets:
//	    internal-key: {file: /etc/agentg/client.key}   # or {kms: "softkms:path=/etc/agentg/client.key"}
//	  bindings:
//	    - id: internal
//	      host: api.internal.example
//	      client_cert: {cert: /etc/agentg/client.pem, key: internal-key}
//
// The key is a secret of the secrets section (a file: or a kms: one), so
// it is named, listed and watched like every other secret and its value
// is never shown; a kms URI's PIN is redacted wherever the source is
// shown. The certificate and key are loaded when the policy is (a missing
// file, an unparsable PEM, a key that does not match the certificate are
// load errors at the binding's line, which agentg check reports), and the
// certificate is presented only in TLS agentg terminates toward the
// checked destination of a request the binding matches (proxy/forward.go
// pools those connections apart). A KMS opened for a key is not closed
// when a reload replaces the engine: softkms, the only one compiled in,
// holds nothing open; a build that adds pkcs11 or a cloud KMS would want
// the replaced engine to close its keys (certs.ClientCert.Close).

// ClientCert is a binding's client certificate, loaded once per policy
// load.
type ClientCert struct {
	File string // the certificate's file
	Key  string // the secret naming the key
	cc   *certs.ClientCert
	pool string // binding id and certificate fingerprint
}

// Certificate is what the TLS client presents. The caller must not
// modify it.
func (c *ClientCert) Certificate() *tls.Certificate { return c.cc.Certificate() }

// Subject names the certificate, for agentg check.
func (c *ClientCert) Subject() string { return c.cc.Subject() }

// PoolKey identifies the connections that presented this certificate for
// this binding: the forwarder keeps them apart from every other request's
// (proxy/forward.go).
func (c *ClientCert) PoolKey() string { return c.pool }

// clientCertSpec is client_cert: as parsed.
type clientCertSpec struct {
	node    *yaml.Node // the client_cert key, for errors
	cert    string
	key     string
	keyNode *yaml.Node
}

func (p *parser) clientCert(k, v *yaml.Node) (*clientCertSpec, error) {
	cs := &clientCertSpec{node: k}
	err := p.eachKey(v, func(k, v *yaml.Node) (err error) {
		switch k.Value {
		case "cert":
			if cs.cert, err = p.scalar(v); err == nil && cs.cert == "" {
				err = p.errf(v, "empty certificate file name")
			}
		case "key":
			cs.keyNode = v
			if cs.key, err = p.scalar(v); err == nil && !creds.ValidName(cs.key) {
				err = p.errf(v, "bad secret name %q (the key is a secret of credentials secrets, a file: or a kms: one)", cs.key)
			}
		default:
			err = p.errf(k, "unknown client_cert key %q (want cert and key)", k.Value)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if cs.cert == "" || cs.keyNode == nil {
		return nil, p.errf(v, "a client_cert needs a cert (a PEM file) and a key (a secret's name)")
	}
	return cs, nil
}

// kmsURI parses a kms: secret source: a go.step.sm/crypto/kms URI
// ("softkms:path=/etc/agentg/client.key"). Whether the KMS exists and
// holds the key is found when the certificate is loaded.
func (p *parser) kmsURI(v *yaml.Node) (string, error) {
	s, err := p.scalar(v)
	if err != nil {
		return "", err
	}
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || len(scheme) < 2 || rest == "" || strings.ContainsAny(s, "\r\n\x00") || !isKMSScheme(scheme) {
		return "", p.errf(v, "bad kms URI %q (want TYPE:..., such as softkms:path=/etc/agentg/client.key)", certs.RedactKeyURI(s))
	}
	return s, nil
}

func isKMSScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// certOnly checks a binding that presents a certificate and sends no
// secret in the request.
func (p *parser) certOnly(bs *bindingSpec) error {
	if bs.own != nil {
		return p.errf(bs.own, "secret: names what a header, basic or query sends; this binding only presents a client_cert, whose key names its own secret")
	}
	return nil
}

// checkClientCertKeys checks, once every secret is known, that each
// client_cert key is a file: or kms: secret, and that no key is also sent
// as a value (a header, Basic or query binding), nor a kms: secret used
// as one.
func (p *parser) checkClientCertKeys(spec *credentialsSpec) error {
	keys := map[string]bool{}
	for _, bs := range spec.bindings {
		if bs.cert == nil {
			continue
		}
		s, ok := spec.secrets[bs.cert.key]
		if !ok {
			return p.errf(bs.cert.keyNode, "secret %q is not defined under credentials secrets", bs.cert.key)
		}
		if s.src.Kind != creds.KindFile && s.src.Kind != creds.KindKMS {
			return p.errf(bs.cert.keyNode, "client_cert key %s comes from %s: a key is a file: or a kms: secret", bs.cert.key, s.src)
		}
		keys[bs.cert.key] = true
	}
	for _, bs := range spec.bindings {
		for _, n := range sentSecrets(&bs) {
			s, ok := spec.secrets[n]
			switch {
			case keys[n]:
				return p.errf(bs.k, "secret %s is a client_cert key: it is never sent in a request", n)
			case ok && s.src.Kind == creds.KindKMS:
				return p.errf(bs.k, "secret %s is a kms key: only a client_cert can use it", n)
			}
		}
	}
	return nil
}

// sentSecrets lists the secrets a binding puts in the request itself.
func sentSecrets(bs *bindingSpec) []string {
	switch {
	case bs.k == nil:
		return nil
	case bs.b.Kind == InjectHeader:
		return bs.b.Template.Secrets(bs.b.Secret)
	}
	return []string{bs.b.Secret}
}

// loadClientCert loads a binding's certificate and key; the certificate's
// file is watched with the policy (the key's, as a file secret, already
// is), so a renewed certificate is loaded again.
func (c *compiler) loadClientCert(b *Binding, bs bindingSpec, srcs map[string]creds.Source) error {
	if bs.cert == nil {
		return nil
	}
	file := bs.cert.cert
	if !filepath.IsAbs(file) {
		file = filepath.Join(c.dir, file)
	}
	src := srcs[bs.cert.key]
	key := certs.ClientKey{URI: src.KeyURI()}
	if src.Kind == creds.KindFile {
		key = certs.ClientKey{File: src.Path}
	}
	c.e.files = append(c.e.files, file)
	cc, err := certs.LoadClientCert(file, key)
	if err != nil {
		return fmt.Errorf("load policy %s:%d: %sclient_cert: %w", c.pol.file, bs.cert.node.Line, bindingLabel(b), err)
	}
	b.Cert = &ClientCert{File: file, Key: bs.cert.key, cc: cc, pool: b.ID + " " + cc.Fingerprint()}
	return nil
}

// certWarnBefore is how long before a client certificate expires agentg
// check warns: once it has, the upstream refuses every handshake and the
// policy no longer loads.
const certWarnBefore = 14 * 24 * time.Hour

func (w *warner) clientCertExpiring(b *Binding) {
	if b.Cert == nil {
		return
	}
	if left := time.Until(b.Cert.cc.NotAfter()); left < certWarnBefore {
		w.add(b.Source, "binding %s's client certificate %s (%s) expires on %s", b.ID, b.Cert.Subject(), b.Cert.File,
			b.Cert.cc.NotAfter().UTC().Format(time.RFC3339))
	}
}

// bindingLabel names a binding in a load error that already points at
// its line: "binding ID " when it has an explicit id, "" otherwise.
func bindingLabel(b *Binding) string {
	if b.ID == b.Source {
		return ""
	}
	return "binding " + b.ID + " "
}

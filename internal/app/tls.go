package app

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/agentg/agentg/certs"
)

// CAConfig says where the CA comes from: agentg's own in DataDir, or one
// brought with Cert and Key (both, or neither).
type CAConfig struct {
	DataDir   string // directory holding agentg's own CA (ca.crt, ca.key), its token and state
	Cert, Key string // bring your own: PEM chain (signing certificate first) and its key (file or KMS URI)
}

// LoadCA returns the configured CA; create says whether agentg's own CA
// may be created when missing (serving), rather than reported missing
// (the ca commands).
func LoadCA(c CAConfig, create bool) (ca *certs.CA, created bool, err error) {
	if c.Cert != "" || c.Key != "" {
		if c.Cert == "" || c.Key == "" {
			return nil, false, errors.New("--ca-cert and --ca-key go together")
		}
		ca, err = certs.LoadExternal(c.Cert, c.Key)
		return ca, false, err
	}
	if c.DataDir == "" {
		return nil, false, errors.New("no data directory: set --data-dir, XDG_DATA_HOME or HOME")
	}
	if create {
		return certs.LoadOrInit(c.DataDir)
	}
	ca, err = certs.LoadDir(c.DataDir)
	return ca, false, err
}

// upstreamRoots is the system pool plus every PEM file given.
func upstreamRoots(files []string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("upstream roots: %w", err)
		}
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("upstream roots %s: no PEM certificates", f)
		}
	}
	return pool, nil
}

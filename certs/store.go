package certs

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/smallstep/certificates/cas/apiv1"
	"github.com/smallstep/certificates/cas/softcas"
	kmsapi "go.step.sm/crypto/kms/apiv1"
	"go.step.sm/crypto/pemutil"

	"github.com/agentg/agentg/internal/atomicfile"
	"github.com/agentg/agentg/internal/filetrust"
)

// File names inside the data directory.
const (
	CertFile = "ca.crt"
	KeyFile  = "ca.key"
)

const (
	caValidity = 10 * 365 * 24 * time.Hour
	caBackdate = time.Hour
)

// DefaultDir is where agentg keeps its own CA: $XDG_DATA_HOME/agentg, else
// $HOME/.local/share/agentg. It returns "" only when neither variable is set
// and the home directory cannot be determined.
func DefaultDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "agentg")
	}
	home := os.Getenv("HOME")
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		home = h
	}
	return filepath.Join(home, ".local", "share", "agentg")
}

// Init creates a new ECDSA P-256 CA in dir (ca.crt 0644, and ca.key with mode
// 0600; dir is created 0700 if missing). It refuses to replace an existing
// ca.crt or ca.key unless force is set.
func Init(dir string, force bool) (*CA, error) {
	if dir == "" {
		return nil, errors.New("init CA: empty directory")
	}
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	if !force {
		for _, p := range []string{certPath, keyPath} {
			if _, err := os.Lstat(p); err == nil {
				return nil, fmt.Errorf("init CA: %s already exists (--force replaces it, and clients that trusted the old CA must then be given the new one): %w", p, fs.ErrExist)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("init CA: %w", err)
			}
		}
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("init CA: create %s: %w", dir, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("init CA: %w", err)
	}

	now := time.Now()
	cert, signer, err := createRoot(now)
	if err != nil {
		return nil, fmt.Errorf("init CA: %w", err)
	}
	keyBlock, err := pemutil.Serialize(signer)
	if err != nil {
		return nil, fmt.Errorf("init CA: encode key: %w", err)
	}
	keyPEM := pem.EncodeToMemory(keyBlock)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})

	// Key first: a ca.crt without its key is useless, a key without a
	// certificate is harmless and makes a later non-forced Init refuse.
	if err := writeCAFile(keyPath, keyPEM, 0o600, force); err != nil {
		return nil, fmt.Errorf("init CA: write key: %w", err)
	}
	if err := writeCAFile(certPath, certPEM, 0o644, force); err != nil {
		if !force {
			_ = os.Remove(keyPath)
		}
		return nil, fmt.Errorf("init CA: write certificate: %w", err)
	}
	return newCA([]*x509.Certificate{cert}, signer, nil, "file "+keyPath, now)
}

// createRoot asks smallstep's SoftCAS to create the self-signed agentg root.
func createRoot(now time.Time) (*x509.Certificate, crypto.Signer, error) {
	cas, err := softcas.New(context.Background(), apiv1.Options{Type: apiv1.SoftCAS, IsCreator: true})
	if err != nil {
		return nil, nil, fmt.Errorf("create softcas: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	resp, err := cas.CreateCertificateAuthority(&apiv1.CreateCertificateAuthorityRequest{
		Name: "agentg CA",
		Type: apiv1.RootCA,
		Template: &x509.Certificate{
			SerialNumber:          serial,
			Subject:               pkix.Name{CommonName: "agentg CA", Organization: []string{"agentg"}},
			NotBefore:             now.Add(-caBackdate),
			NotAfter:              now.Add(caValidity),
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
			BasicConstraintsValid: true,
			IsCA:                  true,
			MaxPathLen:            0,
			MaxPathLenZero:        true,
		},
		Lifetime:  caValidity,
		Backdate:  caBackdate,
		CreateKey: &kmsapi.CreateKeyRequest{SignatureAlgorithm: kmsapi.ECDSAWithSHA256},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("create root certificate: %w", err)
	}
	if resp.Signer == nil {
		return nil, nil, errors.New("create root certificate: softcas returned no signer")
	}
	return resp.Certificate, resp.Signer, nil
}

// LoadDir loads the CA that Init wrote to dir. A missing directory or file is
// reported wrapping fs.ErrNotExist. It fails on a key file readable by group or
// others, a corrupt certificate or key, a key that does not match, an expired
// or not-yet-valid certificate, and a certificate that is not a CA.
func LoadDir(dir string) (*CA, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("load CA from %s: %w", dir, err)
	}
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	chain, err := readChain(certPath)
	if err != nil {
		return nil, err
	}
	signer, err := readKeyFile("CA key", keyPath, filetrust.Generated)
	if err != nil {
		return nil, err
	}
	ca, err := newCA(chain, signer, nil, "file "+keyPath, time.Now())
	if err != nil {
		return nil, fmt.Errorf("load CA from %s: %w", dir, err)
	}
	return ca, nil
}

// LoadOrInit loads the CA in dir, creating it first when neither ca.crt nor
// ca.key exists. created reports whether a new CA was written. Any other
// problem (one of the two files missing, bad permissions, corruption) is an
// error: it never replaces an existing file.
func LoadOrInit(dir string) (ca *CA, created bool, err error) {
	ca, err = LoadDir(dir)
	if err == nil {
		return ca, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	if err := halfCA(dir); err != nil {
		return nil, false, err
	}
	ca, err = Init(dir, false)
	if err != nil {
		return nil, false, err
	}
	return ca, true, nil
}

// halfCA explains a data directory holding one of the CA's two files
// and not the other, which Init would otherwise refuse as "already
// exists", naming the file that is there rather than the one missing.
func halfCA(dir string) error {
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	_, certErr := os.Lstat(certPath)
	_, keyErr := os.Lstat(keyPath)
	const fix = "or make a new CA with `agentg ca init --force --data-dir %s` (clients that trusted the old one must then be given the new one: `agentg ca export`)"
	switch {
	case certErr == nil && errors.Is(keyErr, fs.ErrNotExist):
		return fmt.Errorf("load CA: the certificate %s is here but its key %s is missing: restore the key (from a backup, or the secret it was mounted from), "+fix, certPath, keyPath, dir)
	case keyErr == nil && errors.Is(certErr, fs.ErrNotExist):
		return fmt.Errorf("load CA: the key %s is here but its certificate %s is missing: restore the certificate (`agentg ca export` of a running agentg, or a backup), "+fix, keyPath, certPath, dir)
	}
	return nil
}

// readChain reads a PEM certificate bundle, signing certificate first.
func readChain(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load CA certificate %s: %w", path, err)
	}
	chain, err := pemutil.ParseCertificateBundle(data)
	if err != nil {
		return nil, fmt.Errorf("load CA certificate %s: %w", path, err)
	}
	return chain, nil
}

// readKeyFile reads an unencrypted PEM private key after checking it by
// rule: owned by agentg's user or root, and readable by no one else
// (filetrust.Generated, the data directory's own ca.key) or by a group at
// most (filetrust.Provided, a key the operator provides: a Kubernetes
// secret mounted with an fsGroup is 0440). what names the key in errors
// ("CA key").
func readKeyFile(what, path string, rule filetrust.Rule) (crypto.Signer, error) {
	data, err := filetrust.ReadSecret("load "+what, path, rule)
	if err != nil {
		return nil, err
	}
	if block, _ := pem.Decode(data); block != nil && (block.Type == "ENCRYPTED PRIVATE KEY" || block.Headers["Proc-Type"] == "4,ENCRYPTED") {
		return nil, fmt.Errorf("load %s %s: key is password-protected; agentg does not prompt for passwords: decrypt it into a 0600 file (step crypto change-pass --no-password --insecure) or serve it from a KMS", what, path)
	}
	key, err := pemutil.ParseKey(data, pemutil.WithFilename(path))
	if err != nil {
		return nil, fmt.Errorf("load %s %s: %w", what, path, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("load %s %s: %T is not a private key", what, path, key)
	}
	return signer, nil
}

// checkKeyMode checks a key file a KMS will read (softkms) as readKeyFile
// checks the ones agentg reads itself.
func checkKeyMode(what, path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("load %s %s: %w", what, path, err)
	}
	return filetrust.CheckSecret("load "+what, path, fi, filetrust.Generated)
}

// writeCAFile writes a CA file atomically: without force it never
// replaces one that exists (Init refuses to clobber a CA).
func writeCAFile(path string, data []byte, perm fs.FileMode, force bool) error {
	if force {
		return atomicfile.Write(path, data, perm)
	}
	return atomicfile.Create(path, data, perm)
}

// randomSerial returns a random positive 128-bit serial number (at most 17
// DER octets, within RFC 5280's 20).
func randomSerial() (*big.Int, error) {
	var b [16]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("serial number: %w", err)
		}
		if n := new(big.Int).SetBytes(b[:]); n.Sign() > 0 {
			return n, nil
		}
	}
}

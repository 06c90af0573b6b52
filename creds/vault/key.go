package vault

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"go.step.sm/crypto/kms"
	kmsapi "go.step.sm/crypto/kms/apiv1"
	"go.step.sm/crypto/kms/uri"

	"github.com/agentg/agentg/certs"
	"github.com/agentg/agentg/internal/atomicfile"
	"github.com/agentg/agentg/internal/filetrust"
)

// KeyFile is the data key's file in the data directory (KeyFileSource);
// WrappedKeyFile holds the data key wrapped by a KMS key (KMS).
const (
	KeyFile        = "vault.key"
	WrappedKeyFile = "vault.key.wrapped"
)

const keyLen = 32

// KeySource is where a vault's data key comes from: FileKey or KMS.
type KeySource interface {
	// dataKey returns the 32-byte data key for the vault in dir, and
	// where it is, for errors.
	dataKey(dir string) ([]byte, string, error)
}

// ParseKeySource reads the --vault-key flag: "" or "file" is FileKey,
// anything else a KMS URI.
func ParseKeySource(flag string) (KeySource, error) {
	switch flag {
	case "", "file":
		return FileKey(), nil
	}
	if u, err := uri.Parse(flag); err != nil || len(u.Scheme) < 2 {
		return nil, fmt.Errorf("vault key %q: want \"file\" or a KMS URI such as softkms:path=/etc/agentg/vault-rsa.pem", certs.RedactURI(flag))
	}
	return KMS(flag), nil
}

// FileKey is a random 32-byte key in <dir>/vault.key, created mode 0600
// on first use and refused when group or others may read or write it.
func FileKey() KeySource { return fileKey{} }

type fileKey struct{}

func (fileKey) dataKey(dir string) ([]byte, string, error) {
	p := filepath.Join(dir, KeyFile)
	where := "file " + p
	k, err := readKeyFile(p, "vault key")
	if errors.Is(err, fs.ErrNotExist) {
		k = make([]byte, keyLen)
		if _, err := rand.Read(k); err != nil {
			return nil, where, fmt.Errorf("vault key %s: %w", p, err)
		}
		// Create, never Write: of two agentg starting at once on one
		// directory, one key wins and the other reads it.
		err = atomicfile.Create(p, k, 0o600)
		if errors.Is(err, fs.ErrExist) {
			k, err = readKeyFile(p, "vault key")
		} else if err != nil {
			return nil, where, fmt.Errorf("vault key %s: %w", p, err)
		}
	}
	if err != nil {
		return nil, where, err
	}
	if len(k) != keyLen {
		return nil, where, fmt.Errorf("vault key %s: %d bytes, want %d (it is not a key agentg wrote)", p, len(k), keyLen)
	}
	return k, where, nil
}

// readKeyFile reads a key file agentg wrote, refusing one that group or
// others may read or write.
func readKeyFile(p, what string) ([]byte, error) {
	if _, err := os.Lstat(p); err != nil {
		return nil, err
	}
	return filetrust.ReadSecret(what, p, filetrust.Generated)
}

// KMS is a data key wrapped by the RSA key the KMS URI names (envelope
// encryption): on first use a random data key is wrapped with RSA-OAEP
// (SHA-256) to the KMS key's public key and stored in
// <dir>/vault.key.wrapped; each Open unwraps it with the KMS's
// decrypter. The data key is never stored unwrapped, and only the KMS
// can unwrap it. The URI is shown with its PIN redacted. softkms is
// compiled in; other KMSes need their go.step.sm/crypto/kms/<type>
// package imported, as for the CA key (certs).
func KMS(keyURI string) KeySource { return kmsKey{uri: keyURI} }

type kmsKey struct{ uri string }

// wrapLabel is RSA-OAEP's label: a data key wrapped for anything else
// does not unwrap as a vault's.
var wrapLabel = []byte("agentg vault data key")

const wrappedMagic = "AGVK1\n"

func (k kmsKey) dataKey(dir string) ([]byte, string, error) {
	shown := certs.RedactURI(k.uri)
	where := "kms " + shown
	dec, closeKMS, err := k.decrypter(shown)
	if err != nil {
		return nil, where, err
	}
	defer closeKMS()
	pub, ok := dec.Public().(*rsa.PublicKey)
	if !ok {
		return nil, where, fmt.Errorf("vault key %s: a %T, want an RSA key (the data key is wrapped with RSA-OAEP)", shown, dec.Public())
	}
	p := filepath.Join(dir, WrappedKeyFile)
	wrapped, err := readKeyFile(p, "wrapped vault key")
	if errors.Is(err, fs.ErrNotExist) {
		dk := make([]byte, keyLen)
		if _, err := rand.Read(dk); err != nil {
			return nil, where, fmt.Errorf("vault key: %w", err)
		}
		w, werr := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, dk, wrapLabel)
		clear(dk)
		if werr != nil {
			return nil, where, fmt.Errorf("vault key %s: wrap: %w", shown, werr)
		}
		wrapped = append([]byte(wrappedMagic), w...)
		err = atomicfile.Create(p, wrapped, 0o600)
		if errors.Is(err, fs.ErrExist) {
			wrapped, err = readKeyFile(p, "wrapped vault key")
		} else if err != nil {
			return nil, where, fmt.Errorf("wrapped vault key %s: %w", p, err)
		}
		// Unwrapped below like any other: a KMS that can encrypt but not
		// decrypt is found now, not at the first token.
	}
	if err != nil {
		return nil, where, err
	}
	w, ok := strings.CutPrefix(string(wrapped), wrappedMagic)
	if !ok {
		return nil, where, fmt.Errorf("wrapped vault key %s: not a wrapped key agentg wrote", p)
	}
	dk, err := dec.Decrypt(rand.Reader, []byte(w), &rsa.OAEPOptions{Hash: crypto.SHA256, Label: wrapLabel})
	if err != nil {
		return nil, where, fmt.Errorf("wrapped vault key %s: the key %s does not unwrap it (another key wrapped it, or it was altered)", p, shown)
	}
	if len(dk) != keyLen {
		return nil, where, fmt.Errorf("wrapped vault key %s: unwraps to %d bytes, want %d", p, len(dk), keyLen)
	}
	return dk, where, nil
}

// decrypter opens the KMS and its decrypter for the key.
func (k kmsKey) decrypter(shown string) (crypto.Decrypter, func(), error) {
	typ, err := kmsapi.TypeOf(k.uri)
	if err != nil {
		return nil, nil, fmt.Errorf("vault key %s: %w", shown, err)
	}
	if typ == kmsapi.SoftKMS {
		if p := certs.SoftKMSPath(k.uri); p != "" {
			fi, err := os.Stat(p)
			if err != nil {
				return nil, nil, fmt.Errorf("vault key %s: %w", shown, err)
			}
			if err := filetrust.CheckSecret("vault KMS key", p, fi, filetrust.Provided); err != nil {
				return nil, nil, err
			}
		}
	}
	km, err := kms.New(context.Background(), kmsapi.Options{Type: typ, URI: k.uri})
	if err != nil {
		return nil, nil, fmt.Errorf("vault key %s: open %s KMS (is support for it compiled in?): %w", shown, typ, err)
	}
	d, ok := km.(kmsapi.Decrypter)
	if !ok {
		km.Close()
		return nil, nil, fmt.Errorf("vault key %s: the %s KMS cannot decrypt", shown, typ)
	}
	dec, err := d.CreateDecrypter(&kmsapi.CreateDecrypterRequest{DecryptionKey: k.uri})
	if err != nil {
		km.Close()
		return nil, nil, fmt.Errorf("vault key %s: %w", shown, redactErr(err, k.uri, shown))
	}
	return dec, func() { km.Close() }, nil
}

// redactErr keeps a KMS's error from repeating the URI with its PIN.
func redactErr(err error, raw, shown string) error {
	if raw == shown || !strings.Contains(err.Error(), raw) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), raw, shown))
}

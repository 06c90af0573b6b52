// Package vault keeps the values agentg obtains at runtime (OAuth access
// and refresh tokens, exchanged tokens) in its data directory, encrypted
// at rest, so that a copy of the directory, a backup or a stray read of
// a file gives nobody a token.
//
// The contract:
//   - Every record is sealed with XChaCha20-Poly1305 under the vault's
//     data key, with a fresh random nonce, and with the record's name as
//     associated data: a record copied over another's file is refused,
//     not read as the other. A value is never written in plain text.
//   - Records are written atomically (internal/atomicfile), one file per
//     name under <dir>/vault/, mode 0600; the directory is 0700.
//   - The data key is either a random 32-byte key in <dir>/vault.key
//     (created 0600 on first use, refused when group or others may read
//     or write it), or wrapped by a KMS key (envelope encryption: see
//     KMS), so that the key never lies beside the records.
//   - Every error names the record and the file, never a value. A record
//     that was tampered with, sealed under another key, or is not a
//     record at all is an error, never a panic and never a value.
//
// *Vault satisfies TokenStore, the interface the OAuth broker stores its
// tokens through.
package vault

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/agentg/agentg/internal/atomicfile"
	"github.com/agentg/agentg/internal/filetrust"
)

// TokenStore is what a holder of runtime tokens stores them through.
type TokenStore interface {
	Get(name string) ([]byte, bool, error)
	Put(name string, v []byte) error
	Delete(name string) error
}

var _ TokenStore = (*Vault)(nil)

// RecordsDir is the directory under the data directory that holds the
// records.
const RecordsDir = "vault"

// MaxName bounds a record's name; MaxValue its value. A token is not a
// document.
const (
	MaxName  = 200
	MaxValue = 256 << 10
)

// Vault is the encrypted store in one data directory. It is safe for
// concurrent use; agentg opens one per data directory.
type Vault struct {
	dir   string // <data dir>/vault
	aead  aeadSealer
	keyID [keyIDLen]byte
	key   string // where the key is, for errors: "file /x/vault.key", "kms softkms:..."

	mu sync.Mutex // one writer at a time, so Names never sees half a Put
}

// Open opens (creating when needed) the vault in the data directory dir
// with the key from key. The data directory must be one agentg trusts
// (filetrust.CheckDir); the caller (internal/app) has checked it.
func Open(dir string, key KeySource) (*Vault, error) {
	if key == nil {
		return nil, errors.New("vault: no key source")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("vault: data directory %s: %w", dir, err)
	}
	rdir := filepath.Join(dir, RecordsDir)
	if err := os.Mkdir(rdir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("vault: %w", err)
	}
	if err := filetrust.CheckDir(rdir); err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	k, where, err := key.dataKey(dir)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	defer clear(k)
	aead, err := chacha20poly1305.NewX(k)
	if err != nil {
		return nil, fmt.Errorf("vault: key %s: %w", where, err)
	}
	v := &Vault{dir: rdir, aead: aead, key: where}
	v.keyID = keyID(k)
	return v, nil
}

// Key says where the vault's key is (a file, or a KMS URI with its PIN
// redacted), for logs and errors.
func (v *Vault) Key() string { return v.key }

// keyID names a data key without revealing it: a record sealed under
// another key is then refused as such, not as tampered.
func keyID(k []byte) [keyIDLen]byte {
	m := hmac.New(sha256.New, k)
	m.Write([]byte("agentg vault key id"))
	var id [keyIDLen]byte
	copy(id[:], m.Sum(nil))
	return id
}

// fileName is the record file of name: base32 (lower case, no padding),
// so that any name is a safe file name and Names can read it back.
var enc = base32.HexEncoding.WithPadding(base32.NoPadding)

func fileName(name string) string { return strings.ToLower(enc.EncodeToString([]byte(name))) + ".rec" }

func nameOf(file string) (string, bool) {
	stem, ok := strings.CutSuffix(file, ".rec")
	if !ok {
		return "", false
	}
	b, err := enc.DecodeString(strings.ToUpper(stem))
	if err != nil || validName(string(b)) != nil {
		return "", false
	}
	return string(b), true
}

func validName(name string) error {
	if name == "" || len(name) > MaxName {
		return fmt.Errorf("vault: bad record name (1 to %d bytes)", MaxName)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x21 || c > 0x7e {
			return fmt.Errorf("vault: bad record name %q (printable ASCII, no spaces)", name)
		}
	}
	return nil
}

func (v *Vault) path(name string) string { return filepath.Join(v.dir, fileName(name)) }

// Get returns the value stored under name; false when there is none. A
// record that cannot be opened is an error, never a value.
func (v *Vault) Get(name string) ([]byte, bool, error) {
	if err := validName(name); err != nil {
		return nil, false, err
	}
	p := v.path(name)
	b, err := filetrust.ReadSecret("vault record "+name, p, filetrust.Generated)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("vault: %w", err)
	}
	val, err := v.open(name, b)
	if err != nil {
		return nil, false, fmt.Errorf("vault: record %s (%s): %w", name, p, err)
	}
	return val, true, nil
}

// Put stores value under name, replacing what was there.
func (v *Vault) Put(name string, value []byte) error {
	if err := validName(name); err != nil {
		return err
	}
	if len(value) > MaxValue {
		return fmt.Errorf("vault: record %s: value larger than %d bytes", name, MaxValue)
	}
	b, err := v.seal(name, value)
	if err != nil {
		return fmt.Errorf("vault: record %s: %w", name, err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := atomicfile.Write(v.path(name), b, 0o600); err != nil {
		return fmt.Errorf("vault: record %s: %w", name, err)
	}
	return nil
}

// Delete removes the record name; deleting one that is not there is no
// error.
func (v *Vault) Delete(name string) error {
	if err := validName(name); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := os.Remove(v.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("vault: record %s: %w", name, err)
	}
	return nil
}

// Names lists the records' names, sorted. Files that are not records
// (a temporary file of a write in progress) are skipped.
func (v *Vault) Names() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	ents, err := os.ReadDir(v.dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		if n, ok := nameOf(e.Name()); ok {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

package admin

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// TokenFile is the name of the token agentg generates in its data
// directory, beside the CA.
const TokenFile = "admin.token"

// minTokenLen is the shortest token accepted from a file someone wrote.
const minTokenLen = 16

// LoadOrCreateToken returns the token in dataDir/TokenFile, generating it
// (32 random bytes, base64url; mode 0600) when the file does not exist.
// A token file that group or others may read or write is refused: it
// would let any local user steer agentg.
func LoadOrCreateToken(dataDir string) (token string, created bool, err error) {
	path := filepath.Join(dataDir, TokenFile)
	tok, err := readToken(path, 0o077)
	if !errors.Is(err, fs.ErrNotExist) {
		return tok, false, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", false, fmt.Errorf("admin token: %w", err)
	}
	var b [32]byte
	rand.Read(b[:])
	tok = base64.RawURLEncoding.EncodeToString(b[:])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Another agentg made it first: use theirs.
		tok, err := readToken(path, 0o077)
		return tok, false, err
	}
	if err != nil {
		return "", false, fmt.Errorf("admin token: %w", err)
	}
	_, err = f.WriteString(tok + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return "", false, fmt.Errorf("admin token %s: %w", path, err)
	}
	return tok, true, nil
}

// ReadTokenFile reads a token someone provided (--admin-token-file): its
// first line, at least 16 printable characters. A file others (not the
// owner, not its group) may read or write is refused.
func ReadTokenFile(path string) (string, error) {
	return readToken(path, 0o007)
}

// ReadToken reads the token agentg generated in dataDir, for clients.
func ReadToken(dataDir string) (string, error) {
	return readToken(filepath.Join(dataDir, TokenFile), 0o077)
}

func readToken(path string, forbidden fs.FileMode) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("admin token %s: not a regular file", path)
	}
	if m := st.Mode().Perm(); m&forbidden != 0 {
		return "", fmt.Errorf("admin token %s has mode %04o: it must not be readable or writable by %s (chmod %04o %s)",
			path, m, who(forbidden), m&^forbidden, path)
	}
	buf := make([]byte, 4096)
	n, _ := f.Read(buf)
	line, _, _ := strings.Cut(string(buf[:n]), "\n")
	tok := strings.TrimSpace(line)
	if len(tok) < minTokenLen {
		return "", fmt.Errorf("admin token %s: shorter than %d characters", path, minTokenLen)
	}
	for _, c := range []byte(tok) {
		if c <= ' ' || c >= 0x7f {
			return "", fmt.Errorf("admin token %s: only printable ASCII without spaces may be in a token", path)
		}
	}
	return tok, nil
}

func who(m fs.FileMode) string {
	if m&0o070 != 0 {
		return "group or others"
	}
	return "others"
}

// tokenCheck compares bearer tokens in constant time. Both sides are
// hashed first, so that neither the comparison nor its length check says
// anything about the token.
type tokenCheck [sha256.Size]byte

func newTokenCheck(token string) tokenCheck { return sha256.Sum256([]byte(token)) }

func (t *tokenCheck) ok(r *http.Request) bool {
	scheme, cred, found := strings.Cut(r.Header.Get("Authorization"), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(cred)))
	return subtle.ConstantTimeCompare(got[:], t[:]) == 1
}

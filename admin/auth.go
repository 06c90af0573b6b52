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

	"github.com/agentg/agentg/internal/atomicfile"
	"github.com/agentg/agentg/internal/filetrust"
)

// TokenFile is the name of the token agentg generates in its data
// directory, beside the CA.
const TokenFile = "admin.token"

// minTokenLen is the shortest token accepted from a file someone wrote.
const minTokenLen = 16

// LoadOrCreateToken returns the token in dataDir/TokenFile, generating it
// (32 random bytes, base64url; mode 0600) when the file does not exist.
// A token file that group or others may read or write, or that neither
// agentg's user nor root owns, is refused: it would let any local user
// steer agentg (filetrust).
func LoadOrCreateToken(dataDir string) (token string, created bool, err error) {
	path := filepath.Join(dataDir, TokenFile)
	tok, err := readToken(path, filetrust.Generated)
	if !errors.Is(err, fs.ErrNotExist) {
		return tok, false, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", false, fmt.Errorf("admin token: %w", err)
	}
	var b [32]byte
	rand.Read(b[:])
	tok = base64.RawURLEncoding.EncodeToString(b[:])
	// Created whole or not at all: a concurrent reader (the CLI, a
	// second agentg) never sees an empty or partial token.
	err = atomicfile.Create(path, []byte(tok+"\n"), 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Another agentg made it first: use theirs.
		tok, err := readToken(path, filetrust.Generated)
		return tok, false, err
	}
	if err != nil {
		return "", false, fmt.Errorf("admin token %s: %w", path, err)
	}
	return tok, true, nil
}

// LoadTokenFile reads the token agentg serve is given (--admin-token-file):
// its first line, at least 16 printable characters. A file others (not the
// owner, not its group) may read or write, or that neither agentg's user
// nor root owns, is refused.
func LoadTokenFile(path string) (string, error) {
	return readToken(path, filetrust.Provided)
}

// ReadTokenFile reads a token file for a client (the CLI): as LoadTokenFile,
// but whoever owns it. The client only sends the token; the server is the
// one that must not trust a planted one.
func ReadTokenFile(path string) (string, error) {
	return readToken(path, filetrust.Rule{Forbidden: filetrust.Provided.Forbidden, AnyOwner: true})
}

// ReadToken reads the token agentg generated in dataDir, for clients,
// whoever owns it (root's CLI reads the token of agentg's user).
func ReadToken(dataDir string) (string, error) {
	return readToken(filepath.Join(dataDir, TokenFile), filetrust.Rule{Forbidden: filetrust.Generated.Forbidden, AnyOwner: true})
}

func readToken(path string, rule filetrust.Rule) (string, error) {
	b, err := filetrust.ReadSecret("admin token", path, rule)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(b), "\n")
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

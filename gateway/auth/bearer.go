package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"

	"github.com/agentg/agentg/rules"
)

// TokenPrefix starts every token NewToken makes, so that one found in a
// log or a repository is recognisable (and scanners can look for it).
const TokenPrefix = "agt_"

// NewToken returns a new gateway token (TokenPrefix and 32 random bytes,
// base64url) and the hex SHA-256 digest the policy stores for it.
func NewToken() (token, digest string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("gateway token: %w", err)
	}
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return token, Digest(token), nil
}

// Digest is the hex SHA-256 of a token, as the policy's sha256 key holds
// it.
func Digest(token string) string {
	d := sha256.Sum256([]byte(token))
	return hex.EncodeToString(d[:])
}

// checkToken finds the token among the policy's digests. The digest of a
// 256-bit random token cannot be reversed or guessed, so a plain SHA-256
// is the right hash: a password hash would cost every request
// milliseconds and protect nothing more.
func checkToken(g *rules.Gateway, tok string) (Identity, *Failure) {
	if !g.HasTokens() {
		return Identity{}, fail("bearer", "unknown-token", "the policy's gateway section defines no bearer tokens")
	}
	t := g.Token(sha256.Sum256([]byte(tok)))
	if t == nil {
		return Identity{}, fail("bearer", "unknown-token", "the token is not one the policy's gateway tokens hold")
	}
	return Identity{Agent: t.Agent, Method: "bearer", Credential: t.ID}, nil
}

package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// FuzzBearerHeader: the Authorization reader never panics, and what it
// accepts is one RFC 6750 b64token.
func FuzzBearerHeader(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer a.b.c", "Bearer  x==", "Basic x", "Bearer", "Bearer =", "Bearer a=b", "BEARER ~+/-._"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, fl := bearerToken([]string{h})
		if fl != nil {
			if fl.Check != "malformed" || tok != "" {
				t.Fatalf("%q: %+v %q", h, fl, tok)
			}
			return
		}
		if !isB64Token(tok) || !strings.HasSuffix(h, tok) || strings.ContainsAny(tok, " \t\r\n") {
			t.Fatalf("%q accepted as %q", h, tok)
		}
	})
}

// FuzzJWT: whatever a client sends as a JWT, the checks never panic and
// never accept it: only the provider's private key can make a token
// that verifies, and the fuzzer does not have it.
func FuzzJWT(f *testing.F) {
	provider, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	attacker, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sig, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: attacker}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	forged, _ := jwt.Signed(sig).Claims(jwt.Claims{Issuer: "https://idp.test", Audience: jwt.Audience{"gw"}, Subject: "coder",
		Expiry: jwt.NewNumericDate(time.Now().Add(time.Hour))}).Serialize()
	for _, s := range []string{forged, "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.e30.AAAA"} {
		f.Add(s)
	}
	p := &livePolicy{}
	p.e.Store(loadPolicy(f, f.TempDir(), "gateway:\n  jwt:\n    issuer: https://idp.test\n    audience: gw\n    jwks_url: https://idp.test/keys\n    algorithms: [ES256, RS256, EdDSA]\n"))
	a, err := New(Options{Policy: p})
	if err != nil {
		f.Fatal(err)
	}
	cfg := p.Engine().Gateway().JWT
	ks := a.keysFor(cfg)
	ks.cur.Store(&fetched{keys: []jose.JSONWebKey{{Key: &provider.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}, at: time.Now()})
	ks.lastTry = time.Now() // no fetch: Options.Client is nil anyway
	f.Fuzz(func(t *testing.T, tok string) {
		id, fl := a.checkJWT(context.Background(), cfg, tok)
		if fl == nil {
			t.Fatalf("%q accepted as %+v", tok, id)
		}
	})
}

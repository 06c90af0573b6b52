package oauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// The grants are golang.org/x/oauth2's: the authorization code with PKCE
// (Config.Exchange), refresh (Config.TokenSource), client credentials
// (clientcredentials.Config). What they cannot add themselves, the
// resource indicator (RFC 8707) on every token request, refresh
// included, and the client assertion of private_key_jwt (RFC 7523),
// paramTransport adds to the token endpoint's form.

// endpoint is one authorization server as a binding uses it.
type endpoint struct {
	issuer   string
	authURL  string
	tokenURL string
	resource string
	cl       client
	secret   string        // the client secret's value, if any
	key      crypto.Signer // private_key_jwt's key, if any
	scopes   []string
}

func (e *endpoint) oauth2Config(redirectURI string) *oauth2.Config {
	style := oauth2.AuthStyleInParams
	secret := ""
	switch e.cl.Auth {
	case AuthBasic:
		style, secret = oauth2.AuthStyleInHeader, e.secret
	case AuthPost:
		secret = e.secret
	}
	return &oauth2.Config{ClientID: e.cl.ID, ClientSecret: secret, RedirectURL: redirectURI, Scopes: e.scopes,
		Endpoint: oauth2.Endpoint{AuthURL: e.authURL, TokenURL: e.tokenURL, AuthStyle: style}}
}

func (e *endpoint) clientCredentials() *clientcredentials.Config {
	c := e.oauth2Config("")
	return &clientcredentials.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, TokenURL: e.tokenURL,
		Scopes: e.scopes, AuthStyle: c.Endpoint.AuthStyle}
}

// context carries the HTTP client x/oauth2 must use: base, with the
// token endpoint's form completed.
func (e *endpoint) context(ctx context.Context, base *http.Client) context.Context {
	rt := base.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	hc := *base
	hc.Transport = &paramTransport{base: rt, e: e}
	return context.WithValue(ctx, oauth2.HTTPClient, &hc)
}

// paramTransport adds resource= (and, for private_key_jwt, a fresh
// client assertion) to every form POST to the token endpoint.
type paramTransport struct {
	base http.RoundTripper
	e    *endpoint
}

func (t *paramTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodPost || r.URL.String() != t.e.tokenURL || r.Body == nil {
		return t.base.RoundTrip(r)
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	r.Body.Close()
	if err != nil {
		return nil, err
	}
	form, err := url.ParseQuery(string(b))
	if err != nil {
		return nil, fmt.Errorf("token request form: %w", err)
	}
	if t.e.resource != "" && form.Get("resource") == "" {
		form.Set("resource", t.e.resource)
	}
	if t.e.cl.Auth == AuthJWT {
		a, err := t.e.assertion()
		if err != nil {
			return nil, err
		}
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", a)
		form.Set("client_id", t.e.cl.ID)
	}
	body := form.Encode()
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(strings.NewReader(body))
	r2.ContentLength = int64(len(body))
	r2.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
	return t.base.RoundTrip(r2)
}

// assertion is a client assertion JWT (RFC 7523 §2.2): the client is
// issuer and subject, the audience the authorization server's issuer,
// valid five minutes, with a fresh jti.
func (e *endpoint) assertion() (string, error) {
	if e.key == nil {
		return "", errors.New("private_key_jwt without a private key")
	}
	alg, err := signingAlg(e.key)
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: e.key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("client assertion signer: %w", err)
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", err
	}
	now := time.Now()
	claims, err := json.Marshal(map[string]any{"iss": e.cl.ID, "sub": e.cl.ID, "aud": e.issuer,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": base64.RawURLEncoding.EncodeToString(jti[:])})
	if err != nil {
		return "", err
	}
	obj, err := signer.Sign(claims)
	if err != nil {
		return "", fmt.Errorf("sign client assertion: %w", err)
	}
	return obj.CompactSerialize()
}

func signingAlg(k crypto.Signer) (jose.SignatureAlgorithm, error) {
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			return jose.ES256, nil
		case elliptic.P384():
			return jose.ES384, nil
		case elliptic.P521():
			return jose.ES512, nil
		}
	case *rsa.PrivateKey:
		return jose.RS256, nil
	case ed25519.PrivateKey:
		return jose.EdDSA, nil
	}
	return "", errors.New("private key of an unsupported type (want EC P-256/384/521, RSA or Ed25519)")
}

// parsePrivateKey reads a private key (PKCS#8, SEC 1 or PKCS#1): PEM,
// or, since a secret holds no line break, the base64 of its DER on one
// line, with or without the PEM's BEGIN and END lines. Its errors never
// quote the key.
func parsePrivateKey(text string) (crypto.Signer, error) {
	var der []byte
	if blk, _ := pem.Decode([]byte(strings.TrimSpace(text))); blk != nil {
		der = blk.Bytes
	} else {
		one := text
		if i := strings.Index(one, "-----BEGIN "); i >= 0 {
			if j := strings.Index(one[i+11:], "-----"); j >= 0 {
				one = one[i+11+j+5:]
			}
		}
		if i := strings.Index(one, "-----END "); i >= 0 {
			one = one[:i]
		}
		one = strings.Join(strings.Fields(one), "")
		b, err := base64.StdEncoding.DecodeString(one)
		if err != nil {
			return nil, errors.New("the private key is neither PEM nor base64 DER")
		}
		der = b
	}
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	return nil, errors.New("the private key holds no PKCS#8, SEC 1 or PKCS#1 key")
}

// tokenError says what the token endpoint answered, from its error code
// and description only: x/oauth2's own text quotes the whole body.
func tokenError(tokenURL string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		return fmt.Errorf("token endpoint %s: HTTP %d %s %s", tokenURL, status, printable(re.ErrorCode), printable(re.ErrorDescription))
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("token endpoint %s: %v", tokenURL, ue.Err)
	}
	return fmt.Errorf("token endpoint %s: %s", tokenURL, printable(err.Error()))
}

// grantedScopes is what the token response says was granted, else what
// was asked.
func grantedScopes(tok *oauth2.Token, asked []string) []string {
	if s, ok := tok.Extra("scope").(string); ok && s != "" {
		return strings.Fields(s)
	}
	return asked
}

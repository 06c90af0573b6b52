package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/agentg/agentg/rules"
)

// The identity provider's keys: fetched on first use, read without a
// lock after, fetched again when a token names a kid the set does not
// hold (at most once per the policy's refetch interval) or when the set
// is maxKeyAge old (so a key the provider withdrew stops being trusted).

const (
	maxKeyAge    = time.Hour
	fetchTimeout = 10 * time.Second
	maxJWKSBytes = 1 << 20
)

// keySet is the JWKS of one jwt sub-section.
type keySet struct {
	cfg *rules.GatewayJWT
	cur atomic.Pointer[fetched]

	mu        sync.Mutex // one fetch at a time; askers wait for it
	lastTry   time.Time  // the last fetch attempt, under mu
	lastError error      // its error, under mu
}

// fetched is one JWKS as fetched.
type fetched struct {
	keys []jose.JSONWebKey // public signing keys only
	at   time.Time
}

// keysFor returns the key set for cfg, making a new one when the policy's
// jwt sub-section changed (a reload); a set for the same URL keeps the
// keys it has.
func (a *Authenticator) keysFor(cfg *rules.GatewayJWT) *keySet {
	for {
		ks := a.keys.Load()
		if ks != nil && ks.cfg == cfg {
			return ks
		}
		n := &keySet{cfg: cfg}
		if ks != nil && ks.cfg.JWKSURL == cfg.JWKSURL {
			if f := ks.cur.Load(); f != nil {
				n.cur.Store(f)
			}
		}
		if a.keys.CompareAndSwap(ks, n) {
			return n
		}
	}
}

// key finds the key for a token's kid and alg. A fresh set that holds it
// answers without a lock. A stale set that holds it answers too while
// one request refreshes it; a kid the set does not hold waits for the one
// fetch (rate-limited by the policy's refetch interval).
func (a *Authenticator) key(ctx context.Context, ks *keySet, kid, alg string) (*jose.JSONWebKey, *Failure) {
	if f := ks.cur.Load(); f != nil {
		if k := pick(f.keys, kid, alg); k != nil {
			if a.o.Now().Sub(f.at) < maxKeyAge || !ks.mu.TryLock() {
				return k, nil
			}
			defer ks.mu.Unlock()
			return a.refresh(ctx, ks, kid, alg)
		}
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return a.refresh(ctx, ks, kid, alg)
}

// refresh fetches the set unless it was tried within the refetch
// interval, and picks the key. It runs under ks.mu.
func (a *Authenticator) refresh(ctx context.Context, ks *keySet, kid, alg string) (*jose.JSONWebKey, *Failure) {
	now := a.o.Now()
	f := ks.cur.Load()
	var held *jose.JSONWebKey
	if f != nil {
		held = pick(f.keys, kid, alg)
		if held != nil && now.Sub(f.at) < maxKeyAge {
			return held, nil // another request fetched it while this one waited
		}
	}
	if !ks.lastTry.IsZero() && now.Sub(ks.lastTry) < ks.cfg.Refetch {
		switch {
		case held != nil:
			return held, nil // stale, but no fetch is due yet
		case f == nil:
			return nil, fail("jwt", "jwks", "the identity provider's keys could not be fetched: "+ks.lastError.Error())
		}
		return nil, fail("jwt", "kid", fmt.Sprintf("no key %s in the identity provider's JWKS (fetched again at most every %s)", kidLabel(kid), ks.cfg.Refetch))
	}
	ks.lastTry = now
	keys, err := a.fetchJWKS(ctx, ks.cfg.JWKSURL)
	ks.lastError = err
	if err != nil {
		if held != nil {
			return held, nil // keep the keys held while the provider is down
		}
		return nil, fail("jwt", "jwks", "the identity provider's keys could not be fetched: "+err.Error())
	}
	ks.cur.Store(&fetched{keys: keys, at: now})
	if k := pick(keys, kid, alg); k != nil {
		return k, nil
	}
	return nil, fail("jwt", "kid", "no key "+kidLabel(kid)+" in the identity provider's JWKS")
}

func kidLabel(kid string) string {
	if kid == "" {
		return "for a token without kid"
	}
	if len(kid) > 128 {
		kid = kid[:128]
	}
	return fmt.Sprintf("%q", kid)
}

// pick returns the key named kid whose algorithm (when the key says one)
// is alg; a token without kid gets the one key there is, if only one.
func pick(keys []jose.JSONWebKey, kid, alg string) *jose.JSONWebKey {
	if kid == "" {
		if len(keys) == 1 && (keys[0].Algorithm == "" || keys[0].Algorithm == alg) {
			return &keys[0]
		}
		return nil
	}
	for i := range keys {
		if keys[i].KeyID == kid && (keys[i].Algorithm == "" || keys[i].Algorithm == alg) {
			return &keys[i]
		}
	}
	return nil
}

// fetchJWKS GETs the key set through the caller's client and keeps the
// public signing keys in it.
func (a *Authenticator) fetchJWKS(ctx context.Context, url string) ([]jose.JSONWebKey, error) {
	if a.o.Client == nil {
		return nil, errors.New("no HTTP client to fetch " + url + " with (Options.Client)")
	}
	// The fetch serves every request waiting for it, not only this one:
	// it is not cut short when this request's client goes away.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := a.o.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil ||
		mt != "application/json" && mt != "application/jwk-set+json" {
		return nil, fmt.Errorf("GET %s: content type %q, not JSON", url, resp.Header.Get("Content-Type"))
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if len(b) > maxJWKSBytes {
		return nil, fmt.Errorf("GET %s: a key set larger than %d bytes", url, maxJWKSBytes)
	}
	return parseJWKS(b)
}

// parseJWKS reads a JWK Set and keeps its public signing keys: a key for
// encryption ("use": "enc") or a private or symmetric key is dropped (IsPublic),
// so no HMAC secret can ever verify a token.
func parseJWKS(b []byte) ([]jose.JSONWebKey, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" || !k.Valid() || !k.IsPublic() {
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS: no public signing key")
	}
	return keys, nil
}

package auth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/agentg/agentg/rules"
)

// checkJWT verifies a JWT from the identity provider with go-jose (the
// library under go.step.sm/crypto/jose): the algorithm in the policy's
// allow-list before anything else is read, the signature by the JWKS key
// its kid names, then issuer, audience and times with the policy's
// leeway, and last the claim that names the agent.
func (a *Authenticator) checkJWT(ctx context.Context, cfg *rules.GatewayJWT, raw string) (Identity, *Failure) {
	now := a.o.Now()
	d := sha256.Sum256([]byte(raw))
	key := string(d[:])
	if e, ok := a.tokens.Get(key); ok && e.cfg == cfg && now.Before(e.until) {
		return e.id, nil
	}
	v, f := a.verifyJWT(ctx, cfg, raw)
	if f == nil {
		// Remembered until it expires, at most jwtCacheTTL: a key the
		// provider withdraws stops the token within that.
		until := now.Add(jwtCacheTTL)
		if v.exp.Before(until) {
			until = v.exp
		}
		a.tokens.Put(key, tokenEntry{cfg: cfg, id: v.Identity, until: until})
	}
	return v.Identity, f
}

// A verified JWT is remembered by its digest, so that an agent's every
// request costs a SHA-256, not a signature check and two JSON decodes.
const (
	jwtCacheSize = 4096
	jwtCacheTTL  = time.Minute
)

type tokenEntry struct {
	cfg   *rules.GatewayJWT
	id    Identity
	until time.Time
}

// verified is a JWT that passed: who, and until when.
type verified struct {
	Identity
	exp time.Time
}

// verifyJWT does the checks.
func (a *Authenticator) verifyJWT(ctx context.Context, cfg *rules.GatewayJWT, raw string) (verified, *Failure) {
	algs := make([]jose.SignatureAlgorithm, len(cfg.Algorithms))
	for i, s := range cfg.Algorithms {
		algs[i] = jose.SignatureAlgorithm(s)
	}
	tok, err := jwt.ParseSigned(raw, algs)
	if err != nil {
		if strings.Contains(err.Error(), "unexpected signature algorithm") {
			return verified{}, fail("jwt", "algorithm", "the token's algorithm is not one the policy allows ("+strings.Join(cfg.Algorithms, ", ")+")")
		}
		return verified{}, fail("jwt", "malformed", "not a signed JWT")
	}
	if len(tok.Headers) != 1 {
		return verified{}, fail("jwt", "malformed", "a JWT with more than one signature")
	}
	h := tok.Headers[0]
	key, f := a.key(ctx, a.keysFor(cfg), h.KeyID, h.Algorithm)
	if f != nil {
		return verified{}, f
	}
	var std jwt.Claims
	var all map[string]any
	if err := tok.Claims(key.Key, &std, &all); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		if errors.As(err, &se) || errors.As(err, &te) {
			return verified{}, fail("jwt", "malformed", "the token's claims cannot be read")
		}
		return verified{}, fail("jwt", "signature", "the signature does not verify with key "+kidLabel(h.KeyID))
	}
	if std.Expiry == nil {
		return verified{}, fail("jwt", "expired", "the token has no exp: a token that never expires is not accepted")
	}
	now := a.o.Now()
	err = std.ValidateWithLeeway(jwt.Expected{Issuer: cfg.Issuer, AnyAudience: cfg.Audience, Time: now}, cfg.Leeway)
	switch {
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return verified{}, fail("jwt", "issuer", fmt.Sprintf("issuer %q is not %q", clip(std.Issuer), cfg.Issuer))
	case errors.Is(err, jwt.ErrInvalidAudience):
		return verified{}, fail("jwt", "audience", fmt.Sprintf("audience %q names none of %q", clipAll(std.Audience), cfg.Audience))
	case errors.Is(err, jwt.ErrExpired):
		return verified{}, fail("jwt", "expired", fmt.Sprintf("the token expired at %s (leeway %s)", std.Expiry.Time().UTC().Format("2006-01-02T15:04:05Z"), cfg.Leeway))
	case errors.Is(err, jwt.ErrNotValidYet):
		return verified{}, fail("jwt", "not-yet-valid", fmt.Sprintf("the token is not valid before %s (leeway %s)", std.NotBefore.Time().UTC().Format("2006-01-02T15:04:05Z"), cfg.Leeway))
	case errors.Is(err, jwt.ErrIssuedInTheFuture):
		return verified{}, fail("jwt", "issued-in-future", fmt.Sprintf("the token was issued in the future (%s; leeway %s)", std.IssuedAt.Time().UTC().Format("2006-01-02T15:04:05Z"), cfg.Leeway))
	case err != nil:
		return verified{}, fail("jwt", "malformed", "the token's claims do not validate")
	}
	if missing := missingScopes(cfg.Scopes, all); missing != "" {
		return verified{}, fail("jwt", "scope", "the token does not grant scope "+missing)
	}
	v, ok := all[cfg.Claim].(string)
	if !ok {
		return verified{}, fail("jwt", "claim", fmt.Sprintf("the token has no string claim %q", cfg.Claim))
	}
	agent, ok := cfg.Agent(v)
	if !ok {
		if cfg.Mapped() {
			return verified{}, fail("jwt", "claim", fmt.Sprintf("claim %s %q is not in the policy's agents table", cfg.Claim, clip(v)))
		}
		return verified{}, fail("jwt", "claim", fmt.Sprintf("claim %s %q is not a valid agent name", cfg.Claim, clip(v)))
	}
	return verified{Identity{Agent: agent, Method: "jwt", Credential: cfg.Issuer + " " + cfg.Claim + "=" + clip(v)}, std.Expiry.Time()}, nil
}

// clip bounds what a token says before it goes into a reason.
func clip(s string) string {
	if len(s) > 128 {
		return s[:128] + "..."
	}
	return s
}

func clipAll(a []string) string {
	if len(a) > 4 {
		a = a[:4]
	}
	out := make([]string, len(a))
	for i, s := range a {
		out[i] = clip(s)
	}
	return strings.Join(out, " ")
}

// missingScopes names the first required scope the token does not grant
// ("" when it grants all): its scope claim (RFC 8693, RFC 9068: one
// space-separated string) or scp (a string or a list, as some providers
// write it).
func missingScopes(want []string, claims map[string]any) string {
	if len(want) == 0 {
		return ""
	}
	var have []string
	for _, c := range []string{"scope", "scp"} {
		switch v := claims[c].(type) {
		case string:
			have = append(have, strings.Fields(v)...)
		case []any:
			for _, x := range v {
				if s, ok := x.(string); ok {
					have = append(have, s)
				}
			}
		}
	}
	for _, w := range want {
		found := false
		for _, h := range have {
			if h == w {
				found = true
				break
			}
		}
		if !found {
			return w
		}
	}
	return ""
}

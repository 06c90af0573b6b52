package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

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
	algs := make([]jose.SignatureAlgorithm, len(cfg.Algorithms))
	for i, s := range cfg.Algorithms {
		algs[i] = jose.SignatureAlgorithm(s)
	}
	tok, err := jwt.ParseSigned(raw, algs)
	if err != nil {
		if strings.Contains(err.Error(), "unexpected signature algorithm") {
			return Identity{}, fail("jwt", "algorithm", "the token's algorithm is not one the policy allows ("+strings.Join(cfg.Algorithms, ", ")+")")
		}
		return Identity{}, fail("jwt", "malformed", "not a signed JWT")
	}
	if len(tok.Headers) != 1 {
		return Identity{}, fail("jwt", "malformed", "a JWT with more than one signature")
	}
	h := tok.Headers[0]
	key, f := a.key(ctx, a.keysFor(cfg), h.KeyID, h.Algorithm)
	if f != nil {
		return Identity{}, f
	}
	var std jwt.Claims
	var all map[string]any
	if err := tok.Claims(key.Key, &std, &all); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		if errors.As(err, &se) || errors.As(err, &te) {
			return Identity{}, fail("jwt", "malformed", "the token's claims cannot be read")
		}
		return Identity{}, fail("jwt", "signature", "the signature does not verify with key "+kidLabel(h.KeyID))
	}
	if std.Expiry == nil {
		return Identity{}, fail("jwt", "expired", "the token has no exp: a token that never expires is not accepted")
	}
	now := a.o.Now()
	err = std.ValidateWithLeeway(jwt.Expected{Issuer: cfg.Issuer, AnyAudience: cfg.Audience, Time: now}, cfg.Leeway)
	switch {
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return Identity{}, fail("jwt", "issuer", fmt.Sprintf("issuer %q is not %q", clip(std.Issuer), cfg.Issuer))
	case errors.Is(err, jwt.ErrInvalidAudience):
		return Identity{}, fail("jwt", "audience", fmt.Sprintf("audience %q names none of %q", clipAll(std.Audience), cfg.Audience))
	case errors.Is(err, jwt.ErrExpired):
		return Identity{}, fail("jwt", "expired", fmt.Sprintf("the token expired at %s (leeway %s)", std.Expiry.Time().UTC().Format("2006-01-02T15:04:05Z"), cfg.Leeway))
	case errors.Is(err, jwt.ErrNotValidYet):
		return Identity{}, fail("jwt", "not-yet-valid", fmt.Sprintf("the token is not valid before %s (leeway %s)", std.NotBefore.Time().UTC().Format("2006-01-02T15:04:05Z"), cfg.Leeway))
	case errors.Is(err, jwt.ErrIssuedInTheFuture):
		return Identity{}, fail("jwt", "issued-in-future", fmt.Sprintf("the token was issued in the future (%s; leeway %s)", std.IssuedAt.Time().UTC().Format("2006-01-02T15:04:05Z"), cfg.Leeway))
	case err != nil:
		return Identity{}, fail("jwt", "malformed", "the token's claims do not validate")
	}
	v, ok := all[cfg.Claim].(string)
	if !ok {
		return Identity{}, fail("jwt", "claim", fmt.Sprintf("the token has no string claim %q", cfg.Claim))
	}
	agent, ok := cfg.Agent(v)
	if !ok {
		if cfg.Mapped() {
			return Identity{}, fail("jwt", "claim", fmt.Sprintf("claim %s %q is not in the policy's agents table", cfg.Claim, clip(v)))
		}
		return Identity{}, fail("jwt", "claim", fmt.Sprintf("claim %s %q is not a valid agent name", cfg.Claim, clip(v)))
	}
	return Identity{Agent: agent, Method: "jwt", Credential: cfg.Issuer + " " + cfg.Claim + "=" + clip(v)}, nil
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

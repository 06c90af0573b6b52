package auth

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/internal/lru"
	"github.com/agentg/agentg/rules"
)

// Policy hands out the policy in force; *rules.Live implements it.
type Policy interface {
	Engine() *rules.Engine
}

// Options is what an Authenticator needs. Policy is required; Client is
// required once a policy has a jwt sub-section (Authenticate fails
// closed without it).
type Options struct {
	Policy Policy
	// Client fetches the JWKS: agentg's own checked HTTP client
	// ((*proxy.Server).Client()), so the identity provider is reached
	// under the policy like any other host.
	Client *http.Client
	// Log receives the Middleware's refusal events; nil: none.
	Log *audit.Logger
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// Identity is a proven agent.
type Identity struct {
	Agent string
	// Method is how it was proven: "bearer", "jwt" or "mtls" (with two
	// agreeing credentials, the bearer's or the JWT's).
	Method string
	// Credential names what proved it, never a secret: the token's id,
	// "ISSUER CLAIM=VALUE" for a JWT, the certificate's subject.
	Credential string
	// subject is the JWT itself when one proved the agent: what a
	// token_exchange binding exchanges for the upstream's token. Never
	// printed (String), never sent on (the Middleware drops the header).
	subject string
}

// Subject is the identity provider's token that proved the agent (a
// JWT), for a token_exchange binding to exchange; "" for a gateway token
// or a client certificate, which are the gateway's alone.
func (id Identity) Subject() string { return id.subject }

// String names the identity without its token.
func (id Identity) String() string {
	return id.Agent + " (" + id.Method + ": " + id.Credential + ")"
}

// Failure is a refused request: which method, which check, and why.
type Failure struct {
	// Method is "bearer", "jwt", "mtls", or "" when no credential was
	// presented or the policy accepts none.
	Method string
	// Check names the check that failed: missing, malformed,
	// not-configured, unknown-token, algorithm, kid, jwks, signature,
	// expired, not-yet-valid, issued-in-future, issuer, audience, scope,
	// claim, chain, name, disagree.
	Check string
	// Reason says it for people; it never holds a credential.
	Reason string
}

func (f *Failure) Error() string {
	if f.Method == "" {
		return "gateway auth: " + f.Reason
	}
	return "gateway auth: " + f.Method + ": " + f.Reason
}

// errorCode is the RFC 6750 error attribute of the 401: none when no
// credential was presented (section 3.1), invalid_request for an
// Authorization header that is malformed, invalid_token for the rest (a
// JWT that does not parse included).
func (f *Failure) errorCode() string {
	switch f.Check {
	case "missing", "not-configured":
		return ""
	case "malformed":
		if f.Method != "jwt" { // the header itself, not a token in it
			return "invalid_request"
		}
	case "scope":
		return "insufficient_scope"
	}
	return "invalid_token"
}

// Status is the HTTP status of the refusal: 403 for a valid token that
// lacks a required scope (RFC 6750 insufficient_scope), else 401.
func (f *Failure) Status() int {
	if f.Check == "scope" {
		return http.StatusForbidden
	}
	return http.StatusUnauthorized
}

func fail(method, check, reason string) *Failure {
	return &Failure{Method: method, Check: check, Reason: reason}
}

// Authenticator checks the credentials of requests at the gateway door.
// It is safe for concurrent use.
type Authenticator struct {
	o      Options
	keys   atomic.Pointer[keySet] // for the jwt sub-section in force
	certs  *lru.Cache[certEntry]  // verified client certificates by digest
	tokens *lru.Cache[tokenEntry] // verified JWTs by digest
}

// New returns an Authenticator for the policy o.Policy holds.
func New(o Options) (*Authenticator, error) {
	if o.Policy == nil {
		return nil, errors.New("gateway auth: Options.Policy is required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Authenticator{o: o, certs: lru.New[certEntry](certCacheSize, nil), tokens: lru.New[tokenEntry](jwtCacheSize, nil)}, nil
}

// Authenticate names the agent behind r, or returns a *Failure. It reads
// the Authorization header (one Bearer credential: a JWT when it has a
// JWT's shape and the policy has jwt, else a token) and r.TLS's client
// certificate when the policy has mtls; both, when both are presented,
// must succeed and name one agent.
func (a *Authenticator) Authenticate(r *http.Request) (Identity, error) {
	g := a.o.Policy.Engine().Gateway()
	if !g.Defined() {
		return Identity{}, fail("", "not-configured", "the policy's gateway section accepts no credential (tokens, jwt or mtls)")
	}
	var bearer, cert *Identity
	vals := r.Header.Values("Authorization")
	if len(vals) > 0 {
		tok, f := bearerToken(vals)
		if f != nil {
			return Identity{}, f
		}
		var id Identity
		if g.JWT != nil && looksLikeJWT(tok) {
			id, f = a.checkJWT(r.Context(), g.JWT, tok)
			id.subject = tok
		} else {
			id, f = checkToken(g, tok)
		}
		if f != nil {
			return Identity{}, f
		}
		bearer = &id
	}
	if g.MTLS != nil && r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		id, f := a.checkCert(g.MTLS, r.TLS.PeerCertificates)
		if f != nil {
			return Identity{}, f
		}
		cert = &id
	}
	switch {
	case bearer != nil && cert != nil:
		if bearer.Agent != cert.Agent {
			return Identity{}, fail(bearer.Method, "disagree", "the "+bearer.Method+" credential names agent "+bearer.Agent+
				" and the client certificate names agent "+cert.Agent)
		}
		return *bearer, nil
	case bearer != nil:
		return *bearer, nil
	case cert != nil:
		return *cert, nil
	}
	return Identity{}, fail("", "missing", "no credential: send Authorization: Bearer TOKEN"+certHint(g))
}

func certHint(g *rules.Gateway) string {
	if g.MTLS != nil {
		return " or a client certificate"
	}
	return ""
}

// bearerToken reads the one Bearer credential of the Authorization
// header: the scheme without regard to case, then a b64token (RFC 6750
// section 2.1). Two headers, another scheme or a bad token is malformed.
func bearerToken(vals []string) (string, *Failure) {
	if len(vals) != 1 {
		return "", fail("bearer", "malformed", "more than one Authorization header")
	}
	scheme, tok, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", fail("bearer", "malformed", "the Authorization header is not a Bearer credential")
	}
	tok = strings.TrimLeft(tok, " ")
	if !isB64Token(tok) {
		return "", fail("bearer", "malformed", "the Bearer credential is not a token (RFC 6750 b64token)")
	}
	return tok, nil
}

func isB64Token(s string) bool {
	if s == "" || len(s) > maxTokenLen {
		return false
	}
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~+/", c) >= 0) {
			break
		}
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// maxTokenLen bounds what is hashed or parsed: identity providers' JWTs
// are a few KiB; net/http already bounds the head.
const maxTokenLen = 16 << 10

// looksLikeJWT: a compact JWS is three base64url parts.
func looksLikeJWT(s string) bool { return strings.Count(s, ".") == 2 }

type ctxKey struct{}

// WithIdentity returns ctx carrying id.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the Identity the Middleware proved for a request.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(Identity)
	return id, ok
}

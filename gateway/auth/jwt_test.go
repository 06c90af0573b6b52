package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
)

// The identity provider in these tests is a real one on loopback,
// github.com/oauth2-proxy/mockoidc: tokens come out of its authorization
// code flow, signed with its key, and its JWKS endpoint serves the public
// half. The test never signs a token the provider did not issue, except
// the forgeries (alg none, HMAC with the public key) that must fail.

// idp is a mockoidc server whose fields the test changes only under mu,
// which a middleware holds around every request it serves.
type idp struct {
	m           *mockoidc.MockOIDC
	mu          sync.Mutex
	jwksFetches atomic.Int32
}

func startIDP(t testing.TB, key *rsa.PrivateKey) *idp {
	t.Helper()
	m, err := mockoidc.NewServer(key)
	if err != nil {
		t.Fatal(err)
	}
	p := &idp{m: m}
	m.AddMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.mu.Lock()
			defer p.mu.Unlock()
			if r.URL.Path == mockoidc.JWKSEndpoint {
				p.jwksFetches.Add(1)
			}
			next.ServeHTTP(w, r)
		})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	return p
}

func (p *idp) set(fn func(m *mockoidc.MockOIDC)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fn(p.m)
}

// login runs the authorization code flow for user and returns the access
// token and the ID token.
func (p *idp) login(t testing.TB, user *mockoidc.MockUser, scope string) (access, idToken string) {
	t.Helper()
	var clientID, secret string
	p.set(func(m *mockoidc.MockOIDC) {
		clientID, secret = m.ClientID, m.ClientSecret
		if user != nil {
			m.QueueUser(user)
		}
	})
	c := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	q := url.Values{"client_id": {clientID}, "response_type": {"code"}, "redirect_uri": {"http://127.0.0.1/callback"},
		"scope": {scope}, "state": {"st"}, "nonce": {"nn"}}
	resp, err := c.Get(p.m.AuthorizationEndpoint() + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("authorize: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, err = c.PostForm(p.m.TokenEndpoint(), url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {"http://127.0.0.1/callback"}, "client_id": {clientID}, "client_secret": {secret}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr struct {
		Access string `json:"access_token"`
		ID     string `json:"id_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || tr.Access == "" || tr.ID == "" {
		t.Fatalf("token endpoint: %d %v", resp.StatusCode, err)
	}
	return tr.Access, tr.ID
}

// clock is the Authenticator's clock: real time plus an offset the test
// moves, to step past the JWKS refetch interval without waiting for it.
type clock struct{ off atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) advance(d time.Duration) { c.off.Add(int64(d)) }

func jwtPolicy(p *idp, extra string) string {
	return fmt.Sprintf(`gateway:
  jwt:
    issuer: %s
    audience: [%s, other-audience]
    jwks_url: %s
    agents: {"1234567890": coder, "42": builder}
%s`, p.m.Issuer(), p.m.ClientID, p.m.JWKSEndpoint(), extra)
}

func plainClient() *http.Client {
	return &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 10 * time.Second}
}

// forge rewrites a token's header and signature: the payload stays the
// provider's.
func forge(t *testing.T, tok string, header map[string]any, sign func(signingInput string) []byte) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	h, _ := json.Marshal(header)
	in := base64.RawURLEncoding.EncodeToString(h) + "." + parts[1]
	return in + "." + base64.RawURLEncoding.EncodeToString(sign(in))
}

func kidOf(t *testing.T, tok string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	json.Unmarshal(b, &h)
	return h.Kid
}

func TestJWT(t *testing.T) {
	p := startIDP(t, nil)
	other := startIDP(t, nil) // the same default key, another issuer
	pol := &livePolicy{}
	pol.e.Store(loadPolicy(t, t.TempDir(), jwtPolicy(p, "")))
	d := startDoor(t, Options{Policy: pol, Client: plainClient()}, nil)

	good, goodID := p.login(t, nil, "openid")
	builder, _ := p.login(t, &mockoidc.MockUser{Subject: "42"}, "openid")
	stranger, _ := p.login(t, &mockoidc.MockUser{Subject: "777"}, "openid")
	p.set(func(m *mockoidc.MockOIDC) { m.FastForward(-20 * time.Minute) }) // AccessTTL is 10m
	expired, _ := p.login(t, nil, "openid")
	p.set(func(m *mockoidc.MockOIDC) { m.FastForward(40 * time.Minute) })
	notYet, _ := p.login(t, nil, "openid")
	p.set(func(m *mockoidc.MockOIDC) { m.FastForward(-20 * time.Minute) })
	wrongIss, _ := other.login(t, nil, "openid")
	var aud string
	p.set(func(m *mockoidc.MockOIDC) { aud, m.ClientID = m.ClientID, "someone-else" })
	wrongAud, _ := p.login(t, nil, "openid")
	p.set(func(m *mockoidc.MockOIDC) { m.ClientID = aud })

	kid := kidOf(t, good)
	none := forge(t, good, map[string]any{"alg": "none", "typ": "JWT", "kid": kid}, func(string) []byte { return nil })
	pubDER, _ := x509.MarshalPKIXPublicKey(p.m.Keypair.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hs := forge(t, good, map[string]any{"alg": "HS256", "typ": "JWT", "kid": kid}, func(in string) []byte {
		m := hmac.New(sha256.New, pubPEM)
		m.Write([]byte(in))
		return m.Sum(nil)
	})
	badSig := good[:len(good)-4] + strings.Map(func(r rune) rune {
		if r == 'A' {
			return 'B'
		}
		return 'A'
	}, good[len(good)-4:])

	tests := []struct {
		name, token, agent, check string
	}{
		{"good access token", good, "coder", ""},
		{"good id token", goodID, "coder", ""},
		{"another user", builder, "builder", ""},
		{"unmapped subject", stranger, "", "claim"},
		{"expired", expired, "", "expired"},
		{"not yet valid", notYet, "", "not-yet-valid"},
		{"wrong issuer", wrongIss, "", "issuer"},
		{"wrong audience", wrongAud, "", "audience"},
		{"alg none", none, "", "algorithm"},
		{"HS256 with the public key", hs, "", "algorithm"},
		{"bad signature", badSig, "", "signature"},
		{"not a JWT", "a.b.c", "", "malformed"},
	}
	refused := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(d.seen())
			got := d.call(t, nil, "Bearer "+tt.token)
			if tt.agent != "" {
				s := d.seen()
				if got.status != http.StatusOK || len(s) != before+1 || s[len(s)-1].Agent != tt.agent || s[len(s)-1].Method != "jwt" {
					t.Fatalf("got %d %q, handler saw %+v; want agent %s", got.status, got.body, s, tt.agent)
				}
				return
			}
			refused++
			if got.status != http.StatusUnauthorized || !strings.Contains(got.challenge, `error="invalid_token"`) {
				t.Fatalf("got %d %q, want 401 invalid_token", got.status, got.challenge)
			}
			if g := d.call(t, nil, "Bearer "+good); g.status != http.StatusOK {
				t.Fatalf("the good token after it got %d", g.status)
			}
			if n := len(d.seen()) - before; n != 1 {
				t.Fatalf("handler reached %d times, want once (the good token)", n)
			}
			evs := d.refusals(t)
			if len(evs) != refused {
				t.Fatalf("%d refusal events, want %d", len(evs), refused)
			}
			if !strings.Contains(got.challenge, `error_description="jwt `+tt.check+`"`) {
				t.Errorf("challenge %q, want check %s; event reason %q", got.challenge, tt.check, evs[len(evs)-1]["reason"])
			}
		})
	}
	if n := p.jwksFetches.Load(); n != 1 {
		t.Errorf("JWKS fetched %d times, want once", n)
	}
	// A verified token is remembered, but only under the policy that
	// verified it: a reload to another audience refuses it at once.
	pol.e.Store(loadPolicy(t, t.TempDir(), strings.Replace(jwtPolicy(p, ""), p.m.ClientID+", ", "", 1)))
	if got := d.call(t, nil, "Bearer "+good); got.status != http.StatusUnauthorized || !strings.Contains(got.challenge, "jwt audience") {
		t.Errorf("the remembered token after a reload to another audience: %d %q", got.status, got.challenge)
	}
	secrets := []string{good, goodID, builder, stranger, expired, notYet, wrongIss, wrongAud, hs, badSig}
	for _, s := range secrets[:] {
		secrets = append(secrets, s[strings.LastIndexByte(s, '.')+1:]) // the signatures alone
	}
	noSecrets(t, d.log.String(), secrets...)
}

// The claim that names the agent is configurable, and without a table
// its value is the name.
func TestJWTClaim(t *testing.T) {
	p := startIDP(t, nil)
	pol := &livePolicy{}
	pol.e.Store(loadPolicy(t, t.TempDir(), fmt.Sprintf(`gateway:
  jwt:
    issuer: %s
    audience: %s
    jwks_url: %s
    claim: preferred_username
`, p.m.Issuer(), p.m.ClientID, p.m.JWKSEndpoint())))
	d := startDoor(t, Options{Policy: pol, Client: plainClient()}, nil)
	access, id := p.login(t, &mockoidc.MockUser{Subject: "s-1", PreferredUsername: "reviewer"}, "openid profile")
	if got := d.call(t, nil, "Bearer "+id); got.status != http.StatusOK || got.body != "reached reviewer" {
		t.Fatalf("ID token with preferred_username: %d %q", got.status, got.body)
	}
	// The access token carries no preferred_username: refused.
	if got := d.call(t, nil, "Bearer "+access); got.status != http.StatusUnauthorized || !strings.Contains(got.challenge, "jwt claim") {
		t.Fatalf("access token without the claim: %d %q", got.status, got.challenge)
	}
}

// Keys rotate: a token with a kid the set does not hold refetches the
// JWKS, at most once per refetch interval; a key the provider withdrew
// stops verifying; a kid the provider never published is refused.
func TestJWTKeyRotation(t *testing.T) {
	p := startIDP(t, nil)
	var clk clock
	pol := &livePolicy{}
	pol.e.Store(loadPolicy(t, t.TempDir(), jwtPolicy(p, "    refetch: 30s\n")))
	d := startDoor(t, Options{Policy: pol, Client: plainClient(), Now: clk.now}, nil)
	keyB, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyC, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	kpB, _ := mockoidc.NewKeypair(keyB)
	kpC, _ := mockoidc.NewKeypair(keyC)

	status := func(tok string) int { return d.call(t, nil, "Bearer "+tok).status }
	tokA, _ := p.login(t, nil, "openid")
	if s := status(tokA); s != http.StatusOK || p.jwksFetches.Load() != 1 {
		t.Fatalf("key A: %d, %d fetches", s, p.jwksFetches.Load())
	}
	p.set(func(m *mockoidc.MockOIDC) { m.Keypair = kpB })
	tokB, _ := p.login(t, nil, "openid")
	if kidOf(t, tokB) == kidOf(t, tokA) {
		t.Fatal("the provider's kid did not change")
	}
	// Within the interval the set is not fetched again: refused, and the
	// provider saw no second fetch.
	if s := status(tokB); s != http.StatusUnauthorized || p.jwksFetches.Load() != 1 {
		t.Fatalf("key B within the refetch interval: %d, %d fetches", s, p.jwksFetches.Load())
	}
	clk.advance(31 * time.Second)
	if s := status(tokB); s != http.StatusOK || p.jwksFetches.Load() != 2 {
		t.Fatalf("key B after the interval: %d, %d fetches", s, p.jwksFetches.Load())
	}
	// Key A is withdrawn: the set just fetched does not hold it. (A token
	// verified before is remembered for a minute at most: step past it,
	// still inside the refetch interval.)
	clk.advance(29 * time.Second)
	if s := status(tokA); s != http.StatusUnauthorized || p.jwksFetches.Load() != 2 {
		t.Fatalf("withdrawn key A: %d, %d fetches", s, p.jwksFetches.Load())
	}
	// A kid never published: the provider signs with C but serves B.
	p.set(func(m *mockoidc.MockOIDC) { m.Keypair = kpC })
	tokC, _ := p.login(t, nil, "openid")
	p.set(func(m *mockoidc.MockOIDC) { m.Keypair = kpB })
	clk.advance(31 * time.Second)
	if s := status(tokC); s != http.StatusUnauthorized || p.jwksFetches.Load() != 3 {
		t.Fatalf("unknown kid C: %d, %d fetches (want one refetch)", s, p.jwksFetches.Load())
	}
	for range 5 {
		if s := status(tokC); s != http.StatusUnauthorized {
			t.Fatalf("unknown kid C again: %d", s)
		}
	}
	if n := p.jwksFetches.Load(); n != 3 {
		t.Fatalf("%d fetches after more unknown kids within the interval, want 3", n)
	}
	if s := status(tokB); s != http.StatusOK {
		t.Fatalf("key B at the end: %d", s)
	}
	// An hour on, a set that holds the kid is fetched again anyway (a
	// withdrawn key must stop verifying), once.
	clk.advance(61 * time.Minute)
	p.set(func(m *mockoidc.MockOIDC) { m.FastForward(time.Duration(clk.off.Load())) })
	tokB2, _ := p.login(t, nil, "openid")
	for range 3 {
		if s := status(tokB2); s != http.StatusOK {
			t.Fatalf("key B an hour on: %d", s)
		}
	}
	if n := p.jwksFetches.Load(); n != 4 {
		t.Fatalf("%d fetches after the set aged an hour, want 4", n)
	}
	evs := d.refusals(t)
	kids := 0
	for _, e := range evs {
		if strings.Contains(e["reason"].(string), "no key ") {
			kids++
		}
	}
	if len(evs) != 8 || kids != 8 {
		t.Fatalf("%d refusal events, %d naming the kid; want 8 and 8", len(evs), kids)
	}
	noSecrets(t, d.log.String(), tokA, tokB, tokC, tokB2)
}

// Without the client to fetch keys with, and with a provider that is
// down, every JWT is refused: fail closed.
func TestJWTNoKeys(t *testing.T) {
	p := startIDP(t, nil)
	tok, _ := p.login(t, nil, "openid")
	pol := &livePolicy{}
	pol.e.Store(loadPolicy(t, t.TempDir(), jwtPolicy(p, "")))
	d := startDoor(t, Options{Policy: pol}, nil)
	if got := d.call(t, nil, "Bearer "+tok); got.status != http.StatusUnauthorized || !strings.Contains(got.challenge, "jwt jwks") {
		t.Fatalf("no client: %d %q", got.status, got.challenge)
	}
	p.m.Shutdown()
	d2 := startDoor(t, Options{Policy: pol, Client: plainClient()}, nil)
	if got := d2.call(t, nil, "Bearer "+tok); got.status != http.StatusUnauthorized || !strings.Contains(got.challenge, "jwt jwks") {
		t.Fatalf("provider down: %d %q", got.status, got.challenge)
	}
	if len(d.seen())+len(d2.seen()) != 0 {
		t.Fatal("reached")
	}
}

// scopedUser is a provider user whose ID token carries scope claims, as
// an identity provider issuing tokens for MCP does.
type scopedUser struct {
	mockoidc.MockUser
	scope string   // the scope claim, "" none
	scp   []string // the scp claim, nil none
}

func (u *scopedUser) Claims(scope []string, base *mockoidc.IDTokenClaims) (gojwt.Claims, error) {
	return &struct {
		*mockoidc.IDTokenClaims
		Scope string   `json:"scope,omitempty"`
		Scp   []string `json:"scp,omitempty"`
	}{base, u.scope, u.scp}, nil
}

// Required scopes: the challenge names them; a valid token without them
// gets 403 insufficient_scope; with them (scope or scp) it is accepted.
func TestJWTScopes(t *testing.T) {
	p := startIDP(t, nil)
	pol := &livePolicy{}
	pol.e.Store(loadPolicy(t, t.TempDir(), jwtPolicy(p, "    scopes: [mcp:tools]\n")))
	d := startDoor(t, Options{Policy: pol, Client: plainClient()}, nil)
	idOf := func(u mockoidc.User) string {
		p.set(func(m *mockoidc.MockOIDC) { m.QueueUser(u) })
		_, id := p.login(t, nil, "openid")
		return id
	}
	none := idOf(&scopedUser{MockUser: mockoidc.MockUser{Subject: "1234567890"}})
	other := idOf(&scopedUser{MockUser: mockoidc.MockUser{Subject: "1234567890"}, scope: "openid mcp:read"})
	withScope := idOf(&scopedUser{MockUser: mockoidc.MockUser{Subject: "1234567890"}, scope: "openid mcp:tools"})
	withScp := idOf(&scopedUser{MockUser: mockoidc.MockUser{Subject: "1234567890"}, scp: []string{"mcp:tools"}})

	if got := d.call(t, nil); got.status != http.StatusUnauthorized || !strings.Contains(got.challenge, `scope="mcp:tools"`) {
		t.Errorf("no credential: %d %q", got.status, got.challenge)
	}
	for _, tok := range []string{none, other} {
		got := d.call(t, nil, "Bearer "+tok)
		if got.status != http.StatusForbidden || !strings.Contains(got.challenge, `error="insufficient_scope"`) || !strings.Contains(got.challenge, `scope="mcp:tools"`) {
			t.Errorf("without the scope: %d %q", got.status, got.challenge)
		}
	}
	for _, tok := range []string{withScope, withScp} {
		if got := d.call(t, nil, "Bearer "+tok); got.status != http.StatusOK || got.body != "reached coder" {
			t.Errorf("with the scope: %d %q", got.status, got.body)
		}
	}
	evs := d.refusals(t)
	if len(evs) != 3 || evs[1]["status"] != float64(403) || !strings.Contains(evs[1]["reason"].(string), "does not grant scope mcp:tools") {
		t.Errorf("events %v", evs)
	}
	if n := len(d.seen()); n != 2 {
		t.Errorf("reached %d times, want 2", n)
	}
}

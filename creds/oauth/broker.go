package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"
)

// Event is one thing the broker did that the audit log records: a token
// obtained or refreshed, a connect started, completed or failed. It
// never carries a value.
type Event struct {
	Action  string // ActionToken, ActionRefresh, ActionConnectStarted, ...
	Binding string
	Server  string // the MCP server's URL, when known
	Reason  string
	Failed  bool
}

// Event actions.
const (
	ActionToken            = "token-obtained"
	ActionRefresh          = "token-refreshed"
	ActionConnectStarted   = "connect-started"
	ActionConnectCompleted = "connect-completed"
	ActionConnectFailed    = "connect-failed"
	ActionTokenFailed      = "token-failed"
)

// BrokerConfig is what a Broker needs. HTTP is required.
type BrokerConfig struct {
	// HTTP makes every request of the broker (metadata, registration,
	// token endpoint): agentg's checked outbound client.
	HTTP *http.Client
	// Store keeps tokens and registered clients; nil: a MemoryStore.
	Store TokenStore
	// OnValue is told every value the broker comes to hold (name is
	// oauth:BINDING:access, :refresh or :client_secret), OnForget every
	// one it drops: the leak guard's feed. A name told again replaces its
	// value (a refreshed token). Either may be nil.
	OnValue  func(name, value string)
	OnForget func(name string)
	// Events receives the broker's events; nil: none.
	Events func(Event)
	// RedirectURI is the authorization callback's URL (the admin
	// listener's /oauth/callback on loopback); nil refuses to connect.
	RedirectURI func() (string, error)
	// StateTTL is how long an authorization URL stays usable; default
	// 10 minutes. MaxAuthorizations bounds the authorizations of a
	// binding without one request succeeding in between (step-up that
	// never satisfies the server); default 3.
	StateTTL          time.Duration
	MaxAuthorizations int
	Now               func() time.Time
}

// Broker obtains, keeps and refreshes the tokens of the policy's oauth
// bindings. One lives as long as the process. Safe for concurrent use.
type Broker struct {
	cfg BrokerConfig

	// servers holds each binding's state by id: read on every request
	// a binding matches, so without a lock; mu serialises replacing one.
	servers sync.Map

	mu       sync.Mutex
	pending  map[string]*pending // by state
	connects map[string]*Connect // by connect id
}

// NewBroker makes a Broker.
func NewBroker(cfg BrokerConfig) (*Broker, error) {
	if cfg.HTTP == nil {
		return nil, errors.New("oauth broker: no HTTP client")
	}
	if cfg.Store == nil {
		cfg.Store = NewMemoryStore()
	}
	if cfg.StateTTL <= 0 {
		cfg.StateTTL = 10 * time.Minute
	}
	if cfg.MaxAuthorizations <= 0 {
		cfg.MaxAuthorizations = 3
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Broker{cfg: cfg, pending: map[string]*pending{}, connects: map[string]*Connect{}}, nil
}

// server is one binding's state.
type server struct {
	mu        sync.Mutex // one token operation at a time per binding
	id        string
	key       string   // the settings it was built under
	serverURL *url.URL // the MCP server: Config.Resource, else the last request's URL
	challenge Challenge
	requested []string // the scopes last asked for: step-up asks for their union with the challenge's
	tok       *oauth2.Token
	ep        *endpoint // where tok came from: refresh goes there
	clients   map[string]client
	// authorizations counts connects since a request last succeeded
	// with a token.
	authorizations int
	// needConnect says why a person must connect the binding ("" when
	// nothing waits on one): what the console and agentg oauth list show.
	needConnect string
}

// saved is a server's token as the TokenStore keeps it.
type saved struct {
	Token    *oauth2.Token `json:"token"`
	Issuer   string        `json:"issuer"`
	AuthURL  string        `json:"auth_url"`
	TokenURL string        `json:"token_url"`
	Resource string        `json:"resource"`
	Client   client        `json:"client"`
	Scopes   []string      `json:"scopes"`
}

func (b *Broker) server(bd Binding) *server {
	key := bd.Config.key()
	if v, ok := b.servers.Load(bd.ID); ok && v.(*server).key == key {
		return v.(*server)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var s *server
	if v, ok := b.servers.Load(bd.ID); ok {
		if s = v.(*server); s.key == key {
			return s
		}
	}
	if s != nil {
		// The binding's settings changed: what was obtained under the
		// old ones is not used.
		b.forget(bd.ID)
		_ = b.cfg.Store.Delete(storeKey(bd.ID))
	}
	s = &server{id: bd.ID, key: key, clients: map[string]client{}}
	if bd.Config.Resource != "" {
		s.serverURL, _ = url.Parse(bd.Config.Resource)
	}
	b.load(s)
	b.servers.Store(bd.ID, s)
	return s
}

func storeKey(binding string) string { return "oauth/" + binding }

// load takes a saved token, if the store has one for these settings.
func (b *Broker) load(s *server) {
	raw, ok, err := b.cfg.Store.Get(storeKey(s.id))
	if err != nil || !ok {
		return
	}
	var sv struct {
		saved
		Key string `json:"key"`
	}
	if json.Unmarshal(raw, &sv) != nil || sv.Key != s.key || sv.Token == nil {
		return
	}
	s.tok = sv.Token
	s.ep = &endpoint{issuer: sv.Issuer, authURL: sv.AuthURL, tokenURL: sv.TokenURL, resource: sv.Resource, cl: sv.Client, scopes: sv.Scopes}
	s.requested = sv.Scopes
	b.tell(s)
}

// keep stores s's token and tells the leak guard its values. Called
// with s.mu held.
func (b *Broker) keep(s *server) {
	b.tell(s)
	if s.tok == nil || s.ep == nil {
		_ = b.cfg.Store.Delete(storeKey(s.id))
		return
	}
	raw, err := json.Marshal(struct {
		saved
		Key string `json:"key"`
	}{saved{Token: s.tok, Issuer: s.ep.issuer, AuthURL: s.ep.authURL, TokenURL: s.ep.tokenURL, Resource: s.ep.resource,
		Client: s.ep.cl, Scopes: s.ep.scopes}, s.key})
	if err == nil {
		_ = b.cfg.Store.Put(storeKey(s.id), raw)
	}
}

func (b *Broker) tell(s *server) {
	if b.cfg.OnValue == nil || s.tok == nil {
		return
	}
	if s.tok.AccessToken != "" {
		b.cfg.OnValue("oauth:"+s.id+":access", s.tok.AccessToken)
	}
	if s.tok.RefreshToken != "" {
		b.cfg.OnValue("oauth:"+s.id+":refresh", s.tok.RefreshToken)
	}
	if s.ep != nil && s.ep.cl.Secret != "" {
		b.cfg.OnValue("oauth:"+s.id+":client_secret", s.ep.cl.Secret)
	}
}

// forget tells the leak guard the binding's values are gone.
func (b *Broker) forget(id string) {
	if b.cfg.OnForget == nil {
		return
	}
	for _, n := range []string{"access", "refresh", "client_secret"} {
		b.cfg.OnForget("oauth:" + id + ":" + n)
	}
}

func (b *Broker) emit(e Event) {
	if b.cfg.Events != nil {
		b.cfg.Events(e)
	}
}

// valid reports whether tok may be sent: a value, not expiring within
// the next few seconds.
func (b *Broker) valid(tok *oauth2.Token) bool {
	if tok == nil || tok.AccessToken == "" {
		return false
	}
	return tok.Expiry.IsZero() || tok.Expiry.After(b.cfg.Now().Add(10*time.Second))
}

// Token returns the access token to attach to a request to serverURL,
// refreshing it when it expired, and for client_credentials obtaining
// one when there is none. "" with a nil error: there is none yet (the
// request goes without; a 401 will say what the server wants).
func (b *Broker) Token(ctx context.Context, bd Binding, serverURL *url.URL) (string, error) {
	s := b.server(bd)
	s.mu.Lock()
	defer s.mu.Unlock()
	if bd.Config.Resource == "" && serverURL != nil {
		s.serverURL = serverURL
	}
	// A token goes only to the resource it was issued for (RFC 8707):
	// a binding whose hosts or path cover more than one server does not
	// hand one server's token to another.
	if s.ep != nil && serverURL != nil && !resourceCovers(s.ep.resource, serverURL) {
		return "", nil
	}
	if b.valid(s.tok) {
		return s.tok.AccessToken, nil
	}
	if s.tok != nil && s.tok.RefreshToken != "" {
		if err := b.refresh(ctx, bd, s); err == nil {
			return s.tok.AccessToken, nil
		}
	}
	if bd.Config.Grant == ClientCredentials {
		if err := b.clientCredentials(ctx, bd, s); err != nil {
			return "", err
		}
		return s.tok.AccessToken, nil
	}
	return "", nil
}

// Outcome is what to do about a 401 or 403 answer.
type Outcome struct {
	// Retry: send the request again with Token.
	Retry bool
	Token string
	// Connect: a person must connect the binding (agentg oauth connect);
	// otherwise Reason says why agentg gave up.
	Connect bool
	Reason  string
}

// Challenged handles the server's 401 or 403 answer to a request that
// carried sent ("" for none). retried says the request was already sent
// again once: then nothing is retried, whatever the answer.
func (b *Broker) Challenged(ctx context.Context, bd Binding, status int, h http.Header, sent string, retried bool) Outcome {
	out := b.challenged(ctx, bd, status, h, sent, retried)
	s := b.server(bd)
	s.mu.Lock()
	s.needConnect = ""
	if out.Connect {
		s.needConnect = out.Reason
	}
	s.mu.Unlock()
	return out
}

func (b *Broker) challenged(ctx context.Context, bd Binding, status int, h http.Header, sent string, retried bool) Outcome {
	ch, err := ParseChallenge(h)
	if err != nil {
		return Outcome{Reason: "the server's WWW-Authenticate does not parse: " + err.Error()}
	}
	s := b.server(bd)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.challenge = ch
	if status == http.StatusForbidden {
		// insufficient_scope: step up to the union of what was asked and
		// what the server now wants (2026-07-28 "Step-Up Authorization
		// Flow"), a bounded number of times.
		s.requested = union(s.requested, ch.Scope)
		if s.authorizations >= b.cfg.MaxAuthorizations {
			return Outcome{Reason: fmt.Sprintf("the server still answers insufficient_scope (wants %q) after %d authorizations; agentg stopped asking", joinScopes(ch.Scope), s.authorizations)}
		}
		if bd.Config.Grant == ClientCredentials {
			if retried {
				return Outcome{Reason: "the server refused the new token for scope " + joinScopes(s.requested)}
			}
			s.authorizations++
			if err := b.clientCredentials(ctx, bd, s); err != nil {
				return Outcome{Reason: err.Error()}
			}
			return Outcome{Retry: true, Token: s.tok.AccessToken}
		}
		return Outcome{Connect: true, Reason: "the server wants scope " + joinScopes(ch.Scope) + " this token was not granted"}
	}
	// 401: the token is missing, expired or revoked. What is held is
	// only tried again, or refreshed, for the resource it was issued for.
	own := s.tok != nil && s.ep != nil && s.serverURL != nil && resourceCovers(s.ep.resource, s.serverURL)
	if own && s.tok.AccessToken != sent && b.valid(s.tok) && !retried {
		return Outcome{Retry: true, Token: s.tok.AccessToken} // another request already renewed it
	}
	if retried {
		return Outcome{Connect: bd.Config.Grant == AuthorizationCode, Reason: "the server refused a token agentg had just obtained"}
	}
	if own {
		s.tok.AccessToken = ""
		if s.tok.RefreshToken != "" {
			if err := b.refresh(ctx, bd, s); err == nil {
				return Outcome{Retry: true, Token: s.tok.AccessToken}
			}
		}
	}
	if bd.Config.Grant == ClientCredentials {
		if err := b.clientCredentials(ctx, bd, s); err != nil {
			return Outcome{Reason: err.Error()}
		}
		return Outcome{Retry: true, Token: s.tok.AccessToken}
	}
	if sent == "" {
		return Outcome{Connect: true, Reason: "agentg holds no token for this server"}
	}
	return Outcome{Connect: true, Reason: "the server refused agentg's token and it cannot be refreshed"}
}

// Succeeded says a request with the binding's token was answered: the
// count of authorizations without success starts again.
func (b *Broker) Succeeded(bd Binding) {
	s := b.server(bd)
	s.mu.Lock()
	s.authorizations = 0
	s.mu.Unlock()
}

// refresh renews s's token with its refresh token. Called with s.mu held.
func (b *Broker) refresh(ctx context.Context, bd Binding, s *server) error {
	if s.ep == nil {
		return errors.New("no token endpoint recorded")
	}
	ep := *s.ep
	if err := b.credentials(ctx, bd, &ep); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	old := s.tok
	tok, err := ep.oauth2Config("").TokenSource(ep.context(ctx, b.cfg.HTTP), &oauth2.Token{RefreshToken: old.RefreshToken}).Token()
	if err != nil {
		err = tokenError(ep.tokenURL, err)
		b.emit(Event{Action: ActionTokenFailed, Binding: bd.ID, Server: urlString(s.serverURL), Reason: "refresh: " + err.Error(), Failed: true})
		s.tok = nil
		b.forget(s.id)
		b.keep(s)
		return err
	}
	if tok.RefreshToken == "" {
		tok.RefreshToken = old.RefreshToken
	}
	s.tok = tok
	b.keep(s)
	b.emit(Event{Action: ActionRefresh, Binding: bd.ID, Server: urlString(s.serverURL)})
	return nil
}

// credentials reads the binding's secrets into ep: the client secret of
// a pre-registered client and the private key of private_key_jwt.
func (b *Broker) credentials(ctx context.Context, bd Binding, ep *endpoint) error {
	c := bd.Config
	if ep.cl.How != "pre-registered" && ep.cl.How != "metadata-document" {
		ep.secret = ep.cl.Secret
		return nil
	}
	if c.ClientSecret != "" {
		v, err := bd.Secret(ctx, c.ClientSecret)
		if err != nil {
			return err
		}
		ep.secret = v
	}
	if c.PrivateKey != "" && ep.cl.Auth == AuthJWT {
		v, err := bd.Secret(ctx, c.PrivateKey)
		if err != nil {
			return err
		}
		k, err := parsePrivateKey(v)
		if err != nil {
			return fmt.Errorf("secret %s: %w", c.PrivateKey, err)
		}
		ep.key = k
	}
	return nil
}

// discover finds the binding's authorization server: protected resource
// metadata, then the server's metadata.
func (b *Broker) discover(ctx context.Context, s *server, needPKCE bool) (resource string, prmScopes []string, asm *oauthex.AuthServerMeta, err error) {
	if s.serverURL == nil {
		return "", nil, nil, errors.New("agentg has not seen a request to this server yet and the binding names no resource: make one call through agentg first, or set oauth.resource")
	}
	prm, err := discoverResource(ctx, b.cfg.HTTP, s.serverURL, s.challenge)
	if err != nil {
		return "", nil, nil, err
	}
	// The first authorization server the resource names (RFC 9728
	// §7.6 leaves the choice to the client).
	m, err := discoverIssuer(ctx, b.cfg.HTTP, prm.AuthorizationServers[0], needPKCE)
	if err != nil {
		return "", nil, nil, err
	}
	return prm.Resource, prm.ScopesSupported, m, nil
}

// identify says how agentg presents itself to asm, registering when it
// must. Called with s.mu held.
func (b *Broker) identify(ctx context.Context, bd Binding, s *server, asm *oauthex.AuthServerMeta, redirectURI string) (client, error) {
	c := bd.Config
	hasSecret, hasKey := c.ClientSecret != "", c.PrivateKey != ""
	switch {
	case c.ClientID != "":
		if c.Issuer != "" && c.Issuer != asm.Issuer {
			return client{}, fmt.Errorf("the server's authorization server is now %s, and the pre-registered client %s belongs to %s: register agentg there and update the policy", asm.Issuer, c.ClientID, c.Issuer)
		}
		auth, err := chooseAuth(c.TokenAuth, asm.TokenEndpointAuthMethodsSupported, hasSecret, hasKey)
		if err != nil {
			return client{}, err
		}
		return client{ID: c.ClientID, Auth: auth, Issuer: asm.Issuer, How: "pre-registered"}, nil
	case c.ClientMetadataURL != "" && asm.ClientIDMetadataDocumentSupported:
		auth := AuthNone
		if hasKey {
			auth = AuthJWT
		}
		return client{ID: c.ClientMetadataURL, Auth: auth, Issuer: asm.Issuer, How: "metadata-document"}, nil
	case asm.RegistrationEndpoint != "":
		// A registered client belongs to its issuer (2026-07-28,
		// "Authorization Server Binding"): another issuer gets its own.
		if cl, ok := s.clients[asm.Issuer]; ok {
			return cl, nil
		}
		cl, err := register(ctx, b.cfg.HTTP, asm, redirectURI)
		if err != nil {
			return client{}, err
		}
		s.clients[asm.Issuer] = cl
		if cl.Secret != "" && b.cfg.OnValue != nil {
			b.cfg.OnValue("oauth:"+s.id+":client_secret", cl.Secret)
		}
		return cl, nil
	}
	return client{}, fmt.Errorf("the authorization server %s offers no way for agentg to identify itself (no client ID metadata document support agentg can use, no registration endpoint): set oauth.client_id in the policy", asm.Issuer)
}

// clientCredentials obtains a token with the client credentials grant.
// Called with s.mu held.
func (b *Broker) clientCredentials(ctx context.Context, bd Binding, s *server) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := func() error {
		resource, prmScopes, asm, err := b.discover(ctx, s, false)
		if err != nil {
			return err
		}
		cl, err := b.identify(ctx, bd, s, asm, "")
		if err != nil {
			return err
		}
		scopes := selectScopes(s.challenge.Scope, prmScopes, s.requested, bd.Config.Scopes)
		ep := &endpoint{issuer: asm.Issuer, authURL: asm.AuthorizationEndpoint, tokenURL: asm.TokenEndpoint, resource: resource, cl: cl, scopes: scopes}
		if err := b.credentials(ctx, bd, ep); err != nil {
			return err
		}
		tok, err := ep.clientCredentials().Token(ep.context(ctx, b.cfg.HTTP))
		if err != nil {
			return tokenError(ep.tokenURL, err)
		}
		s.tok, s.ep, s.requested = tok, ep, scopes
		return nil
	}()
	if err != nil {
		b.emit(Event{Action: ActionTokenFailed, Binding: bd.ID, Server: urlString(s.serverURL), Reason: "client_credentials: " + err.Error(), Failed: true})
		return err
	}
	b.keep(s)
	b.emit(Event{Action: ActionToken, Binding: bd.ID, Server: urlString(s.serverURL), Reason: "client_credentials grant, scope " + joinScopes(s.requested)})
	return nil
}

// selectScopes is the specification's scope selection: the challenge's
// scope, else the resource's scopes_supported, else none; joined with
// what was asked before (step-up keeps earlier grants) and the policy's.
func selectScopes(challenge, supported, before, policy []string) []string {
	base := challenge
	if len(base) == 0 {
		base = supported
	}
	return union(union(before, base), policy)
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func joinScopes(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	out := ""
	for i, v := range s {
		if i > 0 {
			out += " "
		}
		out += v
	}
	return out
}

func urlString(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.String()
}

// Status is what the broker holds for a binding, as the admin API and
// the console show it: never a value.
type Status struct {
	Binding   string     `json:"binding"`
	Connected bool       `json:"connected"` // holds an access or refresh token
	Expires   *time.Time `json:"expires,omitempty"`
	Refresh   bool       `json:"refreshable"`
	Scopes    []string   `json:"scopes,omitempty"`
	Issuer    string     `json:"issuer,omitempty"`
	Client    string     `json:"client,omitempty"` // how agentg identified itself: pre-registered, metadata-document, registered
	Server    string     `json:"server,omitempty"`
	// NeedsConnect says why a person must connect the binding: a call
	// was refused for want of a token a person must authorize.
	NeedsConnect string `json:"needs_connect,omitempty"`
}

// Status reports what the broker holds for the binding with that id.
func (b *Broker) Status(id string) Status {
	st := Status{Binding: id}
	v, ok := b.servers.Load(id)
	if !ok {
		return st
	}
	s := v.(*server)
	s.mu.Lock()
	defer s.mu.Unlock()
	st.Server, st.NeedsConnect = urlString(s.serverURL), s.needConnect
	if s.tok != nil && (s.tok.AccessToken != "" || s.tok.RefreshToken != "") {
		st.Connected, st.Refresh = true, s.tok.RefreshToken != ""
		if !s.tok.Expiry.IsZero() {
			e := s.tok.Expiry
			st.Expires = &e
		}
	}
	if s.ep != nil {
		st.Scopes, st.Issuer, st.Client = s.ep.scopes, s.ep.issuer, s.ep.cl.How
	}
	return st
}

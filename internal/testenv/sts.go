package testenv

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/client/rs"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// STS is a real OAuth 2.0 token-exchange service (RFC 8693) on loopback
// TLS: zitadel's OpenID provider (github.com/zitadel/oidc/v3/pkg/op) with
// its example storage, not one agentg's tests wrote. Its service user
// AgentSubject gets tokens by the client-credentials grant (AgentToken):
// the agent's own token from its identity provider. The clients the
// options name may exchange such a token (storage.WebClient: Basic
// client authentication, token exchange allowed) and introspect tokens
// issued for their audience (Introspect).
type STS struct {
	*Upstream
	Issuer    string       // https://HOST:PORT
	direct    *http.Client // to the STS on loopback, trusting its CA
	exchanges atomic.Int32
}

// AgentSubject is the subject of AgentToken's tokens: the example
// storage's service user.
const AgentSubject = "sid1"

// STSOptions say how to run an STS.
type STSOptions struct {
	Host    string // the name it is reached by (its issuer's host)
	Cert    *tls.Certificate
	Roots   *CA               // the CA that issued Cert, for the STS's own clients
	Clients map[string]string // client id → secret
	Dir     string            // a directory for its user store
}

// StartSTS starts the STS. Close it when done.
func StartSTS(o STSOptions) (*STS, error) {
	// The provider checks that the subject of a token to exchange may be
	// impersonated: the service user is such a user.
	users := map[string]*storage.User{AgentSubject: {ID: AgentSubject, Username: AgentSubject, IsAdmin: true}}
	usersFile := filepath.Join(o.Dir, "sts-users.json")
	b, _ := json.Marshal(users)
	if err := os.WriteFile(usersFile, b, 0o600); err != nil {
		return nil, err
	}
	us, err := storage.StoreFromFile(usersFile)
	if err != nil {
		return nil, err
	}
	clients := map[string]*storage.Client{}
	for id, secret := range o.Clients {
		clients[id] = storage.WebClient(id, secret)
	}
	st := storage.NewStorageWithClients(us, clients)
	s := &STS{}
	var h atomic.Pointer[http.Handler]
	s.Upstream = StartUpstream(UpstreamOptions{Cert: o.Cert, Quiet: true, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/token") {
			b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			if q, _ := url.ParseQuery(string(b)); q.Get("grant_type") == "urn:ietf:params:oauth:grant-type:token-exchange" {
				s.exchanges.Add(1)
			}
			r.Body = io.NopCloser(strings.NewReader(string(b)))
		}
		(*h.Load()).ServeHTTP(w, r)
	})})
	s.Issuer = "https://" + net.JoinHostPort(o.Host, s.Port)
	var key [32]byte
	rand.Read(key[:])
	provider, err := op.NewProvider(&op.Config{CryptoKey: key, AuthMethodPost: true}, st, op.StaticIssuer(s.Issuer))
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("sts: %w", err)
	}
	var ph http.Handler = provider
	h.Store(&ph)
	port := s.Port
	s.direct = &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: o.Roots.Pool()},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, "127.0.0.1:"+port)
		}}}
	return s, nil
}

// TokenURL is the STS's token endpoint.
func (s *STS) TokenURL() string { return s.Issuer + "/oauth/token" }

// Exchanges counts the token-exchange requests the STS received.
func (s *STS) Exchanges() int { return int(s.exchanges.Load()) }

// AgentToken is a fresh access token for AgentSubject, as the agent's
// identity provider issues it (client credentials, straight to the STS).
func (s *STS) AgentToken(ctx context.Context) (string, error) {
	cc := clientcredentials.Config{ClientID: AgentSubject, ClientSecret: "verysecret", TokenURL: s.TokenURL()}
	tok, err := cc.Token(context.WithValue(ctx, oauth2.HTTPClient, s.direct))
	if err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}

// Introspector is a resource server's view of the STS: whether a token
// is active, meant for it, and whose.
type Introspector struct{ rs rs.ResourceServer }

// Introspector returns the view of the resource server registered as
// client id with secret.
func (s *STS) Introspector(ctx context.Context, id, secret string) (*Introspector, error) {
	r, err := rs.NewResourceServerClientCredentials(context.WithValue(ctx, oauth2.HTTPClient, s.direct), s.Issuer, id, secret, rs.WithClient(s.direct))
	if err != nil {
		return nil, err
	}
	return &Introspector{r}, nil
}

// Introspect asks the STS about tok: active for this resource server, and
// if so its subject and the client it was issued to.
func (i *Introspector) Introspect(ctx context.Context, tok string) (active bool, subject, client string, err error) {
	in, err := rs.Introspect[*oidc.IntrospectionResponse](ctx, i.rs, tok)
	if err != nil {
		return false, "", "", err
	}
	return in.Active, in.Subject, in.ClientID, nil
}

package oauth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"golang.org/x/oauth2"
)

// Connecting a binding: StartConnect discovers the authorization server,
// identifies agentg to it, and returns the authorization URL a person
// opens; the authorization server sends the person's browser back to
// RedirectURI, whose handler calls Callback. The state in the URL is
// 256 random bits, single use, and expires after StateTTL; the issuer
// recorded with it is what the response's iss must equal (RFC 9207, as
// 2026-07-28 requires), compared as strings.

// Connect is one connect attempt as the admin API shows it.
type Connect struct {
	ID      string    `json:"id"`
	Binding string    `json:"binding"`
	URL     string    `json:"authorization_url"`
	Expires time.Time `json:"expires"`
	State   string    `json:"state"` // "pending", "completed", "failed", "expired"
	Error   string    `json:"error,omitempty"`
}

// pending is what a state stands for until the callback.
type pending struct {
	connectID    string
	binding      Binding
	key          string
	ep           *endpoint
	redirect     string
	verifier     string
	issSupported bool
	expires      time.Time
}

func random() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// StartConnect begins connecting an authorization-code binding and
// returns the attempt, whose URL a person opens.
func (b *Broker) StartConnect(ctx context.Context, bd Binding) (Connect, error) {
	if bd.Config.Grant != AuthorizationCode {
		return Connect{}, fmt.Errorf("binding %s uses the %s grant: it needs no person to connect", bd.ID, bd.Config.Grant)
	}
	if b.cfg.RedirectURI == nil {
		return Connect{}, errors.New("this agentg has no admin listener for the authorization callback (--admin off)")
	}
	redirect, err := b.cfg.RedirectURI()
	if err != nil {
		return Connect{}, err
	}
	s := b.server(bd)
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, p, err := func() (Connect, *pending, error) {
		resource, prmScopes, asm, err := b.discover(ctx, s, true)
		if err != nil {
			return Connect{}, nil, err
		}
		cl, err := b.identify(ctx, bd, s, asm, redirect)
		if err != nil {
			return Connect{}, nil, err
		}
		scopes := selectScopes(s.challenge.Scope, prmScopes, s.requested, bd.Config.Scopes)
		// offline_access where the authorization server lists it
		// (2026-07-28, "Refresh Tokens"): agentg wants to keep the
		// connection without the person.
		if slices.Contains(asm.ScopesSupported, "offline_access") {
			scopes = union(scopes, []string{"offline_access"})
		}
		ep := &endpoint{issuer: asm.Issuer, authURL: asm.AuthorizationEndpoint, tokenURL: asm.TokenEndpoint, resource: resource, cl: cl, scopes: scopes}
		state, err := random()
		if err != nil {
			return Connect{}, nil, err
		}
		id, err := random()
		if err != nil {
			return Connect{}, nil, err
		}
		id = id[:16]
		verifier := oauth2.GenerateVerifier()
		u := ep.oauth2Config(redirect).AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("resource", resource))
		exp := b.cfg.Now().Add(b.cfg.StateTTL)
		s.requested = scopes
		s.authorizations++
		return Connect{ID: id, Binding: bd.ID, URL: u, Expires: exp, State: "pending"},
			&pending{connectID: id, binding: bd, key: s.key, ep: ep, redirect: redirect, verifier: verifier,
				issSupported: asm.AuthorizationResponseIssParameterSupported, expires: exp}, nil
	}()
	if err != nil {
		b.emit(Event{Action: ActionConnectFailed, Binding: bd.ID, Server: urlString(s.serverURL), Reason: err.Error(), Failed: true})
		return Connect{}, err
	}
	b.mu.Lock()
	b.sweep()
	st, _ := stateOf(c.URL)
	b.pending[st] = p
	cc := c
	b.connects[c.ID] = &cc
	b.mu.Unlock()
	b.emit(Event{Action: ActionConnectStarted, Binding: bd.ID, Server: urlString(s.serverURL), Reason: "authorization at " + p.ep.issuer + ", scope " + joinScopes(p.ep.scopes) + ", client " + p.ep.cl.How})
	return c, nil
}

func stateOf(authURL string) (string, error) {
	u, err := url.Parse(authURL)
	if err != nil {
		return "", err
	}
	return u.Query().Get("state"), nil
}

// sweep drops expired states and old attempts. Called with b.mu held.
func (b *Broker) sweep() {
	now := b.cfg.Now()
	for st, p := range b.pending {
		if now.After(p.expires) {
			delete(b.pending, st)
			if c := b.connects[p.connectID]; c != nil && c.State == "pending" {
				c.State, c.Error = "expired", "no authorization response came before the state expired"
			}
		}
	}
	for id, c := range b.connects {
		if now.Sub(c.Expires) > time.Hour {
			delete(b.connects, id)
		}
	}
}

// ConnectStatus returns a connect attempt by id.
func (b *Broker) ConnectStatus(id string) (Connect, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sweep()
	c, ok := b.connects[id]
	if !ok {
		return Connect{}, false
	}
	return *c, true
}

// ErrState is a callback whose state is unknown, used or expired.
var ErrState = errors.New("unknown, used or expired state")

// Callback finishes a connect with the authorization response's query.
// It returns the binding's id. The state is spent whatever happens.
func (b *Broker) Callback(ctx context.Context, q url.Values) (string, error) {
	st := q.Get("state")
	b.mu.Lock()
	p, ok := b.pending[st]
	if ok {
		delete(b.pending, st)
	}
	b.mu.Unlock()
	if !ok || st == "" {
		return "", ErrState
	}
	if b.cfg.Now().After(p.expires) {
		b.finish(p, ErrState)
		return p.binding.ID, ErrState
	}
	err := b.exchange(ctx, p, q)
	b.finish(p, err)
	return p.binding.ID, err
}

func (b *Broker) exchange(ctx context.Context, p *pending, q url.Values) error {
	// RFC 9207 §2.4 as 2026-07-28 tabulates it: a present iss is
	// compared with the recorded issuer as a plain string; an absent one
	// is refused when the server said it sends it. Before anything else
	// of the response is acted on, its error included.
	iss, has := q["iss"]
	switch {
	case has && (len(iss) != 1 || iss[0] != p.ep.issuer):
		return fmt.Errorf("the authorization response's iss is not the issuer %s agentg asked: refused (mix-up protection)", p.ep.issuer)
	case !has && p.issSupported:
		return fmt.Errorf("the authorization server %s says it sends iss, and its response has none: refused", p.ep.issuer)
	}
	if e := q.Get("error"); e != "" {
		return fmt.Errorf("the authorization server refused: %s %s", printable(e), printable(q.Get("error_description")))
	}
	code := q.Get("code")
	if code == "" {
		return errors.New("the authorization response has no code")
	}
	s := b.server(p.binding)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key != p.key {
		return errors.New("the binding's oauth settings changed since the connect started: connect again")
	}
	ep := *p.ep
	if err := b.credentials(ctx, p.binding, &ep); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tok, err := ep.oauth2Config(p.redirect).Exchange(ep.context(ctx, b.cfg.HTTP), code, oauth2.VerifierOption(p.verifier))
	if err != nil {
		return tokenError(ep.tokenURL, err)
	}
	stored := *p.ep // the secret is read again from the policy at each use
	stored.scopes = grantedScopes(tok, p.ep.scopes)
	s.tok, s.ep, s.needConnect = tok, &stored, ""
	b.keep(s)
	return nil
}

// finish records a connect's end and its event.
func (b *Broker) finish(p *pending, err error) {
	b.mu.Lock()
	c := b.connects[p.connectID]
	if c != nil {
		if err != nil {
			c.State, c.Error = "failed", err.Error()
		} else {
			c.State = "completed"
		}
	}
	b.mu.Unlock()
	if err != nil {
		b.emit(Event{Action: ActionConnectFailed, Binding: p.binding.ID, Server: p.ep.resource, Reason: err.Error(), Failed: true})
		return
	}
	b.emit(Event{Action: ActionConnectCompleted, Binding: p.binding.ID, Server: p.ep.resource, Reason: "token for scope " + joinScopes(p.ep.scopes)})
	b.emit(Event{Action: ActionToken, Binding: p.binding.ID, Server: p.ep.resource, Reason: "authorization_code grant"})
}

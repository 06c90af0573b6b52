package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/sync/singleflight"

	"github.com/agentg/agentg/creds"
	"github.com/agentg/agentg/internal/lru"
	"github.com/agentg/agentg/rules"
)

// Token exchange (RFC 8693) for a binding that says token_exchange
// (rules/credentials_exchange.go). The agent's own Authorization: Bearer
// token, issued by the organisation's identity provider, is the subject
// token; agentg exchanges it at the binding's STS for a token meant for
// the upstream and sends that instead, so the upstream sees which agent
// acted, and the agent never holds a token for the upstream.
//
//   - The grant is golang.org/x/oauth2's clientcredentials.Config with
//     grant_type overridden in EndpointParams (which that package allows
//     for exactly this): it sends no empty code parameter (oauth2.Config's
//     Exchange would), lets the binding choose Basic or body client
//     authentication, and takes agentg's own checked client through the
//     context. The official Go SDK's oauthex.ExchangeToken takes a client
//     too, but is built for SEP-990's ID-JAG: it requires both audience
//     and resource and an issued_token_type, and always puts the client
//     secret in the body.
//   - The STS is called with Server.Client, decided as rules.SelfAgent:
//     its URL comes from the policy, never from the agent, so the policy
//     must allow agentg (not the agent) to reach it. The call has its own
//     event, whose parent is the agent's request.
//   - Issued tokens are cached per (binding configuration, SHA-256 of the
//     subject token) until the token's expiry less a minute's skew, at
//     most the binding's max_ttl, in a bounded LRU; concurrent requests
//     with one subject token share one exchange.
//   - No subject token: 401 to the agent. The STS refuses: 502, the event
//     naming the STS's error code, never a token or the STS's description
//     (which may quote what was sent).
//   - Every token obtained is reported to Config.HeldValue, for the leak
//     guard: it is a value agentg holds.

// exchangeTimeout bounds one call to an STS.
const exchangeTimeout = 30 * time.Second

// exchangeSkew is how long before its expiry an exchanged token is no
// longer handed out.
const exchangeSkew = time.Minute

// maxExchanged bounds the cache of exchanged tokens.
const maxExchanged = 4096

// exchanged is one cached token.
type exchanged struct {
	token string
	until time.Time
}

// exchanges is the Server's cache of exchanged tokens, made on first use.
type exchanges struct {
	once  sync.Once
	cache *lru.Cache[exchanged]
	group singleflight.Group
	now   func() time.Time // time.Now; a test's clock
}

func (x *exchanges) clock() time.Time {
	if x.now != nil {
		return x.now()
	}
	return time.Now()
}

func (x *exchanges) get() *lru.Cache[exchanged] {
	x.once.Do(func() { x.cache = lru.New[exchanged](maxExchanged, nil) })
	return x.cache
}

// exchangeToken attaches the token the binding's STS issues for the
// agent's own bearer token, replacing the agent's Authorization.
func (s *Server) exchangeToken(f *flow, b *rules.Binding, r *http.Request, store *creds.Store) (*refusal, string) {
	x := b.Exchange
	subject, ok := bearerToken(r.Header)
	if !ok && f.subject != "" && len(r.Header.Values("Authorization")) == 0 {
		// A door of agentg's own (the gateway) proved the agent with
		// this token; the request it sends carries none (send.go).
		subject, ok = f.subject, true
	}
	if !ok {
		return &refusal{status: http.StatusUnauthorized,
				text:   "agentg: binding " + b.ID + " exchanges the agent's own token: send Authorization: Bearer with a token from your identity provider",
				header: http.Header{"Www-Authenticate": {`Bearer realm="agentg"`}}},
			"token exchange: the request carries no bearer token to exchange"
	}
	sum := sha256.Sum256([]byte(subject))
	key := x.Key + string(sum[:])
	cache := s.exchanged.get()
	if t, ok := cache.Get(key); ok && s.exchanged.clock().Before(t.until) {
		r.Header["Authorization"] = []string{"Bearer " + t.token}
		return nil, ""
	}
	v, err, _ := s.exchanged.group.Do(key, func() (any, error) {
		if t, ok := cache.Get(key); ok && s.exchanged.clock().Before(t.until) {
			return t.token, nil
		}
		t, err := s.exchange(f, b, subject, store)
		if err != nil {
			return nil, err
		}
		if s.cfg.HeldValue != nil {
			s.cfg.HeldValue(HeldName(b.ID, sum[:]), t.token)
		}
		if t.until.After(s.exchanged.clock()) {
			cache.Put(key, t)
		}
		return t.token, nil
	})
	if err != nil {
		return exchangeRefusal(b, err)
	}
	r.Header["Authorization"] = []string{"Bearer " + v.(string)}
	return nil, ""
}

// exchange calls the STS once.
func (s *Server) exchange(f *flow, b *rules.Binding, subject string, store *creds.Store) (exchanged, error) {
	x := b.Exchange
	ctx, cancel := context.WithTimeout(withParent(context.Background(), f.id), exchangeTimeout)
	defer cancel()
	secret, err := store.Get(ctx, x.ClientSecret)
	if err != nil {
		return exchanged{}, err
	}
	params := map[string][]string{
		"grant_type":           {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":        {subject},
		"subject_token_type":   {x.SubjectTokenType},
		"requested_token_type": {x.RequestedTokenType},
	}
	if x.Audience != "" {
		params["audience"] = []string{x.Audience}
	}
	if x.Resource != "" {
		params["resource"] = []string{x.Resource}
	}
	cc := clientcredentials.Config{ClientID: x.ClientID, ClientSecret: secret.Reveal(), TokenURL: x.TokenURL,
		Scopes: x.Scopes, EndpointParams: params, AuthStyle: oauth2.AuthStyleInHeader}
	if x.AuthInParams {
		cc.AuthStyle = oauth2.AuthStyleInParams
	}
	tok, err := cc.Token(context.WithValue(ctx, oauth2.HTTPClient, s.Client()))
	if err != nil {
		return exchanged{}, err
	}
	if !strings.EqualFold(tok.TokenType, "bearer") {
		return exchanged{}, &stsError{why: fmt.Sprintf("the STS issued a token of type %q, not a bearer token", safeCode(tok.TokenType))}
	}
	if it, _ := tok.Extra("issued_token_type").(string); it != "" && it != x.RequestedTokenType {
		return exchanged{}, &stsError{why: fmt.Sprintf("the STS issued a %s, not the %s asked for", safeCode(it), x.RequestedTokenType)}
	}
	now := s.exchanged.clock()
	until := now.Add(x.MaxTTL)
	if !tok.Expiry.IsZero() {
		// oauth2 dated the expiry by the wall clock; what is left of it
		// counts from now.
		if left := time.Until(tok.Expiry) - exchangeSkew; now.Add(left).Before(until) {
			until = now.Add(left) // in the past: used for this request only
		}
	}
	return exchanged{token: tok.AccessToken, until: until}, nil
}

// stsError is an STS answer agentg will not use.
type stsError struct{ why string }

func (e *stsError) Error() string { return e.why }

// exchangeRefusal is the agent's answer to a failed exchange, and the
// event's reason: never a token, never what the STS said beyond its
// error code.
func exchangeRefusal(b *rules.Binding, err error) (*refusal, string) {
	text := "agentg: binding " + b.ID + " could not exchange the agent's token"
	var ref *RefusedError
	var rerr *oauth2.RetrieveError
	var serr *stsError
	var cerr *creds.Error
	var why string
	switch {
	case errors.As(err, &ref):
		why = "token exchange: agentg's call to the STS was refused: " + trimAgentg(ref.Text)
		text += ": the policy does not let agentg reach the STS (rule " + ref.Rule + ")"
	case errors.As(err, &rerr):
		code := safeCode(rerr.ErrorCode)
		status := 0
		if rerr.Response != nil {
			status = rerr.Response.StatusCode
		}
		if code == "" {
			code = "none"
		}
		why = fmt.Sprintf("token exchange: the STS refused (status %d, error %s)", status, code)
		text += ": the STS refused it (" + code + ")"
	case errors.As(err, &serr):
		why = "token exchange: " + serr.why
		text += ": " + serr.why
	case errors.As(err, &cerr):
		why = err.Error()
		text += ": the secret " + cerr.Secret + " could not be read"
	default:
		why = "token exchange: " + err.Error()
		text += ": the STS could not be reached"
	}
	return &refusal{status: http.StatusBadGateway, text: text + "; the request was not sent"}, why
}

// safeCode keeps what an STS says in an error code or token type to a
// short run of printable ASCII: it goes into an event.
func safeCode(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x21 || r > 0x7e || r == '"' || r == '\\' {
			return '_'
		}
		return r
	}, s)
}

// bearerToken is the agent's Authorization: Bearer token: exactly one
// Authorization header, scheme Bearer (any case), a token68.
func bearerToken(h http.Header) (string, bool) {
	v := h.Values("Authorization")
	if len(v) != 1 {
		return "", false
	}
	scheme, tok, ok := strings.Cut(v[0], " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" || strings.ContainsAny(tok, " \t") {
		return "", false
	}
	return tok, true
}

// HeldName names a token exchanged for binding id and the subject token
// whose SHA-256 is sum: one name per binding and agent token, so a token
// issued anew replaces the one before it under the same name. The leak
// guard's events name it.
func HeldName(id string, sum []byte) string {
	return creds.HeldName("exchange."+id[:min(len(id), 40)]) + "." + hex.EncodeToString(sum[:4])
}

package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/agentg/agentg/addr"
	"github.com/agentg/agentg/creds"
)

// A binding that exchanges the agent's own token (RFC 8693) instead of
// attaching a shared secret:
//
//	- id: jira-obo
//	  host: jira.example.com
//	  token_exchange:
//	    token_url: https://sts.example.com/oauth/token   # https only
//	    client_id: agentg
//	    client_secret: sts-client         # a secret under credentials secrets
//	    client_auth: basic                # basic (default) | post
//	    audience: jira                    # optional
//	    resource: https://jira.example.com/  # optional, absolute URI
//	    scopes: [read]                    # optional
//	    requested_token_type: urn:ietf:params:oauth:token-type:access_token  # default
//	    subject_token_type: urn:ietf:params:oauth:token-type:access_token    # default
//	    max_ttl: 5m                       # how long an exchanged token is kept at most; default 5m
//
// On a request the binding matches, the agent's Authorization: Bearer
// token is the subject token; agentg sends it to the STS (through its
// own checked client, decided as agentg: the policy must allow the STS's
// host) and replaces the agent's Authorization with the issued token.
// Parsed here; the exchange itself is proxy/exchange_token.go.

// Token-type URIs (RFC 8693 §3).
const (
	TokenTypeAccess = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeJWT    = "urn:ietf:params:oauth:token-type:jwt"
	TokenTypeID     = "urn:ietf:params:oauth:token-type:id_token"
)

// DefaultExchangeTTL bounds how long an exchanged token is kept when the
// binding says nothing (and when the STS says it lives longer).
const DefaultExchangeTTL = 5 * time.Minute

// TokenExchange is a binding's token_exchange, compiled.
type TokenExchange struct {
	TokenURL           string
	ClientID           string
	ClientSecret       string // a secret's name
	AuthInParams       bool   // client_auth: post
	Audience           string
	Resource           string
	Scopes             []string
	RequestedTokenType string
	SubjectTokenType   string
	MaxTTL             time.Duration
	// Key names this configuration: exchanged tokens are cached by it,
	// so a reload that changes the STS, client or audience of a binding
	// never reuses a token issued for the old one.
	Key string
}

func (p *parser) tokenExchange(v *yaml.Node) (*TokenExchange, error) {
	x := &TokenExchange{RequestedTokenType: TokenTypeAccess, SubjectTokenType: TokenTypeAccess, MaxTTL: DefaultExchangeTTL}
	var urlNode, secretNode *yaml.Node
	err := p.eachKey(v, func(k, v *yaml.Node) (err error) {
		switch k.Value {
		case "token_url":
			urlNode = v
			if x.TokenURL, err = p.scalar(v); err == nil {
				err = p.checkTokenURL(v, x.TokenURL)
			}
		case "client_id":
			if x.ClientID, err = p.scalar(v); err == nil && (x.ClientID == "" || strings.ContainsAny(x.ClientID, "\r\n\x00")) {
				err = p.errf(v, "bad client_id %q", x.ClientID)
			}
		case "client_secret":
			secretNode = v
			if x.ClientSecret, err = p.scalar(v); err == nil && !creds.ValidName(x.ClientSecret) {
				err = p.errf(v, "bad secret name %q (client_secret names a secret under credentials secrets)", x.ClientSecret)
			}
		case "client_auth":
			var s string
			if s, err = p.scalar(v); err != nil {
				return err
			}
			switch s {
			case "basic":
			case "post":
				x.AuthInParams = true
			default:
				err = p.errf(v, "bad client_auth %q (want basic or post)", s)
			}
		case "audience":
			x.Audience, err = p.scalar(v)
		case "resource":
			if x.Resource, err = p.scalar(v); err == nil {
				if u, e := url.Parse(x.Resource); e != nil || !u.IsAbs() || u.Fragment != "" {
					err = p.errf(v, "resource %q must be an absolute URI without a fragment (RFC 8707)", x.Resource)
				}
			}
		case "scopes":
			its, e := p.items(v)
			if e != nil {
				return e
			}
			for _, s := range its {
				if s.Value == "" || strings.ContainsAny(s.Value, " \"\\") || !printableASCII(s.Value) {
					return p.errf(s, "bad scope %q", s.Value)
				}
				x.Scopes = append(x.Scopes, s.Value)
			}
		case "requested_token_type", "subject_token_type":
			var s string
			if s, err = p.scalar(v); err != nil {
				return err
			}
			if u, e := url.Parse(s); e != nil || !u.IsAbs() {
				return p.errf(v, "%s %q must be a token type URI such as %s", k.Value, s, TokenTypeAccess)
			}
			if k.Value == "subject_token_type" {
				x.SubjectTokenType = s
			} else {
				x.RequestedTokenType = s
			}
		case "max_ttl":
			d, e := time.ParseDuration(v.Value)
			if e != nil || d < time.Second || d > 24*time.Hour {
				return p.errf(v, "bad max_ttl %q (a duration from 1s to 24h)", v.Value)
			}
			x.MaxTTL = d
		default:
			err = p.errf(k, "unknown token_exchange key %q (want token_url, client_id, client_secret, client_auth, audience, resource, scopes, requested_token_type, subject_token_type, max_ttl)", k.Value)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	switch {
	case urlNode == nil:
		return nil, p.errf(v, "token_exchange needs a token_url")
	case x.ClientID == "":
		return nil, p.errf(v, "token_exchange needs a client_id")
	case secretNode == nil:
		return nil, p.errf(v, "token_exchange needs a client_secret (the name of a secret): agentg authenticates to the STS")
	}
	h := sha256.New()
	for _, s := range []string{x.TokenURL, x.ClientID, x.ClientSecret, x.Audience, x.Resource, strings.Join(x.Scopes, " "),
		x.RequestedTokenType, x.SubjectTokenType} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	x.Key = hex.EncodeToString(h.Sum(nil)[:12])
	return x, nil
}

// checkTokenURL accepts an https URL with a valid host, no user info and
// no fragment: the STS gets a client secret and the agent's token.
func (p *parser) checkTokenURL(v *yaml.Node, s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" {
		return p.errf(v, "token_url %q must be an https URL (no user info, no fragment)", s)
	}
	if _, err := addr.ParseAuthority(u.Host, 443); err != nil {
		return p.errf(v, "token_url %q: %v", s, err)
	}
	return nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// exchangeUnreachable warns (agentg check) about a token_exchange binding
// whose STS the policy does not let agentg's own calls reach: every
// request the binding matches would be refused 502.
func (w *warner) exchangeUnreachable(b *Binding) {
	if b.Kind != InjectExchange {
		return
	}
	u, err := url.Parse(b.Exchange.TokenURL)
	if err != nil {
		return
	}
	h, err := addr.ParseAuthority(u.Host, 443)
	if err != nil {
		return
	}
	if d := w.e.Host(SelfAgent, h); !d.Allowed() {
		w.add(b.Source, "binding %s exchanges tokens at %s, which rule %s denies to agentg's own calls: every request it matches would be refused (allow the host with agents: [%s])",
			b.ID, h, d.Rule, SelfAgent)
	}
}

package rules

import (
	"context"
	"net/url"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/agentg/agentg/creds"
	"github.com/agentg/agentg/creds/oauth"
)

// A binding's oauth key (issue 16, OAuth for MCP servers): agentg is the
// OAuth client of the MCP server the binding names, and attaches the
// access token it obtained (creds/oauth) instead of a secret:
//
//	- id: jira
//	  host: mcp.jira.example
//	  path: /mcp
//	  oauth:
//	    grant: authorization_code          # default; or client_credentials
//	    client_id: agentg-prod             # pre-registered; else metadata document or registration
//	    client_secret: jira-client-secret  # a secret of the secrets section
//	    private_key: jira-jwt-key          # PEM, for private_key_jwt
//	    client_metadata_url: https://agentg.example/client.json
//	    scopes: [mcp:read]                 # asked for beside what the server challenges for
//	    token_auth: auto                   # client_secret_basic, client_secret_post, none, private_key_jwt
//	    resource: https://mcp.jira.example/mcp  # to connect before any request
//	    issuer: https://auth.jira.example  # the AS a pre-registered client belongs to
//
// Parsing only: the broker does every request, on the exchange path or
// when a person connects.

// oauthInject parses a binding's oauth mapping into b.OAuth and returns
// the secret names it uses.
func (p *parser) oauthInject(v *yaml.Node, b *Binding) ([]*yaml.Node, error) {
	c := &oauth.Config{Grant: oauth.AuthorizationCode}
	var named []*yaml.Node
	secretName := func(v *yaml.Node) (string, error) {
		s, err := p.scalar(v)
		if err == nil && !creds.ValidName(s) {
			err = p.errf(v, "bad secret name %q", s)
		}
		named = append(named, v)
		return s, err
	}
	err := p.eachKey(v, func(k, v *yaml.Node) (err error) {
		switch k.Value {
		case "grant":
			var s string
			if s, err = p.scalar(v); err != nil {
				return err
			}
			switch s {
			case "authorization_code":
				c.Grant = oauth.AuthorizationCode
			case "client_credentials":
				c.Grant = oauth.ClientCredentials
			default:
				return p.errf(v, "unknown grant %q (want authorization_code or client_credentials)", s)
			}
		case "client_id":
			if c.ClientID, err = p.scalar(v); err == nil && (c.ClientID == "" || strings.ContainsAny(c.ClientID, "\r\n\x00")) {
				err = p.errf(v, "bad client_id %q", c.ClientID)
			}
		case "client_secret":
			c.ClientSecret, err = secretName(v)
		case "private_key":
			c.PrivateKey, err = secretName(v)
		case "client_metadata_url":
			if c.ClientMetadataURL, err = p.scalar(v); err == nil {
				u, e := url.Parse(c.ClientMetadataURL)
				if e != nil || u.Scheme != "https" || u.Host == "" || u.Path == "" || u.Path == "/" || u.Fragment != "" {
					err = p.errf(v, "client_metadata_url %q must be an https URL with a path", c.ClientMetadataURL)
				}
			}
		case "scopes":
			its, e := p.items(v)
			if e != nil {
				return e
			}
			for _, it := range its {
				if it.Value == "" || strings.ContainsAny(it.Value, " \"\\\r\n\x00") {
					return p.errf(it, "bad scope %q", it.Value)
				}
				c.Scopes = append(c.Scopes, it.Value)
			}
		case "token_auth":
			if c.TokenAuth, err = p.scalar(v); err == nil && !oauth.ValidTokenAuth(c.TokenAuth) {
				err = p.errf(v, "unknown token_auth %q (want auto, client_secret_basic, client_secret_post, none or private_key_jwt)", c.TokenAuth)
			}
		case "resource", "issuer":
			var s string
			if s, err = p.scalar(v); err != nil {
				return err
			}
			u, e := url.Parse(s)
			if e != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "" {
				return p.errf(v, "%s %q must be an absolute http(s) URL without a fragment", k.Value, s)
			}
			if k.Value == "resource" {
				c.Resource = s
			} else {
				c.Issuer = s
			}
		default:
			err = p.errf(k, "unknown oauth key %q (want grant, client_id, client_secret, private_key, client_metadata_url, scopes, token_auth, resource or issuer)", k.Value)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	switch {
	case c.Grant == oauth.ClientCredentials && c.ClientID == "":
		return nil, p.errf(v, "the client_credentials grant needs a client_id (and a client_secret or private_key)")
	case c.Grant == oauth.ClientCredentials && c.ClientSecret == "" && c.PrivateKey == "":
		return nil, p.errf(v, "the client_credentials grant needs a client_secret or a private_key")
	case (c.ClientSecret != "" || c.PrivateKey != "") && c.ClientID == "":
		return nil, p.errf(v, "client_secret and private_key belong to a pre-registered client: add its client_id")
	case c.TokenAuth == oauth.AuthJWT && c.PrivateKey == "":
		return nil, p.errf(v, "token_auth private_key_jwt needs a private_key")
	case (c.TokenAuth == oauth.AuthBasic || c.TokenAuth == oauth.AuthPost) && c.ClientSecret == "":
		return nil, p.errf(v, "token_auth %s needs a client_secret", c.TokenAuth)
	}
	b.OAuth = c
	return named, nil
}

// OAuthBinding is b as the OAuth broker is asked about it: its settings,
// and its secrets read from this load's store.
func (c *Credentials) OAuthBinding(b *Binding) oauth.Binding {
	store := c.store
	return oauth.Binding{ID: b.ID, Config: b.OAuth, Secret: func(ctx context.Context, name string) (string, error) {
		s, err := store.Get(ctx, name)
		if err != nil {
			return "", err
		}
		return s.Reveal(), nil
	}}
}

// OAuthByID returns the oauth binding with that id, or nil.
func (c *Credentials) OAuthByID(id string) *Binding {
	i := slices.IndexFunc(c.bindings, func(b Binding) bool { return b.ID == id && b.Kind == InjectOAuth })
	if i < 0 {
		return nil
	}
	return &c.bindings[i]
}

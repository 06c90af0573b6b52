package oauth

import (
	"context"
	"fmt"
	"strings"
)

// Grant is how a binding obtains tokens.
type Grant uint8

const (
	// AuthorizationCode: a person connects the server once (PKCE,
	// refresh tokens afterwards).
	AuthorizationCode Grant = iota + 1
	// ClientCredentials: machine to machine, no person.
	ClientCredentials
)

func (g Grant) String() string {
	switch g {
	case AuthorizationCode:
		return "authorization_code"
	case ClientCredentials:
		return "client_credentials"
	}
	return "unknown"
}

// Token endpoint authentication methods (RFC 8414, RFC 7523).
const (
	AuthAuto  = "auto"
	AuthBasic = "client_secret_basic"
	AuthPost  = "client_secret_post"
	AuthNone  = "none"
	AuthJWT   = "private_key_jwt"
)

// ValidTokenAuth reports whether s names a token_auth the broker knows.
func ValidTokenAuth(s string) bool {
	switch s {
	case AuthAuto, AuthBasic, AuthPost, AuthNone, AuthJWT:
		return true
	}
	return false
}

// Config is one binding's oauth settings, as the policy writes them
// (rules parses them). Secrets are named, never held.
type Config struct {
	Grant Grant
	// ClientID is a pre-registered client; "" lets the broker use a
	// client ID metadata document or dynamic registration.
	ClientID string
	// ClientSecret and PrivateKey name secrets of the policy's
	// credentials section: the client's secret, and the PEM private key
	// of private_key_jwt (RFC 7523).
	ClientSecret string
	PrivateKey   string
	// ClientMetadataURL is agentg's client ID metadata document (an
	// https URL with a path), used where the authorization server says
	// client_id_metadata_document_supported.
	ClientMetadataURL string
	// Scopes are always requested, beside those the server challenges
	// for.
	Scopes []string
	// TokenAuth is the token endpoint authentication method; "" or auto
	// picks from what the server supports and what the binding holds.
	TokenAuth string
	// Resource is the MCP server's URL, for connecting before any request
	// went to it; "" takes the URL of the requests the binding matched.
	Resource string
	// Issuer pins the authorization server a pre-registered client
	// belongs to; "" accepts the one the server names.
	Issuer string
}

// key is what identifies the settings: state kept under other settings
// is not reused.
func (c *Config) key() string {
	return fmt.Sprintf("%d|%s|%s|%s|%s|%s|%s|%s|%s", c.Grant, c.ClientID, c.ClientSecret, c.PrivateKey,
		c.ClientMetadataURL, strings.Join(c.Scopes, " "), c.TokenAuth, c.Resource, c.Issuer)
}

// SecretFunc resolves a secret of the policy by name (creds.Store.Get
// of the policy in force, revealed).
type SecretFunc func(ctx context.Context, name string) (string, error)

// Binding is what the broker is asked about: a binding's id, settings,
// and how to read the secrets it names.
type Binding struct {
	ID     string
	Config *Config
	Secret SecretFunc
}

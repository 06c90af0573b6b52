package rules

import (
	"context"
	"testing"

	"github.com/agentg/agentg/creds/oauth"
)

func TestCredentialsOAuth(t *testing.T) {
	e := mustLoad(t, `hosts:
  - allow: .example.test
credentials:
  secrets:
    cs: {insecure_inline: the-client-secret}
    key: {env: AGENTG_RULES_TEST_KEY}
  bindings:
    - id: jira
      host: mcp.example.test
      path: /mcp
      oauth: {client_metadata_url: "https://agentg.example/client.json", scopes: [mcp:read]}
    - id: m2m
      host: m2m.example.test
      oauth: {grant: client_credentials, client_id: agentg, client_secret: cs, token_auth: client_secret_post}
    - id: jwt
      host: jwt.example.test
      oauth: {grant: client_credentials, client_id: agentg, private_key: key, token_auth: private_key_jwt, issuer: "https://as.example"}
`, nil)
	c := e.Credentials()
	b := c.Match("", host(t, "mcp.example.test", 443), "https", "/mcp")
	if b == nil || b.ID != "jira" || b.Kind != InjectOAuth || b.OAuth.Grant != oauth.AuthorizationCode ||
		b.OAuth.ClientMetadataURL != "https://agentg.example/client.json" || len(b.OAuth.Scopes) != 1 || b.Secrets != "oauth:jira" {
		t.Fatalf("jira binding = %+v", b)
	}
	m := c.OAuthByID("m2m")
	if m == nil || m.OAuth.Grant != oauth.ClientCredentials || m.OAuth.ClientSecret != "cs" || m.OAuth.TokenAuth != oauth.AuthPost {
		t.Fatalf("m2m binding = %+v", m)
	}
	v, err := c.OAuthBinding(m).Secret(context.Background(), "cs")
	if err != nil || v != "the-client-secret" {
		t.Fatalf("the binding's secret = %q, %v", v, err)
	}
	if j := c.OAuthByID("jwt"); j == nil || j.OAuth.PrivateKey != "key" || j.OAuth.Issuer != "https://as.example" {
		t.Fatalf("jwt binding = %+v", j)
	}
	if c.OAuthByID("nope") != nil {
		t.Fatal("OAuthByID found a binding the policy does not have")
	}
}

func TestCredentialsOAuthLoadErrors(t *testing.T) {
	sec := "credentials:\n  secrets:\n    cs: {env: T}\n  bindings:\n"
	checkLoadErrors(t, []loadErrorCase{
		{"no id", sec + "    - {host: a.test, oauth: {}}\n", ":5: an oauth binding needs an id"},
		{"with secret", sec + "    - {id: x, host: a.test, secret: cs, oauth: {}}\n", ":5: an oauth binding attaches the token"},
		{"two injects", sec + "    - {id: x, host: a.test, oauth: {}, query: k}\n", ":5: a binding injects one way: oauth and query"},
		{"unknown key", sec + "    - {id: x, host: a.test, oauth: {scope: a}}\n", `:5: unknown oauth key "scope"`},
		{"bad grant", sec + "    - {id: x, host: a.test, oauth: {grant: password}}\n", `:5: unknown grant "password"`},
		{"cc without client", sec + "    - {id: x, host: a.test, oauth: {grant: client_credentials}}\n", ":5: the client_credentials grant needs a client_id"},
		{"cc without secret", sec + "    - {id: x, host: a.test, oauth: {grant: client_credentials, client_id: c}}\n", ":5: the client_credentials grant needs a client_secret or a private_key"},
		{"secret without client", sec + "    - {id: x, host: a.test, oauth: {client_secret: cs}}\n", ":5: client_secret and private_key belong to a pre-registered client"},
		{"undefined secret", sec + "    - {id: x, host: a.test, oauth: {client_id: c, client_secret: nope}}\n", `:5: secret "nope" is not defined`},
		{"jwt without key", sec + "    - {id: x, host: a.test, oauth: {client_id: c, client_secret: cs, token_auth: private_key_jwt}}\n", ":5: token_auth private_key_jwt needs a private_key"},
		{"basic without secret", sec + "    - {id: x, host: a.test, oauth: {token_auth: client_secret_basic}}\n", ":5: token_auth client_secret_basic needs a client_secret"},
		{"bad token_auth", sec + "    - {id: x, host: a.test, oauth: {token_auth: tls_client_auth}}\n", `:5: unknown token_auth "tls_client_auth"`},
		{"http metadata url", sec + "    - {id: x, host: a.test, oauth: {client_metadata_url: \"http://a.test/c.json\"}}\n", ":5: client_metadata_url \"http://a.test/c.json\" must be an https URL with a path"},
		{"metadata url no path", sec + "    - {id: x, host: a.test, oauth: {client_metadata_url: \"https://a.test\"}}\n", ":5: client_metadata_url \"https://a.test\" must be an https URL with a path"},
		{"bad scope", sec + "    - {id: x, host: a.test, oauth: {scopes: [\"a b\"]}}\n", `:5: bad scope "a b"`},
		{"bad resource", sec + "    - {id: x, host: a.test, oauth: {resource: \"a.test/mcp\"}}\n", `:5: resource "a.test/mcp" must be an absolute http(s) URL`},
	})
}

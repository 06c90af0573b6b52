package rules

import (
	"strings"
	"testing"
	"time"
)

func TestTokenExchangeParse(t *testing.T) {
	const head = "credentials:\n  secrets:\n    sts: {env: X}\n  bindings:\n    - host: api.example.test\n"
	ok := head + `      token_exchange:
        token_url: https://sts.example.test:8443/token
        client_id: agentg
        client_secret: sts
        client_auth: post
        audience: api
        resource: https://api.example.test/
        scopes: [read, write]
        max_ttl: 1m
`
	e, err := Parse("policy.yaml", []byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	b := e.Credentials().Bindings()[0]
	x := b.Exchange
	if b.Kind != InjectExchange || x == nil || x.TokenURL != "https://sts.example.test:8443/token" || x.ClientID != "agentg" ||
		x.ClientSecret != "sts" || !x.AuthInParams || x.Audience != "api" || x.Resource != "https://api.example.test/" ||
		strings.Join(x.Scopes, " ") != "read write" || x.MaxTTL != time.Minute || x.RequestedTokenType != TokenTypeAccess ||
		x.SubjectTokenType != TokenTypeAccess || x.Key == "" || b.Secrets != "sts" {
		t.Fatalf("parsed %+v %+v", b, x)
	}
	// Another audience is another cache key.
	e2, _ := Parse("policy.yaml", []byte(strings.Replace(ok, "audience: api", "audience: api2", 1)))
	if e2.Credentials().Bindings()[0].Exchange.Key == x.Key {
		t.Fatal("a changed audience kept the cache key")
	}
	bad := []struct{ name, policy, want string }{
		{"http STS", strings.Replace(ok, "https://sts", "http://sts", 1), "policy.yaml:7: token_url"},
		{"user info", strings.Replace(ok, "https://sts", "https://u:p@sts", 1), "policy.yaml:7: token_url"},
		{"no token_url", strings.Replace(ok, "        token_url: https://sts.example.test:8443/token\n", "", 1), "needs a token_url"},
		{"no client_id", strings.Replace(ok, "        client_id: agentg\n", "", 1), "needs a client_id"},
		{"no client_secret", strings.Replace(ok, "        client_secret: sts\n", "", 1), "needs a client_secret"},
		{"undefined secret", strings.Replace(ok, "client_secret: sts", "client_secret: nope", 1), `policy.yaml:6: secret "nope" is not defined`},
		{"bad auth", strings.Replace(ok, "client_auth: post", "client_auth: jwt", 1), "policy.yaml:10: bad client_auth"},
		{"relative resource", strings.Replace(ok, "resource: https://api.example.test/", "resource: /x", 1), "policy.yaml:12: resource"},
		{"bad scope", strings.Replace(ok, "[read, write]", `["a b"]`, 1), "policy.yaml:13: bad scope"},
		{"bad ttl", strings.Replace(ok, "max_ttl: 1m", "max_ttl: 0s", 1), "policy.yaml:14: bad max_ttl"},
		{"bad token type", strings.Replace(ok, "max_ttl: 1m", "subject_token_type: jwt", 1), "policy.yaml:14: subject_token_type"},
		{"unknown key", strings.Replace(ok, "max_ttl: 1m", "grant: x", 1), `policy.yaml:14: unknown token_exchange key "grant"`},
		{"with a header", ok + "      header: {name: X, value: \"{{secret}}\"}\n", "a binding injects one way"},
		{"with secret", ok + "      secret: sts\n", "client_secret names the STS's secret"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("policy.yaml", []byte(tc.policy))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// agentg check warns about an STS agentg's own calls may not reach, and
// not about one they may.
func TestTokenExchangeWarning(t *testing.T) {
	pol := func(hosts string) string {
		return "hosts:\n" + hosts + "credentials:\n  secrets:\n    sts: {env: X}\n  bindings:\n    - id: obo\n      host: api.example.test\n" +
			"      token_exchange: {token_url: \"https://sts.example.test/t\", client_id: a, client_secret: sts}\n"
	}
	for _, tc := range []struct {
		name, hosts string
		warn        bool
	}{
		{"STS allowed to agentg", "  - allow: sts.example.test\n    agents: [agentg]\n", false},
		{"STS allowed to all", "  - allow: .example.test\n", false},
		{"STS allowed to another agent only", "  - allow: sts.example.test\n    agents: [coder]\n", true},
		{"STS not allowed", "  - allow: api.example.test\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Parse("policy.yaml", []byte(pol(tc.hosts)))
			if err != nil {
				t.Fatal(err)
			}
			got := false
			for _, w := range e.Warnings() {
				if strings.Contains(w.Text, "binding obo exchanges tokens at sts.example.test:443") {
					got = true
				}
			}
			if got != tc.warn {
				t.Fatalf("warned %v, want %v: %v", got, tc.warn, e.Warnings())
			}
		})
	}
}

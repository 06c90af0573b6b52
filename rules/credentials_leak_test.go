package rules

import (
	"strings"
	"testing"
)

func TestCredentialsBinds(t *testing.T) {
	e := mustLoad(t, credPolicy, map[string]string{"jira.txt": "jira-value\n"})
	c := e.Credentials()
	tests := []struct {
		secret, agent, host, scheme, path string
		want                              bool
	}{
		{"gh", "coder", "api.example.test", "https", "/repos/x", true},
		{"gh", "other", "api.example.test", "https", "/repos/x", false}, // agents
		{"gh", "coder", "api.example.test", "https", "/gists", false},   // path
		{"gh", "coder", "api.example.test", "http", "/repos/x", false},  // https only
		{"gh", "coder", "evil.example.test", "https", "/repos/x", false},
		{"gh", "any", "two.example.test", "https", "/", true}, // named by a template
		{"vault", "any", "two.example.test", "https", "/", true},
		{"vault", "any", "api.example.test", "https", "/repos/x", false},
		{"jira", "a", "x.jira.example.test", "https", "/", true},
		{"jira", "a", "jira.example.test", "https", "/", false},
		{"demo", "a", "q.example.test", "http", "/", true}, // insecure_http
		{"demo", "a", "a.qq.example.test", "https", "/", true},
		{"nope", "a", "q.example.test", "https", "/", false},
	}
	for _, tt := range tests {
		q := CredentialUse{Secret: tt.secret, Agent: tt.agent, Host: host(t, tt.host, 443), Scheme: tt.scheme, Path: tt.path}
		if got := c.Binds(q); got != tt.want {
			t.Errorf("%+v: %v, want %v", tt, got, tt.want)
		}
	}
	if (&Credentials{}).Binds(CredentialUse{Secret: "gh", Host: host(t, "api.example.test", 443), Scheme: "https"}) {
		t.Error("no credentials section binds")
	}
	q := CredentialUse{Secret: "demo", Agent: "a", Host: host(t, "q.example.test", 443), Scheme: "https", Path: "/"}
	if n := testing.AllocsPerRun(100, func() { c.Binds(q) }); n != 0 {
		t.Errorf("Binds allocates %v", n)
	}
}

func TestCredentialsShortInlineWarning(t *testing.T) {
	e := mustLoad(t, `credentials:
  secrets:
    short: {insecure_inline: abc}
    long: {insecure_inline: long-enough-value}
  bindings:
    - {host: a.example.test, secret: short, query: k}
    - {host: a.example.test, secret: long, query: k}
`, nil)
	var got []string
	for _, w := range e.Warnings() {
		if strings.Contains(w.Text, "leak guard") {
			got = append(got, w.String())
		}
	}
	if len(got) != 1 || !strings.Contains(got[0], "secret short is shorter than 8 bytes") || !strings.Contains(got[0], ":3") {
		t.Fatalf("warnings %q", got)
	}
}

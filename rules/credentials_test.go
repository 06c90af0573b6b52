package rules

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const credPolicy = `hosts:
  - allow: .example.test
credentials:
  secrets:
    gh: {env: AGENTG_RULES_TEST_TOKEN}
    jira: {file: jira.txt}
    vault: {command: [printf, "%s", v], timeout: 2s}
    demo: {insecure_inline: inline-value}
  bindings:
    - id: gh
      host: api.example.test
      path: /repos/**
      agents: [coder]
      secret: gh
      header: {name: authorization, value: "Bearer {{secret}}"}
    - {host: "*.jira.example.test", secret: jira, basic: {user: bot}}
    - {hosts: [q.example.test, .qq.example.test], secret: demo, query: api_key, insecure_http: true}
    - {host: two.example.test, header: {name: X-Keys, value: "{{secret gh}}:{{secret vault}}"}}
`

func TestCredentialsMatch(t *testing.T) {
	e := mustLoad(t, credPolicy, map[string]string{"jira.txt": "jira-value\n"})
	c := e.Credentials()
	if !c.Defined() || len(c.Bindings()) != 4 {
		t.Fatalf("bindings = %v", c.Bindings())
	}
	tests := []struct {
		agent, host, scheme, path string
		want                      string // binding id, "" none
	}{
		{"coder", "api.example.test", "https", "/repos/a/b", "gh"},
		{"coder", "API.example.test", "https", "/repos/a", "gh"},
		{"other", "api.example.test", "https", "/repos/a", ""},
		{"coder", "api.example.test", "https", "/user", ""},
		{"coder", "api.example.test", "http", "/repos/a", ""}, // clear text: not unless insecure_http
		{"", "x.jira.example.test", "https", "/", "policy.yaml:16"},
		{"", "jira.example.test", "https", "/", ""}, // *. is below only
		{"", "q.example.test", "http", "/", "policy.yaml:17"},
		{"", "a.qq.example.test", "https", "/", "policy.yaml:17"},
		{"", "other.example.test", "https", "/", ""},
		{"", "two.example.test", "https", "/", "policy.yaml:18"},
	}
	for _, tt := range tests {
		b := c.Match(tt.agent, host(t, tt.host, 443), tt.scheme, tt.path)
		got := ""
		if b != nil {
			got = b.ID
		}
		if got != tt.want && !(strings.HasPrefix(tt.want, "policy.yaml:") && strings.HasSuffix(got, "/"+tt.want)) {
			t.Errorf("%s %s://%s%s: binding %q, want %q", tt.agent, tt.scheme, tt.host, tt.path, got, tt.want)
		}
	}
	b := c.Bindings()
	if b[0].Header != "Authorization" || b[0].Kind != InjectHeader || b[0].Secrets != "gh" {
		t.Errorf("binding 0 = %+v", b[0])
	}
	if b[1].Kind != InjectBasic || b[1].User != "bot" || b[2].Query != "api_key" || b[3].Secrets != "gh,vault" {
		t.Errorf("bindings = %+v", b)
	}
	if c.Match("", host(t, "127.0.0.1", 443), "https", "/") != nil {
		t.Error("an IP literal matched a binding")
	}
	// A relative file is the policy's neighbour; values resolve lazily.
	s, err := c.Store().Get(context.Background(), "jira")
	if err != nil || s.Reveal() != "jira-value" {
		t.Errorf("jira = %v, %v", s, err)
	}
	if src, _ := c.Store().Source("jira"); !filepath.IsAbs(src.Path) {
		t.Errorf("jira's file %q is not resolved", src.Path)
	}
	if _, err := c.Store().Get(context.Background(), "gh"); err == nil || !strings.Contains(err.Error(), "secret gh (env AGENTG_RULES_TEST_TOKEN)") {
		t.Errorf("unset env: %v", err)
	}
	// agentg check warns about the inline secret, and nowhere shows it.
	found := false
	for _, w := range e.Warnings() {
		if strings.Contains(w.Text, "inline-value") {
			t.Errorf("warning shows the value: %v", w)
		}
		if strings.HasSuffix(w.Source, "policy.yaml:8") && strings.Contains(w.Text, "secret demo") {
			found = true
		}
	}
	if !found {
		t.Errorf("no insecure_inline warning in %v", e.Warnings())
	}
	if strings.Contains(fmt.Sprintf("%v %+v %#v", b, b, c), "inline-value") {
		t.Error("printing the bindings shows an inline value")
	}
}

func TestCredentialsNone(t *testing.T) {
	e := mustLoad(t, "hosts:\n  - allow: a.test\n", nil)
	if e.Credentials().Defined() || e.Credentials().Match("", host(t, "a.test", 443), "https", "/") != nil {
		t.Error("a policy without credentials binds")
	}
}

func TestCredentialsMatchNoAlloc(t *testing.T) {
	e := mustLoad(t, credPolicy, map[string]string{"jira.txt": "x"})
	c, h := e.Credentials(), host(t, "api.example.test", 443)
	if n := testing.AllocsPerRun(100, func() { c.Match("coder", h, "https", "/repos/a/b") }); n != 0 {
		t.Errorf("Match allocates %v times", n)
	}
}

func TestCredentialsLoadErrors(t *testing.T) {
	sec := "credentials:\n  secrets:\n    gh: {env: T}\n  bindings:\n"
	checkLoadErrors(t, []loadErrorCase{
		{"not a mapping", "credentials: [x]\n", ":1: expected a mapping"},
		{"unknown key", "credentials:\n  secret: {}\n", `:2: unknown credentials key "secret"`},
		{"bad secret name", "credentials:\n  secrets:\n    a/b: {env: T}\n", `:3: bad secret name "a/b"`},
		{"two sources", "credentials:\n  secrets:\n    a: {env: T, file: f}\n", ":3: a secret needs exactly one of"},
		{"no source", "credentials:\n  secrets:\n    a: {}\n", ":3: a secret needs exactly one of"},
		{"unknown source", "credentials:\n  secrets:\n    a: {vault: x}\n", `:3: unknown secret source "vault"`},
		{"timeout without command", "credentials:\n  secrets:\n    a: {env: T, timeout: 1s}\n", ":3: timeout applies to a command only"},
		{"bad timeout", "credentials:\n  secrets:\n    a:\n      command: [x]\n      timeout: forever\n", `:5: bad timeout "forever"`},
		{"empty inline", "credentials:\n  secrets:\n    a: {insecure_inline: \"\"}\n", ":3: empty insecure_inline value"},
		{"bindings not a list", "credentials:\n  bindings: {}\n", ":2: credentials bindings must be a list"},
		{"no host", sec + "    - {secret: gh, query: k}\n", ":5: a binding needs a host"},
		{"no inject", sec + "    - {host: a.test, secret: gh}\n", ":5: a binding needs one of header, basic, query or oauth"},
		{"two injects", sec + "    - host: a.test\n      secret: gh\n      query: k\n      basic: {user: u}\n", ":8: a binding injects one way: query and basic"},
		{"undefined secret", sec + "    - host: a.test\n      secret: nope\n      query: k\n", `:6: secret "nope" is not defined`},
		{"undefined in template", sec + "    - host: a.test\n      header: {name: X, value: \"{{secret nope}}\"}\n", `:6: secret "nope" is not defined`},
		{"template needs secret", sec + "    - host: a.test\n      header: {name: X, value: \"Bearer {{secret}}\"}\n", ":6: the template's {{secret}} needs the binding's secret"},
		{"template no placeholder", sec + "    - host: a.test\n      secret: gh\n      header: {name: X, value: fixed}\n", ":7: the header's value names no secret"},
		{"template other braces", sec + "    - host: a.test\n      secret: gh\n      header: {name: X, value: \"{{env HOME}}\"}\n", ":7: template \"{{env HOME}}\": {{env HOME}} is not a placeholder"},
		{"template unclosed", sec + "    - host: a.test\n      secret: gh\n      header:\n        name: X\n        value: \"Bearer {{secret\"\n", ":9: template \"Bearer {{secret\": unclosed {{"},
		{"bad header", sec + "    - host: a.test\n      secret: gh\n      header: {name: \"X Y\", value: \"{{secret}}\"}\n", `:7: bad header name "X Y"`},
		{"host header", sec + "    - host: a.test\n      secret: gh\n      header: {name: host, value: \"{{secret}}\"}\n", ":7: a binding cannot set Host"},
		{"header no value", sec + "    - host: a.test\n      secret: gh\n      header: {name: X}\n", ":7: a header needs a name and a value"},
		{"basic colon", sec + "    - host: a.test\n      secret: gh\n      basic: {user: \"a:b\"}\n", ":7: a Basic user name cannot contain ':'"},
		{"bad query", sec + "    - host: a.test\n      secret: gh\n      query: \"a=b\"\n", `:7: bad query parameter name "a=b"`},
		{"ip host", sec + "    - host: 10.0.0.1\n      secret: gh\n      query: k\n", `:5: IP literal "10.0.0.1" in a binding`},
		{"bad pattern", sec + "    - host: a.*.test\n      secret: gh\n      query: k\n", `:5: bad host pattern "a.*.test"`},
		{"unknown binding key", sec + "    - host: a.test\n      secret: gh\n      query: k\n      ports: [443]\n", `:8: unknown binding key "ports"`},
		{"bad agents", sec + "    - host: a.test\n      secret: gh\n      query: k\n      agents: [\"a b\"]\n", `:8: bad agent name "a b"`},
		{"duplicate id", sec + "    - {id: x, host: a.test, secret: gh, query: k}\n    - {id: x, host: b.test, secret: gh, query: k}\n", `:6: binding id "x" used twice (also at`},
	})
}

// A secret file is re-read when the policy is reloaded, and is watched
// with it, so that a rotated token reloads the policy.
func TestCredentialsFileReload(t *testing.T) {
	path := writePolicy(t, "credentials:\n  secrets:\n    f: {file: tok}\n", map[string]string{"tok": "one\n"})
	e, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	tok := filepath.Join(filepath.Dir(path), "tok")
	if !slices.Contains(fileSet(path, e), tok) {
		t.Errorf("the secret file is not watched: %v", fileSet(path, e))
	}
	l := NewLive(path, e)
	get := func() string {
		s, err := l.Engine().Credentials().Store().Get(context.Background(), "f")
		if err != nil {
			t.Fatal(err)
		}
		return s.Reveal()
	}
	if got := get(); got != "one" {
		t.Fatalf("got %q", got)
	}
	if err := os.WriteFile(tok, []byte("two\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := get(); got != "one" {
		t.Errorf("read again without a reload: %q", got)
	}
	if err := l.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := get(); got != "two" {
		t.Errorf("after the reload: %q", got)
	}
}

func TestCredentialsWarnUnintercepted(t *testing.T) {
	e := mustLoad(t, `hosts:
  - allow: [a.test, b.test]
intercept: [a.test]
credentials:
  secrets:
    s: {env: X}
  bindings:
    - {id: ok, host: a.test, secret: s, query: k}
    - {id: blind, host: b.test, secret: s, query: k}
`, nil)
	var got []string
	for _, w := range e.Warnings() {
		if strings.Contains(w.Text, "binding") {
			got = append(got, w.String())
		}
	}
	if len(got) != 1 || !strings.Contains(got[0], "policy.yaml:9: binding blind never attaches secret s") || !strings.Contains(got[0], "b.test") {
		t.Errorf("warnings = %q", got)
	}
}

package rules

import (
	"strings"
	"testing"
)

// ruleIs compares a rule id, a line rule by the policy file's base name.
func ruleIs(got, want string) bool { return got == want || strings.HasSuffix(got, "/"+want) }

func TestMCPReadsLoadErrors(t *testing.T) {
	checkLoadErrors(t, []loadErrorCase{
		{"prompts not a list", "mcp:\n  prompts: x\n", `:2: mcp prompts must be a list of rules`},
		{"prompt without dot", "mcp:\n  prompts:\n    - deny: jira\n", `:3: bad prompt pattern "jira": no dot`},
		{"prompt annotation", "mcp:\n  prompts:\n    - deny: a.b\n      when:\n        - annotation: destructiveHint\n", `:5: prompt rules take arg conditions only`},
		{"prompt unknown key", "mcp:\n  prompts:\n    - deny: a.b\n      uri: x\n", `:4: unknown prompt rule key "uri"`},
		{"prompt ports", "mcp:\n  prompts:\n    - deny: a.b\n      ports: [443]\n", `:4: ports do not apply to prompt rules`},
		{"resources not a list", "mcp:\n  resources: x\n", `:2: mcp resources must be a list of rules`},
		{"resource server with a dot", "mcp:\n  resources:\n    - deny: files.x\n", `:3: bad server "files.x" in a resource rule`},
		{"resource empty uri", "mcp:\n  resources:\n    - deny: files\n      uri: \"\"\n", `:4: empty uri glob`},
		{"resource uri space", "mcp:\n  resources:\n    - deny: files\n      uri: \"file:///a b\"\n", `:4: uri glob "file:///a b" has a space`},
		{"resource unknown key", "mcp:\n  resources:\n    - deny: files\n      when: []\n", `:4: unknown resource rule key "when"`},
		{"resource important allow", "mcp:\n  resources:\n    - allow: files\n      important: true\n", `:3: important applies to deny rules only`},
	})
}

const readsTestPolicy = `
agents:
  - name: builder
    password: x
mcp:
  default: deny
  servers:
    - name: jira
      url: jira.test
    - name: files
      url: files.test
  prompts:
    - allow: "jira.*"
    - deny: "jira.admin_*"
      id: no-admin-prompts
    - allow: jira.admin_help
    - deny: "jira.summarise"
      id: no-secret-summary
      when:
        - arg: /topic
          matches: secret
  resources:
    - allow: files
      uri: "file:///srv/**"
    - deny: files
      uri: "file:///srv/private/*"
      id: no-private
    - allow: files
      uri: "file:///srv/private/readme"
    - deny: "*"
      uri: "file:///etc/*"
      id: no-etc
      important: true
    - allow: files
      uri: "file:///etc/hostname"
      agents: [builder]
`

func TestPromptDecisions(t *testing.T) {
	e := mustLoad(t, readsTestPolicy, nil)
	cases := []struct {
		server, prompt string
		args           ArgLookup
		allow          bool
		rule           string
	}{
		{"jira", "create_issue", nil, true, "policy.yaml:13"},
		{"jira", "admin_reset", nil, false, "no-admin-prompts"},
		{"jira", "ADMIN_reset", nil, false, "no-admin-prompts"}, // a deny regardless of case
		{"jira", "admin_help", nil, true, "policy.yaml:16"},
		{"jira", "summarise", argMap{"/topic": str("the secret plan")}, false, "no-secret-summary"},
		{"jira", "summarise", argMap{"/topic": str("lunch")}, true, "policy.yaml:13"},
		{"files", "anything", nil, false, "mcp:default"},
	}
	for _, c := range cases {
		d := e.MCP().Prompt(PromptGet{Server: c.server, Prompt: c.prompt, Args: c.args})
		if d.Allowed() != c.allow || !ruleIs(d.Rule, c.rule) {
			t.Errorf("Prompt(%s.%s) = %s by %s (%s), want allow=%v by %s", c.server, c.prompt, d.Outcome(), d.Rule, d.Reason, c.allow, c.rule)
		}
	}
}

func TestResourceDecisions(t *testing.T) {
	e := mustLoad(t, readsTestPolicy, nil)
	cases := []struct {
		agent, server, uri string
		allow              bool
		rule               string
	}{
		{"", "files", "file:///srv/data/a.txt", true, "policy.yaml:23"},
		{"", "files", "file:///srv/private/key", false, "no-private"},
		{"", "files", "file:///srv/private/readme", true, "policy.yaml:28"},
		{"", "files", "file:///srv/Private/key", false, "no-private"},            // a deny regardless of case
		{"", "files", "file:///srv/%70rivate/key", false, "no-private"},          // percent-escapes decoded
		{"", "files", "file:///srv/data/../private/key", false, "no-private"},    // dot segments resolved
		{"", "files", "file://localhost/srv/private/key", false, "no-private"},   // file://localhost is file://
		{"", "files", "FILE:///srv//private/key", false, "no-private"},           // scheme case, repeated slashes
		{"", "files", "file:///srv/../etc/shadow", false, "no-etc"},              // an allow needs both readings
		{"", "files", "file:///srv/data/..%2F..%2Fhome/x", false, "mcp:default"}, // escapes the allow: default
		{"", "files", "file:///etc/hostname", false, "no-etc"},
		{"builder", "files", "file:///etc/hostname", false, "no-etc"}, // important beats the more specific allow
		{"", "jira", "file:///etc/passwd", false, "no-etc"},
		{"", "jira", "file:///srv/data/a.txt", false, "mcp:default"},
		{"", "files", "https://example.test/", false, "mcp:default"},
	}
	for _, c := range cases {
		d := e.MCP().Resource(ResourceRead{Agent: c.agent, Server: c.server, URI: c.uri})
		if d.Allowed() != c.allow || !ruleIs(d.Rule, c.rule) {
			t.Errorf("Resource(%s %s) = %s by %s (%s), want allow=%v by %s", c.server, c.uri, d.Outcome(), d.Rule, d.Reason, c.allow, c.rule)
		}
	}
}

// Without a prompts or resources key, prompts and resources are not
// ruled, whatever mcp.default says; an empty key rules them by default.
func TestReadsNotRuled(t *testing.T) {
	e := mustLoad(t, "mcp:\n  default: deny\n", nil)
	if d := e.MCP().Prompt(PromptGet{Server: "a", Prompt: "p"}); !d.Allowed() || d.Rule != "mcp:method" {
		t.Errorf("no prompts key: %s by %s, want allow by mcp:method", d.Outcome(), d.Rule)
	}
	if d := e.MCP().Resource(ResourceRead{Server: "a", URI: "file:///x"}); !d.Allowed() || d.Rule != "mcp:method" {
		t.Errorf("no resources key: %s by %s, want allow by mcp:method", d.Outcome(), d.Rule)
	}
	e = mustLoad(t, "mcp:\n  default: deny\n  prompts: []\n  resources:\n", nil)
	if d := e.MCP().Prompt(PromptGet{Server: "a", Prompt: "p"}); d.Allowed() || d.Rule != "mcp:default" {
		t.Errorf("empty prompts key: %s by %s, want deny by mcp:default", d.Outcome(), d.Rule)
	}
	if d := e.MCP().Resource(ResourceRead{Server: "a", URI: "file:///x"}); d.Allowed() || d.Rule != "mcp:default" {
		t.Errorf("empty resources key: %s by %s, want deny by mcp:default", d.Outcome(), d.Rule)
	}
}

func TestCanonicalURI(t *testing.T) {
	for in, want := range map[string]string{
		"file:///etc/passwd":              "file:///etc/passwd",
		"FILE://LocalHost/etc/./passwd":   "file:///etc/passwd",
		"file:///a/b/../c/":               "file:///a/c/",
		"file:///a%2Fb":                   "file:///a/b",
		"https://Example.TEST/a//b?q=1#f": "https://example.test/a/b?q=1#f",
		"urn:isbn:0451450523":             "urn:isbn:0451450523",
		"not a uri %zz":                   "not a uri %zz",
		"db://table/..":                   "db://table/",
	} {
		if got := CanonicalURI(in); got != want {
			t.Errorf("CanonicalURI(%q) = %q, want %q", in, got, want)
		}
	}
}

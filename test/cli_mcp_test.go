package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLICheckTool runs agentg check --tool against a policy with an mcp
// section: the verdict, the rule and its source, and the obligations.
func TestCLICheckTool(t *testing.T) {
	dir := t.TempDir()
	pol := filepath.Join(dir, "mcp.yaml")
	os.WriteFile(pol, []byte(`default: allow
agents:
  - name: builder
    password: s3cret
mcp:
  unknown_servers: report
  servers:
    - name: jira
      url: mcp.atlassian.example/v1/**
    - name: shell
      url: shell.example
  tools:
    - deny: "jira.delete_*"
      id: no-jira-delete
    - allow: "jira.*"
      agents: [builder]
    - deny: shell.run
      id: no-rm
      when:
        - arg: /command
          matches: 'rm\s+-rf'
    - deny: "*"
      id: destructive
      when:
        - annotation: destructiveHint
  redact:
    - pattern: "AKIA[0-9A-Z]{16}"
      id: aws-keys
  rate_limits:
    - tools: "jira.search_*"
      limit: 30/m
      id: jira-search
`), 0o644)

	tests := []struct {
		name string
		args []string
		want []string
		not  []string
	}{
		{"deny with obligations", []string{"--agent", "builder", "--tool", "jira.delete_project"},
			[]string{"jira.delete_project", "deny", "rule=no-jira-delete", "mcp.yaml:13", "redact aws-keys", "in=arguments,results"},
			[]string{"rate-limit"}},
		{"allow for the agent, with its rate limit", []string{"--tool", "jira.search_issues", "--agent", "builder"},
			[]string{"jira.search_issues", "allow", "rule=" + pol + ":15", "rate-limit jira-search", "limit=30/m", "burst=30", "per=agent"}, nil},
		{"another agent gets the default", []string{"--tool", "jira.search_issues"},
			[]string{"allow", "rule=mcp:default"}, nil},
		{"argument condition holds", []string{"--tool", "shell.run", "--args", `{"command": "rm  -rf /"}`},
			[]string{"shell.run", "deny", "rule=no-rm", `matches "rm\s+-rf"`}, nil},
		{"argument condition fails", []string{"--tool", "shell.run", "--args", `{"command": "ls -l"}`},
			[]string{"shell.run", "allow", "rule=mcp:default"}, nil},
		// check reads arguments with the guard's codec and pointer
		// lookup: a member spelt in another case is the one a Go server
		// decodes, so the condition holds as it does on the wire.
		{"argument read as the guard reads it", []string{"--tool", "shell.run", "--args", `{"Command": "rm -rf /"}`},
			[]string{"shell.run", "deny", "rule=no-rm"}, nil},
		{"annotation", []string{"--tool", "shell.wipe", "--hints", "destructiveHint"},
			[]string{"deny", "rule=destructive"}, nil},
		{"unbound host", []string{"--tool", ".anything"},
			[]string{"(unbound).anything", "allow", "unbound host", "report", "rule=mcp:unknown_servers"}, nil},
		{"undefined server", []string{"--tool", "jra.create_issue"},
			[]string{"mcp servers defines no server jra"}, nil},
		{"host and tool together", []string{"mcp.atlassian.example", "--tool", "jira.get"},
			[]string{"mcp.atlassian.example:443", "intercept=mcp:server jira", "jira.get"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"check", pol}, tt.args...)
			code, out := runAgentg(t, args...)
			if code != 0 {
				t.Fatalf("exit %d:\n%s", code, out)
			}
			if !strings.Contains(out, "mcp: 2 servers, 4 tool patterns, 1 redactions, 1 rate limits") {
				t.Errorf("no mcp summary:\n%s", out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(out, w) {
					t.Errorf("output has %q:\n%s", w, out)
				}
			}
		})
	}

	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"tool without a dot", []string{"check", pol, "--tool", "nodot"}, 1, "want SERVER.TOOL"},
		{"args not an object", []string{"check", pol, "--tool", "a.b", "--args", "[1]"}, 1, "--args: arguments must be a JSON object"},
		{"args not JSON", []string{"check", pol, "--tool", "a.b", "--args", "{"}, 1, "--args:"},
		{"args with a duplicate key, as the guard refuses them", []string{"check", pol, "--tool", "shell.run", "--args", `{"command": "ls", "command": "rm -rf /"}`}, 1, "--args:"},
		{"unknown hint", []string{"check", pol, "--tool", "a.b", "--hints", "dangerHint"}, 1, `unknown hint "dangerHint"`},
		{"args without a tool", []string{"check", pol, "--args", "{}"}, 2, "Usage: agentg check"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out := runAgentg(t, tt.args...)
			if code != tt.code || !strings.Contains(out, tt.want) {
				t.Errorf("exit %d, want %d with %q:\n%s", code, tt.code, tt.want, out)
			}
		})
	}

	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("mcp:\n  tools:\n    - deny: jira\n"), 0o644)
	if code, out := runAgentg(t, "check", bad, "--tool", "jira.x"); code != 1 || !strings.Contains(out, "bad.yaml:3") || !strings.Contains(out, "no dot") {
		t.Errorf("bad policy: exit %d:\n%s", code, out)
	}
}

// TestCLICheckReads runs agentg check --prompt and --resource: the
// decision, its rule and source, and the normalised URI a deny also sees.
func TestCLICheckReads(t *testing.T) {
	dir := t.TempDir()
	pol := filepath.Join(dir, "reads.yaml")
	os.WriteFile(pol, []byte(`default: allow
mcp:
  default: deny
  servers:
    - name: jira
      url: mcp.atlassian.example
    - name: files
      url: files.example
  prompts:
    - allow: "jira.*"
    - deny: "jira.admin_*"
      id: no-admin-prompts
    - deny: jira.summarise
      id: no-secret
      when:
        - arg: /topic
          matches: secret
  resources:
    - allow: files
      uri: "file:///srv/**"
    - deny: files
      uri: "file:///srv/private/*"
      id: no-private
`), 0o644)
	for _, tt := range []struct {
		name string
		args []string
		want []string
	}{
		{"prompt denied", []string{"--prompt", "jira.admin_reset"}, []string{"prompt jira.admin_reset", "deny", "rule=no-admin-prompts", "reads.yaml:11"}},
		{"prompt allowed", []string{"--prompt", "jira.create"}, []string{"prompt jira.create", "allow", "rule=" + pol + ":10"}},
		{"prompt argument", []string{"--prompt", "jira.summarise", "--args", `{"topic": "top secret"}`}, []string{"deny", "rule=no-secret"}},
		{"prompt default", []string{"--prompt", "files.x"}, []string{"deny", "rule=mcp:default", "no prompt rule matched"}},
		{"resource allowed", []string{"--resource", "files=file:///srv/a.txt"}, []string{"resource files=file:///srv/a.txt", "allow", "rule=" + pol + ":19"}},
		{"resource denied, normalised", []string{"--resource", "files=file:///srv/x/../%70rivate/key"},
			[]string{"deny", "rule=no-private", "normalised", "file:///srv/private/key"}},
		{"resource undefined server", []string{"--resource", "filez=file:///srv/a"}, []string{"mcp servers defines no server filez"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out := runAgentg(t, append([]string{"check", pol}, tt.args...)...)
			if code != 0 {
				t.Fatalf("exit %d:\n%s", code, out)
			}
			for _, w := range append(tt.want, "3 prompt patterns, 2 resource patterns") {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	if code, out := runAgentg(t, "check", pol, "--resource", "file:///x"); code != 1 || !strings.Contains(out, "want SERVER=URI") {
		t.Errorf("resource without a server: exit %d:\n%s", code, out)
	}
}

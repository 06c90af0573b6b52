package rules

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestWarnings(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		want   []string // one substring per warning, in order ("policy.yaml:N: text")
	}{
		{"clean", `default: deny
agents:
  - name: builder
    password: s3cret
  - name: ci
    cidrs: [10.0.0.0/8]
intercept: all
hosts:
  - allow: api.x.test
    agents: [builder, ci]
http:
  - deny: "DELETE api.x.test/repos/**"
`, nil},
		{"agent anyone can claim", `agents:
  - name: builder
    password: s3cret
  - name: open
`, []string{"policy.yaml:4: agent open has neither a password nor cidrs: any client can claim it"}},
		{"rule for an agent nobody defines", `hosts:
  - allow: a.test
    agents: [ghost, 10.0.0.1]
`, []string{"policy.yaml:2: rule policy.yaml:2 applies to agent ghost, which agents: does not define: any client can claim that name"}},
		{"rule for an agent nobody can be", `agents:
  - name: builder
    password: x
hosts:
  - allow: a.test
    agents: [builer]
    id: typo
`, []string{"policy.yaml:5: rule typo applies to agent builer, which agents: does not define: no client can be builer"}},
		{"free names", `free_agent_names: true
agents:
  - name: builder
    password: x
lists:
  - path: l.txt
    format: plain
    agents: [ghost]
`, []string{"policy.yaml:6: list l.txt applies to agent ghost, which agents: does not define: any client can claim"}},
		{"http rules, no interception", `default: deny
hosts:
  - allow: api.x.test
http:
  - deny: "DELETE api.x.test/repos/**"
    id: no-delete
`, []string{`policy.yaml:5: http rule no-delete ("DELETE api.x.test/repos/**") cannot be enforced for any agent on port 443: tunnels to api.x.test are not intercepted`}},
		{"interception for one agent only", `default: deny
agents:
  - name: builder
    password: x
hosts:
  - allow: api.x.test
intercept:
  - host: api.x.test
    agents: [builder]
http:
  - deny: "DELETE api.x.test/repos/**"
`, []string{"policy.yaml:11: http rule policy.yaml:11 (\"DELETE api.x.test/repos/**\") cannot be enforced for agents the policy does not name on port 443"}},
		{"http rule scoped to the intercepted agent", `default: deny
agents:
  - name: builder
    password: x
hosts:
  - allow: api.x.test
intercept:
  - host: api.x.test
    agents: [builder]
http:
  - deny: "DELETE api.x.test/repos/**"
    agents: [builder]
`, nil},
		{"denied host needs no interception", `default: deny
http:
  - deny: "DELETE api.x.test/repos/**"
`, nil},
		{"http port", `default: deny
hosts:
  - allow: api.x.test
intercept:
  - host: api.x.test
    ports: [443]
http:
  - deny: "* api.x.test/admin/**"
    ports: [443, 8443]
`, []string{"cannot be enforced for any agent on port 8443: tunnels to api.x.test are not intercepted"}},
		{"passthrough inside an http pattern", `default: deny
hosts:
  - allow: .x.test
intercept:
  - .x.test
passthrough:
  - pinned.x.test
http:
  - deny: "* .x.test/admin/**"
    id: admin
`, []string{"http rule admin (\"* .x.test/admin/**\") cannot be enforced for any agent on port 443: tunnels to pinned.x.test are not intercepted"}},
		{"wildcard allow next to an intercepted host", `default: deny
hosts:
  - allow: "*.x.test"
    id: all-x
intercept:
  - api.x.test
http:
  - deny: "DELETE api.x.test/repos/**"
    id: no-delete
`, []string{`policy.yaml:8: http rule no-delete ("DELETE api.x.test/repos/**"): other names under x.test are allowed by all-x (policy.yaml:3) but not intercepted for any agent on port 443: a name on the same server as api.x.test could carry requests past this rule`}},
		{"names below an exact host", `default: deny
hosts:
  - allow: .api.x.test
    id: all-api
intercept:
  - api.x.test
http:
  - deny: "DELETE api.x.test/repos/**"
`, []string{`other names under api.x.test are allowed by all-api`}},
		{"apex of a sub pattern", `default: deny
hosts:
  - allow: .x.test
    id: x
intercept:
  - "*.x.test"
http:
  - deny: "* *.x.test/admin/**"
`, []string{`x.test is allowed by x (policy.yaml:3) but not intercepted`}},
		{"default allow", `default: allow
intercept:
  - .x.test
http:
  - deny: "* .x.test/admin/**"
`, []string{`other names under test are allowed by default (policy.yaml) but not intercepted`}},
		{"everything around intercepted", `default: deny
hosts:
  - allow: .x.test
intercept:
  - .x.test
http:
  - deny: "* api.x.test/admin/**"
`, nil},
		{"resolve: a shared address", `default: deny
hosts:
  - allow: [api.x.test, other.y.test]
intercept:
  - api.x.test
http:
  - deny: "* api.x.test/admin/**"
resolve:
  api.x.test: [127.0.0.1]
  other.y.test: ["::ffff:127.0.0.1"]
  unrelated.test: [127.0.0.2]
`, []string{"policy.yaml:10: other.y.test shares address 127.0.0.1 with api.x.test, which has http rules, and tunnels to other.y.test are not intercepted for any agent"}},
		{"resolve: the address as a literal", `default: deny
hosts:
  - allow: api.x.test
ips:
  - allow: 127.0.0.1
intercept:
  - api.x.test
http:
  - deny: "* api.x.test/admin/**"
resolve:
  api.x.test: [127.0.0.1]
`, []string{"policy.yaml:11: api.x.test has http rules and resolves to 127.0.0.1, which is allowed as an IP literal without interception for any agent"}},
		{"resolve: shared but intercepted", `default: deny
hosts:
  - allow: [api.x.test, other.y.test]
intercept:
  - api.x.test
  - other.y.test
http:
  - deny: "* api.x.test/admin/**"
resolve:
  api.x.test: [127.0.0.1]
  other.y.test: [127.0.0.1]
`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writePolicy(t, tt.policy, map[string]string{"l.txt": "a.test\n"})
			e, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range e.Warnings() {
				if strings.Contains(w.Text, "password is written in plain text") {
					continue // passwords_test.go tests these; the policies here use plain ones for brevity
				}
				got = append(got, strings.ReplaceAll(w.String(), filepath.Dir(path)+"/", ""))
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%d warnings, want %d:\n%s", len(got), len(tt.want), strings.Join(got, "\n"))
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("warning %d = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}

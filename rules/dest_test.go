package rules

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestName(t *testing.T) {
	tests := []struct {
		name, policy string
		agent, host  string
		want, rule   string // outcome; rule id (file paths cut to their base)
	}{
		{"ports never deny a name", "default: allow\nports: [443]\n", "", "x.test", "allow", "default"},
		{"ports with default deny", "default: deny\nports: [443]\n", "", "x.test", "deny", "default"},
		{"port-scoped deny leaves other ports",
			"default: allow\nhosts:\n  - deny: x.test\n    ports: [443]\n", "", "x.test", "allow", "default"},
		{"port-scoped deny on every allowed port",
			"default: allow\nports: [443]\nhosts:\n  - deny: x.test\n    ports: [443]\n    id: d\n", "", "x.test", "deny", "d"},
		{"port-scoped deny covering every port",
			"default: allow\nhosts:\n  - deny: x.test\n    ports: [\"1-65535\"]\n    id: d\n", "", "x.test", "deny", "d"},
		{"port-scoped deny over two ranges",
			"default: allow\nhosts:\n  - deny: x.test\n    ports: [\"1-442\", \"444-65535\"]\n  - deny: .x.test\n    ports: [443]\n    id: tree\n", "", "x.test", "deny", "policy.yaml:3"},
		{"port-scoped allow opens the name",
			"default: deny\nhosts:\n  - allow: x.test\n    ports: [8443]\n    id: a\n", "", "x.test", "allow", "a"},
		{"port-scoped allow outside the policy's ports",
			"default: deny\nports: [443]\nhosts:\n  - allow: x.test\n    ports: [8443]\n", "", "x.test", "deny", "default"},
		{"port-scoped important deny",
			"default: deny\nhosts:\n  - deny: .corp.test\n    important: true\n    ports: [22]\n  - allow: api.corp.test\n    id: a\n", "", "api.corp.test", "allow", "a"},
		{"unscoped deny", "default: allow\nhosts:\n  - deny: .x.test\n    id: d\n", "", "a.x.test", "deny", "d"},
		{"agent scoping", "default: deny\nhosts:\n  - allow: x.test\n    agents: [builder]\n    ports: [443]\n    id: a\n", "builder", "x.test", "allow", "a"},
		{"agent scoping, other agent", "default: deny\nhosts:\n  - allow: x.test\n    agents: [builder]\n    ports: [443]\n", "ci", "x.test", "deny", "default"},
		{"report beats deny",
			"default: deny\nhosts:\n  - deny: x.test\n    ports: [443]\n    mode: report\n    id: r\n", "", "x.test", "report", "r"},
		{"allow beats report",
			"default: allow\nhosts:\n  - deny: x.test\n    ports: [443]\n    mode: report\n", "", "x.test", "allow", "default"},
		{"list scoped to ports",
			"default: allow\nlists:\n  - path: l.txt\n    format: plain\n    ports: [80]\n", "", "bad.test", "allow", "default"},
		{"non-canonical name", "default: deny\nhosts:\n  - allow: api.example.com\n    id: a\n", "", "API.Example.COM.", "allow", "a"},
		{"unicode name", "default: deny\nhosts:\n  - allow: .xn--bcher-kva.example\n    id: a\n", "", "www.BÜCHER.example", "allow", "a"},
		{"invalid name", "default: allow\n", "", "a b.test", "deny", "builtin:invalid"},
		{"empty name", "default: allow\n", "", "", "deny", "builtin:invalid"},
		// IP literal names are decided as IPs.
		{"ip literal private", "default: allow\n", "", "10.0.0.1", "deny", "builtin:non-public:private"},
		{"ip literal odd spelling", "default: allow\n", "", "0x7f.1", "deny", "builtin:non-public:loopback"},
		{"ip literal never by host rules", "default: deny\nhosts:\n  - allow: .test\n", "", "1.2.3.4", "deny", "default"},
		{"ip literal allowed", "default: deny\nips:\n  - allow: 1.2.3.0/24\n    id: c\n", "", "1.2.3.4", "allow", "c"},
		{"ip literal port-scoped allow", "default: deny\nips:\n  - allow: 127.0.0.1\n    ports: [8080]\n    id: c\n", "", "127.0.0.1", "allow", "c"},
		{"ip literal port-scoped deny", "default: allow\nips:\n  - deny: 1.2.3.4\n    ports: [443]\n", "", "1.2.3.4", "allow", "default"},
		{"ip literal with ports policy", "default: deny\nports: [443]\nips:\n  - allow: 127.0.0.1\n    ports: [8080]\n", "", "127.0.0.1", "deny", "builtin:non-public:loopback"},
		{"ipv6 literal", "default: allow\n", "", "[::1]", "deny", "builtin:non-public:loopback"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustLoad(t, tt.policy, map[string]string{"l.txt": "bad.test\n"})
			d := e.Name(tt.agent, tt.host)
			rule := d.Rule
			if strings.Contains(rule, "policy.yaml") {
				rule = filepath.Base(rule)
			}
			if d.Outcome() != tt.want || rule != tt.rule {
				t.Errorf("Name(%q, %q) = %s rule %q (%s); want %s rule %q", tt.agent, tt.host, d.Outcome(), d.Rule, d.Reason, tt.want, tt.rule)
			}
		})
	}
}

// Name agrees with Host at the ports Host can be asked about: allowed by
// Name exactly when some port is allowed by Host.
func TestNameAgreesWithHost(t *testing.T) {
	e := mustLoad(t, `default: deny
ports: [80, 443, "8000-8099"]
hosts:
  - allow: .a.test
    ports: [8080]
  - deny: x.a.test
    ports: ["8000-8090"]
  - allow: b.test
  - deny: .b.test
    important: true
    ports: [80]
  - allow: c.test
    ports: [22]
ips:
  - allow: 127.0.0.1
    ports: [80]
`, nil)
	for _, name := range []string{"a.test", "x.a.test", "y.a.test", "b.test", "c.test", "d.test", "127.0.0.1", "127.0.0.2"} {
		some := false
		for p := 1; p <= 65535; p++ {
			if e.Host("", host(t, name, uint16(p))).Allowed() {
				some = true
				break
			}
		}
		if got := e.Name("", name).Allowed(); got != some {
			t.Errorf("Name(%s) allowed %v, Host allows some port: %v", name, got, some)
		}
	}
}

// A name no rule decides costs no allocation, however many ports Name
// has to try; hits allocate only their Reason, as for Host.
func TestNameNoAlloc(t *testing.T) {
	e := mustLoad(t, `default: deny
ports: [443, 8443]
hosts:
  - allow: .scoped.test
    ports: [22, "9000-9100"]
    agents: [builder]
  - deny: www.example.com
ips:
  - deny: 1.2.3.4
    ports: [443]
`, nil)
	if d := e.Name("builder", "x.scoped.test"); d.Rule != "default" || d.Allowed() {
		t.Errorf("scoped: %+v", d)
	}
	for name, fn := range map[string]func(){
		"miss":           func() { e.Name("agent", "a.b.nothing.example.org") },
		"scoped, denied": func() { e.Name("builder", "x.scoped.test") },
		"below a rule":   func() { e.Name("agent", "a.www.example.com") },
	} {
		if n := testing.AllocsPerRun(100, fn); n != 0 {
			t.Errorf("%s: %v allocations", name, n)
		}
	}
}

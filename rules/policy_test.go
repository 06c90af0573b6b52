package rules

import (
	"strings"
	"testing"
)

func TestPolicyErrors(t *testing.T) {
	tests := []loadErrorCase{
		{"unknown top key", "default: deny\nallowlist: []\n", `:2: unknown key "allowlist"`},
		{"duplicate key", "default: deny\ndefault: allow\n", `:2: duplicate key "default"`},
		{"bad default", "default: maybe\n", `:1: "maybe" is not one of allow, deny`},
		{"bad mode", "mode: loud\n", `:1: "loud" is not one of enforce, report`},
		{"bad port", "ports: [0]\n", `:1: bad port`},
		{"bad port range", "ports: [\"90-80\"]\n", `:1: bad port`},
		{"star in middle", "hosts:\n  - allow: a.*.com\n", `:2: bad host pattern "a.*.com"`},
		{"star prefix", "hosts:\n  - deny: \"*x.com\"\n", `:2: bad host pattern "*x.com"`},
		{"bare star", "hosts:\n  - deny: \"*\"\n", `:2: bad host pattern "*"`},
		{"double star", "hosts:\n  - deny: \"**.x\"\n", `:2: bad host pattern "**.x"`},
		{"empty", "hosts:\n  - deny: \"\"\n", `:2: empty host pattern`},
		{"dot only", "hosts:\n  - deny: \".\"\n", `:2: empty host pattern`},
		{"star dot only", "hosts:\n  - deny: \"*.\"\n", `:2: empty host pattern`},
		{"space", "hosts:\n  - deny: \"a b.com\"\n", `:2: bad host pattern "a b.com"`},
		{"ip literal", "hosts:\n  - deny: 10.0.0.1\n", `:2: IP literal "10.0.0.1"`},
		{"ip literal odd", "hosts:\n  - deny: \"0x7f.1\"\n", `:2: IP literal`},
		{"ip literal v6", "hosts:\n  - deny: \"[::1]\"\n", `:2: IP literal`},
		{"bad list item", "hosts:\n  - deny: [ok.test, \"a..b\"]\n", `:2: bad host pattern "a..b"`},
		{"list item line", "hosts:\n  - deny:\n    - ok.test\n    - \"*bad\"\n", `:4: bad host pattern`},
		{"both allow and deny", "hosts:\n  - allow: a.test\n    deny: b.test\n", `:3: a rule has exactly one of allow or deny`},
		{"neither", "hosts:\n  - important: true\n", `:2: rule without allow or deny`},
		{"unknown rule key", "hosts:\n  - allow: a.test\n    agent: [x]\n", `:3: unknown rule key "agent"`},
		{"important allow", "hosts:\n  - allow: a.test\n    important: true\n", `:2: important applies to deny rules only`},
		{"bad important", "hosts:\n  - deny: a.test\n    important: yes please\n", `:3: expected true or false`},
		{"duplicate id", "hosts:\n  - allow: a.test\n    id: x\n  - deny: b.test\n    id: x\n", `:4: duplicate rule id "x"`},
		{"bad id", "hosts:\n  - allow: a.test\n    id: \"a b\"\n", `:3: bad id`},
		{"bad cidr", "ips:\n  - allow: 10.0.0.0/33\n", `:2: bad CIDR`},
		{"host bits", "ips:\n  - allow: 10.0.0.1/8\n", `:2: CIDR "10.0.0.1/8" has host bits set`},
		{"bad ip", "ips:\n  - deny: example.com\n", `:2: bad IP or CIDR`},
		{"agent no name", "agents:\n  - password: x\n", `:2: agent without a name`},
		{"agent dup", "agents:\n  - name: a\n  - name: a\n", `:3: duplicate agent "a"`},
		{"agent bad key", "agents:\n  - name: a\n    pass: x\n", `:3: unknown agent key "pass"`},
		{"agent empty password", "agents:\n  - name: a\n    password: \"\"\n", `:3: empty password`},
		{"list no format", "lists:\n  - path: x.txt\n", `:2: list x.txt without a format`},
		{"list bad format", "lists:\n  - path: x.txt\n    format: csv\n", `:3: "csv" is not one of plain, hosts, adblock`},
		{"list id", "lists:\n  - path: x.txt\n    format: plain\n    id: y\n", `:4: lists take id-prefix`},
		{"list important allow", "lists:\n  - path: x.txt\n    format: plain\n    action: allow\n    important: true\n", `:2: important applies to deny lists only`},
		{"resolve bad ip", "resolve:\n  a.test: [nope]\n", `:2: bad IP "nope"`},
		{"resolve bad name", "resolve:\n  \"a b\": [127.0.0.1]\n", `:2: bad name`},
		{"yaml syntax", "hosts:\n  - deny: *.evil.example\n", `:2: `},
		{"not a mapping", "- a\n", `:1: policy must be a mapping`},
		{"empty", "", `:1: empty policy`},
	}
	checkLoadErrors(t, tests)
}

func TestPolicySize(t *testing.T) {
	big := "# " + strings.Repeat("x", maxPolicySize) + "\n"
	if _, err := Parse("big.yaml", []byte(big)); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v", err)
	}
}

func TestPatternsCanonical(t *testing.T) {
	e := mustLoad(t, "hosts:\n  - allow: API.GitHub.com.\n  - allow: \".BÜCHER.example\"\n", nil)
	for _, h := range []string{"api.github.com", "xn--bcher-kva.example", "a.xn--bcher-kva.example"} {
		if d := e.Host("", host(t, h, 443)); d.Outcome() != "allow" {
			t.Errorf("%s: %+v", h, d)
		}
	}
}

func TestUnreadableList(t *testing.T) {
	_, err := Load(writePolicy(t, "lists:\n  - path: missing.txt\n    format: plain\n", nil))
	if err == nil || !strings.Contains(err.Error(), "missing.txt") {
		t.Fatalf("err = %v", err)
	}
}

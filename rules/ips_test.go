package rules

import (
	"net/netip"
	"strings"
	"testing"
)

func TestIPLiterals(t *testing.T) {
	e := mustLoad(t, `default: allow
hosts:
  - deny: .example.com
ips:
  - allow: 0.0.0.0/0          # line 5
  - allow: 10.0.0.0/8         # line 6
    agents: [builder]
  - allow: 127.0.0.1          # line 8
  - deny: 198.51.100.0/24     # line 9
  - deny: 8.8.8.0/24          # line 10
  - allow: 8.8.8.8/32         # line 11
  - deny: 9.9.0.0/16          # line 12
    important: true
  - allow: 9.9.9.9            # line 14
  - deny: 1.1.1.1             # line 15
  - allow: 1.1.1.1            # line 16
  - allow: "fd00::/8"         # line 17
  - allow: "::ffff:127.0.0.2" # line 18
  - deny: 4.4.4.4             # line 19
    mode: report
`, nil)
	at := func(l string) string { return "policy.yaml:" + l }
	tests := []struct {
		agent, host string
		want, rule  string
	}{
		{"", "93.184.216.34", "allow", at("5")},
		{"", "10.1.2.3", "deny", "builtin:non-public:private"}, // 0/0 does not open 10/8
		{"builder", "10.1.2.3", "allow", at("6")},
		{"", "127.0.0.1", "allow", at("8")},
		{"", "2130706433", "allow", at("8")}, // odd spelling, same address
		{"", "127.0.0.2", "deny", "builtin:non-public:loopback"},
		{"", "169.254.169.254", "deny", "builtin:non-public:link-local"},
		{"", "100.64.0.1", "deny", "builtin:non-public:cgnat"},
		{"", "198.51.100.7", "deny", at("9")},
		{"", "8.8.8.8", "allow", at("11")},
		{"", "8.8.8.4", "deny", at("10")},
		{"", "9.9.9.9", "deny", at("12")}, // important beats the more specific allow
		{"", "1.1.1.1", "deny", at("15")}, // tie → deny
		{"", "[fd00::1]", "allow", at("17")},
		{"", "[fe80::1]", "deny", "builtin:non-public:link-local"},
		{"", "[::1]", "deny", "builtin:non-public:loopback"},
		{"", "[::ffff:127.0.0.1]", "deny", "builtin:non-public:ipv4-mapped"},
		{"", "[::ffff:127.0.0.2]", "allow", at("18")},
		{"", "[64:ff9b::a00:1]", "deny", "builtin:non-public:nat64"},
		{"", "[2606:4700::1111]", "allow", "default"}, // public, no v6 rule
		{"", "4.4.4.4", "report", at("19")},
	}
	for _, tt := range tests {
		d := e.Host(tt.agent, host(t, tt.host, 443))
		rule := d.Rule
		if i := strings.LastIndex(rule, "/"); i >= 0 {
			rule = rule[i+1:]
		}
		if d.Outcome() != tt.want || rule != tt.rule {
			t.Errorf("Host(%q, %s) = %s %q (%s); want %s %q", tt.agent, tt.host, d.Outcome(), d.Rule, d.Reason, tt.want, tt.rule)
		}
	}
	if d := e.Host("", host(t, "10.0.0.1", 443)); d.Reason != "non-public address 10.0.0.1 (private)" {
		t.Errorf("reason %q", d.Reason)
	}
}

func TestIPDefaultAndNoRules(t *testing.T) {
	e := mustLoad(t, "default: deny\n", nil)
	if d := e.Host("", host(t, "1.1.1.1", 443)); d.Outcome() != "deny" || d.Rule != "default" {
		t.Errorf("public default: %+v", d)
	}
	if d := e.Host("", host(t, "192.168.1.1", 443)); d.Rule != "builtin:non-public:private" {
		t.Errorf("private: %+v", d)
	}
	// IP(): no objection for a public address without rules.
	if d := e.IP("", ip("1.1.1.1"), 443); d.Outcome() != "allow" || d.Rule != "" {
		t.Errorf("IP public: %+v", d)
	}
	if d := e.IP("", ip("127.0.0.1"), 443); d.Outcome() != "deny" || d.Rule != "builtin:non-public:loopback" {
		t.Errorf("IP loopback: %+v", d)
	}
}

func TestResolvedIP(t *testing.T) {
	e := mustLoad(t, `ips:
  - allow: 127.0.0.0/8
    ports: [8080]
    id: local
  - deny: 203.0.113.0/24
    id: doc
`, nil)
	tests := []struct {
		ip   string
		port uint16
		want string
		rule string
	}{
		{"127.0.0.1", 8080, "allow", "local"},
		{"127.0.0.1", 9090, "deny", "builtin:non-public:loopback"},
		{"203.0.113.5", 443, "deny", "doc"},
		{"93.184.216.34", 443, "allow", ""},
	}
	for _, tt := range tests {
		d := e.IP("", ip(tt.ip), tt.port)
		if d.Outcome() != tt.want || d.Rule != tt.rule {
			t.Errorf("IP(%s:%d) = %+v", tt.ip, tt.port, d)
		}
	}
}

func TestCIDRAllows(t *testing.T) {
	e := mustLoad(t, `default: allow
ports: [22, 443, 5432]
ips:
  - allow: 0.0.0.0/0          # line 4
  - allow: 10.0.0.0/8         # line 5
    agents: [builder]
  - allow: 127.0.0.1          # line 7
    ports: [5432]
  - deny: 8.8.8.0/24          # line 9
  - allow: 8.8.8.8/32         # line 10
`, nil)
	tests := []struct {
		agent, ip string
		port      uint16
		want      bool
		rule      string
	}{
		{"", "93.184.216.34", 22, true, "policy.yaml:4"},      // public, opened by 0/0
		{"", "10.1.2.3", 22, false, ""},                       // 0/0 is too wide to open 10/8
		{"builder", "10.1.2.3", 22, true, "policy.yaml:5"},    // the agent's own rule
		{"", "127.0.0.1", 5432, true, "policy.yaml:7"},        // at its port
		{"", "127.0.0.1", 22, false, ""},                      // not at another
		{"", "::ffff:127.0.0.1", 5432, true, "policy.yaml:7"}, // mapped is the IPv4 address
		{"", "8.8.8.4", 443, false, ""},                       // a deny
		{"", "8.8.8.8", 443, true, "policy.yaml:10"},
		{"", "8.8.8.8", 80, false, "ports"},     // outside the policy's ports
		{"", "2606:4700::1111", 443, false, ""}, // only the default lets it through
	}
	for _, tt := range tests {
		d, ok := e.CIDRAllows(tt.agent, netip.MustParseAddr(tt.ip), tt.port)
		rule := d.Rule
		if i := strings.LastIndex(rule, "/"); i >= 0 {
			rule = rule[i+1:]
		}
		if ok != tt.want || rule != tt.rule {
			t.Errorf("CIDRAllows(%q, %s, %d) = %v %q, want %v %q", tt.agent, tt.ip, tt.port, ok, rule, tt.want, tt.rule)
		}
	}
}

package rules

import (
	"net/netip"
	"path/filepath"
	"slices"
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
		noAllocs(t, name, fn)
	}
}

func TestAddresses(t *testing.T) {
	e := mustLoad(t, `default: allow
hosts:
  - deny: watched.test
    mode: report
    id: watched
ips:
  - allow: 127.0.0.0/8
    id: loop
  - deny: 203.0.113.0/24
    id: doc
  - deny: 198.51.100.0/24
    mode: report
    id: doc-report
  - allow: "::ffff:10.0.0.0/104"
    id: mapped
`, nil)
	self := func(ap netip.AddrPort) bool { return ap == netip.MustParseAddrPort("127.0.0.1:3128") }
	ips := func(ss ...string) []netip.Addr {
		var out []netip.Addr
		for _, s := range ss {
			out = append(out, ip(s))
		}
		return out
	}
	tests := []struct {
		name   string
		host   string
		port   uint16
		ips    []netip.Addr
		want   string // outcome
		rule   string
		dialed []netip.Addr
	}{
		{"public", "a.test", 443, ips("93.184.216.34"), "allow", "default", ips("93.184.216.34")},
		{"one denied, one passes", "a.test", 443, ips("203.0.113.1", "93.184.216.34"), "allow", "default", ips("93.184.216.34")},
		{"all denied: the first denial", "a.test", 443, ips("203.0.113.1", "10.0.0.1"), "deny", "doc", nil},
		{"non-public denied", "a.test", 443, ips("10.0.0.1"), "deny", "builtin:non-public:private", nil},
		{"report-mode address", "a.test", 443, ips("198.51.100.1", "93.184.216.34"), "report", "doc-report", ips("198.51.100.1", "93.184.216.34")},
		{"report host stays", "watched.test", 443, ips("198.51.100.1"), "report", "watched", ips("198.51.100.1")},
		{"self", "a.test", 3128, ips("127.0.0.1", "127.0.0.2"), "allow", "default", ips("127.0.0.2")},
		{"only self", "a.test", 3128, ips("127.0.0.1"), "deny", RuleSelf, nil},
		{"mapped self", "a.test", 3128, ips("::ffff:127.0.0.1"), "deny", RuleSelf, nil},
		{"mapped is unmapped", "a.test", 443, ips("::ffff:127.0.0.1"), "allow", "default", ips("127.0.0.1")},
		{"mapped non-public", "a.test", 443, ips("::ffff:192.168.0.1"), "deny", "builtin:non-public:private", nil},
		{"mapped rule no longer matches", "a.test", 443, ips("::ffff:10.0.0.1"), "deny", "builtin:non-public:private", nil},
		{"duplicates once", "a.test", 443, ips("127.0.0.1", "::ffff:127.0.0.1", "127.0.0.1", "127.0.0.2"), "allow", "default", ips("127.0.0.1", "127.0.0.2")},
		{"no addresses", "a.test", 443, nil, "deny", RuleNoAddresses, nil},
		{"ip literal self", "127.0.0.1", 3128, ips("127.0.0.1"), "deny", RuleSelf, nil},
		{"ip literal other address is checked", "127.0.0.1", 443, ips("127.0.0.1", "10.0.0.1"), "allow", "loop", ips("127.0.0.1")},
		{"mapped ip literal", "[::ffff:10.0.0.1]", 443, ips("::ffff:10.0.0.1"), "allow", "mapped", ips("10.0.0.1")},
		{"denied host", "10.0.0.1", 443, ips("10.0.0.1"), "deny", "builtin:non-public:private", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := host(t, tt.host, tt.port)
			hd := e.Host("", h)
			d, got := e.Addresses(hd, Dest{Host: h, IPs: tt.ips, Self: self})
			if d.Outcome() != tt.want || d.Rule != tt.rule || !slices.Equal(got, tt.dialed) {
				t.Errorf("Addresses(%s %s, %v) = %s %q %v (%s); want %s %q %v", hd.Outcome(), h, tt.ips, d.Outcome(), d.Rule, got, d.Reason, tt.want, tt.rule, tt.dialed)
			}
			if len(got) == 0 && d.Allowed() {
				t.Errorf("nothing to dial, but allowed: %+v", d)
			}
			if d.Reason == "" && d.Action != Allow {
				t.Errorf("refusal without a reason: %+v", d)
			}
		})
	}
	// Report mode never lets agentg's own address through.
	re := mustLoad(t, "mode: report\ndefault: deny\n", nil)
	h := host(t, "a.test", 3128)
	if d, got := re.Addresses(re.Host("", h), Dest{Host: h, IPs: ips("127.0.0.1"), Self: self}); d.Allowed() || got != nil {
		t.Errorf("report mode, self: %+v %v", d, got)
	}
	if d, got := re.Addresses(re.Host("", h), Dest{Host: h, IPs: ips("127.0.0.2")}); d.Outcome() != "report" || len(got) != 1 {
		t.Errorf("report mode, loopback: %+v %v", d, got)
	}
}

// IP checks a mapped address as the IPv4 address it maps.
func TestIPUnmaps(t *testing.T) {
	e := mustLoad(t, "ips:\n  - allow: 127.0.0.0/8\n    id: loop\n", nil)
	if d := e.IP("", ip("::ffff:127.0.0.1"), 443); d.Outcome() != "allow" || d.Rule != "loop" {
		t.Errorf("IP(::ffff:127.0.0.1) = %+v", d)
	}
	if d := e.IP("", ip("::ffff:10.0.0.1"), 443); d.Rule != "builtin:non-public:private" {
		t.Errorf("IP(::ffff:10.0.0.1) = %+v", d)
	}
	// An IP literal written mapped is still its own class: Host decides
	// what the client wrote.
	if d := e.Host("", host(t, "[::ffff:127.0.0.1]", 443)); d.Rule != "builtin:non-public:ipv4-mapped" {
		t.Errorf("Host([::ffff:127.0.0.1]) = %+v", d)
	}
}

func TestAddressesNoAlloc(t *testing.T) {
	e := mustLoad(t, "default: allow\nips:\n  - allow: 127.0.0.0/8\n", nil)
	h := host(t, "a.test", 443)
	hd := e.Host("", h)
	ips := []netip.Addr{ip("127.0.0.1"), ip("93.184.216.34"), ip("::1")}
	self := func(netip.AddrPort) bool { return false }
	noAllocs(t, "all pass", func() { e.Addresses(hd, Dest{Host: h, IPs: ips[:2], Self: self}) })
}

package rules

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestDNSLoadErrors(t *testing.T) {
	checkLoadErrors(t, []loadErrorCase{
		{"not a mapping", "dns: [a]\n", `:1: dns must be a mapping`},
		{"unknown key", "dns:\n  blocks: nxdomain\n", `:2: unknown dns key "blocks"`},
		{"bad block", "dns:\n  block: drop\n", `:2: bad block "drop"`},
		{"nxdomain with addresses", "dns:\n  block: nxdomain:1.2.3.4\n", `:2: bad block "nxdomain:1.2.3.4"`},
		{"bad sinkhole", "dns:\n  block: sinkhole:0.0.0.x\n", `:2: bad sinkhole address "0.0.0.x"`},
		{"two v4 sinkholes", "dns:\n  block: sinkhole:0.0.0.0,1.1.1.1\n", `:2: sinkhole takes at most one IPv4 and one IPv6`},
		{"upstream name", "dns:\n  upstreams: [dns.example]\n", `:2: bad upstream "dns.example"`},
		{"upstream scheme", "dns:\n  upstreams: [\"https://1.1.1.1\"]\n", `:2: bad upstream "https://1.1.1.1": unknown scheme`},
		{"upstream port 0", "dns:\n  upstreams: [\"127.0.0.1:0\"]\n", `:2: bad upstream "127.0.0.1:0"`},
		{"upstream tls bad name", "dns:\n  upstreams:\n    - \"tls://bad name@127.0.0.1\"\n", `:3: bad upstream "tls://bad name@127.0.0.1": server name`},
		{"duplicate upstream", "dns:\n  upstreams: [127.0.0.1, \"127.0.0.1:53\"]\n", `:2: duplicate upstream "127.0.0.1:53"`},
		{"bad timeout", "dns:\n  timeout: soon\n", `:2: bad duration "soon"`},
		{"timeout too long", "dns:\n  timeout: 2h\n", `:2: bad duration "2h"`},
		{"bad log", "dns:\n  log: some\n", `:2: "some" is not one of all, blocked, none`},
		{"cache unknown", "dns:\n  cache:\n    entries: 5\n", `:3: unknown dns cache key "entries"`},
		{"cache entries", "dns:\n  cache:\n    max_entries: 0\n", `:3: bad number "0"`},
		{"cache size", "dns:\n  cache:\n    max_size: 1KiB\n", `:3: bad size "1KiB"`},
		{"cache min above max", "dns:\n  cache:\n    max_ttl: 1m\n    min_ttl: 2m\n", `:4: min_ttl 2m0s is above max_ttl 1m0s`},
		{"limits unknown", "dns:\n  limits:\n    max_name: 5\n", `:3: unknown dns limits key "max_name"`},
		{"name length", "dns:\n  limits:\n    max_name_length: 300\n", `:3: bad number "300"`},
		{"label length", "dns:\n  limits:\n    max_label_length: 64\n", `:3: bad number "64"`},
		{"bad rate", "dns:\n  limits:\n    query_rate: fast\n", `:3: bad rate "fast"`},
		{"bad type", "dns:\n  limits:\n    refuse_types: [NULL, BOGUS]\n", `:3: unknown query type "BOGUS"`},
		{"bad switch", "dns:\n  deny_public_resolvers: yes\n", `:2: expected true or false`},
	})
}

func TestDNSSettings(t *testing.T) {
	e := mustLoad(t, "default: allow\n", nil)
	s := e.DNS()
	if s.Defined || s.Block != BlockNXDomain || s.Upstreams != nil || s.Timeout != DefaultDNSTimeout ||
		s.Log != DNSLogAll || s.MaxNameLength != DefaultDNSMaxNameLength || s.Subdomains != DefaultDNSSubdomains ||
		s.SubdomainsWindow != time.Minute || s.DenyPublicResolvers || s.Cache.MaxEntries != DefaultDNSCacheEntries {
		t.Fatalf("defaults: %+v", s)
	}
	if !slices.Equal(s.RefuseTypes, []uint16{dns.TypeNULL, dns.TypeIXFR, dns.TypeAXFR, dns.TypeANY}) {
		t.Fatalf("default refused types %v", s.RefuseTypes)
	}

	e = mustLoad(t, `default: allow
dns:
  block: "sinkhole:10.0.0.1,fd00::1"
  block_ttl: 10s
  upstreams: ["127.0.0.1:5300", "[::1]", "tls://dns.example@192.0.2.53", "tls://192.0.2.54:8853"]
  timeout: 300ms
  log: blocked
  cache:
    max_entries: 10
    max_size: 1MiB
    min_ttl: 5s
    max_ttl: 10m
    negative_ttl: 30s
    serve_stale: 1h
  limits:
    max_name_length: 100
    max_label_length: 40
    subdomains: 10/s
    query_rate: off
    refuse_types: [any, TXT]
  deny_public_resolvers: true
`, nil)
	s = e.DNS()
	want := []DNSUpstream{
		{Spec: "127.0.0.1:5300", Addr: netip.MustParseAddrPort("127.0.0.1:5300")},
		{Spec: "[::1]", Addr: netip.MustParseAddrPort("[::1]:53")},
		{Spec: "tls://dns.example@192.0.2.53", TLS: true, Addr: netip.MustParseAddrPort("192.0.2.53:853"), ServerName: "dns.example"},
		{Spec: "tls://192.0.2.54:8853", TLS: true, Addr: netip.MustParseAddrPort("192.0.2.54:8853"), ServerName: "192.0.2.54"},
	}
	if !slices.Equal(s.Upstreams, want) {
		t.Errorf("upstreams %+v\nwant %+v", s.Upstreams, want)
	}
	if !s.Defined || s.Block != BlockSinkhole || s.Sinkhole4 != netip.MustParseAddr("10.0.0.1") ||
		s.Sinkhole6 != netip.MustParseAddr("fd00::1") || s.BlockTTL != 10*time.Second ||
		s.Timeout != 300*time.Millisecond || s.Log != DNSLogBlocked || !s.DenyPublicResolvers {
		t.Errorf("settings %+v", s)
	}
	// max_size is the filter's whole budget: two thirds of it the cache's.
	if c := s.Cache; c != (DNSCache{MaxEntries: 10, MaxBytes: 1 << 20 / 3 * 2, MinTTL: 5 * time.Second, MaxTTL: 10 * time.Minute,
		NegativeTTL: 30 * time.Second, ServeStale: time.Hour}) || s.Memory != 1<<20 || s.BindingsBytes != 1<<20-c.MaxBytes {
		t.Errorf("cache %+v, memory %d, bindings %d", c, s.Memory, s.BindingsBytes)
	}
	if s.MaxNameLength != 100 || s.MaxLabelLength != 40 || s.Subdomains != 10 || s.SubdomainsWindow != time.Second ||
		s.QueryRate != 0 || s.QueryBurst != 0 || !slices.Equal(s.RefuseTypes, []uint16{dns.TypeTXT, dns.TypeANY}) {
		t.Errorf("limits %+v", s)
	}
	if s.Source != e.file+":2" {
		t.Errorf("source %q", s.Source)
	}
}

func TestDNSQuery(t *testing.T) {
	e := mustLoad(t, "default: allow\ndns:\n  limits:\n    max_name_length: 20\n    max_label_length: 8\n", nil)
	tests := []struct {
		name  string
		qtype uint16
		rule  string
	}{
		{"short.example.", dns.TypeA, ""},
		{"Short.Example", dns.TypeAAAA, ""},
		{"twenty.chars.example", dns.TypeA, ""}, // exactly 20
		{"twenty.chars.example.", dns.TypeA, ""},
		{"twentyone.chars.examp", dns.TypeA, RuleDNSNameLength},
		{"ninechars.ex", dns.TypeA, RuleDNSLabelLength},
		{"eightchr.ex", dns.TypeTXT, ""},
		{"a.example", dns.TypeNULL, RuleDNSType},
		{"a.example", dns.TypeANY, RuleDNSType},
		{"a.example", dns.TypeAXFR, RuleDNSType},
		{"a.example", dns.TypeIXFR, RuleDNSType},
	}
	for _, tt := range tests {
		d := e.DNS().Query(DNSQuery{Name: tt.name, Type: tt.qtype})
		if d.Rule != tt.rule || (tt.rule == "") != (d.Action == Allow) {
			t.Errorf("%s %s: %+v, want rule %q", tt.name, dns.TypeToString[tt.qtype], d, tt.rule)
		}
		if tt.rule != "" && (d.Reason == "" || !strings.HasPrefix(d.Source, e.file+":")) {
			t.Errorf("%s: decision %+v lacks a reason or source", tt.name, d)
		}
	}
	// An empty refuse_types refuses nothing; report mode lets a breach pass.
	e = mustLoad(t, "default: allow\nmode: report\ndns:\n  limits:\n    refuse_types: []\n", nil)
	if d := e.DNS().Query(DNSQuery{Name: "a.example", Type: dns.TypeANY}); d.Action != Allow {
		t.Errorf("ANY with refuse_types []: %+v", d)
	}
	if d := e.DNS().Query(DNSQuery{Name: strings.Repeat("a", 64) + ".example", Type: dns.TypeA}); d.Outcome() != "report" {
		t.Errorf("report mode breach: %+v", d)
	}
}

func TestAnswerIP(t *testing.T) {
	e := mustLoad(t, `default: deny
ports: [443]
ips:
  - allow: 10.1.0.0/16
  - deny: 203.0.113.0/24
  - allow: 127.0.0.1/32
    ports: [443]
  - allow: 127.0.0.3/32
    ports: [8080]
`, nil)
	tests := []struct {
		ip   string
		rule string
		ok   bool
	}{
		{"93.184.216.34", "", true},                              // public, no rule: no objection, despite default deny
		{"10.1.2.3", "policy.yaml:4", true},                      // opened by a CIDR allow
		{"10.2.0.1", "builtin:non-public:private", false},        // rebinding
		{"::ffff:10.2.0.1", "builtin:non-public:private", false}, // mapped is checked as what it maps
		{"203.0.113.9", "policy.yaml:5", false},
		{"127.0.0.1", "policy.yaml:6", true},
		{"127.0.0.3", "builtin:non-public:loopback", false}, // opened only at a port the policy's ports deny
		{"127.0.0.2", "builtin:non-public:loopback", false},
	}
	for _, tt := range tests {
		d := e.DNS().AnswerIP("", netip.MustParseAddr(tt.ip))
		if d.Allowed() != tt.ok || !strings.HasSuffix(d.Rule, tt.rule) || (tt.rule == "" && d.Rule != "") {
			t.Errorf("%s: %+v, want rule %q allowed %v", tt.ip, d, tt.rule, tt.ok)
		}
	}
}

func TestDenyPublicResolvers(t *testing.T) {
	pol := "default: allow\nhosts:\n  - allow: dns.quad9.net\ndns:\n  deny_public_resolvers: true\n"
	e := mustLoad(t, pol, nil)
	for _, n := range []string{"dns.google", "DNS.Google.", "x.cloudflare-dns.com", "use-application-dns.net", "8.8.8.8", "2606:4700:4700::1111"} {
		d := e.Name("", n)
		if d.Allowed() || d.Rule != RulePublicResolver || d.Source != e.file+":5" || d.Reason == "" {
			t.Errorf("%s: %+v, want denied by %s at :5", n, d, RulePublicResolver)
		}
	}
	if d := e.Host("", host(t, "1.1.1.1", 853)); d.Allowed() || d.Rule != RulePublicResolver {
		t.Errorf("DoT to 1.1.1.1: %+v", d)
	}
	// The policy's own exact allow beats the list; unrelated names pass.
	for _, n := range []string{"dns.quad9.net", "google.com", "example.com"} {
		if d := e.Name("", n); !d.Allowed() {
			t.Errorf("%s: %+v, want allowed", n, d)
		}
	}
	// Off (the default): nothing from the list applies.
	e = mustLoad(t, "default: allow\n", nil)
	if d := e.Name("", "dns.google"); !d.Allowed() {
		t.Errorf("without the switch: %+v", d)
	}
	names, pfs := PublicResolvers()
	if len(names) < 20 || len(pfs) < 20 {
		t.Fatalf("list of %d names and %d addresses", len(names), len(pfs))
	}
}

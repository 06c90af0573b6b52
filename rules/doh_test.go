package rules

import (
	"net/netip"
	"testing"
)

func TestDenyDoTAndDoHResolvers(t *testing.T) {
	pol := "default: allow\nips:\n  - allow: 127.0.0.0/8\ndns:\n  deny_dot: true\n  doh_resolvers: [doh.corp.example, .resolvers.example, 192.0.2.53]\n"
	e := mustLoad(t, pol, nil)
	for _, tt := range []struct {
		h    string
		port uint16
		rule string // "" allowed
	}{
		{"example.com", 853, RuleDoTPort},
		{"127.0.0.1", 853, RuleDoTPort}, // important: beats the CIDR allow
		{"93.184.216.34", 853, RuleDoTPort},
		{"2606:2800:220:1:248:1893:25c8:1946", 853, RuleDoTPort},
		{"example.com", 443, ""},
		{"127.0.0.1", 8853, ""},
	} {
		d := e.Host("", host(t, tt.h, tt.port))
		if tt.rule == "" && !d.Allowed() || tt.rule != "" && (d.Allowed() || d.Rule != tt.rule) {
			t.Errorf("%s:%d: %+v, want %q", tt.h, tt.port, d, tt.rule)
		}
	}
	// A resolved address at 853 meets it too; the DNS filter's port-less
	// answer check does not (the address is reachable elsewhere).
	if d := e.IP("", netip.MustParseAddr("93.184.216.34"), 853); d.Allowed() || d.Rule != RuleDoTPort {
		t.Errorf("IP at 853: %+v", d)
	}
	if d := e.DNS().AnswerIP("", netip.MustParseAddr("93.184.216.34")); !d.Allowed() {
		t.Errorf("AnswerIP: %+v", d)
	}
	for _, tt := range []struct {
		h  string
		ok bool
	}{
		{"doh.corp.example", true}, {"x.doh.corp.example", false}, {"resolvers.example", true},
		{"a.resolvers.example", true}, {"192.0.2.53", true}, {"192.0.2.54", false}, {"example.com", false},
	} {
		d := e.DNS().DoH("", host(t, tt.h, 443))
		if d.Allowed() != tt.ok || !tt.ok && (d.Rule != RuleDoH || d.Source != e.file+":6") {
			t.Errorf("DoH to %s: %+v, want allowed %v", tt.h, d, tt.ok)
		}
	}
	// Off by default; DoH is refused by default (no resolver named).
	e = mustLoad(t, "default: allow\n", nil)
	if d := e.Host("", host(t, "example.com", 853)); !d.Allowed() {
		t.Errorf("deny_dot off: %+v", d)
	}
	if d := e.DNS().DoH("", host(t, "example.com", 443)); d.Allowed() || d.Rule != RuleDoH {
		t.Errorf("DoH without doh_resolvers: %+v", d)
	}
	if _, err := Parse("p.yaml", []byte("dns:\n  doh_resolvers: [\"a b\"]\n")); err == nil {
		t.Error("a bad resolver loaded")
	}
}

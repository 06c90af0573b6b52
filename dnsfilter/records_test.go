package dnsfilter

import (
	"fmt"
	"testing"

	"github.com/miekg/dns"

	"github.com/agentg/agentg/internal/testenv"
)

// Every record type that carries an address or a name meets the checks
// A/AAAA and CNAME do (rrcheck.go); a type the checks cannot read is
// dropped. Each case is a real miekg/dns upstream on loopback answering
// the records, asked through the filter over UDP.
func TestRecordTypesChecked(t *testing.T) {
	records := []string{
		// HTTPS/SVCB: hints pointing inside (rebinding), a target that is denied.
		`hint4.example. 60 IN HTTPS 1 . alpn=h2 ipv4hint=127.0.0.1,10.0.0.1`,
		`hint6.example. 60 IN HTTPS 1 . ipv6hint=::1`,
		`meta.example. 60 IN HTTPS 1 . ipv4hint=169.254.169.254`,
		`mixhint.example. 60 IN HTTPS 1 . ipv4hint=93.184.216.34`,
		`mixhint.example. 60 IN HTTPS 2 . ipv4hint=93.184.216.34,192.168.1.1`,
		`svcb.example. 60 IN SVCB 1 . ipv4hint=10.9.9.9`,
		`svcbtarget.example. 60 IN SVCB 1 svc.evil.example. port=443`,
		`alias-mode.example. 60 IN HTTPS 0 edge.evil.example.`,
		`goodhint.example. 60 IN HTTPS 1 . alpn=h2 ipv4hint=93.184.216.34 ipv6hint=2606:2800:220:1:248:1893:25c8:1946`,
		// Names in targets.
		`mx.example. 60 IN MX 10 mail.evil.example.`,
		`mx.example. 60 IN MX 20 mail.ok-mail.example.`,
		`srv.example. 60 IN SRV 0 0 443 edge.evil.example.`,
		`ns.example. 60 IN NS ns.evil.example.`,
		`ptr.example. 60 IN PTR denied.example.`,
		`dname.example. 60 IN DNAME evil.example.`,
		`naptr.example. 60 IN NAPTR 100 10 "S" "SIP+D2U" "" _sip._udp.evil.example.`,
		// Addresses in other types.
		`apl.example. 60 IN APL 1:10.0.0.0/8`,
		`l32.example. 60 IN L32 10 127.0.0.1`,
		`ipseckey.example. 60 IN IPSECKEY 10 1 2 192.168.0.1 AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==`,
		`uri.example. 60 IN URI 10 1 "http://169.254.169.254/latest/meta-data"`,
		`urihost.example. 60 IN URI 10 1 "https://api.evil.example/x"`,
		`urigood.example. 60 IN URI 10 1 "https://api.ok.example/x"`,
		// Types the checks cannot read: dropped, not passed.
		`unknown.example. 60 IN TYPE65400 \# 4 7f000001`,
		// Opaque data: passed.
		`txt.example. 60 IN TXT "v=spf1 -all"`,
	}
	u := startUpstream(t, testenv.DNSUpstreamOptions{Records: records})
	e := startFilter(t, policyWith(u, "", ""), envOptions{})

	cases := []struct {
		name  string
		qtype uint16
		keep  int    // records the agent is given
		rule  string // blocked with this rule in the EDE ("" when answered)
	}{
		{"hint4.example", dns.TypeHTTPS, 0, "builtin:non-public:"},
		{"hint6.example", dns.TypeHTTPS, 0, "builtin:non-public:loopback"},
		{"meta.example", dns.TypeHTTPS, 0, "builtin:non-public:"},
		{"mixhint.example", dns.TypeHTTPS, 1, ""},
		{"svcb.example", dns.TypeSVCB, 0, "builtin:non-public:private"},
		{"svcbtarget.example", dns.TypeSVCB, 0, "no-evil"},
		{"alias-mode.example", dns.TypeHTTPS, 0, "no-evil"},
		{"goodhint.example", dns.TypeHTTPS, 1, ""},
		{"mx.example", dns.TypeMX, 1, ""},
		{"srv.example", dns.TypeSRV, 0, "no-evil"},
		{"ns.example", dns.TypeNS, 0, "no-evil"},
		{"ptr.example", dns.TypePTR, 0, "no-denied"},
		{"dname.example", dns.TypeDNAME, 0, "no-evil"},
		{"naptr.example", dns.TypeNAPTR, 0, "no-evil"},
		{"apl.example", dns.TypeAPL, 0, "builtin:non-public:private"},
		{"l32.example", dns.TypeL32, 0, "builtin:non-public:loopback"},
		{"ipseckey.example", dns.TypeIPSECKEY, 0, "builtin:non-public:private"},
		{"uri.example", dns.TypeURI, 0, "builtin:non-public:"},
		{"urihost.example", dns.TypeURI, 0, "no-evil"},
		{"urigood.example", dns.TypeURI, 1, ""},
		{"unknown.example", 65400, 0, RuleRecordType},
		{"txt.example", dns.TypeTXT, 1, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.query(c.name, c.qtype, qopt{})
			x := edeOf(r)
			if len(r.Answer) != c.keep {
				t.Fatalf("%d records given, want %d: %v", len(r.Answer), c.keep, r)
			}
			if c.rule == "" {
				if r.Rcode != dns.RcodeSuccess {
					t.Fatalf("rcode %s, want NOERROR: %v", dns.RcodeToString[r.Rcode], r)
				}
				return
			}
			if r.Rcode != dns.RcodeNameError || x == nil || x.InfoCode != dns.ExtendedErrorCodeFiltered || !contains(x.ExtraText, c.rule) {
				t.Fatalf("want blocked (Filtered, %s): %v (EDE %v)", c.rule, r, x)
			}
			if ev := e.lastEvent(); ev["decision"] != "deny" || !contains(ev["rule"].(string), c.rule) {
				t.Fatalf("event %v", ev)
			}
		})
	}
	// The hint that was dropped is the private one: the kept record has
	// only the public hint.
	r := e.query("mixhint.example", dns.TypeHTTPS, qopt{})
	if len(r.Answer) != 1 || r.Answer[0].(*dns.HTTPS).Priority != 1 {
		t.Fatalf("mixhint.example kept %v", r.Answer)
	}
	// The hints given are bound to the name, as A and AAAA are: a client
	// may connect to a hint without asking for addresses; those dropped
	// are not.
	if names := e.bindings.NamesFor("127.0.0.1", mustAddr("2606:2800:220:1:248:1893:25c8:1946")); len(names) != 1 || names[0] != "goodhint.example" {
		t.Fatalf("hint bindings: %q", names)
	}
	if names := e.bindings.NamesFor("127.0.0.1", mustAddr("192.168.1.1")); names != nil {
		t.Fatalf("a dropped hint was bound: %q", names)
	}
	// The event lists the hints given, as it lists A and AAAA.
	e.query("goodhint.example", dns.TypeHTTPS, qopt{})
	if ev := e.lastEvent(); fmt.Sprint(ev["answers"]) != "[93.184.216.34 2606:2800:220:1:248:1893:25c8:1946]" {
		t.Fatalf("event answers %v", ev["answers"])
	}
	// dns.pass_types lets a type the checks cannot read through.
	e.reload(policyWith(u, "  pass_types: [TYPE65400]\n", ""))
	if r := e.query("unknown.example", 65400, qopt{}); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("a passed type: %v", r)
	}
	// A CIDR rule that opens the ranges lets the same cached hints through.
	e.reload(policyWith(u, "", "ips:\n  - allow: 127.0.0.0/8\n  - allow: 10.0.0.0/8\n  - allow: ::1/128\n"))
	for _, n := range []string{"hint4.example", "hint6.example"} {
		if r := e.query(n, dns.TypeHTTPS, qopt{}); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Fatalf("%s under an ips allow: %v", n, r)
		}
	}
}

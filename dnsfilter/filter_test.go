package dnsfilter

import (
	"slices"
	"testing"

	"github.com/miekg/dns"

	"github.com/agentg/agentg/internal/testenv"
)

func TestAllowed(t *testing.T) {
	u := startUpstream(t, testenv.DNSUpstreamOptions{Records: zone})
	e := startFilter(t, policyWith(u, "", ""), envOptions{})
	for _, netw := range []string{"udp", "tcp"} {
		t.Run(netw, func(t *testing.T) {
			r := e.query("allowed.example", dns.TypeA, qopt{netw: netw})
			if r.Rcode != dns.RcodeSuccess || !slices.Equal(addrs(r), []string{"93.184.216.34"}) || edeOf(r) != nil {
				t.Fatalf("reply %v", r)
			}
			if !r.RecursionAvailable || r.Answer[0].Header().Ttl == 0 || r.Answer[0].Header().Ttl > 60 {
				t.Fatalf("flags or TTL wrong: %v", r)
			}
			r = e.query("allowed.example", dns.TypeAAAA, qopt{netw: netw})
			if !slices.Equal(addrs(r), []string{"2606:2800:220:1:248:1893:25c8:1946"}) {
				t.Fatalf("AAAA reply %v", r)
			}
			ev := e.lastEvent()
			if ev["host"] != "allowed.example" || ev["decision"] != "allow" || ev["rule"] != "default" || ev["qtype"] != "AAAA" ||
				ev["rcode"] != "NOERROR" || ev["agent"] != "127.0.0.1" || ev["upstream"] != u.Addr {
				t.Fatalf("event %v", ev)
			}
			if as, _ := ev["answers"].([]any); len(as) != 1 || as[0] != "2606:2800:220:1:248:1893:25c8:1946" {
				t.Fatalf("event answers %v", ev["answers"])
			}
		})
	}
	// The second of each went to the cache.
	if n := u.Queries("allowed.example", dns.TypeA); n != 1 {
		t.Errorf("upstream saw %d A queries, want 1 (cached)", n)
	}
	if ev := e.lastEvent(); ev["cached"] != true {
		t.Errorf("cached answer's event: %v", ev)
	}
	// A name the upstream does not know: NXDOMAIN passes through, with its SOA.
	r := e.query("nope.example", dns.TypeA, qopt{})
	if r.Rcode != dns.RcodeNameError || len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != dns.TypeSOA || edeOf(r) != nil {
		t.Fatalf("NXDOMAIN reply %v", r)
	}
}

func TestBlockModes(t *testing.T) {
	u := startUpstream(t, testenv.DNSUpstreamOptions{Records: zone})
	tests := []struct {
		block  string
		qtype  uint16
		rcode  int
		answer []string
		soa    bool
	}{
		{"", dns.TypeA, dns.RcodeNameError, nil, true}, // default nxdomain
		{"nxdomain", dns.TypeAAAA, dns.RcodeNameError, nil, true},
		{"refused", dns.TypeA, dns.RcodeRefused, nil, false},
		{"sinkhole", dns.TypeA, dns.RcodeSuccess, []string{"0.0.0.0"}, false},
		{"sinkhole", dns.TypeAAAA, dns.RcodeSuccess, []string{"::"}, false},
		{"\"sinkhole:192.0.2.1,2001:db8::1\"", dns.TypeA, dns.RcodeSuccess, []string{"192.0.2.1"}, false},
		{"\"sinkhole:192.0.2.1,2001:db8::1\"", dns.TypeAAAA, dns.RcodeSuccess, []string{"2001:db8::1"}, false},
		{"sinkhole", dns.TypeTXT, dns.RcodeSuccess, nil, true}, // no data, with an SOA
	}
	for _, tt := range tests {
		t.Run(tt.block+"/"+dns.Type(tt.qtype).String(), func(t *testing.T) {
			extra := ""
			if tt.block != "" {
				extra = "  block: " + tt.block + "\n"
			}
			e := startFilter(t, policyWith(u, extra, ""), envOptions{})
			r := e.query("denied.example", tt.qtype, qopt{})
			if r.Rcode != tt.rcode || !slices.Equal(addrs(r), tt.answer) {
				t.Fatalf("reply %v", r)
			}
			hasSOA := len(r.Ns) == 1 && r.Ns[0].Header().Rrtype == dns.TypeSOA
			if hasSOA != tt.soa {
				t.Fatalf("SOA %v, want %v: %v", hasSOA, tt.soa, r)
			}
			x := edeOf(r)
			if x == nil || x.InfoCode != dns.ExtendedErrorCodeBlocked || !contains(x.ExtraText, "no-denied") {
				t.Fatalf("EDE %v, want Blocked naming no-denied", x)
			}
			ev := e.lastEvent()
			if ev["decision"] != "deny" || ev["rule"] != "no-denied" || ev["host"] != "denied.example" {
				t.Fatalf("event %v", ev)
			}
			// Without EDNS the reply carries no OPT (RFC 6891), but the same answer.
			r = e.query("denied.example", tt.qtype, qopt{noEDNS: true})
			if r.Rcode != tt.rcode || r.IsEdns0() != nil {
				t.Fatalf("non-EDNS reply %v", r)
			}
		})
	}
	if n := u.Queries("denied.example", dns.TypeA); n != 0 {
		t.Errorf("a denied name went upstream %d times", n)
	}
}

func TestReportMode(t *testing.T) {
	u := startUpstream(t, testenv.DNSUpstreamOptions{Records: zone})
	e := startFilter(t, "mode: report\n"+policyWith(u, "", ""), envOptions{})
	r := e.query("denied.example", dns.TypeA, qopt{})
	if r.Rcode != dns.RcodeSuccess || !slices.Equal(addrs(r), []string{"93.184.216.35"}) || edeOf(r) != nil {
		t.Fatalf("report mode reply %v", r)
	}
	if ev := e.lastEvent(); ev["decision"] != "report" || ev["rule"] != "no-denied" {
		t.Fatalf("event %v", ev)
	}
	// Reported names are not bound: only allowed names are.
	if names := e.bindings.NamesFor("127.0.0.1", mustAddr("93.184.216.35")); names != nil {
		t.Fatalf("reported name bound: %v", names)
	}
}

func TestCaseAndSubdomains(t *testing.T) {
	u := startUpstream(t, testenv.DNSUpstreamOptions{Records: zone})
	e := startFilter(t, policyWith(u, "", "lists:\n  - path: deny.txt\n    format: plain\n    id-prefix: denylist\n"),
		envOptions{files: map[string]string{"deny.txt": "# names\nlisted.example\n"}})
	for _, n := range []string{"DeNiEd.ExAmPlE", "a.b.LISTED.example", "listed.example"} {
		r := e.query(n, dns.TypeA, qopt{})
		if r.Rcode != dns.RcodeNameError || edeOf(r) == nil {
			t.Errorf("%s: %v", n, r)
		}
		if r.Question[0].Name != dns.Fqdn(n) {
			t.Errorf("%s: question echoed as %q", n, r.Question[0].Name)
		}
	}
	if ev := e.lastEvent(); ev["rule"] != "denylist:2" {
		t.Errorf("list entry's event %v", ev)
	}
	// An allowed name in mixed case: answered, the client's case echoed.
	r := e.query("AlLoWeD.ExAmPlE", dns.TypeA, qopt{})
	if r.Rcode != dns.RcodeSuccess || r.Question[0].Name != "AlLoWeD.ExAmPlE." || r.Answer[0].Header().Name != "AlLoWeD.ExAmPlE." {
		t.Fatalf("mixed case reply %v", r)
	}
}

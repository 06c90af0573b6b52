package dnsfilter

import (
	"slices"
	"testing"

	"github.com/miekg/dns"

	"github.com/agentg/agentg/internal/testenv"
)

func TestCNAMEToDeniedName(t *testing.T) {
	u := startUpstream(t, testenv.DNSUpstreamOptions{Records: zone})
	e := startFilter(t, policyWith(u, "", ""), envOptions{})
	r := e.query("www.ok.example", dns.TypeA, qopt{})
	x := edeOf(r)
	if r.Rcode != dns.RcodeNameError || len(r.Answer) != 0 || x == nil || x.InfoCode != dns.ExtendedErrorCodeFiltered || !contains(x.ExtraText, "no-evil") {
		t.Fatalf("CNAME to a denied name: %v (EDE %v)", r, x)
	}
	if ev := e.lastEvent(); ev["decision"] != "deny" || ev["rule"] != "no-evil" || !contains(ev["reason"].(string), "CNAME to edge.evil.example") {
		t.Fatalf("event %v", ev)
	}
	// A CNAME to an allowed name is answered whole.
	r = e.query("alias.example", dns.TypeA, qopt{})
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 2 || !slices.Equal(addrs(r), []string{"93.184.216.34"}) {
		t.Fatalf("CNAME to an allowed name: %v", r)
	}
	// TTLs are the cached entry's: the smallest of the chain (60, not 300).
	for _, rr := range r.Answer {
		if rr.Header().Ttl > 60 {
			t.Errorf("TTL %d above the chain's minimum", rr.Header().Ttl)
		}
	}
}

func TestRebinding(t *testing.T) {
	u := startUpstream(t, testenv.DNSUpstreamOptions{Records: zone})
	e := startFilter(t, policyWith(u, "", ""), envOptions{})
	r := e.query("rebind.example", dns.TypeA, qopt{})
	if x := edeOf(r); len(r.Answer) != 0 || x == nil || x.InfoCode != dns.ExtendedErrorCodeFiltered || !contains(x.ExtraText, "builtin:non-public:loopback") {
		t.Fatalf("rebinding answer: %v (EDE %v)", r, x)
	}
	// A mix: the private address is dropped, the public one kept.
	r = e.query("mixed.example", dns.TypeA, qopt{})
	if r.Rcode != dns.RcodeSuccess || !slices.Equal(addrs(r), []string{"93.184.216.37"}) {
		t.Fatalf("mixed answer: %v", r)
	}
	if ev := e.lastEvent(); ev["decision"] != "allow" || !contains(ev["reason"].(string), "1 answer(s) dropped") {
		t.Fatalf("event %v", ev)
	}
	if names := e.bindings.NamesFor("127.0.0.1", mustAddr("10.1.2.3")); names != nil {
		t.Fatalf("a dropped address was bound: %v", names)
	}
	// A CIDR rule that opens the range lets the same cached answers through.
	e.reload(policyWith(u, "", "ips:\n  - allow: 127.0.0.0/8\n  - allow: 10.1.0.0/16\n"))
	if r = e.query("rebind.example", dns.TypeA, qopt{}); !slices.Equal(addrs(r), []string{"127.0.0.1"}) {
		t.Fatalf("rebind.example under an ips allow: %v", r)
	}
	if r = e.query("mixed.example", dns.TypeA, qopt{}); len(addrs(r)) != 2 {
		t.Fatalf("mixed.example under an ips allow: %v", r)
	}
	if n := u.Queries("rebind.example", dns.TypeA); n != 1 {
		t.Errorf("upstream asked %d times; the checks run on the cached answer", n)
	}
}

func TestAnswersNotAsked(t *testing.T) {
	u := startUpstream(t, testenv.DNSUpstreamOptions{Records: zone, Hook: func(w dns.ResponseWriter, r *dns.Msg) bool {
		q := r.Question[0]
		m := new(dns.Msg)
		m.SetReply(r)
		switch q.Name {
		case "other.example.":
			// Answers a different question than the one asked.
			m.Question[0].Name = "bank.example."
			m.Answer = []dns.RR{mustRR("bank.example. 60 IN A 93.184.216.99")}
		case "extra.example.":
			// The right answer, with poison beside it: an unrelated A in the
			// answer section, a glue record and an NS in the others.
			m.Answer = []dns.RR{mustRR("extra.example. 60 IN A 93.184.216.40"), mustRR("bank.example. 60 IN A 93.184.216.99")}
			m.Ns = []dns.RR{mustRR("example. 60 IN NS ns.attacker.example.")}
			m.Extra = []dns.RR{mustRR("ns.attacker.example. 60 IN A 93.184.216.98")}
		default:
			return false
		}
		w.WriteMsg(m)
		return true
	}})
	e := startFilter(t, policyWith(u, "", ""), envOptions{})
	r := e.query("other.example", dns.TypeA, qopt{})
	if r.Rcode != dns.RcodeServerFailure || len(r.Answer) != 0 {
		t.Fatalf("answer to another question: %v", r)
	}
	if ev := e.lastEvent(); !contains(ev["reason"].(string), "question that was not asked") {
		t.Fatalf("event %v", ev)
	}
	r = e.query("extra.example", dns.TypeA, qopt{})
	if !slices.Equal(addrs(r), []string{"93.184.216.40"}) || len(r.Ns) != 0 || len(r.Extra) != 1 { // the OPT only
		t.Fatalf("poisoned answer passed on: %v", r)
	}
	// The poison was not cached either.
	if r := e.query("bank.example", dns.TypeA, qopt{}); r.Rcode != dns.RcodeNameError {
		t.Fatalf("bank.example from the cache: %v", r)
	}
}

func mustRR(s string) dns.RR {
	rr, err := dns.NewRR(s)
	if err != nil {
		panic(err)
	}
	return rr
}

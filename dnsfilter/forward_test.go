package dnsfilter

import (
	"crypto/tls"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/agentg/agentg/internal/testenv"
)

func TestTruncationFallsBackToTCP(t *testing.T) {
	var recs []string
	for i := range 40 {
		recs = append(recs, fmt.Sprintf("big.example. 60 IN A 93.184.1.%d", i+1))
	}
	u := startUpstream(t, testenv.DNSUpstreamOptions{Records: append(recs, zone...), TruncateUDP: true})
	e := startFilter(t, policyWith(u, "", ""), envOptions{})
	// Over TCP the client gets all 40; the filter asked UDP, then TCP.
	r := e.query("big.example", dns.TypeA, qopt{netw: "tcp"})
	if len(addrs(r)) != 40 || r.Truncated {
		t.Fatalf("TCP reply has %d addresses (truncated %v)", len(addrs(r)), r.Truncated)
	}
	if udp, tcp := u.QueriesOver("big.example", dns.TypeA, "udp"), u.QueriesOver("big.example", dns.TypeA, "tcp"); udp != 1 || tcp != 1 {
		t.Fatalf("upstream saw %d UDP and %d TCP queries, want 1 and 1", udp, tcp)
	}
	// A UDP client without EDNS gets what fits in 512 bytes, marked
	// truncated, so it retries over TCP.
	r = e.query("big.example", dns.TypeA, qopt{noEDNS: true})
	if !r.Truncated || len(addrs(r)) >= 40 {
		t.Fatalf("512-byte UDP reply: truncated %v with %d addresses", r.Truncated, len(addrs(r)))
	}
	r.Compress = true
	if r.Len() > 512 {
		t.Fatalf("UDP reply of %d bytes", r.Len())
	}
}

func TestFailoverAndTimeout(t *testing.T) {
	hole, err := testenv.StartDNSBlackhole()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hole.Close)
	refuser := startUpstream(t, testenv.DNSUpstreamOptions{Hook: func(w dns.ResponseWriter, r *dns.Msg) bool {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeRefused)
		w.WriteMsg(m)
		return true
	}})
	good := startUpstream(t, testenv.DNSUpstreamOptions{Records: zone})
	pol := func(ups ...string) string {
		s := "default: allow\ndns:\n  timeout: 300ms\n  upstreams:\n"
		for _, u := range ups {
			s += "    - \"" + u + "\"\n"
		}
		return s
	}
	e := startFilter(t, pol(hole.Addr, refuser.Addr, good.Addr), envOptions{noClock: true})
	start := time.Now()
	r := e.query("allowed.example", dns.TypeA, qopt{})
	if r.Rcode != dns.RcodeSuccess || !slices.Equal(addrs(r), []string{"93.184.216.34"}) {
		t.Fatalf("failover reply %v", r)
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 3*time.Second {
		t.Errorf("failover took %v; want about one timeout (300ms)", d)
	}
	if ev := e.lastEvent(); ev["upstream"] != good.Addr {
		t.Errorf("event %v", ev)
	}
	// The upstream that answered is tried first from now on.
	start = time.Now()
	e.query("allowed.example", dns.TypeAAAA, qopt{})
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Errorf("second query took %v: the answering upstream was not preferred", d)
	}

	// Nothing answers: SERVFAIL with an EDE, in bounded time, never a hang.
	e.reload(pol(hole.Addr, refuser.Addr))
	start = time.Now()
	r = e.query("allowed.example", dns.TypeTXT, qopt{})
	x := edeOf(r)
	if r.Rcode != dns.RcodeServerFailure || x == nil || x.InfoCode != dns.ExtendedErrorCodeNoReachableAuthority {
		t.Fatalf("all upstreams down: %v", r)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("SERVFAIL took %v", d)
	}
	ev := e.lastEvent()
	if ev["decision"] != "deny" || ev["rule"] != RuleUpstream || ev["rcode"] != "SERVFAIL" ||
		!contains(ev["error"].(string), hole.Addr) || !contains(ev["error"].(string), "REFUSED") {
		t.Fatalf("event %v", ev)
	}
	if m := e.srv.Metrics(); m.ServFail != 1 || m.UpstreamErrors != 1 {
		t.Errorf("metrics %+v", m)
	}
}

func TestCacheTTLAndNegative(t *testing.T) {
	u := startUpstream(t, testenv.DNSUpstreamOptions{Records: append([]string{"short.example. 5 IN A 93.184.216.50",
		"long.example. 86400 IN A 93.184.216.51"}, zone...), NegativeTTL: 20})
	e := startFilter(t, policyWith(u, "  cache:\n    min_ttl: 10s\n    max_ttl: 1h\n    negative_ttl: 15s\n", ""), envOptions{})
	ask := func(name string) *dns.Msg { return e.query(name, dns.TypeA, qopt{}) }

	// TTL 5 is raised to min_ttl 10; TTL 86400 cut to max_ttl 3600.
	if r := ask("short.example"); r.Answer[0].Header().Ttl != 10 {
		t.Fatalf("short TTL %d, want min_ttl 10", r.Answer[0].Header().Ttl)
	}
	if r := ask("long.example"); r.Answer[0].Header().Ttl != 3600 {
		t.Fatalf("long TTL %d, want max_ttl 3600", r.Answer[0].Header().Ttl)
	}
	ask("nope.example")
	e.clock.Advance(4 * time.Second)
	if r := ask("short.example"); r.Answer[0].Header().Ttl != 6 {
		t.Fatalf("cached TTL %d, want 6 after 4s", r.Answer[0].Header().Ttl)
	}
	ask("nope.example")
	if a, n := u.Queries("short.example", dns.TypeA), u.Queries("nope.example", dns.TypeA); a != 1 || n != 1 {
		t.Fatalf("upstream asked %d and %d times, want once each (cached, negative cached)", a, n)
	}
	// Past the TTLs (10s; negative min(20, 15) = 15s): asked again.
	e.clock.Advance(12 * time.Second)
	ask("short.example")
	ask("nope.example")
	if a, n := u.Queries("short.example", dns.TypeA), u.Queries("nope.example", dns.TypeA); a != 2 || n != 2 {
		t.Fatalf("after expiry upstream asked %d and %d times, want 2 each", a, n)
	}
	if r := ask("long.example"); u.Queries("long.example", dns.TypeA) != 1 || r.Answer[0].Header().Ttl != 3600-16 {
		t.Fatalf("long.example: %d queries, TTL %d", u.Queries("long.example", dns.TypeA), r.Answer[0].Header().Ttl)
	}
}

func TestServeStale(t *testing.T) {
	u := startUpstream(t, testenv.DNSUpstreamOptions{Records: zone})
	hole, err := testenv.StartDNSBlackhole()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hole.Close)
	pol := func(up, stale string) string {
		return "default: allow\ndns:\n  timeout: 200ms\n  upstreams: [\"" + up + "\"]\n  cache:\n    serve_stale: " + stale + "\n"
	}
	for _, tt := range []struct {
		stale string
		want  int
	}{{"0s", dns.RcodeServerFailure}, {"1h", dns.RcodeSuccess}} {
		e := startFilter(t, pol(u.Addr, tt.stale), envOptions{})
		e.query("allowed.example", dns.TypeA, qopt{})
		e.clock.Advance(2 * time.Minute)
		e.reload(pol(hole.Addr, tt.stale))
		r := e.query("allowed.example", dns.TypeA, qopt{})
		if r.Rcode != tt.want {
			t.Fatalf("serve_stale %s: %v", tt.stale, r)
		}
		if tt.want == dns.RcodeSuccess && r.Answer[0].Header().Ttl != staleTTL {
			t.Fatalf("stale TTL %d", r.Answer[0].Header().Ttl)
		}
	}
}

func TestIdenticalQuestionsGoUpstreamOnce(t *testing.T) {
	u := startUpstream(t, testenv.DNSUpstreamOptions{Records: zone, Delay: 200 * time.Millisecond})
	e := startFilter(t, policyWith(u, "", ""), envOptions{})
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := e.tryQuery("allowed.example", dns.TypeA, qopt{})
			if err != nil || len(r.Answer) != 1 {
				t.Errorf("concurrent query: %v %v", r, err)
			}
		}()
	}
	wg.Wait()
	if n := u.Queries("allowed.example", dns.TypeA); n != 1 {
		t.Fatalf("20 concurrent identical questions went upstream %d times", n)
	}
}

func TestDNSOverTLSUpstream(t *testing.T) {
	ca, err := testenv.NewCA("dot test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Leaf([]string{"dot.test"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	u := startUpstream(t, testenv.DNSUpstreamOptions{Records: zone, TLS: &tls.Config{Certificates: []tls.Certificate{leaf}}})
	for _, tt := range []struct {
		name, spec string
		roots      bool
		ok         bool
	}{
		{"verified", "tls://dot.test@" + u.TLSAddr, true, true},
		{"wrong name", "tls://other.test@" + u.TLSAddr, true, false},
		{"untrusted", "tls://dot.test@" + u.TLSAddr, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := startFilter(t, "default: allow\ndns:\n  upstreams: [\""+tt.spec+"\"]\n", envOptions{})
			if tt.roots {
				e.srv.cfg.Roots = ca.Pool()
				e.srv.cur.Store(e.srv.buildState(e.policy.Engine(), nil))
			}
			r := e.query("allowed.example", dns.TypeA, qopt{})
			if ok := r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1; ok != tt.ok {
				t.Fatalf("reply %v", r)
			}
		})
	}
	if n := u.QueriesOver("allowed.example", dns.TypeA, "tls"); n != 1 {
		t.Fatalf("TLS upstream answered %d queries, want 1 (only the verified one)", n)
	}
}

package dnsfilter

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/agentg/agentg/internal/testenv"
)

func TestSubdomainGuard(t *testing.T) {
	u := startUpstream(t, testenv.DNSUpstreamOptions{Records: zone})
	e := startFilter(t, policyWith(u, "  limits:\n    subdomains: 5/m\n    query_rate: off\n", ""), envOptions{})
	for i := range 5 {
		if r := e.query(fmt.Sprintf("c%d.tunnel.example.co.uk", i), dns.TypeTXT, qopt{}); r.Rcode != dns.RcodeNameError || edeOf(r) != nil {
			t.Fatalf("name %d: %v", i, r)
		}
	}
	// The sixth distinct name under example.co.uk (the registered domain,
	// by the public suffix list) is denied; one asked before still passes.
	r := e.query("c5.other.EXAMPLE.co.uk", dns.TypeA, qopt{})
	if x := edeOf(r); r.Rcode != dns.RcodeNameError || x == nil || !contains(x.ExtraText, "dns:subdomains") {
		t.Fatalf("sixth name: %v", r)
	}
	ev := e.lastEvent()
	if ev["rule"] != "dns:subdomains" || !contains(ev["reason"].(string), "example.co.uk") {
		t.Fatalf("event %v", ev)
	}
	if r := e.query("c0.tunnel.example.co.uk", dns.TypeTXT, qopt{}); edeOf(r) != nil {
		t.Fatalf("a name seen in the window: %v", r)
	}
	// Another registered domain, and another agent, count apart.
	if r := e.query("x.other.example", dns.TypeA, qopt{}); edeOf(r) != nil {
		t.Fatalf("other domain: %v", r)
	}
	if r := e.query("c9.tunnel.example.co.uk", dns.TypeA, qopt{src: "127.0.0.2"}); edeOf(r) != nil {
		t.Fatalf("other agent: %v", r)
	}
	// After the window, new names pass again.
	e.clock.Advance(61 * time.Second)
	if r := e.query("c6.tunnel.example.co.uk", dns.TypeA, qopt{}); edeOf(r) != nil {
		t.Fatalf("after the window: %v", r)
	}
	if m := e.srv.Metrics(); m.Limited != 1 || m.TXT != 6 {
		t.Errorf("metrics: %+v", m)
	}
}

func TestQueryRate(t *testing.T) {
	u := startUpstream(t, testenv.DNSUpstreamOptions{Records: zone})
	e := startFilter(t, policyWith(u, "  limits:\n    query_rate: 3/s\n", ""), envOptions{})
	for i := range 3 {
		if r := e.query("allowed.example", dns.TypeA, qopt{}); r.Rcode != dns.RcodeSuccess {
			t.Fatalf("query %d: %v", i, r)
		}
	}
	r := e.query("allowed.example", dns.TypeA, qopt{})
	if x := edeOf(r); r.Rcode != dns.RcodeRefused || x == nil || !contains(x.ExtraText, "dns:query_rate") {
		t.Fatalf("fourth query in a second: %v", r)
	}
	e.clock.Advance(time.Second)
	if r := e.query("allowed.example", dns.TypeA, qopt{}); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("after a second: %v", r)
	}
}

func TestRefusedTypesAndLengths(t *testing.T) {
	u := startUpstream(t, testenv.DNSUpstreamOptions{Records: zone})
	e := startFilter(t, policyWith(u, "  limits:\n    max_name_length: 60\n    max_label_length: 20\n", ""), envOptions{})
	for _, tt := range []struct {
		name  string
		qtype uint16
		netw  string
		rcode int
		rule  string
	}{
		{"allowed.example", dns.TypeANY, "udp", dns.RcodeRefused, "dns:refuse_types"},
		{"allowed.example", dns.TypeNULL, "udp", dns.RcodeRefused, "dns:refuse_types"},
		{"example", dns.TypeAXFR, "tcp", dns.RcodeRefused, "dns:refuse_types"},
		{"example", dns.TypeIXFR, "tcp", dns.RcodeRefused, "dns:refuse_types"},
		{strings.Repeat("a", 21) + ".example", dns.TypeA, "udp", dns.RcodeNameError, "dns:max_label_length"},
		{strings.Repeat("abcdefghi.", 6) + "example", dns.TypeA, "udp", dns.RcodeNameError, "dns:max_name_length"},
		{"allowed.example", dns.TypeTXT, "udp", dns.RcodeSuccess, "default"},
	} {
		r := e.query(tt.name, tt.qtype, qopt{netw: tt.netw})
		ev := e.lastEvent()
		if r.Rcode != tt.rcode || ev["rule"] != tt.rule {
			t.Errorf("%s %s: rcode %s, rule %v; want %s, %s", tt.name, dns.Type(tt.qtype), dns.RcodeToString[r.Rcode], ev["rule"],
				dns.RcodeToString[tt.rcode], tt.rule)
		}
	}
	if n := u.Total(); n != 1 {
		t.Errorf("upstream saw %d queries; only the TXT should have gone", n)
	}
}

func TestMalformedPackets(t *testing.T) {
	u := startUpstream(t, testenv.DNSUpstreamOptions{Records: zone})
	e := startFilter(t, policyWith(u, "", ""), envOptions{})
	c, err := net.Dial("udp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	header := func(id uint16, flags uint16, qd, an, ns, ar uint16) []byte {
		return []byte{byte(id >> 8), byte(id), byte(flags >> 8), byte(flags), 0, byte(qd), 0, byte(an), 0, byte(ns), 0, byte(ar)}
	}
	q := func(b ...[]byte) []byte {
		var out []byte
		for _, p := range b {
			out = append(out, p...)
		}
		return out
	}
	long := []byte{}
	for range 5 {
		long = append(long, 63)
		long = append(long, []byte(strings.Repeat("a", 63))...)
	}
	long = append(long, 0)
	packets := [][]byte{
		{},                       // empty
		{1, 2, 3},                // shorter than a header
		header(1, 0, 1, 0, 0, 0), // a question promised, none there
		q(header(2, 0, 1, 0, 0, 0), []byte{0xc0, 12, 0, 1, 0, 1}),                         // compression pointer to itself: a loop
		q(header(3, 0, 1, 0, 0, 0), []byte{0xc0, 14, 0xc0, 12, 0, 1, 0, 1}),               // two pointers pointing at each other
		q(header(4, 0, 1, 0, 0, 0), long, []byte{0, 1, 0, 1}),                             // a name over 255 bytes
		q(header(5, 0, 1, 0, 0, 0), []byte{64}, make([]byte, 64), []byte{0, 0, 1, 0, 1}),  // a label over 63 bytes
		q(header(6, 0, 2, 0, 0, 0), []byte{1, 'a', 0, 0, 1, 0, 1, 1, 'b', 0, 0, 1, 0, 1}), // two questions
		q(header(7, 0x8000, 1, 0, 0, 0), []byte{1, 'a', 0, 0, 1, 0, 1}),                   // a response, not a query
		q(header(8, 0, 1, 0, 0, 0), []byte{1, 'a', 0, 0, 1}),                              // question cut short
		q(header(9, 0, 0xff, 0xff, 0xff, 0xff)),                                           // counts with nothing behind
	}
	for i, p := range packets {
		if _, err := c.Write(p); err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		// Whatever comes back must be a well-formed reply that claims
		// no answer; often nothing comes back at all.
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		buf := make([]byte, 4096)
		if n, err := c.Read(buf); err == nil {
			var m dns.Msg
			if err := m.Unpack(buf[:n]); err != nil || len(m.Answer) != 0 || m.Rcode == dns.RcodeSuccess {
				t.Errorf("packet %d got reply %v (%v)", i, m, err)
			}
		}
	}
	// The same over TCP: a length prefix promising more than is sent,
	// then garbage.
	tc, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	tc.Write([]byte{0xff, 0xff, 1, 2, 3})
	tc.Close()
	tc, _ = net.Dial("tcp", e.addr)
	tc.Write(q([]byte{0, 18}, header(2, 0, 1, 0, 0, 0), []byte{0xc0, 12, 0, 1, 0, 1}))
	tc.Close()

	// The server is alive and answers properly.
	if r := e.query("allowed.example", dns.TypeA, qopt{}); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("after the garbage: %v", r)
	}
	if r := e.query("allowed.example", dns.TypeA, qopt{netw: "tcp"}); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("TCP after the garbage: %v", r)
	}
	if m := e.srv.Metrics(); m.Malformed == 0 {
		t.Errorf("no malformed packet counted: %+v", m)
	}
	var malformed int
	for _, ev := range e.log.events() {
		if ev["rule"] == RuleMalformed {
			malformed++
		}
	}
	if malformed == 0 {
		t.Error("no event for a malformed packet")
	}
}

func TestOpcodeAndClass(t *testing.T) {
	u := startUpstream(t, testenv.DNSUpstreamOptions{Records: zone})
	e := startFilter(t, policyWith(u, "", ""), envOptions{})
	c := &dns.Client{Timeout: 5 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion("version.bind.", dns.TypeTXT)
	m.Question[0].Qclass = dns.ClassCHAOS
	r, _, err := c.Exchange(m, e.addr)
	if err != nil || r.Rcode != dns.RcodeRefused {
		t.Fatalf("CHAOS query: %v %v", r, err)
	}
	m = new(dns.Msg)
	m.SetNotify("example.")
	r, _, err = c.Exchange(m, e.addr)
	if err != nil || r.Rcode != dns.RcodeNotImplemented {
		t.Fatalf("NOTIFY: %v %v", r, err)
	}
	if ev := e.log.events(); len(ev) < 2 || ev[len(ev)-1]["rule"] != RuleOpcode {
		time.Sleep(50 * time.Millisecond)
	}
	if u.Total() != 0 {
		t.Fatal("went upstream")
	}
}

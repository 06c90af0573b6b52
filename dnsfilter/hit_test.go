package dnsfilter

import (
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/agentg/agentg/internal/testenv"
)

// A cache hit asked again is answered from the stored wire bytes: the
// client's id, RD and CD flags and spelling of the name (0x20), and the
// TTL left, patched in; the event as on the full path.
func TestCacheHitFromWire(t *testing.T) {
	u := startUpstream(t, testenv.DNSUpstreamOptions{Records: zone})
	e := startFilter(t, policyWith(u, "", ""), envOptions{})
	e.query("allowed.example", dns.TypeA, qopt{}) // miss: from the upstream
	before := e.srv.Metrics().CacheBytes
	e.query("allowed.example", dns.TypeA, qopt{noEDNS: true}) // hit, full path: a reply without EDNS kept
	e.query("allowed.example", dns.TypeA, qopt{netw: "tcp"})  // hit, full path: with EDNS
	ent, fresh := e.srv.cache.get(cacheKey{name: "allowed.example", qtype: dns.TypeA})
	if !fresh || ent.memo.Load() == nil || ent.memo.Load().wire[0].Load() == nil || ent.memo.Load().wire[1].Load() == nil {
		t.Fatal("no wire reply kept for the cached answer")
	}
	// The memo is charged to the cache once (the miss made it), whatever
	// the hits.
	want := entrySize("allowed.example", ent) + memoSize("allowed.example", ent)
	if got := e.srv.Metrics().CacheBytes; got != want || before != want {
		t.Errorf("cache bytes %d after the miss, %d after the hits; want %d (entry and memo)", before, got, want)
	}
	e.clock.Advance(10 * time.Second)

	tests := []struct {
		name    string
		netw    string
		edns    bool
		rd, cd  bool
		qname   string
		wantTTL uint32
		advance time.Duration
	}{
		{"udp edns mixed case", "udp", true, false, true, "AlLoWeD.eXaMpLe.", 50, 0},
		{"udp no edns", "udp", false, true, false, "ALLOWED.EXAMPLE.", 50, 0},
		{"tcp edns, later", "tcp", true, true, true, "allowed.Example.", 30, 20 * time.Second},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.clock.Advance(tt.advance)
			m := new(dns.Msg)
			m.Id = uint16(0x1234 + i)
			m.Question = []dns.Question{{Name: tt.qname, Qtype: dns.TypeA, Qclass: dns.ClassINET}}
			m.RecursionDesired, m.CheckingDisabled = tt.rd, tt.cd
			if tt.edns {
				m.SetEdns0(1232, false)
			}
			e.mark.Store(int64(len(e.log.events())))
			r, _, err := (&dns.Client{Net: tt.netw, Timeout: 5 * time.Second}).Exchange(m, e.addr)
			if err != nil {
				t.Fatal(err)
			}
			if r.Id != m.Id || r.RecursionDesired != tt.rd || r.CheckingDisabled != tt.cd || !r.RecursionAvailable || !r.Response {
				t.Errorf("header: id %#x rd %v cd %v ra %v; want id %#x rd %v cd %v ra", r.Id, r.RecursionDesired, r.CheckingDisabled, r.RecursionAvailable, m.Id, tt.rd, tt.cd)
			}
			if r.Question[0].Name != tt.qname || len(r.Answer) != 1 || r.Answer[0].Header().Name != tt.qname {
				t.Fatalf("spelling not the client's: %v", r)
			}
			if got := r.Answer[0].Header().Ttl; got != tt.wantTTL {
				t.Errorf("TTL %d, want %d", got, tt.wantTTL)
			}
			if (r.IsEdns0() != nil) != tt.edns {
				t.Errorf("EDNS in the reply %v, want %v", r.IsEdns0() != nil, tt.edns)
			}
			if got := addrs(r); !slices.Equal(got, []string{"93.184.216.34"}) {
				t.Errorf("answer %v", got)
			}
			ev := e.lastEvent()
			if ev["cached"] != true || ev["rcode"] != "NOERROR" || ev["decision"] != "allow" || len(ev["answers"].([]any)) != 1 {
				t.Errorf("event %v", ev)
			}
		})
	}
	if got := e.bindings.NamesFor("127.0.0.1", mustAddr("93.184.216.34")); !slices.Equal(got, []string{"allowed.example"}) {
		t.Errorf("bindings %q", got)
	}
}

// The wire bytes are only patched into a name of the same shape; the
// rest takes the full path.
func TestPatchName(t *testing.T) {
	wire := []byte{7, 'a', 'l', 'l', 'o', 'w', 'e', 'd', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0}
	tests := []struct {
		name string
		ok   bool
	}{
		{"ALLOWED.example.", true},
		{"allowed.example", true},
		{"allowed.exampl.", false},
		{"allowed.examplee.", false},
		{"allow.edexample.", false},
		{"allowed\\.example.", false},
		{"allowed.example.com.", false},
		{"", false},
	}
	for _, tt := range tests {
		b := slices.Clone(wire)
		if got := patchName(b, tt.name); got != tt.ok {
			t.Errorf("patchName(%q) = %v, want %v", tt.name, got, tt.ok)
		}
	}
}

package dnsfilter

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Issue 14, item 17: one memory budget (dns.memory) covers the cache and
// the IP→name bindings, is enforced while unique names stream through a
// real filter over loopback, and is reported by Metrics.
func TestMemoryBudget(t *testing.T) {
	// The upstream answers every name with an address of its own and
	// keeps nothing per name (the shared test upstream counts queries
	// by name, which would be heap this test measures).
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		h := fnv(r.Question[0].Name)
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
			A: net.IPv4(93, byte(h>>16), byte(h>>8), byte(h))}}
		w.WriteMsg(m)
	})}
	go up.ActivateAndServe()
	t.Cleanup(func() { up.Shutdown() })

	const budget, cacheShare = 6 << 20, 4 << 20 // two thirds for the cache
	e := startFilter(t, "default: allow\ndns:\n  upstreams: [\""+pc.LocalAddr().String()+"\"]\n  log: none\n"+
		"  memory: 6MiB\n  limits:\n    subdomains: off\n    query_rate: off\n", envOptions{noClock: true})
	heap := func() int64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	h0 := heap()

	const n, workers = 25_000, 8
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			c := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
			for i := w; i < n; i += workers {
				m := new(dns.Msg)
				m.SetQuestion(fmt.Sprintf("n%d.budget.example.", i), dns.TypeA)
				r, _, err := c.Exchange(m, e.addr)
				if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
					t.Errorf("query %d: %v %v", i, r, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	s := e.srv.Metrics()
	if s.Memory != budget || s.CacheMaxBytes != cacheShare || s.BindingsMaxBytes != budget-cacheShare {
		t.Fatalf("budget reported %d = cache %d + bindings %d", s.Memory, s.CacheMaxBytes, s.BindingsMaxBytes)
	}
	if s.CacheBytes > s.CacheMaxBytes || s.BindingsBytes > s.BindingsMaxBytes || s.BindingsRows == 0 || s.CacheEntries == 0 ||
		s.BindingsRows >= n || s.CacheEntries >= n {
		t.Fatalf("over the budget or not evicting: %+v", s)
	}
	// The last name asked is bound (eviction takes the oldest).
	last := n - 1
	h := fnv(fmt.Sprintf("n%d.budget.example.", last))
	ip := netip.AddrFrom4([4]byte{93, byte(h >> 16), byte(h >> 8), byte(h)})
	if names := e.bindings.NamesFor("127.0.0.1", ip); len(names) == 0 {
		t.Errorf("n%d.budget.example not bound to %s", last, ip)
	}
	// The heap grew by the budget at most, and a margin for the rest of
	// the filter (sockets, pools, the guards' bounded state).
	if grew := heap() - h0; grew > budget+budget/2 {
		t.Fatalf("heap grew %d bytes over %d queries, budget %d: %+v", grew, n, budget, s)
	}
	// A reload with a smaller budget, spelled as older policies do,
	// applies to both parts.
	e.reload("default: allow\ndns:\n  upstreams: [\"" + pc.LocalAddr().String() + "\"]\n  cache:\n    max_size: 2MiB\n")
	e.query("after.budget.example", dns.TypeA, qopt{})
	const cache2 = 2 << 20 / 3 * 2 // two thirds, the rest to the bindings
	if s := e.srv.Metrics(); s.Memory != 2<<20 || s.CacheMaxBytes != cache2 || s.BindingsMaxBytes != 2<<20-cache2 ||
		s.BindingsBytes > s.BindingsMaxBytes || s.CacheBytes > s.CacheMaxBytes {
		t.Fatalf("after the reload: %+v", s)
	}
}

func fnv(s string) uint32 {
	h := uint32(2166136261)
	for i := range len(s) {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

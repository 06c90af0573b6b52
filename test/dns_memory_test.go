package test

import (
	"fmt"
	"testing"

	"github.com/miekg/dns"

	"github.com/agentg/agentg/internal/testenv"
)

// Issue 14, item 17: the DNS filter's memory budget is a policy setting,
// and the admin API reports it and its use, cache and bindings apart.
func TestDNSMemoryReported(t *testing.T) {
	var records []string
	for i := range 50 {
		records = append(records, fmt.Sprintf("n%d.mem.test. 60 IN A 93.184.216.%d", i, i+1))
	}
	up, err := testenv.StartDNSUpstream(testenv.DNSUpstreamOptions{Records: records})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	a := startAdminAgentg(t, testenv.AgentgConfig{Policy: "default: allow\ndns:\n  upstreams: [\"" + up.Addr + "\"]\n  memory: 12MiB\n"})
	if len(a.DNS) != 1 {
		t.Fatalf("DNS listeners %v", a.DNS)
	}
	for i := range 50 {
		if r := dnsAsk(t, a.DNS[0], "udp", fmt.Sprintf("n%d.mem.test", i), dns.TypeA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Fatalf("n%d: %v", i, r)
		}
	}
	m := metricsOf(t, a)
	for _, c := range []struct {
		name, part string
		want       float64
	}{
		{"agentg_dns_memory_limit_bytes", "total", 12 << 20},
		{"agentg_dns_memory_limit_bytes", "cache", 8 << 20},
		{"agentg_dns_memory_limit_bytes", "bindings", 4 << 20},
	} {
		if got := metricValue(m, c.name, map[string]string{"part": c.part}); got != c.want {
			t.Errorf("%s{part=%q} = %g, want %g", c.name, c.part, got, c.want)
		}
	}
	if n := metricValue(m, "agentg_dns_bindings", nil); n != 50 {
		t.Errorf("agentg_dns_bindings = %g, want 50", n)
	}
	if n := metricValue(m, "agentg_dns_cache_entries", nil); n < 50 {
		t.Errorf("agentg_dns_cache_entries = %g", n)
	}
	for _, part := range []string{"cache", "bindings"} {
		if b := metricValue(m, "agentg_dns_memory_bytes", map[string]string{"part": part}); b <= 0 || b > 4<<20 {
			t.Errorf("agentg_dns_memory_bytes{part=%q} = %g", part, b)
		}
	}
}

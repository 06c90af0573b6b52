package test

import (
	"path/filepath"
	"testing"

	"github.com/miekg/dns"

	"github.com/agentg/agentg/internal/testenv"
)

// Issue 14, item 16, end to end: agentg as its own process, a miekg/dns
// upstream on loopback answering HTTPS and SVCB with address hints, and
// a miekg client through the filter. A hint to an inside address is
// dropped as an A record with it is; a record with public hints passes.
func TestDNSHintsRebinding(t *testing.T) {
	up, err := testenv.StartDNSUpstream(testenv.DNSUpstreamOptions{Records: []string{
		`inside.test. 60 IN HTTPS 1 . alpn=h2 ipv4hint=127.0.0.1,10.0.0.1 ipv6hint=::1`,
		`meta.test. 60 IN SVCB 1 . ipv4hint=169.254.169.254`,
		`target.test. 60 IN HTTPS 1 edge.denied.test. alpn=h2`,
		`public.test. 60 IN HTTPS 1 . alpn=h2 ipv4hint=93.184.216.34`,
		`mx.test. 60 IN MX 10 mail.denied.test.`,
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	writeFile(t, pol, "default: allow\nhosts:\n  - deny: .denied.test\n    id: no-denied\ndns:\n  upstreams: [\""+up.Addr+"\"]\n")
	logFile := filepath.Join(dir, "agentg.log")
	a := startAgentg(t, logFile, "--config", pol, "--reload-interval", "0")
	daddr := a.proc.DNS[0]

	for _, c := range []struct {
		name  string
		qtype uint16
		rule  string
	}{
		{"inside.test", dns.TypeHTTPS, "builtin:non-public:"},
		{"meta.test", dns.TypeSVCB, "builtin:non-public:"},
		{"target.test", dns.TypeHTTPS, "no-denied"},
		{"mx.test", dns.TypeMX, "no-denied"},
	} {
		for _, netw := range []string{"udp", "tcp"} {
			r := dnsAsk(t, daddr, netw, c.name, c.qtype)
			if r.Rcode != dns.RcodeNameError || len(r.Answer) != 0 {
				t.Errorf("%s over %s: %v", c.name, netw, r)
			}
		}
		evs := waitDNSEvents(t, a.proc, c.name, 2)
		if evs[0]["decision"] != "deny" || !startsWith(evs[0]["rule"], c.rule) {
			t.Errorf("%s: event %v", c.name, evs[0])
		}
	}
	r := dnsAsk(t, daddr, "udp", "public.test", dns.TypeHTTPS)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("public.test: %v", r)
	}
}

func startsWith(v any, prefix string) bool {
	s, ok := v.(string)
	return ok && len(s) >= len(prefix) && s[:len(prefix)] == prefix
}

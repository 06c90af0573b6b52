package test

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/agentg/agentg/internal/testenv"
)

// The DNS filter end to end: the real agentg binary, its DNS listener on
// loopback, an upstream DNS server the test runs, and the proxy resolving
// through the same cache.

func dnsAsk(t *testing.T, addr, netw, name string, qtype uint16) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: netw, Timeout: 5 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(1232, false)
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("dns %s %s over %s: %v", name, dns.Type(qtype), netw, err)
	}
	return r
}

// waitDNSEvents waits until host has n dns events.
// The events come in the order the queries started (their time): a
// query's event is written after its reply, so the next query's may be
// written first.
func waitDNSEvents(t *testing.T, a *testenv.Agentg, host string, n int) []map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	evs, err := a.WaitEvents(ctx, n, func(m map[string]any) bool { return m["kind"] == "dns" && m["host"] == host })
	if err != nil {
		t.Fatalf("%d dns events for %s, want %d: %v", len(evs), host, n, err)
	}
	at := func(ev map[string]any) time.Time {
		s, _ := ev["time"].(string)
		tm, _ := time.Parse(time.RFC3339Nano, s)
		return tm
	}
	slices.SortStableFunc(evs, func(a, b map[string]any) int { return at(a).Compare(at(b)) })
	return evs
}

func TestDNSFilterEndToEnd(t *testing.T) {
	web := testenv.StartUpstream(testenv.UpstreamOptions{})
	t.Cleanup(web.Close)
	up, err := testenv.StartDNSUpstream(testenv.DNSUpstreamOptions{Records: []string{
		"allowed.test. 60 IN A 93.184.216.34",
		"denied.test. 60 IN A 93.184.216.35",
		"web.test. 60 IN A 127.0.0.1",
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	dir := t.TempDir()
	policy := func(deny string) string {
		return "default: allow\nhosts:\n  - deny: " + deny + "\n    id: no-" + strings.Split(deny, ".")[0] + "\n" +
			"ips:\n  - allow: 127.0.0.1/32\n" +
			"dns:\n  upstreams: [\"" + up.Addr + "\"]\n"
	}
	polFile := filepath.Join(dir, "policy.yaml")
	writeFile(t, polFile, policy("denied.test"))
	logFile := filepath.Join(dir, "agentg.log")
	a := startAgentg(t, logFile, "--config", polFile, "--reload-interval", "0")
	if len(a.proc.DNS) != 1 {
		t.Fatalf("agentg reports DNS listeners %v", a.proc.DNS)
	}
	daddr := a.proc.DNS[0]

	// Allowed, over UDP and TCP; the second from the cache.
	for _, netw := range []string{"udp", "tcp"} {
		r := dnsAsk(t, daddr, netw, "allowed.test", dns.TypeA)
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "93.184.216.34" {
			t.Fatalf("%s: %v", netw, r)
		}
	}
	if n := up.Queries("allowed.test", dns.TypeA); n != 1 {
		t.Fatalf("upstream asked %d times", n)
	}
	evs := waitDNSEvents(t, a.proc, "allowed.test", 2)
	if evs[0]["decision"] != "allow" || evs[0]["qtype"] != "A" || evs[1]["cached"] != true || evs[0]["upstream"] != up.Addr {
		t.Fatalf("events %v", evs)
	}

	// Denied: NXDOMAIN with an SOA and an EDE naming the rule, one event.
	r := dnsAsk(t, daddr, "udp", "Denied.Test", dns.TypeA)
	var ede *dns.EDNS0_EDE
	if opt := r.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			ede, _ = o.(*dns.EDNS0_EDE)
		}
	}
	if r.Rcode != dns.RcodeNameError || len(r.Ns) != 1 || ede == nil || ede.InfoCode != dns.ExtendedErrorCodeBlocked || !strings.Contains(ede.ExtraText, "no-denied") {
		t.Fatalf("denied: %v", r)
	}
	if evs := waitDNSEvents(t, a.proc, "denied.test", 1); evs[0]["decision"] != "deny" || evs[0]["rule"] != "no-denied" || evs[0]["block"] != "nxdomain" {
		t.Fatalf("deny event %v", evs)
	}

	// The proxy resolves through the filter's cache and upstreams: a name
	// only the DNS upstream knows is reachable through the proxy, looked
	// up once, and the filter's next answer for it comes from the cache.
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: a.addr})}, Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + web.HostPort("web.test") + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET web.test through the proxy: %d", resp.StatusCode)
	}
	if n := up.Queries("web.test", dns.TypeA); n != 1 {
		t.Fatalf("upstream asked %d times for web.test A", n)
	}
	dnsAsk(t, daddr, "udp", "web.test", dns.TypeA)
	if n := up.Queries("web.test", dns.TypeA); n != 1 {
		t.Fatalf("the filter did not answer from the proxy's lookup: upstream asked %d times", n)
	}
	if evs := waitDNSEvents(t, a.proc, "web.test", 1); evs[0]["cached"] != true {
		t.Fatalf("event %v", evs)
	}

	// A reload that fails keeps the policy in force; one that loads
	// applies to the next query, cached names included.
	writeFile(t, polFile, "dns:\n  block: bogus\n")
	if err := a.proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// Evidence the reload was tried and failed, not a pause: its line in
	// the log.
	waitFor(t, func() bool {
		return slices.ContainsFunc(readLog(t, logFile), func(m map[string]any) bool {
			msg, _ := m["message"].(string)
			return strings.HasPrefix(msg, "policy reload failed")
		})
	}, "agentg to log the failed reload")
	if r := dnsAsk(t, daddr, "udp", "allowed.test", dns.TypeA); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("after a failed reload: %v", r)
	}
	if r := dnsAsk(t, daddr, "udp", "denied.test", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Fatalf("after a failed reload, denied.test: %v", r)
	}
	writeFile(t, polFile, policy("allowed.test"))
	a.proc.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := dnsAsk(t, daddr, "udp", "allowed.test", dns.TypeA)
		if r.Rcode == dns.RcodeNameError {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reload never applied: %v", r)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r := dnsAsk(t, daddr, "tcp", "denied.test", dns.TypeA); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("after reload, denied.test: %v", r)
	}
	if _, err := os.Stat(logFile); err != nil {
		t.Fatal(err)
	}
}

func TestDNSFlags(t *testing.T) {
	dir := t.TempDir()
	a := startAgentg(t, filepath.Join(dir, "off", "agentg.log"), "--dns", "off")
	if a.proc.DNS != nil {
		t.Fatalf("--dns off still listens on %v", a.proc.DNS)
	}
	// Two addresses, IPv4 and IPv6 loopback.
	args := []string{"--dns", "127.0.0.1:0"}
	if ln, err := net.Listen("tcp", "[::1]:0"); err == nil {
		ln.Close()
		args = append(args, "--dns", "[::1]:0")
	}
	a = startAgentg(t, filepath.Join(dir, "two", "agentg.log"), args...)
	if len(a.proc.DNS) != len(args)/2 {
		t.Fatalf("listening on %v", a.proc.DNS)
	}
	for _, d := range a.proc.DNS {
		// No upstream reachable is fine: any reply proves the listener.
		c := &dns.Client{Timeout: 5 * time.Second}
		m := new(dns.Msg)
		m.SetQuestion("dns.google.", dns.TypeA) // denied by the embedded default's public resolver list
		r, _, err := c.Exchange(m, d)
		if err != nil || r.Rcode != dns.RcodeNameError {
			t.Fatalf("%s: %v %v", d, r, err)
		}
	}
	for _, bad := range [][]string{{"--dns", "off", "--dns", "127.0.0.1:0"}, {"--dns", "nonsense"}} {
		code, out := runAgentg(t, append([]string{"serve", "--data-dir", filepath.Join(dir, "ca"), "--listen", "127.0.0.1:0"}, bad...)...)
		if code == 0 || !strings.Contains(out, "--dns") {
			t.Errorf("serve %v: %d %q", bad, code, out)
		}
	}
}

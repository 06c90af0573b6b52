package dnsfilter

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/agentg/agentg/internal/testenv"
	"github.com/agentg/agentg/proxy"
)

var _ proxy.Resolver = (*Resolver)(nil)

func TestBindings(t *testing.T) {
	u := startUpstream(t, testenv.DNSUpstreamOptions{Records: zone})
	e := startFilter(t, policyWith(u, "", ""), envOptions{})
	ip := mustAddr("93.184.216.34")
	e.query("allowed.example", dns.TypeA, qopt{})
	e.query("alias.example", dns.TypeA, qopt{}) // CNAME to allowed.example: same address
	if got := e.bindings.NamesFor("127.0.0.1", ip); !slices.Equal(got, []string{"alias.example", "allowed.example"}) {
		t.Fatalf("bindings %q", got)
	}
	if got := e.bindings.NamesFor("127.0.0.2", ip); got != nil {
		t.Fatalf("another agent's bindings %q", got)
	}
	// Denied and sinkholed names are never bound.
	e.query("denied.example", dns.TypeA, qopt{})
	if got := e.bindings.NamesFor("127.0.0.1", mustAddr("93.184.216.35")); got != nil {
		t.Fatalf("denied name bound: %q", got)
	}
	// The TTL (60s) plus the floor (10s) bounds a binding.
	e.clock.Advance(65 * time.Second)
	if got := e.bindings.NamesFor("127.0.0.1", ip); len(got) != 2 {
		t.Fatalf("within the floor: %q", got)
	}
	e.clock.Advance(10 * time.Second)
	if got := e.bindings.NamesFor("127.0.0.1", ip); got != nil {
		t.Fatalf("after TTL and floor: %q", got)
	}
}

func TestAgentByAddress(t *testing.T) {
	u := startUpstream(t, testenv.DNSUpstreamOptions{Records: zone})
	pol := "default: deny\nagents:\n  - name: builder\n    cidrs: [127.0.0.2/32]\n  - name: locked\n    password: s3cret\n    cidrs: [127.0.0.3/32]\n" +
		"hosts:\n  - allow: allowed.example\n    agents: [builder]\n    ports: [443]\n" +
		"dns:\n  upstreams: [\"" + u.Addr + "\"]\n"
	e := startFilter(t, pol, envOptions{})
	// builder, by its address: allowed (a port-scoped rule allows the name).
	r := e.query("allowed.example", dns.TypeA, qopt{src: "127.0.0.2"})
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("builder: %v", r)
	}
	if ev := e.lastEvent(); ev["agent"] != "builder" || ev["decision"] != "allow" {
		t.Fatalf("builder's event %v", ev)
	}
	if got := e.bindings.NamesFor("builder", mustAddr("93.184.216.34")); len(got) != 1 {
		t.Fatalf("bound for builder: %q", got)
	}
	// Anyone else: the default deny.
	r = e.query("allowed.example", dns.TypeA, qopt{src: "127.0.0.1"})
	if r.Rcode != dns.RcodeNameError {
		t.Fatalf("127.0.0.1: %v", r)
	}
	if ev := e.lastEvent(); ev["agent"] != "127.0.0.1" || ev["rule"] != "default" {
		t.Fatalf("event %v", ev)
	}
	// An agent with a password cannot be named by address alone: refused.
	r = e.query("allowed.example", dns.TypeA, qopt{src: "127.0.0.3"})
	if x := edeOf(r); r.Rcode != dns.RcodeRefused || x == nil || x.InfoCode != dns.ExtendedErrorCodeProhibited {
		t.Fatalf("password agent: %v", r)
	}
	if ev := e.lastEvent(); ev["rule"] != RuleAgent {
		t.Fatalf("event %v", ev)
	}
}

func TestReload(t *testing.T) {
	u1 := startUpstream(t, testenv.DNSUpstreamOptions{Records: zone})
	u2 := startUpstream(t, testenv.DNSUpstreamOptions{Records: []string{"fresh.example. 60 IN A 93.184.216.60"}})
	e := startFilter(t, policyWith(u1, "", ""), envOptions{})
	if r := e.query("allowed.example", dns.TypeA, qopt{}); r.Rcode != dns.RcodeSuccess {
		t.Fatal(r)
	}
	// A reload denies a cached name at once and points at another upstream.
	e.reload("default: allow\nhosts:\n  - deny: allowed.example\ndns:\n  block: refused\n  upstreams: [\"" + u2.Addr + "\"]\n")
	if r := e.query("allowed.example", dns.TypeA, qopt{}); r.Rcode != dns.RcodeRefused {
		t.Fatalf("after reload: %v", r)
	}
	if r := e.query("fresh.example", dns.TypeA, qopt{}); !slices.Equal(addrs(r), []string{"93.184.216.60"}) {
		t.Fatalf("new upstream: %v", r)
	}
}

func TestResolverSharesTheCache(t *testing.T) {
	u := startUpstream(t, testenv.DNSUpstreamOptions{Records: zone})
	e := startFilter(t, policyWith(u, "", ""), envOptions{})
	res := e.srv.Resolver()
	ctx := context.Background()
	e.query("allowed.example", dns.TypeA, qopt{})
	ips, err := res.LookupNetIP(ctx, "ip", "allowed.example")
	if err != nil || len(ips) != 2 {
		t.Fatalf("lookup: %v %v", ips, err)
	}
	ips, err = res.LookupNetIP(ctx, "ip4", "Alias.Example.")
	if err != nil || !slices.Equal(ips, []netip.Addr{mustAddr("93.184.216.34")}) {
		t.Fatalf("ip4 lookup through a CNAME: %v %v", ips, err)
	}
	if a, aaaa := u.Queries("allowed.example", dns.TypeA), u.Queries("allowed.example", dns.TypeAAAA); a != 1 || aaaa != 1 {
		t.Fatalf("upstream asked %d A and %d AAAA; the proxy's lookups must share the cache", a, aaaa)
	}
	// The filter's queries see what the proxy's lookups cached.
	e.query("allowed.example", dns.TypeAAAA, qopt{})
	if ev := e.lastEvent(); ev["cached"] != true {
		t.Fatalf("event %v", ev)
	}
	_, err = res.LookupNetIP(ctx, "ip", "nope.example")
	var de *net.DNSError
	if !errors.As(err, &de) || !de.IsNotFound {
		t.Fatalf("unknown name: %v", err)
	}
	if ips, err := res.LookupNetIP(ctx, "ip", "localhost"); err != nil || len(ips) != 2 || !ips[0].IsLoopback() {
		t.Fatalf("localhost: %v %v", ips, err)
	}
}

func TestDig(t *testing.T) {
	dig, err := exec.LookPath("dig")
	if err != nil {
		t.Skip("dig not installed (Debian package dnsutils; scripts/test.sh installs it)")
	}
	u := startUpstream(t, testenv.DNSUpstreamOptions{Records: zone})
	e := startFilter(t, policyWith(u, "", ""), envOptions{})
	host, port, _ := net.SplitHostPort(e.addr)
	run := func(args ...string) string {
		out, err := exec.Command(dig, append([]string{"@" + host, "-p", port, "+tries=1", "+time=5"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("dig %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	out := run("denied.example", "A")
	if !strings.Contains(out, "status: NXDOMAIN") || !strings.Contains(out, "EDE: 15 (Blocked)") || !strings.Contains(out, "no-denied") {
		t.Fatalf("dig denied.example:\n%s", out)
	}
	out = run("+tcp", "allowed.example", "A")
	if !strings.Contains(out, "status: NOERROR") || !strings.Contains(out, "93.184.216.34") {
		t.Fatalf("dig +tcp allowed.example:\n%s", out)
	}
}

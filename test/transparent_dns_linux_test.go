//go:build linux

package test

// Transparent mode with the real DNS filter: the agent's DNS, to any
// resolver address, is redirected to agentg's filter by the rules agentg
// netsetup installs, and what the filter hands out is what opens raw TCP
// to an address no CIDR rule opens.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/agentg/agentg/internal/testenv"
)

func TestTransparentDNSThroughTheFilter(t *testing.T) {
	e := newTransparentEnv(t, nftFirewall)
	up2, up3, up5 := e.upIP(2).String(), e.upIP(3).String(), e.upIP(5).String()

	// The upstream resolver lives in the upstream namespace, at an
	// address the agent could reach directly without the rules.
	resolver, err := testenv.StartDNSUpstream(testenv.DNSUpstreamOptions{
		PacketConn: e.listenUDP(e.up, up2+":53"),
		Listener:   e.listen(e.up, "tcp", up2+":53"),
		Records: []string{
			"bound.test. 60 IN A " + up5,
			"blocked.test. 60 IN A " + up3,
			"other.test. 60 IN A " + up3,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(resolver.Close)

	policy := fmt.Sprintf(`
default: deny
hosts:
  - allow: [bound.test, other.test]
  - deny: blocked.test
    id: no-blocked
dns:
  upstreams: [%s]
`, up2)
	a := e.startWithPolicy(policy, "--dns", "0.0.0.0:5353")
	e.netsetup("--netns", e.agent, "--transparent", "0.0.0.0:"+transparentPort, "--dns", e.routerIP.String()+":5353", "--apply")
	t.Cleanup(func() {
		e.try(e.router, agentgBin, "netsetup", "--netns", e.agent, "--transparent", "0.0.0.0:"+transparentPort, "--remove")
	})

	dial := e.dialer(e.agent, nil)
	ask := func(name string) *dns.Msg {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := dial(ctx, "udp", up2+":53") // the resolver's own address: the rules take it to agentg
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		co := &dns.Conn{Conn: c}
		q := new(dns.Msg)
		q.SetQuestion(dns.Fqdn(name), dns.TypeA)
		q.SetEdns0(1232, false) // an EDE needs an OPT record to ride in
		if err := co.WriteMsg(q); err != nil {
			t.Fatal(err)
		}
		r, err := co.ReadMsg()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return r
	}

	// A denied name: the upstream would answer it, the filter does not,
	// so an NXDOMAIN with the Extended DNS Error is the filter's answer.
	r := ask("blocked.test")
	if r.Rcode != dns.RcodeNameError {
		t.Fatalf("blocked.test from the agent namespace: %s (the query did not meet the filter)\n%v", dns.RcodeToString[r.Rcode], r)
	}
	if ede := extendedError(r); !strings.Contains(ede, "no-blocked") {
		t.Errorf("blocked answer's EDE %q does not name the rule", ede)
	}

	// Raw TCP to up5 (no CIDR rule opens it) is closed until the filter
	// has handed up5 out for an allowed name to this agent.
	if got := rawExchange(t, dial, up5+":7000", false); strings.Contains(got, "echo") {
		t.Fatalf("raw TCP to %s passed before any lookup: %q", up5, got)
	}
	if r := ask("bound.test"); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || !strings.Contains(r.Answer[0].String(), up5) {
		t.Fatalf("bound.test: %v", r)
	}
	if got := rawExchange(t, dial, up5+":7000", false); !strings.Contains(got, "echo") {
		t.Fatalf("raw TCP to %s, just resolved for bound.test, did not pass: %q", up5, got)
	}
	// An address handed out only for a denied name opens nothing.
	if got := rawExchange(t, dial, up3+":7000", false); strings.Contains(got, "echo") {
		t.Fatalf("raw TCP to %s (blocked.test's address) passed: %q", up3, got)
	}

	waitEventOf(t, a, "a dns deny event for blocked.test from the agent's address", func(l map[string]any) bool {
		return l["kind"] == "dns" && l["host"] == "blocked.test" && l["decision"] == "deny" && l["agent"] == e.agentIP.String()
	})
	if resolver.Queries("blocked.test.", dns.TypeA) != 0 {
		t.Error("the denied name reached the upstream resolver")
	}
}

// extendedError is the text of a message's Extended DNS Error, if any.
func extendedError(m *dns.Msg) string {
	if o := m.IsEdns0(); o != nil {
		for _, opt := range o.Option {
			if ede, ok := opt.(*dns.EDNS0_EDE); ok {
				return ede.ExtraText
			}
		}
	}
	return ""
}

// startWithPolicy runs agentg serve in the router namespace with policy.
func (e *transparentEnv) startWithPolicy(policy string, extra ...string) *testenv.Agentg {
	e.t.Helper()
	old := e.policyOverride
	e.policyOverride = policy
	defer func() { e.policyOverride = old }()
	return e.mustStart(extra...)
}

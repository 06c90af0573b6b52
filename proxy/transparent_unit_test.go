package proxy

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/agentg/agentg/addr"
	"github.com/agentg/agentg/state"
)

const transparentPolicy = `default: deny
resolve:
  pinned.test: [127.0.0.9]
hosts:
  - allow: [pinned.test, bound.test]
  - deny: banned.test
ips:
  - allow: 1.2.3.0/24
`

// What a name on a transparent connection must agree with: the address
// the connection was going to (an IP literal, a binding the DNS filter
// made for this agent, or the policy's resolve table).
func TestAgrees(t *testing.T) {
	p := testPipeline(t, transparentPolicy)
	b := state.NewBindings(state.BindingsOptions{})
	if err := b.Bind("agent-a", "bound.test", time.Minute, netip.MustParseAddr("127.0.0.7")); err != nil {
		t.Fatal(err)
	}
	p.bindings = b
	eng := p.policy.Engine()
	tests := []struct {
		name, agent, host, ip string
		agrees                bool
		reason                string
	}{
		{"literal, same", "agent-a", "127.0.0.7", "127.0.0.7", true, ""},
		{"literal, other", "agent-a", "127.0.0.8", "127.0.0.7", false, "names 127.0.0.8"},
		{"bound for the agent", "agent-a", "bound.test", "127.0.0.7", true, ""},
		{"bound for another agent only", "agent-b", "bound.test", "127.0.0.7", false, "cannot be checked"},
		{"resolve table", "agent-b", "pinned.test", "127.0.0.9", true, ""},
		{"resolve table, other address", "agent-a", "pinned.test", "127.0.0.7", false, "resolves to [127.0.0.9]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := addr.Canonical(tt.host)
			if err != nil {
				t.Fatal(err)
			}
			h.Port = 443
			reason := p.agrees(context.Background(), eng, tt.agent, h, netip.MustParseAddr(tt.ip))
			if (reason == "") != tt.agrees || !strings.Contains(reason, tt.reason) {
				t.Fatalf("agrees = %q; want agreement %v (reason containing %q)", reason, tt.agrees, tt.reason)
			}
		})
	}
}

// Raw TCP (first bytes neither TLS nor HTTP/1) goes only where a CIDR rule
// opens the address, or to an address the DNS filter bound for this agent
// to a name the policy allows; never by the policy's default alone. (A
// decision only: nothing is dialed, so public addresses are safe here.)
func TestRawGrant(t *testing.T) {
	s := &Server{}
	s.pipe = testPipeline(t, transparentPolicy)
	s.dial = s.pipe.dial
	b := state.NewBindings(state.BindingsOptions{})
	for name, ip := range map[string]string{"bound.test": "1.1.1.7", "banned.test": "1.1.1.8"} {
		if err := b.Bind("agent-a", name, time.Minute, netip.MustParseAddr(ip)); err != nil {
			t.Fatal(err)
		}
	}
	s.pipe.bindings = b
	d := newTransparentDoor(s)
	eng := s.pipe.policy.Engine()
	tests := []struct {
		name, agent, dst string
		ok               bool
		host, rule       string
	}{
		{"cidr rule", "agent-a", "1.2.3.20:25", true, "1.2.3.20", ""},
		{"bound allowed name", "agent-a", "1.1.1.7:3306", true, "bound.test", ""},
		{"bound for another agent", "agent-b", "1.1.1.7:3306", false, "", ruleRaw},
		{"bound to a denied name", "agent-a", "1.1.1.8:3306", false, "", ruleRaw},
		{"neither", "agent-a", "1.1.1.30:22", false, "", ruleRaw},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := d.rawGrant(eng, tt.agent, netip.MustParseAddrPort(tt.dst))
			if g.ok != tt.ok {
				t.Fatalf("grant %v (%+v), want %v", g.ok, g.d, tt.ok)
			}
			if !g.ok {
				if g.d.Rule != tt.rule {
					t.Errorf("refused by %q, want %q", g.d.Rule, tt.rule)
				}
				return
			}
			dst := netip.MustParseAddrPort(tt.dst)
			if g.host.Name != tt.host || g.host.Port != dst.Port() {
				t.Errorf("host %s, want %s:%d", g.host, tt.host, dst.Port())
			}
			if len(g.ips) != 1 || g.ips[0] != dst.Addr() {
				t.Errorf("dials %v, want only %s", g.ips, dst.Addr())
			}
		})
	}
}

// A connection agentg itself opened, redirected back to the transparent
// door, is a loop: refused, and reported to the loop check. Real sockets:
// the outbound connection is one the dialer opened.
func TestLooped(t *testing.T) {
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			c.Close() // the dialer's side stays open until it closes it
		}
	}()
	s := &Server{dial: &checkedDialer{timeout: time.Second}}
	d := newTransparentDoor(s)
	c, err := s.dial.dialOut(context.Background(), up.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dst := netip.MustParseAddrPort(up.Addr().String())
	ours := &flow{client: c.LocalAddr().String(), origDst: dst}
	if !d.looped(ours) {
		t.Fatal("agentg's own outbound connection is not a loop")
	}
	if ours.decision.Rule != ruleLoop {
		t.Errorf("loop refused by %q, want %s", ours.decision.Rule, ruleLoop)
	}
	if got := <-d.loops; got != dst {
		t.Errorf("loop check told %s, want %s", got, dst)
	}
	other := &flow{client: "127.0.0.1:1", origDst: dst}
	if d.looped(other) {
		t.Error("a client connection is a loop")
	}
	c.Close()
	if d.looped(&flow{client: c.LocalAddr().String(), origDst: dst}) {
		t.Error("a closed outbound connection's address is still a loop")
	}
}

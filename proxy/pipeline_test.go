package proxy

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/agentg/agentg/addr"
	"github.com/agentg/agentg/limit"
	"github.com/agentg/agentg/rules"
)

// fixedPolicy is a Policy that always hands out one engine.
type fixedPolicy struct{ e *rules.Engine }

func (p fixedPolicy) Engine() *rules.Engine { return p.e }

func mustParse(t *testing.T, policy string) *rules.Engine {
	t.Helper()
	e, err := rules.Parse("policy.yaml", []byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// noLookups is a resolver that fails every lookup: the pipeline must
// take the policy's resolve table or an IP literal before DNS.
type noLookups struct{}

func (noLookups) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return nil, &net.DNSError{Err: "no lookups in this test", IsNotFound: true}
}

func testPipeline(t *testing.T, policy string) *pipeline {
	t.Helper()
	ts := newTunnelSet()
	return &pipeline{policy: fixedPolicy{mustParse(t, policy)}, resolver: noLookups{}, lookupTimeout: time.Second,
		dial: &checkedDialer{timeout: time.Second}, quotas: limit.NewQuotas(limit.Options{}), tunnels: ts,
		maxTunnels: -1, maxTunnelsPerAgent: -1}
}

// The explicit door's pipeline: who, the host decision, the addresses,
// each refusal with the status and rule its client is told.
func TestPipelineAuthorize(t *testing.T) {
	p := testPipeline(t, `agents:
  - name: builder
    cidrs: [127.0.0.0/8]
  - name: keyed
    password: k3y
default: deny
resolve:
  pinned.test: [127.0.0.9]
hosts:
  - allow: [pinned.test, loop.test]
  - deny: evil.test
    id: no-evil
ips:
  - allow: 127.0.0.0/8
`)
	p.dial.addSelf(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 3128})
	tests := []struct {
		name   string
		src    string
		auth   string // Proxy-Authorization
		host   string
		status int // 0: authorised
		rule   string
		agent  string
		ips    string
	}{
		{"agent by cidr, pinned name", "127.0.0.2:5000", "", "pinned.test:443", 0, "", "builder", "[127.0.0.9]"},
		{"address agent, literal", "10.0.0.1:5000", "", "127.0.0.1:80", 0, "", "10.0.0.1", "[127.0.0.1]"},
		{"proven user", "10.0.0.1:5000", basic("keyed", "k3y"), "127.0.0.1:80", 0, "", "keyed", "[127.0.0.1]"},
		{"bad password", "10.0.0.1:5000", basic("keyed", "nope"), "127.0.0.1:80", http.StatusProxyAuthRequired, "", "", ""},
		{"bad scheme", "10.0.0.1:5000", "Bearer x", "127.0.0.1:80", http.StatusProxyAuthRequired, "", "", ""},
		{"host denied", "127.0.0.2:5000", "", "evil.test:443", http.StatusForbidden, "no-evil", "builder", ""},
		{"default deny", "127.0.0.2:5000", "", "other.test:443", http.StatusForbidden, "default", "builder", ""},
		{"agentg itself", "127.0.0.2:5000", "", "127.0.0.1:3128", http.StatusForbidden, rules.RuleSelf, "builder", ""},
		{"cannot resolve", "127.0.0.2:5000", "", "loop.test:443", http.StatusBadGateway, "", "builder", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := addr.ParseAuthority(tt.host, 0)
			if err != nil {
				t.Fatal(err)
			}
			r := &http.Request{RemoteAddr: tt.src, Header: http.Header{}}
			if tt.auth != "" {
				r.Header.Set("Proxy-Authorization", tt.auth)
			}
			f := &flow{}
			ref := p.authorize(context.Background(), f, r, h)
			switch {
			case tt.status == 0 && ref != nil:
				t.Fatalf("refused %d %q, want authorised", ref.status, ref.text)
			case tt.status != 0 && ref == nil:
				t.Fatalf("authorised (%v), want %d", f.decision, tt.status)
			case ref != nil && ref.status != tt.status:
				t.Fatalf("refused %d %q, want %d", ref.status, ref.text, tt.status)
			}
			if f.agent != tt.agent {
				t.Errorf("agent %q, want %q", f.agent, tt.agent)
			}
			if tt.rule != "" {
				if f.decision.Rule != tt.rule && !strings.HasSuffix(f.decision.Rule, tt.rule) {
					t.Errorf("rule %q, want %q", f.decision.Rule, tt.rule)
				}
				if got := ref.header.Get("X-Agentg-Rule"); got != f.decision.Rule {
					t.Errorf("X-Agentg-Rule %q, want the decision's %q", got, f.decision.Rule)
				}
			}
			if tt.ips != "" {
				if got := addrsString(f.ips); got != tt.ips {
					t.Errorf("ips %s, want %s", got, tt.ips)
				}
			}
		})
	}
}

func addrsString(ips []netip.Addr) string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return "[" + strings.Join(s, " ") + "]"
}

func basic(user, pass string) string {
	r := &http.Request{Header: http.Header{}}
	r.SetBasicAuth(user, pass)
	return r.Header.Get("Authorization")
}

// The tunnel admission of every door: the flags' caps, then the tunnels
// quotas (report mode admits and says so), and removal gives the room back.
func TestAdmitTunnel(t *testing.T) {
	const policy = `quotas:
  - tunnels: 1
    hosts: [capped.test]
    per: agent
    id: one-tunnel
  - tunnels: 1
    hosts: [watched.test]
    mode: report
    id: watch-tunnels
`
	tests := []struct {
		name            string
		total, perAgent int
		open            [][2]string // agent, host already admitted
		agent, host     string
		ok              bool
		rule            string
		report          bool
	}{
		{"no caps", -1, -1, [][2]string{{"a", "x.test"}, {"a", "x.test"}}, "a", "x.test", true, "", false},
		{"total cap", 2, -1, [][2]string{{"a", "x.test"}, {"b", "x.test"}}, "c", "x.test", false, "builtin:max-tunnels", false},
		{"per-agent cap", -1, 1, [][2]string{{"a", "x.test"}}, "a", "y.test", false, "builtin:max-tunnels-per-agent", false},
		{"per-agent cap, another agent", -1, 1, [][2]string{{"a", "x.test"}}, "b", "y.test", true, "", false},
		{"quota", -1, -1, [][2]string{{"a", "capped.test"}}, "a", "capped.test", false, "one-tunnel", false},
		{"quota per agent", -1, -1, [][2]string{{"a", "capped.test"}}, "b", "capped.test", true, "", false},
		{"quota in report mode", -1, -1, [][2]string{{"a", "watched.test"}}, "a", "watched.test", true, "watch-tunnels", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPipeline(t, policy)
			p.maxTunnels, p.maxTunnelsPerAgent = tt.total, tt.perAgent
			var open []*tunnel
			for _, o := range tt.open {
				tun := &tunnel{f: &flow{agent: o[0], host: addr.Host{Name: o[1], Port: 443}}}
				if d, ok := p.admitTunnel(tun); !ok {
					t.Fatalf("setup: %v", d)
				}
				open = append(open, tun)
			}
			tun := &tunnel{f: &flow{agent: tt.agent, host: addr.Host{Name: tt.host, Port: 443}}}
			d, ok := p.admitTunnel(tun)
			if ok != tt.ok {
				t.Fatalf("admitted %v (%v), want %v", ok, d, tt.ok)
			}
			if !ok && !strings.HasSuffix(d.Rule, tt.rule) {
				t.Errorf("refused by %q, want %q", d.Rule, tt.rule)
			}
			if tt.report && (tun.f.decision.Rule != tt.rule || !tun.f.decision.Report) {
				t.Errorf("report-mode admission recorded %+v, want rule %s in report mode", tun.f.decision, tt.rule)
			}
			want := len(tt.open)
			if ok {
				want++
			}
			if n := p.tunnels.count(); n != want {
				t.Errorf("%d tunnels open, want %d", n, want)
			}
			// Removing what was open makes room again: the same tunnel is
			// admitted once the others are gone.
			for _, o := range open {
				p.tunnels.remove(o)
			}
			if !ok {
				if d, ok := p.admitTunnel(tun); !ok {
					t.Errorf("still refused once the other tunnels closed: %v", d)
				}
			}
			p.tunnels.remove(tun)
			p.tunnels.remove(tun) // twice is harmless
			if n := p.tunnels.count(); n != 0 {
				t.Errorf("%d tunnels open after removing all", n)
			}
		})
	}
}

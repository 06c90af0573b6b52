package proxy

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"

	"github.com/agentg/agentg/rules"
)

// tunnel is one open CONNECT tunnel. The registry of open tunnels is how a
// shutdown waits for them, how the caps are kept, and how a policy reload
// reaches them.
type tunnel struct {
	f           *flow
	intercepted bool
	allowECH    bool
	// transparent: the client never sent a CONNECT, so it is answered
	// neither 200 nor 502; a failure just closes the connection.
	transparent bool

	quotaKeys []string // the tunnels quotas it counts under, set by admit

	mu       sync.Mutex
	conns    []net.Conn // client, then upstream once dialed
	closed   bool
	closeErr string
}

func (t *tunnel) attach(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		c.Close()
		return false
	}
	t.conns = append(t.conns, c)
	return true
}

// close ends the tunnel from outside (a reload, a shutdown): both
// connections are closed, which unblocks every copy.
func (t *tunnel) close() {
	t.mu.Lock()
	conns := t.conns
	t.closed = true
	t.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

type tunnelSet struct {
	mu       sync.Mutex
	all      map[*tunnel]struct{}
	perAgent map[string]int
	perQuota map[string]int // open tunnels per tunnels-quota key
}

func newTunnelSet() *tunnelSet {
	return &tunnelSet{all: map[*tunnel]struct{}{}, perAgent: map[string]int{}, perQuota: map[string]int{}}
}

// tunnelCap is one tunnels quota covering a tunnel: at most q.Tunnels
// open under key.
type tunnelCap struct {
	key string
	q   *rules.Quota
}

// admit adds t unless a cap is reached; a negative cap is no cap. A
// quota in report mode past its cap admits t and says so in its event.
func (ts *tunnelSet) admit(t *tunnel, total, perAgent int, caps []tunnelCap) (rules.Decision, bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	agent := t.f.agent
	switch {
	case total >= 0 && len(ts.all) >= total:
		return rules.Decision{Action: rules.Deny, Rule: "builtin:max-tunnels",
			Reason: fmt.Sprintf("%d tunnels are open, the most agentg allows", len(ts.all))}, false
	case perAgent >= 0 && ts.perAgent[agent] >= perAgent:
		return rules.Decision{Action: rules.Deny, Rule: "builtin:max-tunnels-per-agent",
			Reason: fmt.Sprintf("agent %s has %d tunnels open, the most agentg allows one agent", agent, ts.perAgent[agent])}, false
	}
	for _, c := range caps {
		if n := ts.perQuota[c.key]; n >= c.q.Tunnels {
			d := rules.Decision{Action: rules.Deny, Report: c.q.Report, Rule: c.q.ID, Source: c.q.Source,
				Reason: fmt.Sprintf("quota %s: %d tunnels of %s are open, the most it allows", c.q.ID, n, c.q.Scope(agent, t.f.host.Name))}
			if !c.q.Report {
				return d, false
			}
			t.f.deny(d)
		}
	}
	ts.all[t] = struct{}{}
	ts.perAgent[agent]++
	for _, c := range caps {
		ts.perQuota[c.key]++
		t.quotaKeys = append(t.quotaKeys, c.key)
	}
	return rules.Decision{}, true
}

func (ts *tunnelSet) remove(t *tunnel) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if _, ok := ts.all[t]; !ok {
		return
	}
	delete(ts.all, t)
	if ts.perAgent[t.f.agent]--; ts.perAgent[t.f.agent] <= 0 {
		delete(ts.perAgent, t.f.agent)
	}
	for _, k := range t.quotaKeys {
		if ts.perQuota[k]--; ts.perQuota[k] <= 0 {
			delete(ts.perQuota, k)
		}
	}
}

// count is the number of open tunnels.
func (ts *tunnelSet) count() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.all)
}

func (ts *tunnelSet) snapshot() []*tunnel {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	out := make([]*tunnel, 0, len(ts.all))
	for t := range ts.all {
		out = append(out, t)
	}
	return out
}

// openTunnel is the tunnel admission of every door, for a flow the
// pipeline authorised: the policy's word on interception (refused as
// builtin:no-ca without a CA), then the caps and tunnels quotas. On a
// refusal f holds the decision, and the refusal is what a door that can
// answer sends (403 or 503); the transparent door sends nothing.
func (s *Server) openTunnel(ctx context.Context, f *flow, transparent bool) (*tunnel, *refusal) {
	tp := s.tunnelPolicy(ctx, s.cfg.Policy.Engine(), f.agent, f.host)
	t := &tunnel{f: f, allowECH: tp.AllowECH, transparent: transparent}
	if tp.Intercept {
		if s.mitm == nil {
			f.deny(rules.Decision{Action: rules.Deny, Rule: "builtin:no-ca",
				Reason: "policy rule " + tp.Rule + " intercepts this host but agentg has no CA configured"})
			return nil, forbidden(f.host, f.decision)
		}
		t.intercepted = true
		f.tls = "intercepted"
	}
	if d, ok := s.pipe.admitTunnel(t); !ok {
		f.deny(d)
		return nil, &refusal{status: http.StatusServiceUnavailable, text: "agentg: " + d.Reason}
	}
	return t, nil
}

// redecide asks the policy in force about every open tunnel and closes
// those it now denies: the host, or (for a plain tunnel) the address it is
// connected to. An intercepted tunnel has no upstream connection of its
// own: each request inside checks its addresses again.
func (s *Server) redecide(eng *rules.Engine) {
	for _, t := range s.tunnels.snapshot() {
		f := t.f
		d := eng.Host(f.agent, f.host)
		if d.Allowed() && t.intercepted {
			continue
		}
		if d.Allowed() {
			f.mu.Lock()
			ips := f.ips
			if f.dialed.IsValid() {
				ips = []netip.Addr{f.dialed}
			}
			f.mu.Unlock()
			probe := &flow{agent: f.agent, host: f.host, ips: ips, decision: d}
			if s.recheckAddrs(eng, probe) == nil {
				continue
			}
			d = probe.decision
		}
		d.Reason = "closed by a policy reload: " + d.Reason
		f.deny(d)
		t.close()
	}
}

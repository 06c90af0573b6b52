package proxy

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/agentg/agentg/addr"
	"github.com/agentg/agentg/rules"
)

// A governed MCP server, whatever spelling reaches it. mcp.servers binds
// names, and a name's binding would be worth little if the same server
// could be reached by its address: a CONNECT to its IP literal (any
// spelling addr normalises: 127.1, [::ffff:7f00:1], ...), a transparent
// connection without SNI, an http:// URL with an IP host. So an IP
// literal that is one of a governed name's addresses is that server: its
// tunnels are intercepted (or refused when agentg cannot intercept), and
// its exchanges go to the MCP guard under the server's name. A name's
// addresses are the resolve table's (rules.MCPRules.NamesAt), those the
// DNS filter handed out for it to the agent, and those DNS gives the
// names the entries spell out (looked up here, and kept for
// governedTTL). A lookup that fails gives no address: an agent that
// cannot resolve the name has no address of it to use either.

// governedTTL is how long a governed name's DNS answer is kept.
const governedTTL = 30 * time.Second

// governedAt finds the governed server an IP literal destination h is:
// the name it is (at h's port) and the servers entry that covers it.
func (s *Server) governedAt(ctx context.Context, eng *rules.Engine, agent string, h addr.Host) (name addr.Host, server string, ok bool) {
	if !h.IsIP() || !eng.MCP().HasServers() {
		return addr.Host{}, "", false
	}
	ip := h.IP.Unmap()
	try := func(n string) bool {
		name = addr.Host{Name: n, Port: h.Port}
		server, ok = eng.MCP().Host(name)
		return ok
	}
	for _, n := range eng.MCP().NamesAt(ip) {
		if try(n) {
			return name, server, true
		}
	}
	if s.cfg.Bindings != nil {
		// Any name the DNS filter gave this address out for, "*.x"
		// entries' names included.
		for _, n := range s.cfg.Bindings.NamesFor(agent, ip) {
			if try(n) {
				return name, server, true
			}
		}
	}
	for _, n := range eng.MCP().LookupNames() {
		if s.governed.has(ctx, s.cfg.Resolver, s.cfg.DialTimeout, n, ip) && try(n) {
			return name, server, true
		}
	}
	return addr.Host{}, "", false
}

// governedDNS keeps the DNS answers for governed names.
type governedDNS struct {
	mu sync.Mutex
	m  map[string]governedAnswer
}

type governedAnswer struct {
	ips     []netip.Addr
	expires time.Time
}

// has reports whether name resolves to ip, looking it up when its answer
// is not kept.
func (g *governedDNS) has(ctx context.Context, r Resolver, timeout time.Duration, name string, ip netip.Addr) bool {
	now := time.Now()
	g.mu.Lock()
	a, ok := g.m[name]
	g.mu.Unlock()
	if !ok || now.After(a.expires) {
		lctx, cancel := context.WithTimeout(ctx, timeout)
		ips, _ := r.LookupNetIP(lctx, "ip", name)
		cancel()
		for i := range ips {
			ips[i] = ips[i].Unmap()
		}
		a = governedAnswer{ips: ips, expires: now.Add(governedTTL)}
		g.mu.Lock()
		if g.m == nil || len(g.m) > 4096 {
			g.m = map[string]governedAnswer{} // bounded: the policy's names, across reloads
		}
		g.m[name] = a
		g.mu.Unlock()
	}
	return slices.Contains(a.ips, ip)
}

// tunnelPolicy is the policy's word on a tunnel to h, with an IP literal
// that is a governed server's address intercepted as the server's name
// is.
func (s *Server) tunnelPolicy(ctx context.Context, eng *rules.Engine, agent string, h addr.Host) rules.TunnelPolicy {
	tp := eng.Tunnel(agent, h)
	if !h.IsIP() {
		return tp
	}
	if _, server, ok := s.governedAt(ctx, eng, agent, h); ok {
		return rules.TunnelPolicy{Intercept: true, Rule: "mcp:server " + server}
	}
	return tp
}

package rules

import (
	"net/netip"
	"slices"
	"sort"

	"github.com/agentg/agentg/addr"
)

// A governed MCP server reached by address. A servers entry binds host
// names, but a client can dial the same server by one of its addresses
// (a CONNECT to an IP literal, a transparent connection without SNI, an
// http:// URL with an IP host), and a tunnel to an address no entry names
// would be opaque: the server's tools unread. So the addresses a governed
// name has are governed too: those the resolve table gives a name some
// entry covers, known here at load, and those DNS gives the names the
// entries spell out, which the proxy looks up (MCPLookupNames).

// serverAddrs is what the servers entries' names resolve to statically.
type serverAddrs struct {
	byIP   map[netip.Addr][]string // resolve: address -> names an entry covers
	lookup []string                // entry names to resolve by DNS (not in resolve:)
}

// compileServerAddrs runs after compileServers.
func (c *compiler) compileServerAddrs() {
	e := c.e
	a := &e.mcp.addrs
	if len(e.mcp.servers.byName) == 0 {
		return
	}
	for name, ips := range e.resolve.byName {
		if e.mcp.host(addr.Host{Name: name}, true) == nil {
			continue
		}
		for _, ip := range ips {
			if a.byIP == nil {
				a.byIP = map[netip.Addr][]string{}
			}
			ip = ip.Unmap()
			if !slices.Contains(a.byIP[ip], name) {
				a.byIP[ip] = append(a.byIP[ip], name)
			}
		}
	}
	for ip := range a.byIP {
		sort.Strings(a.byIP[ip])
	}
	for name, es := range e.mcp.servers.byName {
		if _, static := e.resolve.byName[name]; static {
			continue
		}
		for _, en := range es {
			// "name" and ".name" cover the name itself; "*.name" only
			// names below it, which no lookup can list.
			if en.kind != kindSub {
				a.lookup = append(a.lookup, name)
				break
			}
		}
	}
	sort.Strings(a.lookup)
}

// NamesAt lists the names the resolve table maps ip to that a servers
// entry covers (at some port): a destination ip is the server those
// names are. The slice is the engine's own: callers must not modify it.
func (m *MCPRules) NamesAt(ip netip.Addr) []string { return m.addrs.byIP[ip.Unmap()] }

// LookupNames lists the names servers entries spell out that the
// resolve table does not map: their DNS addresses are the servers' too.
func (m *MCPRules) LookupNames() []string { return m.addrs.lookup }

// HasServers reports whether the policy has any servers entry: only
// then can an address be a governed server's.
func (m *MCPRules) HasServers() bool { return len(m.servers.byName) > 0 }

// Host reports the servers entry that covers h's name at h's port,
// whatever the path (the entry a tunnel to h is intercepted for).
func (m *MCPRules) Host(h addr.Host) (server string, ok bool) {
	if en := m.host(h, false); en != nil {
		return en.name, true
	}
	return "", false
}

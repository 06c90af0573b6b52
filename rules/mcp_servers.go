package rules

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/agentg/agentg/addr"
)

// The mcp servers sub-section: which destinations are which MCP server.
// A server's policy name comes only from this binding of a checked
// destination (host pattern, optional path glob, optional ports), never
// from what the server says about itself. Every host a servers entry
// names is intercepted (Engine.Tunnel), so that its tool policy can be
// enforced inside TLS.

type serverSpec struct {
	line  int
	name  string
	url   string // as written
	host  pattern
	path  string      // the path glob as written, "" for none
	glob  *glob       // nil: every path
	ports []portRange // nil: every port
	// websocket: "websocket: allow" lets HTTP upgrades through to the
	// server, unread. No MCP revision has a WebSocket transport, so by
	// default ("refuse") an upgrade on a governed server is refused: a
	// tool called over the socket would escape every rule.
	websocket bool
	// stdio: a server agentg starts (command:, mcp_stdio.go); nil for
	// one at a url.
	stdio *stdioSpec
	gw    servingSpec // endpoint, prefix, timeout (mcp_gateway.go)
}

// validServerName reports whether s can name an MCP server: 1 to 64
// ASCII letters, digits, '_' or '-'. No dots (a tool pattern's server
// part ends at the first dot) and no '*' (it would be a glob).
func validServerName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isServerByte(s[i]) {
			return false
		}
	}
	return true
}

func isServerByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

func (p *mcpParser) mcpServers(n *yaml.Node) ([]serverSpec, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.ps.errf(n, "mcp servers must be a list of {name: NAME, url: HOST[/PATH]}")
	}
	var out []serverSpec
	names := map[string]int{}
	for _, it := range n.Content {
		s := serverSpec{line: it.Line}
		var nameNode, urlNode *yaml.Node
		err := p.ps.eachKey(it, func(k, v *yaml.Node) error {
			var err error
			switch k.Value {
			case "name":
				if s.name, err = p.ps.scalar(v); err == nil && !validServerName(s.name) {
					err = p.ps.errf(v, "bad mcp server name %q (1 to 64 letters, digits, '_' or '-'; no dots: in a tool pattern the server name ends at the first dot)", s.name)
				}
				nameNode = v
			case "url":
				s.url, err = p.ps.scalar(v)
				urlNode = v
			case "ports":
				s.ports, err = p.ps.ports(v)
			case "websocket":
				var ws string
				ws, err = p.ps.oneOf(v, "allow", "refuse")
				s.websocket = ws == "allow"
			case "endpoint", "prefix", "timeout":
				err = p.gatewayKey(&s.gw, k, v) // mcp_gateway.go
			default:
				var ok bool
				if ok, err = p.stdioKey(&s, k, v); !ok {
					err = p.ps.errf(k, "unknown mcp server key %q (want name, url, ports, websocket, endpoint, prefix, timeout; or command, env, dir, egress)", k.Value)
				}
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		if nameNode == nil {
			return nil, p.ps.errf(it, "mcp server entry needs a name and a url (or an endpoint, for the gateway, or a command)")
		}
		if err := p.checkStdio(it, &s, urlNode != nil); err != nil {
			return nil, err
		}
		if prev, dup := names[s.name]; dup {
			return nil, p.ps.errf(nameNode, "duplicate mcp server name %q (also at line %d)", s.name, prev)
		}
		names[s.name] = it.Line
		if err := p.checkPrefix(&s, out); err != nil { // mcp_gateway.go
			return nil, err
		}
		if s.stdio != nil {
			if s.ports != nil || s.websocket {
				return nil, p.ps.errf(it, "mcp server %s: ports and websocket apply to a server at a url, not to a command", s.name)
			}
			out = append(out, s)
			continue
		}
		if urlNode == nil {
			// An entry the gateway alone serves: it binds no destination
			// on the proxy's doors.
			out = append(out, s)
			continue
		}
		if s.host, s.path, s.glob, err = parseServerURL(s.url); err != nil {
			return nil, p.ps.errf(urlNode, "%v", err)
		}
		for _, o := range out {
			if o.url != "" && o.host == s.host && o.path == s.path && portsEqual(o.ports, s.ports) {
				return nil, p.ps.errf(urlNode, "mcp server %s has the same url as %s (line %d): a destination is one server", s.name, o.name, o.line)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// parseServerURL parses "HOSTPATTERN[/PATH]": a host pattern as for host
// rules and an optional path glob as for http rules.
func parseServerURL(s string) (pattern, string, *glob, error) {
	if i := strings.Index(s, "://"); i >= 0 {
		return pattern{}, "", nil, fmt.Errorf("mcp server url %q: write the host and path without a scheme (%q): the binding holds for http:// and https:// alike", s, s[i+3:])
	}
	hostPart, pathPart := s, ""
	if i := strings.IndexByte(s, '/'); i >= 0 {
		hostPart, pathPart = s[:i], s[i:]
	}
	if strings.Count(hostPart, ":") == 1 || strings.Contains(hostPart, "]:") {
		return pattern{}, "", nil, fmt.Errorf("port in %q: use the server's ports option", hostPart)
	}
	if isIPPattern(hostPart) {
		return pattern{}, "", nil, fmt.Errorf("IP literal %q in an mcp server url (name the host, and map it under resolve: if it has no DNS name)", hostPart)
	}
	pt, err := parsePattern(hostPart)
	if err != nil {
		return pattern{}, "", nil, err
	}
	var g *glob
	if pathPart != "" {
		if g, err = compileGlob(pathPart); err != nil {
			return pattern{}, "", nil, err
		}
	}
	return pt, pathPart, g, nil
}

func portsEqual(a, b []portRange) bool {
	if (a == nil) != (b == nil) || len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// portsOverlap reports whether some port is in both a and b (nil: every
// port).
func portsOverlap(a, b []portRange) bool {
	if a == nil || b == nil {
		return true
	}
	for _, x := range a {
		for _, y := range b {
			if x.lo <= y.hi && y.lo <= x.hi {
				return true
			}
		}
	}
	return false
}

// patternsOverlap reports whether some name is covered by both host
// patterns. Two patterns can share a name only when one's name is the
// other's or a domain under it, and then one of the four names tried is
// shared.
func patternsOverlap(a, b pattern) bool {
	for _, n := range [...]string{a.name, probeLabel + "." + a.name, b.name, probeLabel + "." + b.name} {
		if a.covers(n) && b.covers(n) {
			return true
		}
	}
	return false
}

// serverEntry is one compiled servers entry.
type serverEntry struct {
	name   string
	kind   uint8
	glob   *glob
	ports  []portRange
	order  int    // position in the policy: the first wins a tie
	tunnel string // "mcp:server <name>", built at load
}

// serverTable is the compiled servers sub-section.
type serverTable struct {
	byName    map[string][]serverEntry // entries by host pattern name
	defined   map[string]string        // server name -> "<file>:<line>"
	websocket map[string]bool          // servers whose entry says "websocket: allow"
	stdio     map[string]*StdioServer  // servers agentg starts (command:), by name
	list      []ServerBinding          // in policy order
}

// ServerBinding is one mcp servers entry, as written.
type ServerBinding struct {
	Name string
	URL  string // host pattern and optional path glob; "" for a command or a gateway-only entry
	// Command is a server agentg starts (StdioServer has the rest).
	Command []string
	Source  string // "<file>:<line>"
	Serving        // what the gateway needs of it (mcp_gateway.go)
}

// Servers lists the mcp servers entries in policy order.
func (m *MCPRules) Servers() []ServerBinding { return slices.Clone(m.servers.list) }

func (c *compiler) compileServers(specs []serverSpec) error {
	e, pol := c.e, c.pol
	t := &e.mcp.servers
	t.defined = map[string]string{}
	for i, s := range specs {
		t.defined[s.name] = fmt.Sprintf("%s:%d", pol.file, s.line)
		e.stats.MCPServers++
		if s.stdio != nil {
			if err := c.compileStdio(s); err != nil {
				return err
			}
			b := s.binding(t.defined[s.name])
			b.Command = s.stdio.command
			t.list = append(t.list, b)
			continue
		}
		if s.url == "" {
			t.list = append(t.list, s.binding(t.defined[s.name]))
			continue
		}
		for _, r := range pol.passthrough {
			for _, pt := range r.patterns {
				if patternsOverlap(pt, s.host) && portsOverlap(r.ports, s.ports) {
					return fmt.Errorf("load policy %s:%d: passthrough entry covers hosts of mcp server %s (%s:%d): an MCP server's host is always intercepted, so that its tool policy can be enforced",
						pol.file, r.line, s.name, pol.file, s.line)
				}
			}
		}
		if t.byName == nil {
			t.byName = map[string][]serverEntry{}
		}
		t.byName[s.host.name] = append(t.byName[s.host.name], serverEntry{
			name: s.name, kind: s.host.kind, glob: s.glob, ports: s.ports, order: i, tunnel: "mcp:server " + s.name,
		})
		if s.websocket {
			if t.websocket == nil {
				t.websocket = map[string]bool{}
			}
			t.websocket[s.name] = true
		}
		t.list = append(t.list, s.binding(t.defined[s.name]))
	}
	return nil
}

// WebSocket reports whether server's entry lets HTTP upgrades
// (WebSocket) through, unread ("websocket: allow").
func (m *MCPRules) WebSocket(server string) bool { return m.servers.websocket[server] }

// Server binds a checked destination to the policy name of the MCP
// server there: the most specific servers entry whose host pattern covers
// h (at its ports, when it names any) and whose path glob matches path
// (an entry without one matches every path). Specificity is as for http
// rules: host first, then path; on a tie the entry written first wins.
// path is the decoded request path (net/http's URL.Path) and is cleaned
// as for http rules. It is matched the way a deny is, regardless of case
// and with each segment's ";..." parameters stripped or not, so that no
// spelling the server treats as the same path escapes its binding.
//
// ok is false when no entry binds the destination: MCP there is under
// MCPSettings.UnknownServers. IP literals are never bound.
func (m *MCPRules) Server(h addr.Host, path string) (name string, ok bool) {
	t := &m.servers
	if len(t.byName) == 0 || h.IsIP() || h.Name == "" {
		return "", false
	}
	rp := reqPath{raw: path}
	var best *serverEntry
	bestH, bestP := -1, -2
	hn := h.Name
	for i := range suffixes(hn) {
		es := t.byName[hn[i:]]
		for j := range es {
			en := &es[j]
			hr, ok := suffixRank(hn, i, en.kind)
			if !ok || !portsContain(en.ports, h.Port) {
				continue
			}
			pr := -1
			if en.glob != nil {
				p, alt := rp.get()
				if !en.glob.matchLoose(p) && (alt == "" || !en.glob.matchLoose(alt)) {
					continue
				}
				pr = en.glob.rank
			}
			if hr > bestH || hr == bestH && (pr > bestP || pr == bestP && en.order < best.order) {
				best, bestH, bestP = en, hr, pr
			}
		}
	}
	if best == nil {
		return "", false
	}
	return best.name, true
}

// mcpHost returns the most specific servers entry whose host pattern
// covers h at its port (at any port with anyPort), whatever the path (nil
// when none): such a tunnel is always intercepted.
func (m *MCPRules) host(h addr.Host, anyPort bool) *serverEntry {
	t := &m.servers
	if len(t.byName) == 0 || h.IsIP() {
		return nil
	}
	var best *serverEntry
	bestH := -1
	hn := h.Name
	for i := range suffixes(hn) {
		es := t.byName[hn[i:]]
		for j := range es {
			en := &es[j]
			hr, ok := suffixRank(hn, i, en.kind)
			if !ok || !anyPort && !portsContain(en.ports, h.Port) {
				continue
			}
			if hr > bestH || hr == bestH && en.order < best.order {
				best, bestH = en, hr
			}
		}
	}
	return best
}

package rules

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/agentg/agentg/addr"
)

// The gateway keys of an mcp servers entry: what the MCP gateway door
// (package gateway) needs to serve a server that the entry's url, a
// pattern, cannot say. An entry with an endpoint is one the gateway
// connects to and lists in its catalogue (a command entry is too, served
// over stdio; it takes prefix and timeout, not endpoint):
//
//	endpoint: https://mcp.example/mcp   # the concrete URL the gateway connects to
//	prefix: jira                         # its names in the catalogue: "jira.TOOL"; default the
//	                                     # server's name; "" for none (the names as the server gives them)
//	timeout: 5s                          # how long a list waits for this server (default 5s)
//
// Two servers the gateway serves with the same effective prefix (two with
// none among them) would expose the same names: a load error, never a
// silent shadow at runtime.

// DefaultGatewayTimeout is how long the gateway waits for one server's
// answer to a list or its session's opening when the entry names no
// timeout: long enough for a server across the internet, short enough
// that a dead one does not hold a client's tools/list for long.
const DefaultGatewayTimeout = 5 * time.Second

// Serving is what the gateway door needs of a servers entry.
type Serving struct {
	// Endpoint is the URL the gateway connects to; "" when the gateway
	// does not serve the entry.
	Endpoint string
	// Prefix is the entry's namespace in the catalogue: "NAME" gives
	// "NAME.TOOL"; "" gives the server's own names.
	Prefix  string
	Timeout time.Duration
}

// Served reports whether the gateway serves the entry.
func (g Serving) Served() bool { return g.Endpoint != "" }

// Name is the catalogue's name for the server's name n.
func (g Serving) Name(n string) string {
	if g.Prefix == "" {
		return n
	}
	return g.Prefix + "." + n
}

// servingSpec is the gateway keys as parsed.
type servingSpec struct {
	endpoint    string
	prefix      string
	prefixSet   bool
	prefixNode  *yaml.Node
	timeout     time.Duration
	endpointKey *yaml.Node
}

func (p *mcpParser) gatewayKey(g *servingSpec, k, v *yaml.Node) error {
	switch k.Value {
	case "endpoint":
		s, err := p.ps.scalar(v)
		if err != nil {
			return err
		}
		if err := checkEndpoint(s); err != nil {
			return p.ps.errf(v, "%v", err)
		}
		g.endpoint, g.endpointKey = s, k
	case "prefix":
		if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
			return p.ps.errf(v, `bad prefix: write a name, or prefix: "" for none`)
		}
		if v.Value != "" && !validServerName(v.Value) {
			return p.ps.errf(v, "bad prefix %q (1 to 64 letters, digits, '_' or '-'; no dots: a catalogue name's prefix ends at its first dot)", v.Value)
		}
		g.prefix, g.prefixSet, g.prefixNode = v.Value, true, v
	case "timeout":
		d, err := p.ps.duration(v, 100*time.Millisecond, 5*time.Minute)
		if err != nil {
			return err
		}
		g.timeout = d
	}
	return nil
}

// checkEndpoint accepts an absolute http(s) URL with a host, and nothing
// a client would send elsewhere than it reads (user info, a fragment).
func checkEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("bad mcp server endpoint %q: %v", s, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("mcp server endpoint %q: want an http:// or https:// URL", s)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("mcp server endpoint %q has no host", s)
	case u.User != nil:
		return fmt.Errorf("mcp server endpoint %q: no user info in the URL (credentials go in the credentials section)", s)
	case u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Errorf("mcp server endpoint %q: no fragment", s)
	}
	if _, err := addr.ParseAuthority(u.Host, defaultPort(u.Scheme)); err != nil {
		return fmt.Errorf("mcp server endpoint %q: %v", s, err)
	}
	return nil
}

func defaultPort(scheme string) uint16 {
	if scheme == "https" {
		return 443
	}
	return 80
}

// checkPrefix completes s's gateway keys and refuses what the gateway
// could not serve: gateway keys without an endpoint, and a prefix another
// served entry (earlier in out) already has.
func (p *mcpParser) checkPrefix(s *serverSpec, out []serverSpec) error {
	g := &s.gw
	if !g.prefixSet {
		g.prefix = s.name
	}
	if g.timeout == 0 {
		g.timeout = DefaultGatewayTimeout
	}
	if !s.gatewayServed() {
		return nil
	}
	for _, o := range out {
		if !o.gatewayServed() || o.gw.prefix != g.prefix {
			continue
		}
		where := g.prefixNode
		if where == nil {
			where = g.endpointKey
		}
		if where == nil {
			where = s.stdio.commandAt // a command server without a prefix of its own
		}
		if g.prefix == "" {
			return p.ps.errf(where, "mcp servers %s and %s (line %d) both have no prefix: names both expose would shadow each other in the gateway's catalogue", s.name, o.name, o.line)
		}
		return p.ps.errf(where, "mcp servers %s and %s (line %d) have the same prefix %q: names both expose would shadow each other in the gateway's catalogue", s.name, o.name, o.line, g.prefix)
	}
	return nil
}

// gatewayServed reports whether the gateway serves the entry: it has an
// endpoint, or a command (checkStdio has made stdio nil for an entry
// without one).
func (s *serverSpec) gatewayServed() bool { return s.gw.endpoint != "" || s.stdio != nil }

func (s *serverSpec) binding(source string) ServerBinding {
	return ServerBinding{Name: s.name, URL: s.url, Source: source,
		Serving: Serving{Endpoint: s.gw.endpoint, Prefix: s.gw.prefix, Timeout: s.gw.timeout}}
}

// GatewayServers lists the entries the gateway serves, in policy order:
// those with an endpoint, and the command servers (over stdio, to the
// process agentg's supervisor runs).
func (m *MCPRules) GatewayServers() []ServerBinding {
	var out []ServerBinding
	for _, b := range m.servers.list {
		if b.Served() || len(b.Command) > 0 {
			out = append(out, b)
		}
	}
	return out
}

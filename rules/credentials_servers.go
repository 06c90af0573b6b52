package rules

import (
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/agentg/agentg/addr"
)

// Bindings by MCP server name (issue 16): a binding may say
//
//	- {server: github, secret: gh, header: {name: Authorization, value: "Bearer {{secret}}"}}
//	- {servers: [jira, confluence], secret: atl, basic: {user: bot}}
//
// instead of host:. It matches a request exactly when mcp servers binds
// the request's destination to one of those names: the host pattern, the
// ports and the path glob of the entry, most specific entry first, the
// same answer MCPRules.Server gives the MCP guard. So a binding and the
// tool policy can never disagree about which server a request is for, and
// moving a server's url in the policy moves its credential with it. A
// name mcp servers does not define is a load error.

// bindingServers parses server: or servers:, one name or a list.
func (p *parser) bindingServers(v *yaml.Node) ([]string, error) {
	its, err := p.items(v)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(its))
	for _, it := range its {
		if !validServerName(it.Value) {
			return nil, p.errf(it, "bad mcp server name %q", it.Value)
		}
		out = append(out, it.Value)
	}
	return out, nil
}

// bindingServers checks, once mcp servers is compiled (the mcp section
// compiles before credentials), that every server a binding names is
// defined.
func (c *compiler) bindingServers(b *Binding, bs bindingSpec) error {
	if bs.servers == nil {
		return nil
	}
	its := []*yaml.Node{bs.servers}
	if bs.servers.Kind == yaml.SequenceNode {
		its = bs.servers.Content
	}
	for _, it := range its {
		if _, ok := c.e.mcp.servers.defined[it.Value]; !ok {
			return fmt.Errorf("load policy %s:%d: %snames mcp server %q, which mcp servers does not define",
				c.pol.file, it.Line, orElse(bindingLabel(b), "a binding "), it.Value)
		}
	}
	return nil
}

// serverAt is the server one request's destination is, asked of mcp
// servers at most once per Match however many bindings name servers.
type serverAt struct {
	asked, ok bool
	name      string
}

// is reports whether h at path is one of names.
func (s *serverAt) is(m *MCPRules, h addr.Host, path string, names []string) bool {
	if !s.asked {
		s.asked = true
		s.name, s.ok = m.Server(h, path)
	}
	if !s.ok {
		return false
	}
	for _, n := range names {
		if n == s.name {
			return true
		}
	}
	return false
}

// orElse is s, or alt when s is empty.
func orElse(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// MatchServer is Match for a request the MCP gateway sends to the mcp
// servers entry named server (its endpoint): the request is that server's
// whatever its destination, so server: bindings match by the name, as
// they would match the same server's requests through the proxy. An entry
// the gateway alone serves (an endpoint and no url) binds no destination
// on the proxy's doors, and Match could not find it. Host bindings match
// as in Match. It does not allocate.
func (c *Credentials) MatchServer(agent, server string, h addr.Host, scheme, path string) *Binding {
	srv := serverAt{}
	if server != "" {
		srv = serverAt{asked: true, ok: true, name: server}
	}
	return c.match(agent, h, scheme, path, srv)
}

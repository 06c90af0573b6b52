package rules

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/netip"
	"strings"

	"gopkg.in/yaml.v3"
)

func init() {
	register(section{key: "agents", rank: rankAgents,
		parse: func(p *parser, _, v *yaml.Node, pol *policy) (err error) {
			pol.agents, err = p.agents(v)
			return err
		},
		steps: []step{{phase: phaseNames, at: 20, run: func(c *compiler) error {
			c.e.agents = compileAgents(c.pol)
			return nil
		}}}})
	register(section{key: "free_agent_names", rank: rankFreeNames,
		parse: func(p *parser, _, v *yaml.Node, pol *policy) (err error) {
			pol.freeNames, err = p.boolean(v)
			return err
		}})
}

// The agents section: who may claim which agent name, and naming the
// agent behind a connection.

type agentSpec struct {
	line     int
	name     string
	password string
	hasPass  bool
	cidrs    []netip.Prefix
}

func (p *parser) agents(n *yaml.Node) ([]agentSpec, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.errf(n, "agents must be a list")
	}
	var out []agentSpec
	names := map[string]bool{}
	for _, it := range n.Content {
		a := agentSpec{line: it.Line}
		err := p.eachKey(it, func(k, v *yaml.Node) error {
			var err error
			switch k.Value {
			case "name":
				if a.name, err = p.scalar(v); err == nil && !validName(a.name) {
					err = p.errf(v, "bad agent name %q (printable, no spaces, at most 64 bytes)", a.name)
				} else if err == nil && (strings.HasPrefix(a.name, AgentServerPrefix) || strings.HasPrefix(a.name, ProxyUserPrefix)) {
					err = p.errf(v, "agent name %q: names starting with %q or %q are the MCP servers agentg starts (mcp.servers command:)", a.name, AgentServerPrefix, ProxyUserPrefix)
				}
			case "password":
				if a.password, err = p.scalar(v); err == nil && a.password == "" {
					err = p.errf(v, "empty password (leave the key out for an agent without one)")
				}
				a.hasPass = true
			case "cidrs":
				a.cidrs, err = p.prefixes(v)
			default:
				err = p.errf(k, "unknown agent key %q (want name, password, cidrs)", k.Value)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		if a.name == "" {
			return nil, p.errf(it, "agent without a name")
		}
		if names[a.name] {
			return nil, p.errf(it, "duplicate agent %q", a.name)
		}
		names[a.name] = true
		out = append(out, a)
	}
	return out, nil
}

// agentTable is the compiled agents section.
type agentTable struct {
	list      []agentSpec
	byName    map[string]*agentSpec
	freeNames bool // a client may claim a name the policy does not define
}

func compileAgents(pol *policy) agentTable {
	t := agentTable{list: pol.agents, byName: make(map[string]*agentSpec, len(pol.agents)),
		freeNames: pol.freeNames || len(pol.agents) == 0}
	for i := range t.list {
		t.byName[t.list[i].name] = &t.list[i]
	}
	return t
}

// passwordMatches compares in constant time. Both sides are hashed first
// so the comparison does not leak the password's length.
func (a *agentSpec) passwordMatches(password string) bool {
	got, want := sha256.Sum256([]byte(password)), sha256.Sum256([]byte(a.password))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// from reports whether src is inside the agent's cidrs; an agent without
// cidrs may connect from anywhere.
func (a *agentSpec) from(src netip.Addr) bool {
	if a.cidrs == nil {
		return true
	}
	for _, p := range a.cidrs {
		if p.Contains(src) {
			return true
		}
	}
	return false
}

// bySource is the agent whose cidrs most specifically contain src, or nil.
func (t *agentTable) bySource(src netip.Addr) *agentSpec {
	var best *agentSpec
	bestBits := -1
	for i := range t.list {
		a := &t.list[i]
		for _, p := range a.cidrs {
			if (p.Contains(src) || p.Contains(src.Unmap())) && p.Bits() > bestBits {
				best, bestBits = a, p.Bits()
			}
		}
	}
	return best
}

// Claim is what a connection says about who it is.
type Claim struct {
	// User and Password are from Proxy-Authorization Basic; User is ""
	// when none was sent.
	User, Password string
	// Src is the connection's source address.
	Src netip.Addr
}

// Agent names the agent behind a connection, or refuses the claim with
// an error the proxy answers with 407. A claim is proven, never taken on
// trust:
//
//   - A user naming an agent the policy defines must present its
//     password when it has one ("bad credentials for agent builder"), and
//     connect from inside its cidrs when it has them ("agent builder may
//     not connect from 10.1.2.3"). The password is compared in constant
//     time, hashed first so its length does not leak either.
//   - A user naming an agent the policy does not define is refused
//     ("unknown agent x") when the policy defines any agent, unless it
//     sets free_agent_names: true. A name that is an IP address is never
//     accepted as a free name: clients without a user are named by their
//     address, and no client may pose as another's.
//   - Without a user, the agent whose cidrs most specifically contain
//     Src; "" when none does (the proxy names the client by its address).
//     An agent with a password is not chosen by address alone: its
//     clients must present the password ("agent builder requires a
//     password"), or its rules would be open to, and escapable by, any
//     client that simply sends no user.
func (e *Engine) Agent(c Claim) (string, error) {
	src := c.Src.Unmap()
	t := &e.agents
	if c.User == "" {
		a := t.bySource(src)
		switch {
		case a == nil:
			return "", nil
		case a.hasPass:
			return "", fmt.Errorf("agent %s requires a password (Proxy-Authorization Basic)", a.name)
		}
		return a.name, nil
	}
	if !validName(c.User) {
		return "", fmt.Errorf("invalid agent name %q", c.User)
	}
	if strings.HasPrefix(c.User, AgentServerPrefix) || strings.HasPrefix(c.User, ProxyUserPrefix) {
		// Proven by the credentials agentg gave the server, never by
		// the policy (proxy/servers.go).
		return "", fmt.Errorf("agent %s is an MCP server's own identity, given only to the server agentg started", c.User)
	}
	a := t.byName[c.User]
	if a == nil {
		if !t.freeNames {
			return "", fmt.Errorf("unknown agent %s", c.User)
		}
		if _, err := netip.ParseAddr(c.User); err == nil {
			return "", fmt.Errorf("agent name %s is an address: only a client that sends no user is named by its address", c.User)
		}
		return c.User, nil
	}
	if a.hasPass && !a.passwordMatches(c.Password) {
		return "", fmt.Errorf("bad credentials for agent %s", a.name)
	}
	if !a.from(src) {
		return "", fmt.Errorf("agent %s may not connect from %s", a.name, src)
	}
	return a.name, nil
}

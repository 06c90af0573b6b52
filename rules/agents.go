package rules

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/netip"

	"gopkg.in/yaml.v3"
)

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
	list   []agentSpec
	byName map[string]*agentSpec
}

func compileAgents(pol *policy) agentTable {
	t := agentTable{list: pol.agents, byName: make(map[string]*agentSpec, len(pol.agents))}
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

// Identify names the agent behind a connection. A Basic user is that
// agent, and must present the password when the policy holds one for it.
// Without a user, the agent whose cidrs most specifically contain src is
// chosen; "" when none does (the caller names it by the address).
//
// Deprecated: use Agent, which also enforces an agent's cidrs and refuses
// names the policy does not define. Identify lets any client claim any
// agent that has no password, from anywhere.
func (e *Engine) Identify(user, password string, src netip.Addr) (string, error) {
	if user != "" {
		if !validName(user) {
			return "", fmt.Errorf("invalid agent name %q", user)
		}
		if a := e.agents.byName[user]; a != nil && a.hasPass && !a.passwordMatches(password) {
			return "", fmt.Errorf("bad credentials for agent %s", user)
		}
		return user, nil
	}
	if a := e.agents.bySource(src); a != nil {
		return a.name, nil
	}
	return "", nil
}

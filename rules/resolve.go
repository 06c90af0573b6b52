package rules

import (
	"net/netip"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/agentg/agentg/addr"
)

func init() {
	register(section{key: "resolve", rank: rankResolve,
		parse: func(p *parser, _, v *yaml.Node, pol *policy) (err error) {
			pol.resolve, err = p.resolveTable(v)
			return err
		},
		steps: []step{{phase: phaseNames, at: 30, run: func(c *compiler) error {
			c.e.resolve = c.pol.resolve
			return nil
		}}}})
}

// The resolve section: a static resolver table consulted before DNS.

// resolveTable is the parsed and compiled resolve section.
type resolveTable struct {
	byName map[string][]netip.Addr
	line   map[string]int // where each name is written, for warnings
}

func (p *parser) resolveTable(n *yaml.Node) (resolveTable, error) {
	out := map[string][]netip.Addr{}
	lines := map[string]int{}
	err := p.eachKey(n, func(k, v *yaml.Node) error {
		name, err := addr.CanonicalName(k.Value)
		if err != nil {
			return p.errf(k, "bad name %q in resolve: %v", k.Value, err)
		}
		if _, dup := out[name]; dup {
			return p.errf(k, "duplicate name %q in resolve", name)
		}
		lines[name] = k.Line
		its, err := p.items(v)
		if err != nil {
			return err
		}
		for _, it := range its {
			h, err := addr.Canonical(strings.TrimSpace(it.Value))
			if err != nil || !h.IsIP() {
				return p.errf(it, "bad IP %q in resolve", it.Value)
			}
			out[name] = append(out[name], h.IP)
		}
		return nil
	})
	return resolveTable{byName: out, line: lines}, err
}

// Resolve looks a name up in the policy's static resolver table. The
// slice is the engine's own (it is asked on every request): callers must
// not modify it.
func (e *Engine) Resolve(name string) ([]netip.Addr, bool) {
	ips, ok := e.resolve.byName[name]
	if !ok {
		if c, err := addr.CanonicalName(name); err == nil && c != name {
			ips, ok = e.resolve.byName[c]
		}
	}
	return ips, ok
}

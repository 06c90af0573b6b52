package rules

import (
	"fmt"
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/agentg/agentg/addr"
)

func init() {
	register(section{key: "intercept", rank: rankIntercept,
		parse: func(p *parser, k, v *yaml.Node, pol *policy) (err error) {
			pol.interceptAll, pol.intercept, err = p.interceptRules(k, v)
			return err
		},
		// One step compiles intercept and passthrough together.
		steps: []step{{phase: phaseRules, at: 60, run: func(c *compiler) error {
			c.compileTunnels()
			return nil
		}}}})
	register(section{key: "passthrough", rank: rankPassthrough,
		parse: func(p *parser, k, v *yaml.Node, pol *policy) (err error) {
			_, pol.passthrough, err = p.interceptRules(k, v)
			return err
		}})
}

// The intercept and passthrough sections: which CONNECT tunnels agentg
// terminates (so that HTTP rules can see inside), and which it never does.

// icRule is one intercept or passthrough entry.
type icRule struct {
	line     int
	patterns []pattern
	agents   []string    // nil: every agent
	ports    []portRange // nil: every port
	ech      bool        // passthrough only: "ech: allow"
}

// interceptRules parses the intercept or passthrough section: "all"
// (intercept only), or a list whose items are host patterns or mappings
// {host: PATTERN or [PATTERN...], agents: [...], ports: [...]}; a
// passthrough mapping may also say "ech: allow" (or "refuse", the
// default).
func (p *parser) interceptRules(k, n *yaml.Node) (all bool, out []icRule, err error) {
	what := k.Value
	if n.Kind == yaml.ScalarNode {
		if what == "intercept" && n.Value == "all" {
			return true, nil, nil
		}
		if what == "intercept" {
			return false, nil, p.errf(n, `intercept must be "all" or a list of host patterns, not %q`, n.Value)
		}
		return false, nil, p.errf(n, "passthrough must be a list of host patterns, not %q", n.Value)
	}
	if n.Kind != yaml.SequenceNode {
		return false, nil, p.errf(n, "%s must be a list of host patterns", what)
	}
	for _, it := range n.Content {
		r := icRule{line: it.Line}
		var pats []*yaml.Node
		switch it.Kind {
		case yaml.ScalarNode:
			pats = []*yaml.Node{it}
		case yaml.MappingNode:
			var o ruleOpts
			err := p.eachKey(it, func(k, v *yaml.Node) error {
				var err error
				switch k.Value {
				case "host":
					pats, err = p.items(v)
				case "agents", "ports":
					_, err = p.option(k, v, &o)
				case "ech":
					if what != "passthrough" {
						return p.errf(k, "ech applies to passthrough entries only (an intercepted tunnel's TLS is agentg's own, and any other tunnel's SNI must be checked)")
					}
					var s string
					s, err = p.oneOf(v, "allow", "refuse")
					r.ech = s == "allow"
				default:
					want := "host, agents, ports"
					if what == "passthrough" {
						want += ", ech"
					}
					err = p.errf(k, "unknown %s key %q (want %s)", what, k.Value, want)
				}
				return err
			})
			if err != nil {
				return false, nil, err
			}
			if pats == nil {
				return false, nil, p.errf(it, "%s entry without a host", what)
			}
			r.agents, r.ports = o.agents, o.ports
		default:
			return false, nil, p.errf(it, "expected a host pattern or {host: PATTERN, agents: [...]}")
		}
		for _, pn := range pats {
			if pn.Value == "all" {
				return false, nil, p.errf(pn, `"all" in a list would be a host named all; write "intercept: all" (no list) to intercept every tunnel`)
			}
			if isIPPattern(pn.Value) {
				return false, nil, p.errf(pn, `IP literal %q in %s (tunnels to IP literals are intercepted only by "intercept: all")`, pn.Value, what)
			}
			pt, err := parsePattern(pn.Value)
			if err != nil {
				return false, nil, p.errf(pn, "%v", err)
			}
			r.patterns = append(r.patterns, pt)
		}
		out = append(out, r)
	}
	return false, out, nil
}

// icEntry is one compiled intercept or passthrough pattern.
type icEntry struct {
	kind   uint8
	pass   bool
	agents []string
	ports  []portRange
	id     string
	ech    bool
}

func (en *icEntry) applies(agent string, port uint16) bool {
	return (en.agents == nil || slices.Contains(en.agents, agent)) && portsContain(en.ports, port)
}

// tunnelRules is the compiled intercept and passthrough sections.
type tunnelRules struct {
	byName map[string][]icEntry // entries by pattern name
	all    bool                 // "intercept: all"
}

func (c *compiler) compileTunnels() {
	e, pol := c.e, c.pol
	e.tunnels.all = pol.interceptAll
	e.stats.InterceptAll = pol.interceptAll
	add := func(rs []icRule, pass bool, n *int) {
		for _, r := range rs {
			id := fmt.Sprintf("%s:%d", pol.file, r.line)
			if pass {
				id = "passthrough " + id
			}
			for _, pt := range r.patterns {
				if e.tunnels.byName == nil {
					e.tunnels.byName = map[string][]icEntry{}
				}
				e.tunnels.byName[pt.name] = append(e.tunnels.byName[pt.name], icEntry{kind: pt.kind, pass: pass, agents: r.agents, ports: r.ports, id: id, ech: r.ech})
				*n++
			}
		}
	}
	add(pol.intercept, false, &e.stats.InterceptRules)
	add(pol.passthrough, true, &e.stats.PassthroughRules)
}

// tunnelMatch finds the most specific intercept entry and the most
// specific passthrough entry that match h for agent (nil when none).
func (e *Engine) tunnelMatch(agent string, h addr.Host) (ic, pass *icEntry) {
	if len(e.tunnels.byName) == 0 || h.IsIP() {
		return nil, nil
	}
	name := h.Name
	icRank, passRank := -1, -1
	for i := range suffixes(name) {
		es := e.tunnels.byName[name[i:]]
		for j := range es {
			en := &es[j]
			rank, ok := suffixRank(name, i, en.kind)
			if !ok || !en.applies(agent, h.Port) {
				continue
			}
			if en.pass {
				if rank > passRank {
					pass, passRank = en, rank
				}
			} else if rank > icRank {
				ic, icRank = en, rank
			}
		}
	}
	return ic, pass
}

// TunnelPolicy is what the policy says about one tunnel.
type TunnelPolicy struct {
	// Intercept is set when agentg terminates the tunnel's TLS, so that
	// every request inside is decided again (HTTP rules included).
	Intercept bool
	// Rule is the id of what decided: "mcp:server <name>" when an mcp
	// servers entry names the host (always intercepted: a passthrough
	// entry covering one is a load error), "passthrough <file>:<line>"
	// when a passthrough entry matches (it wins over intercept,
	// including "intercept: all"), "<file>:<line>" of the most specific
	// matching intercept entry, "intercept:all", or "" when nothing
	// intercepts.
	Rule string
	// AllowECH is set when the TLS gate may pass a ClientHello that uses
	// Encrypted Client Hello. ECH hides the real SNI the gate must check
	// against the CONNECT host, so it is refused unless the deciding
	// entry is a passthrough entry with "ech: allow".
	AllowECH bool
}

// Tunnel says how to handle a CONNECT tunnel to h for agent: whether to
// intercept it, which entry decided, and whether ECH may pass. A host an
// mcp servers entry names (at its ports, whatever its path) is always
// intercepted, for every agent, so that its tool policy is enforced;
// that is asked first, so that a passthrough entry can never open one.
// IP literals match only "intercept: all".
func (e *Engine) Tunnel(agent string, h addr.Host) TunnelPolicy {
	if srv := e.mcp.host(h, false); srv != nil {
		return TunnelPolicy{Intercept: true, Rule: srv.tunnel}
	}
	if e.LLM().binds(h) {
		// A model API host is read on the exchange path (llm.go): its
		// tunnels are intercepted, as an mcp server's are.
		return TunnelPolicy{Intercept: true, Rule: "llm:host"}
	}
	ic, pass := e.tunnelMatch(agent, h)
	switch {
	case pass != nil:
		return TunnelPolicy{Rule: pass.id, AllowECH: pass.ech}
	case ic != nil:
		return TunnelPolicy{Intercept: true, Rule: ic.id}
	case e.tunnels.all:
		return TunnelPolicy{Intercept: true, Rule: "intercept:all"}
	}
	return TunnelPolicy{}
}

// Intercept reports whether a CONNECT tunnel to h should be intercepted
// for agent, and the id of what decided it, as Tunnel does.
//
// Deprecated: use Tunnel, which also says whether ECH may pass.
func (e *Engine) Intercept(agent string, h addr.Host) (bool, string) {
	t := e.Tunnel(agent, h)
	return t.Intercept, t.Rule
}

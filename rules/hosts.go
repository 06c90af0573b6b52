package rules

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/agentg/agentg/addr"
)

func init() {
	register(section{key: "hosts", rank: rankHosts,
		parse: func(p *parser, _, v *yaml.Node, pol *policy) (err error) {
			pol.hosts, err = p.hostRules(v)
			return err
		},
		steps: []step{{phase: phaseNames, at: 40, run: func(c *compiler) error { return c.compileHosts(c.names) }}}})
}

// The hosts section: host patterns, their rules, and deciding a name
// against them and the lists (lists.go), which share the packed name
// table (suffix.go).

type pattern struct {
	name string
	kind uint8
}

type hostRule struct {
	line     int
	deny     bool
	patterns []pattern
	opts     ruleOpts
}

// parsePattern checks one host pattern: "example.com", "*.example.com" or
// ".example.com"; anything else is refused.
func parsePattern(s string) (pattern, error) {
	kind := kindExact
	rest := s
	switch {
	case strings.HasPrefix(s, "*."):
		kind, rest = kindSub, s[2:]
	case strings.HasPrefix(s, "."):
		kind, rest = kindTree, s[1:]
	}
	if rest == "" {
		return pattern{}, fmt.Errorf("empty host pattern %q", s)
	}
	if strings.ContainsAny(rest, "*") {
		return pattern{}, fmt.Errorf("bad host pattern %q: '*' is only allowed as a whole first label (\"*.example.com\")", s)
	}
	if h, err := addr.Canonical(rest); err == nil && h.IsIP() || err != nil && isIPish(rest) {
		return pattern{}, fmt.Errorf("IP literal %q in a host rule (put it under ips:)", s)
	}
	name, err := addr.CanonicalName(rest)
	if err != nil {
		return pattern{}, fmt.Errorf("bad host pattern %q: %v", s, err)
	}
	return pattern{name: name, kind: kind}, nil
}

func isIPish(s string) bool {
	_, isIP, _ := addr.ParseIP(s)
	return isIP || strings.HasPrefix(s, "[")
}

// isIPPattern reports whether a would-be host pattern is an IP literal,
// so that the error can say what to do instead.
func isIPPattern(s string) bool {
	rest := strings.TrimPrefix(strings.TrimPrefix(s, "*."), ".")
	h, err := addr.Canonical(rest)
	return err == nil && h.IsIP() || err != nil && isIPish(rest)
}

// covers reports whether the pattern matches the canonical name.
func (pt pattern) covers(name string) bool {
	switch {
	case name == pt.name:
		return pt.kind != kindSub
	case strings.HasSuffix(name, pt.name) && name[len(name)-len(pt.name)-1] == '.':
		return pt.kind != kindExact
	}
	return false
}

func (p *parser) hostRules(n *yaml.Node) ([]hostRule, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.errf(n, "hosts must be a list of rules")
	}
	var out []hostRule
	for _, it := range n.Content {
		deny, val, o, err := p.ruleBody(it, nil)
		if err != nil {
			return nil, err
		}
		pats, err := p.items(val)
		if err != nil {
			return nil, err
		}
		r := hostRule{line: it.Line, deny: deny, opts: o}
		for _, pn := range pats {
			pt, err := parsePattern(pn.Value)
			if err != nil {
				return nil, p.errf(pn, "%v", err)
			}
			r.patterns = append(r.patterns, pt)
		}
		out = append(out, r)
	}
	return out, nil
}

// compileHosts adds the host rules to the name table being built.
func (c *compiler) compileHosts(b *nameBuilder) error {
	for _, r := range c.pol.hosts {
		src, err := c.ruleSource(r.line, r.opts)
		if err != nil {
			return err
		}
		for _, p := range r.patterns {
			flags := p.kind
			if r.deny {
				flags |= flagDeny
				if r.opts.important {
					flags |= flagImportant
				}
			}
			if err := b.add([]byte(p.name), flags, r.line, src); err != nil {
				return fmt.Errorf("load policy %s:%d: %w", c.pol.file, r.line, err)
			}
			c.e.stats.HostRules++
		}
	}
	return nil
}

// hostNames is the packed name table of the hosts and lists sections
// (and the resolvers dns.go denies), with the matching Host, Name and
// the DNS filter's questions share.
type hostNames struct {
	nameTable
	e *Engine // its sources and default
}

// match finds the deciding host rule or list entry for the canonical
// name, among those that apply to agent and port: the most specific
// (longest suffix; at the full host exact beats ".name"), deny on a tie,
// an important deny over any allow. It returns the entry plus one, 0 when
// none matched; scoped reports whether any entry that matched name and
// agent is restricted to ports, so a port-less question (Name) knows
// whether the port could change the answer.
func (n *hostNames) match(agent, name string, port uint16) (best uint32, scoped bool) {
	e := n.e
	var imp uint32
	bestRank, impRank := -1, -1
	for i, hs := range suffixes(name) {
		for c := n.find(hs, name[i:]); c != 0; {
			cur, en := c, &n.entries[c-1]
			c = en.next
			rank, ok := suffixRank(name, i, en.flags&kindMask)
			if !ok {
				continue
			}
			s := &e.sources[en.src]
			if !s.appliesTo(agent) {
				continue
			}
			if s.ports != nil {
				scoped = true
				if !portsContain(s.ports, port) {
					continue
				}
			}
			deny := en.flags&flagDeny != 0
			if rank > bestRank || rank == bestRank && deny && n.entries[best-1].flags&flagDeny == 0 {
				best, bestRank = cur, rank
			}
			if deny && en.flags&flagImportant != 0 && rank > impRank {
				imp, impRank = cur, rank
			}
		}
	}
	if best != 0 && n.entries[best-1].flags&flagDeny == 0 && imp != 0 {
		best = imp // an important deny cannot be overridden by any allow
	}
	return best, scoped
}

// ports appends to pts the port ranges of every entry that matches
// name and applies to agent.
func (n *hostNames) ports(agent, name string, pts []portRange) []portRange {
	e := n.e
	for i, hs := range suffixes(name) {
		for c := n.find(hs, name[i:]); c != 0; {
			en := &n.entries[c-1]
			c = en.next
			if _, ok := suffixRank(name, i, en.flags&kindMask); !ok {
				continue
			}
			if s := &e.sources[en.src]; s.appliesTo(agent) {
				pts = append(pts, s.ports...)
			}
		}
	}
	return pts
}

// decide decides a name by the host rules and lists alone.
func (n *hostNames) decide(agent, name string, port uint16) (Decision, bool) {
	e := n.e
	best, scoped := n.match(agent, name, port)
	if best == 0 {
		return e.dflt, scoped
	}
	return n.decision(best, name), scoped
}

func (n *hostNames) decision(c uint32, name string) Decision {
	e := n.e
	en := &n.entries[c-1]
	s := &e.sources[en.src]
	d := Decision{Action: Allow, Rule: s.ruleID, Source: s.where}
	verb := "allowed"
	if en.flags&flagDeny != 0 {
		d.Action, d.Report, verb = Deny, s.report, "denied"
	}
	if !s.list {
		d.Reason = "host " + name + " " + verb + " by " + s.label
		return d
	}
	// A list hit builds Source and Reason as one string and slices it,
	// and shares Source as the id when the list has no id-prefix: one
	// allocation per hit, with the line number formatted on the stack.
	var buf [12]byte
	line := strconv.AppendUint(buf[:0], uint64(en.line), 10)
	all := s.file + ":" + string(line) + "host " + name + " " + verb + " by " + s.label
	k := len(s.file) + 1 + len(line)
	d.Source, d.Reason = all[:k], all[k:]
	d.Rule = d.Source
	if s.ruleID != s.file {
		d.Rule = s.ruleID + ":" + string(line)
	}
	return d
}

package rules

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/agentg/agentg/addr"
)

func init() {
	register(section{key: "ips", rank: rankIPs,
		parse: func(p *parser, _, v *yaml.Node, pol *policy) (err error) {
			pol.ips, err = p.ipRules(v)
			return err
		},
		steps: []step{{phase: phaseRules, at: 10, run: (*compiler).compileIPs}}})
}

// The ips section: CIDR rules and the built-in guard on non-public
// addresses, for IP literals and for the resolved addresses of names.
//
// A non-public address (addr.Classify != "") is denied unless a matching
// CIDR allow rule is at least as specific as the non-public range it falls
// in: "allow 0.0.0.0/0" says "the internet" and must not open 10.0.0.0/8 or
// the metadata service at 169.254.169.254, while "allow 10.0.0.0/8" or
// "allow 127.0.0.1/32" names the private range on purpose.

type ipRule struct {
	line     int
	deny     bool
	prefixes []netip.Prefix
	opts     ruleOpts
}

func (p *parser) ipRules(n *yaml.Node) ([]ipRule, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.errf(n, "ips must be a list of rules")
	}
	var out []ipRule
	for _, it := range n.Content {
		deny, val, o, err := p.ruleBody(it, nil)
		if err != nil {
			return nil, err
		}
		pfs, err := p.prefixes(val)
		if err != nil {
			return nil, err
		}
		out = append(out, ipRule{line: it.Line, deny: deny, prefixes: pfs, opts: o})
	}
	return out, nil
}

// prefixes parses CIDRs and single IPs. Host bits set in a prefix
// ("10.0.0.1/8") are refused, not masked: the author meant something and
// the policy should not guess what.
func (p *parser) prefixes(n *yaml.Node) ([]netip.Prefix, error) {
	its, err := p.items(n)
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, it := range its {
		s := strings.TrimSpace(it.Value)
		if strings.Contains(s, "/") {
			pf, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, p.errf(it, "bad CIDR %q: %v", s, err)
			}
			if pf.Masked() != pf {
				return nil, p.errf(it, "CIDR %q has host bits set (did you mean %s?)", s, pf.Masked())
			}
			out = append(out, pf)
			continue
		}
		h, err := addr.Canonical(s)
		if err != nil || !h.IsIP() {
			return nil, p.errf(it, "bad IP or CIDR %q", s)
		}
		out = append(out, netip.PrefixFrom(h.IP, h.IP.BitLen()))
	}
	return out, nil
}

type cidrRule struct {
	prefix    netip.Prefix
	deny      bool
	important bool
	src       int
}

func (c *compiler) compileIPs() error {
	e := c.e
	for _, r := range c.pol.ips {
		src, err := c.ruleSource(r.line, r.opts)
		if err != nil {
			return err
		}
		for _, p := range r.prefixes {
			e.cidrs.rules = append(e.cidrs.rules, cidrRule{prefix: p, deny: r.deny, important: r.opts.important, src: src})
		}
	}
	// Longest prefix first: the first applicable match is the most specific.
	slices.SortStableFunc(e.cidrs.rules, func(a, b cidrRule) int { return b.prefix.Bits() - a.prefix.Bits() })
	e.stats.CIDRRules = len(e.cidrs.rules)
	return nil
}

// cidrTable is the compiled ips section (and the resolver ranges
// resolvers.go adds): CIDR rules, longest prefix first, and the matching
// that IP, CIDRAllows, Host and the DNS filter's answer checks share.
type cidrTable struct {
	e     *Engine // its sources, default and report mode
	rules []cidrRule
}

// match finds the deciding CIDR rule for ip: the longest matching
// prefix among the rules that apply to agent and port, deny on a tie, and
// an important deny over any allow. scoped reports whether a rule that
// matched ip and agent is restricted to ports.
func (t *cidrTable) match(agent string, ip netip.Addr, port uint16) (rule *cidrRule, scoped bool) {
	e := t.e
	var best, imp *cidrRule
	for i := range t.rules {
		r := &t.rules[i]
		if !r.prefix.Contains(ip) {
			continue
		}
		s := &e.sources[r.src]
		if !s.appliesTo(agent) {
			continue
		}
		if s.ports != nil {
			scoped = true
			if !portsContain(s.ports, port) {
				continue
			}
		}
		if best == nil || best.prefix.Bits() == r.prefix.Bits() && r.deny && !best.deny {
			best = r
		}
		if r.deny && r.important && imp == nil {
			imp = r
		}
	}
	if best != nil && !best.deny && imp != nil {
		return imp, scoped
	}
	return best, scoped
}

// ports appends to pts the port ranges of every CIDR rule that
// matches ip and applies to agent.
func (t *cidrTable) ports(agent string, ip netip.Addr, pts []portRange) []portRange {
	e := t.e
	for i := range t.rules {
		r := &t.rules[i]
		if s := &e.sources[r.src]; r.prefix.Contains(ip) && s.appliesTo(agent) {
			pts = append(pts, s.ports...)
		}
	}
	return pts
}

// ipVerdict is the outcome of the CIDR rules and the guard for one address.
type ipVerdict struct {
	rule   *cidrRule  // deciding rule, nil when none matched
	class  addr.Class // non-public class, "" for public
	open   bool       // rule is an allow that opens the class
	scoped bool       // a matching rule is restricted to ports
}

func (t *cidrTable) verdict(agent string, ip netip.Addr, port uint16) ipVerdict {
	class, within := addr.ClassRange(ip)
	v := ipVerdict{class: class}
	v.rule, v.scoped = t.match(agent, ip, port)
	if v.rule != nil && !v.rule.deny {
		// An address in no known range (invalid, zoned) has no width to
		// open: only a rule for exactly that address does.
		need := ip.BitLen()
		if within.IsValid() {
			need = within.Bits()
		}
		v.open = class == "" || v.rule.prefix.Bits() >= need
	}
	return v
}

// decide decides an address by the CIDR rules and the guard. dflt is
// what an address no rule objects to gets: the policy's default for an
// IP literal, "no objection" for a resolved address.
func (t *cidrTable) decide(agent string, ip netip.Addr, port uint16, dflt Decision) (Decision, bool) {
	v := t.verdict(agent, ip, port)
	switch {
	case v.rule != nil && (v.rule.deny || v.open):
		return t.decision(v.rule, ip), v.scoped
	case v.class != "":
		return t.nonPublic(ip, v.class), v.scoped
	}
	return dflt, v.scoped
}

// noObjection is IP's answer for an address no rule objects to: the host
// decision governs.
var noObjection = Decision{Action: Allow}

// IP checks one resolved address of an allowed name. An IPv4-mapped IPv6
// address (::ffff:a.b.c.d, what a name in /etc/hosts can resolve to) is
// checked as the IPv4 address it maps, since that is what a dial
// reaches. It objects when the port is outside the policy's ports, a CIDR deny
// wins, or the address is non-public and no CIDR allow opens its range;
// otherwise it returns Allow with Rule "" ("no objection": the host
// decision governs) or the id of the allow rule that matched.
func (e *Engine) IP(agent string, ip netip.Addr, port uint16) Decision {
	if !e.ports.allows(port) {
		return e.ports.denied(port)
	}
	d, _ := e.cidrs.decide(agent, ip.Unmap(), port, noObjection)
	return d
}

func (t *cidrTable) nonPublic(ip netip.Addr, class addr.Class) Decision {
	e := t.e
	return Decision{Action: Deny, Report: e.report, Rule: "builtin:non-public:" + string(class), Source: e.file,
		Reason: fmt.Sprintf("non-public address %s (%s)", ip, class)}
}

func (t *cidrTable) decision(r *cidrRule, ip netip.Addr) Decision {
	e := t.e
	s := &e.sources[r.src]
	d := Decision{Action: Allow, Rule: s.ruleID, Source: s.where}
	if r.deny {
		d.Action, d.Report = Deny, s.report
		d.Reason = fmt.Sprintf("address %s denied by %s (%s)", ip, s.label, r.prefix)
	}
	// An allow needs no words: the rule id says it, and every resolved
	// address of every request is checked, so this stays allocation-free.
	return d
}

// CIDRAllows reports whether a CIDR allow rule opens ip at port for
// agent, the policy's ports permitting. It is what a door that cannot
// read a name from a connection (the transparent listener, for a
// protocol that is neither TLS nor HTTP/1) asks: only an address a rule
// names is open there, never one the policy's default lets through. A
// CIDR allow that is too wide to open a non-public address's range
// (see IP) does not open it here either.
func (e *Engine) CIDRAllows(agent string, ip netip.Addr, port uint16) (Decision, bool) {
	if !e.ports.allows(port) {
		return e.ports.denied(port), false
	}
	ip = ip.Unmap()
	v := e.cidrs.verdict(agent, ip, port)
	if v.rule == nil || v.rule.deny || !v.open {
		return Decision{}, false
	}
	return e.cidrs.decision(v.rule, ip), true
}

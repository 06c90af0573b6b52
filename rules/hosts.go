package rules

import (
	"fmt"
	"net/netip"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/agentg/agentg/addr"
)

// The sections of the policy file: agents, host rules, CIDR rules, lists
// and the resolver table, each checked as it is read.

func (p *parser) agents(n *yaml.Node) ([]agentSpec, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.errf(n, "agents must be a list")
	}
	var out []agentSpec
	names := map[string]bool{}
	for _, it := range n.Content {
		var a agentSpec
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

// ruleBody parses the allow/deny key and the shared options of a rule
// mapping. valueKey is called with the allow/deny value node.
func (p *parser) ruleBody(it *yaml.Node, extra func(k, v *yaml.Node) (bool, error)) (deny bool, val *yaml.Node, o ruleOpts, err error) {
	err = p.eachKey(it, func(k, v *yaml.Node) error {
		var err error
		switch k.Value {
		case "id-prefix":
			return p.errf(k, "id-prefix belongs to lists; rules take id")
		case "allow", "deny":
			if val != nil {
				return p.errf(k, "a rule has exactly one of allow or deny")
			}
			deny, val = k.Value == "deny", v
		default:
			var ok bool
			if ok, err = p.option(k, v, &o); !ok && err == nil {
				if extra != nil {
					ok, err = extra(k, v)
				}
				if !ok && err == nil {
					err = p.errf(k, "unknown rule key %q (want allow or deny, important, agents, ports, mode, id)", k.Value)
				}
			}
		}
		return err
	})
	if err == nil && val == nil {
		err = p.errf(it, "rule without allow or deny")
	}
	if err == nil && o.important && !deny {
		err = p.errf(it, "important applies to deny rules only")
	}
	return deny, val, o, err
}

// option parses one of the options shared by rules and lists; ok is false
// when k is not one of them.
func (p *parser) option(k, v *yaml.Node, o *ruleOpts) (ok bool, err error) {
	switch k.Value {
	case "important":
		o.important, err = p.boolean(v)
	case "agents":
		its, e := p.items(v)
		if e != nil {
			return true, e
		}
		for _, a := range its {
			if !validName(a.Value) {
				return true, p.errf(a, "bad agent name %q", a.Value)
			}
			o.agents = append(o.agents, a.Value)
		}
	case "ports":
		o.ports, err = p.ports(v)
	case "mode":
		o.mode, err = p.oneOf(v, "enforce", "report")
	case "id", "id-prefix":
		if o.id, err = p.scalar(v); err == nil && !validName(o.id) {
			err = p.errf(v, "bad %s %q (printable, no spaces, at most 64 bytes)", k.Value, o.id)
		}
	default:
		return false, nil
	}
	return true, err
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

func (p *parser) lists(n *yaml.Node) ([]listSpec, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.errf(n, "lists must be a list")
	}
	var out []listSpec
	for _, it := range n.Content {
		l := listSpec{line: it.Line, deny: true}
		err := p.eachKey(it, func(k, v *yaml.Node) error {
			var err error
			switch k.Value {
			case "path":
				if l.path, err = p.scalar(v); err == nil && l.path == "" {
					err = p.errf(v, "empty path")
				}
			case "format":
				l.format, err = p.oneOf(v, "plain", "hosts", "adblock")
			case "action":
				var s string
				s, err = p.oneOf(v, "allow", "deny")
				l.deny = s == "deny"
			case "id":
				err = p.errf(k, "lists take id-prefix, not id")
			default:
				var ok bool
				if ok, err = p.option(k, v, &l.opts); !ok && err == nil {
					err = p.errf(k, "unknown list key %q (want path, format, action, agents, ports, mode, important, id-prefix)", k.Value)
				}
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		if l.path == "" {
			return nil, p.errf(it, "list without a path")
		}
		if l.format == "" {
			return nil, p.errf(it, "list %s without a format (plain, hosts or adblock)", l.path)
		}
		if l.opts.important && !l.deny {
			return nil, p.errf(it, "important applies to deny lists only")
		}
		out = append(out, l)
	}
	return out, nil
}

func (p *parser) resolveTable(n *yaml.Node) (map[string][]netip.Addr, error) {
	out := map[string][]netip.Addr{}
	err := p.eachKey(n, func(k, v *yaml.Node) error {
		name, err := addr.CanonicalName(k.Value)
		if err != nil {
			return p.errf(k, "bad name %q in resolve: %v", k.Value, err)
		}
		if _, dup := out[name]; dup {
			return p.errf(k, "duplicate name %q in resolve", name)
		}
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
	return out, err
}

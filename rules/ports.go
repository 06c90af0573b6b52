package rules

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

func init() {
	register(section{key: "ports", rank: rankPorts,
		parse: func(p *parser, k, v *yaml.Node, pol *policy) (err error) {
			pol.ports, err = p.ports(v)
			pol.portsLine = k.Line
			return err
		},
		steps: []step{{phase: phaseNames, at: 10, run: func(c *compiler) error {
			c.e.ports = compilePorts(c.pol)
			return nil
		}}}})
}

// The ports section (a policy-wide list of destination ports; any other
// port is denied as rule "ports") and the port ranges rules, lists and
// intercept entries are scoped to.

type portRange struct{ lo, hi uint16 }

// portsContain reports whether p is in rs; a nil rs means every port.
func portsContain(rs []portRange, p uint16) bool {
	if rs == nil {
		return true
	}
	for _, r := range rs {
		if p >= r.lo && p <= r.hi {
			return true
		}
	}
	return false
}

func (p *parser) ports(n *yaml.Node) ([]portRange, error) {
	its, err := p.items(n)
	if err != nil {
		return nil, err
	}
	out := make([]portRange, 0, len(its))
	for _, it := range its {
		lo, hi, isRange := strings.Cut(it.Value, "-")
		if !isRange {
			hi = lo
		}
		a, err1 := parsePort(strings.TrimSpace(lo))
		b, err2 := parsePort(strings.TrimSpace(hi))
		if err1 != nil || err2 != nil || a > b {
			return nil, p.errf(it, "bad port or port range %q (want 1-65535 or \"lo-hi\")", it.Value)
		}
		out = append(out, portRange{a, b})
	}
	return out, nil
}

func parsePort(s string) (uint16, error) {
	v, err := strconv.ParseUint(s, 10, 16)
	if err != nil || v == 0 {
		return 0, fmt.Errorf("bad port %q", s)
	}
	return uint16(v), nil
}

// portPolicy is the compiled ports section.
type portPolicy struct {
	ranges []portRange // nil: every port
	deny   Decision    // what a port outside ranges gets, without its Reason
}

func compilePorts(pol *policy) portPolicy {
	return portPolicy{
		ranges: pol.ports,
		deny: Decision{Action: Deny, Report: pol.report, Rule: "ports",
			Source: fmt.Sprintf("%s:%d", pol.file, pol.portsLine)},
	}
}

// allows reports whether the policy's ports let port through.
func (pp *portPolicy) allows(port uint16) bool { return portsContain(pp.ranges, port) }

func (pp *portPolicy) denied(port uint16) Decision {
	d := pp.deny
	d.Reason = fmt.Sprintf("port %d is not in the policy's ports", port)
	return d
}

package rules

import (
	"net/netip"
	"slices"

	"github.com/agentg/agentg/addr"
)

// Questions about a destination, composed from the sections: the
// policy's ports (ports.go), then an IP literal by the CIDR rules
// (ips.go) or a name by the host rules and lists (hosts.go).

// Host decides a destination: the port restriction first, then an IP
// literal as an IP (never against host rules), else the host rules and
// lists by precedence. h must come from addr (canonical name).
func (e *Engine) Host(agent string, h addr.Host) Decision {
	if !e.ports.allows(h.Port) {
		return e.ports.denied(h.Port)
	}
	if h.IsIP() {
		d, _ := e.ipDecide(agent, h.IP, h.Port, e.dflt)
		return d
	}
	if h.Name == "" {
		return e.invalid("empty host")
	}
	d, _ := e.nameDecide(agent, h.Name, h.Port)
	return d
}

func (e *Engine) invalid(reason string) Decision {
	return Decision{Action: Deny, Rule: "builtin:invalid", Source: e.file, Reason: reason}
}

// Name answers the question a DNS filter asks, which carries no port:
// could some connection to name be allowed? It is Allowed exactly when
// Host(agent, name:p) is Allowed for some port p the policy's ports let
// through (any port when it has none), so:
//
//   - the policy's ports never deny a name by themselves (rule "ports"
//     never comes from Name);
//   - a rule or list restricted to ports decides the name only at those
//     ports: a port-scoped deny denies the name only when every other
//     port is denied too, and a port-scoped allow allows it even when
//     other ports are denied.
//
// The decision returned is the Allow at the lowest such port; failing
// that, the first report-mode Deny (which passes); failing that, the
// Deny at the lowest port the policy lets through. name need not be
// canonical (a DNS question's name is canonicalised here, allocating
// only when it is not already); an IP literal in any spelling is decided
// as an IP, as Host does. Anything else is denied as "builtin:invalid".
func (e *Engine) Name(agent, name string) Decision {
	q := nameQuestion{e: e, agent: agent, name: name}
	if !fastName(name) {
		h, err := addr.Canonical(name)
		if err != nil {
			return e.invalid(err.Error())
		}
		q.name, q.ip = h.Name, h.IP
	}
	return q.anyPort()
}

// nameQuestion is Name's question: a canonical name, or an IP literal
// when ip is valid.
type nameQuestion struct {
	e     *Engine
	agent string
	name  string
	ip    netip.Addr
}

// decide is Host's answer at port, without the policy's ports; scoped
// reports whether a matching rule is restricted to ports.
func (q *nameQuestion) decide(port uint16) (d Decision, scoped bool) {
	if q.ip.IsValid() {
		return q.e.ipDecide(q.agent, q.ip, port, q.e.dflt)
	}
	return q.e.nameDecide(q.agent, q.name, port)
}

// ranges appends the port ranges of the matching rules to pts.
func (q *nameQuestion) ranges(pts []portRange) []portRange {
	if q.ip.IsValid() {
		return q.e.cidrPorts(q.agent, q.ip, pts)
	}
	return q.e.namePorts(q.agent, q.name, pts)
}

// anyPort decides at every port where the answer can differ and returns
// the most permissive answer, as Name documents. When no matching rule
// is restricted to ports, one port speaks for all.
func (q *nameQuestion) anyPort() Decision {
	pp := &q.e.ports
	first := uint16(1)
	if pp.ranges != nil {
		first = pp.ranges[0].lo
	}
	d, scoped := q.decide(first)
	if !scoped {
		return d
	}
	// The answer can change only where a range starts or ends. Each
	// boundary begins a run of ports that every rule treats alike, so
	// one port per run is enough.
	var rbuf [16]portRange
	rs := append(q.ranges(rbuf[:0]), pp.ranges...)
	var pbuf [34]uint16
	pts := append(pbuf[:0], 1)
	for _, r := range rs {
		pts = append(pts, r.lo)
		if r.hi < 65535 {
			pts = append(pts, r.hi+1)
		}
	}
	slices.Sort(pts)
	pts = slices.Compact(pts)
	var report, deny Decision
	for _, p := range pts {
		if !pp.allows(p) {
			continue
		}
		d, _ := q.decide(p)
		switch {
		case d.Action == Allow:
			return d
		case d.Allowed():
			if report.Action == Undecided {
				report = d
			}
		case deny.Action == Undecided:
			deny = d
		}
	}
	if report.Action != Undecided {
		return report
	}
	return deny // never Undecided: the policy's first port is among pts
}

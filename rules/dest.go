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
	if h.Port == DoTPort && e.dns.DNSSettings.DenyDoT && !h.IsIP() {
		return e.dns.dotDenied(h) // an address meets the same rule as a CIDR deny (doh.go)
	}
	if h.IsIP() {
		d, _ := e.cidrs.decide(agent, h.IP, h.Port, e.dflt)
		return d
	}
	if h.Name == "" {
		return e.invalid("empty host")
	}
	d, _ := e.names.decide(agent, h.Name, h.Port)
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
	if !addr.IsCanonicalName(name) {
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
	dflt  *Decision // what an IP no rule objects to gets; nil: the policy's default
}

// decide is Host's answer at port, without the policy's ports; scoped
// reports whether a matching rule is restricted to ports.
func (q *nameQuestion) decide(port uint16) (d Decision, scoped bool) {
	if q.ip.IsValid() {
		dflt := q.e.dflt
		if q.dflt != nil {
			dflt = *q.dflt
		}
		return q.e.cidrs.decide(q.agent, q.ip, port, dflt)
	}
	return q.e.names.decide(q.agent, q.name, port)
}

// ranges appends the port ranges of the matching rules to pts.
func (q *nameQuestion) ranges(pts []portRange) []portRange {
	if q.ip.IsValid() {
		return q.e.cidrs.ports(q.agent, q.ip, pts)
	}
	return q.e.names.ports(q.agent, q.name, pts)
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

// Rule ids of the decisions Addresses makes itself.
const (
	// RuleSelf denies an address that is agentg's own listener, whatever
	// the policy says (report mode does not let it through).
	RuleSelf = "builtin:self"
	// RuleNoAddresses is a destination with no address to dial: the
	// name resolved to nothing. It is refused, but it is not the
	// policy's doing: the proxy answers it as unreachable (502), not as
	// denied (403).
	RuleNoAddresses = "builtin:no-addresses"
)

// Dest is a destination whose host decision is made, with the addresses
// it resolved to.
type Dest struct {
	Agent string
	Host  addr.Host
	// IPs are the resolved addresses, in dial order; for an IP literal,
	// Host.IP.
	IPs []netip.Addr
	// Self reports whether an address is one agentg itself listens on;
	// such an address is always denied as RuleSelf. nil: none is.
	Self func(netip.AddrPort) bool
}

// Addresses decides each address of a destination whose host decision
// (host, from Host) is already made, and returns the overall decision and
// the addresses that may be dialled, in order. This is the whole of
// "check what you dial": the proxy dials only the addresses returned.
//
//   - A host decision that is not Allowed is returned as is, with no
//     addresses.
//   - Each address is unmapped first (::ffff:127.0.0.1 is checked, and
//     returned for dialling, as 127.0.0.1). Then: agentg's own address
//     (q.Self) is denied as RuleSelf; an IP literal's own address was
//     decided by Host and passes; any other address is checked by IP
//     (CIDR rules, the non-public guard, the policy's ports).
//   - An address that is not Allowed is dropped. One that passes only by
//     report mode is kept, and the overall decision becomes that report
//     (so the event says the traffic would have been denied), unless the
//     host decision is already a report.
//   - When no address is left, the decision is the first address's
//     denial; when there were no addresses at all, a Deny with rule
//     RuleNoAddresses. Either way the slice is nil and nothing may be
//     dialled.
//
// Repeated addresses are returned once. The slice returned may share
// q.IPs' backing array (when every address passes as given, it is q.IPs,
// and nothing is allocated): treat it as read-only.
func (e *Engine) Addresses(host Decision, q Dest) (Decision, []netip.Addr) {
	if !host.Allowed() {
		return host, nil
	}
	if len(q.IPs) == 0 {
		return Decision{Action: Deny, Rule: RuleNoAddresses, Source: e.file,
			Reason: q.Host.Name + " has no addresses"}, nil
	}
	d := host
	var firstDeny Decision
	var out []netip.Addr
	shared := true // every address so far passed as given: out is q.IPs[:i]
	for i, ip := range q.IPs {
		u := ip.Unmap()
		ipd := e.addressDecide(q, u)
		if !ipd.Allowed() {
			if firstDeny.Action == Undecided {
				firstDeny = ipd
			}
			if shared {
				out, shared = slices.Clone(q.IPs[:i]), false
			}
			continue
		}
		if d.Action == Allow && ipd.Action != Allow {
			d = ipd // report mode let this address through: the event says so
		}
		if shared {
			if u == ip && !slices.Contains(q.IPs[:i], ip) {
				continue
			}
			out, shared = append(make([]netip.Addr, 0, len(q.IPs)), q.IPs[:i]...), false
		}
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	switch {
	case shared:
		return d, q.IPs
	case len(out) == 0:
		return firstDeny, nil
	}
	return d, out
}

// addressDecide decides one unmapped address of q.
func (e *Engine) addressDecide(q Dest, ip netip.Addr) Decision {
	ap := netip.AddrPortFrom(ip, q.Host.Port)
	switch {
	case q.Self != nil && q.Self(ap):
		return Decision{Action: Deny, Rule: RuleSelf, Source: e.file,
			Reason: ap.String() + " is agentg's own listening address"}
	case q.Host.IsIP() && ip == q.Host.IP.Unmap():
		return noObjection // decided as an IP by Host
	}
	return e.IP(q.Agent, ip, q.Host.Port)
}

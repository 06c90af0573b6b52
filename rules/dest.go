package rules

import (
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

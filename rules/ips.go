package rules

import (
	"net/netip"

	"github.com/agentg/agentg/addr"
)

// CIDR rules and the built-in guard on non-public addresses.
//
// A non-public address (addr.Classify != "") is denied unless a matching
// CIDR allow rule is at least as specific as the non-public range it falls
// in: "allow 0.0.0.0/0" says "the internet" and must not open 10.0.0.0/8 or
// the metadata service at 169.254.169.254, while "allow 10.0.0.0/8" or
// "allow 127.0.0.1/32" names the private range on purpose.

type cidrRule struct {
	prefix    netip.Prefix
	deny      bool
	important bool
	src       int
}

// cidrMatch finds the deciding CIDR rule for ip: the longest matching
// prefix among the rules that apply to agent and port, deny on a tie, and
// an important deny over any allow. rules are sorted longest prefix first.
func cidrMatch(rules []cidrRule, srcs []source, agent string, ip netip.Addr, port uint16) *cidrRule {
	var best, imp *cidrRule
	for i := range rules {
		r := &rules[i]
		if !r.prefix.Contains(ip) || !srcs[r.src].applies(agent, port) {
			continue
		}
		if best == nil || best.prefix.Bits() == r.prefix.Bits() && r.deny && !best.deny {
			best = r
		}
		if r.deny && r.important && imp == nil {
			imp = r
		}
	}
	if best != nil && !best.deny && imp != nil {
		return imp
	}
	return best
}

// ipVerdict is the outcome of the CIDR rules and the guard for one address.
type ipVerdict struct {
	rule  *cidrRule  // deciding rule, nil when none matched
	class addr.Class // non-public class, "" for public
	open  bool       // rule is an allow that opens the class
}

func (e *Engine) ipVerdict(agent string, ip netip.Addr, port uint16) ipVerdict {
	class, within := addr.ClassRange(ip)
	v := ipVerdict{rule: cidrMatch(e.cidrs, e.sources, agent, ip, port), class: class}
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

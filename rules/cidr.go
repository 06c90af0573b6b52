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

// classRanges mirrors the ranges addr.Classify knows, so that the guard can
// tell how wide the range an address falls in is. A test checks that every
// range here classifies as stated. An address in a class missing from this
// table (addr grew a class) can only be opened by a rule for exactly that
// address, which fails closed.
var classRanges = []struct {
	prefix netip.Prefix
	class  addr.Class
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "cgnat"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.0.0.0/24"), "ietf-protocol"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4-relay"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmark"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("::ffff:0:0/96"), "ipv4-mapped"},
	{netip.MustParsePrefix("::/96"), "ipv4-compatible"},
	{netip.MustParsePrefix("64:ff9b::/96"), "nat64"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "nat64"},
	{netip.MustParsePrefix("100::/64"), "discard"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("2001::/32"), "teredo"},
	{netip.MustParsePrefix("2001:2::/48"), "benchmark"},
	{netip.MustParsePrefix("2001:10::/28"), "orchid"},
	{netip.MustParsePrefix("2001:20::/28"), "orchid"},
	{netip.MustParsePrefix("2002::/16"), "6to4"},
	{netip.MustParsePrefix("fc00::/7"), "ula"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// classBits returns the prefix length of the non-public range of class c
// that contains ip.
func classBits(ip netip.Addr, c addr.Class) int {
	for _, r := range classRanges {
		if r.class == c && r.prefix.Contains(ip) {
			return r.prefix.Bits()
		}
	}
	return ip.BitLen()
}

// ipVerdict is the outcome of the CIDR rules and the guard for one address.
type ipVerdict struct {
	rule  *cidrRule  // deciding rule, nil when none matched
	class addr.Class // non-public class, "" for public
	open  bool       // rule is an allow that opens the class
}

func (e *Engine) ipVerdict(agent string, ip netip.Addr, port uint16) ipVerdict {
	v := ipVerdict{rule: cidrMatch(e.cidrs, e.sources, agent, ip, port), class: addr.Classify(ip)}
	if v.rule != nil && !v.rule.deny {
		v.open = v.class == "" || v.rule.prefix.Bits() >= classBits(ip, v.class)
	}
	return v
}

package addr

import "net/netip"

// Class names the kind of non-public range an address is in; the empty
// Class is a public address.
type Class string

// special lists the ranges that are not the public internet. Order matters
// only for overlaps: the first match names the class, so narrower ranges come
// before the ranges that contain them.
var special = []struct {
	prefix netip.Prefix
	class  Class
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

// Classify returns the non-public class of ip, or "" when ip is a public
// address. An invalid address is "invalid". IPv6 forms that embed an IPv4
// address (v4-mapped, v4-compatible, NAT64, 6to4, Teredo) are never public:
// what they reach depends on a translator this process cannot see, so they
// need an explicit CIDR rule like any other non-public range.
func Classify(ip netip.Addr) Class {
	c, _ := ClassRange(ip)
	return c
}

// ClassRange is Classify that also returns the non-public range ip lies
// in, so that a policy can tell whether a CIDR rule opens all of it. For a
// public address it returns "" and the zero Prefix; for an invalid or
// zoned one, the zero Prefix.
func ClassRange(ip netip.Addr) (Class, netip.Prefix) {
	if !ip.IsValid() {
		return "invalid", netip.Prefix{}
	}
	if ip.Zone() != "" {
		return "zoned", netip.Prefix{}
	}
	for _, s := range special {
		if s.prefix.Contains(ip) {
			return s.class, s.prefix
		}
	}
	return "", netip.Prefix{}
}

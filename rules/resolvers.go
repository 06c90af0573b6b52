package rules

import (
	"fmt"
	"net/netip"
	"slices"
)

// The built-in list of public resolvers that dns.deny_public_resolvers
// denies. DNS-over-HTTPS and DNS-over-TLS look like any other HTTPS or
// TLS connection, so an agent (or a library it uses) that resolves
// through one of them skips the DNS filter entirely; denying the
// well-known endpoints by name and by address closes the common case.
//
// Maintenance: the names are the DoH/DoT hostnames the big public
// resolvers publish (and that browsers and OS stub resolvers ship as
// presets); the addresses are their anycast service addresses, which
// DoT and DoH-by-IP clients dial directly. Each name covers its
// subdomains. Review the list with each release; an entry here denies,
// so a stale entry costs at most a denial a policy can override with a
// more specific allow ("allow: dns.google" beats the list).

// RulePublicResolver is the rule id of a denial by the list.
const RulePublicResolver = "builtin:public-resolver"

// PublicResolvers returns the built-in list: names (each with its
// subdomains) and addresses.
func PublicResolvers() (names []string, prefixes []netip.Prefix) {
	names = slices.Clone(publicResolverNames)
	for _, s := range publicResolverAddrs {
		prefixes = append(prefixes, netip.MustParsePrefix(s))
	}
	return names, prefixes
}

var publicResolverNames = []string{
	// Google Public DNS
	"dns.google", "dns.google.com", "8888.google", "dns64.dns.google",
	// Cloudflare 1.1.1.1 (and its families, Mozilla's and Chrome's presets)
	"cloudflare-dns.com", "one.one.one.one", "1dot1dot1dot1.cloudflare-dns.com",
	// Quad9
	"dns.quad9.net", "dns9.quad9.net", "dns10.quad9.net", "dns11.quad9.net", "dns12.quad9.net",
	// Cisco OpenDNS / Umbrella
	"doh.opendns.com", "dns.opendns.com", "doh.familyshield.opendns.com", "doh.umbrella.com", "dns.umbrella.com",
	// AdGuard DNS
	"dns.adguard.com", "dns-family.adguard.com", "dns-unfiltered.adguard.com",
	"dns.adguard-dns.com", "family.adguard-dns.com", "unfiltered.adguard-dns.com",
	// NextDNS, Control D, CleanBrowsing, Mullvad, DNS.SB, dns0.eu
	"dns.nextdns.io", "dns.controld.com", "freedns.controld.com",
	"doh.cleanbrowsing.org", "dns.mullvad.net", "doh.mullvad.net", "dns.sb", "doh.dns.sb",
	"dns0.eu",
	// Comcast, Alibaba, DNSPod, 360, Hurricane Electric, LibreDNS, Applied Privacy, Quad101
	"doh.xfinity.com", "dns.alidns.com", "9999.alidns.com", "doh.pub", "dot.pub", "dns.pub", "sm2.doh.pub",
	"doh.360.cn", "dot.360.cn", "ordns.he.net",
	"doh.libredns.gr", "dot.libredns.gr", "doh.applied-privacy.net", "dot1.applied-privacy.net",
	"dns.twnic.tw",
	// Firefox's canary: NXDOMAIN here tells Firefox not to enable DoH on its own.
	"use-application-dns.net",
	// iCloud Private Relay (resolves through Apple's relays)
	"mask.icloud.com", "mask-h2.icloud.com",
}

var publicResolverAddrs = []string{
	// Google
	"8.8.8.8/32", "8.8.4.4/32", "2001:4860:4860::8888/128", "2001:4860:4860::8844/128",
	// Cloudflare (plain, malware, family)
	"1.1.1.1/32", "1.0.0.1/32", "1.1.1.2/32", "1.0.0.2/32", "1.1.1.3/32", "1.0.0.3/32",
	"2606:4700:4700::1111/128", "2606:4700:4700::1001/128",
	"2606:4700:4700::1112/128", "2606:4700:4700::1002/128",
	"2606:4700:4700::1113/128", "2606:4700:4700::1003/128",
	// Quad9
	"9.9.9.9/32", "149.112.112.112/32", "9.9.9.10/32", "149.112.112.10/32", "9.9.9.11/32", "149.112.112.11/32",
	"2620:fe::fe/128", "2620:fe::9/128", "2620:fe::10/128", "2620:fe::11/128",
	// OpenDNS
	"208.67.222.222/32", "208.67.220.220/32", "208.67.222.123/32", "208.67.220.123/32",
	"2620:119:35::35/128", "2620:119:53::53/128",
	// AdGuard
	"94.140.14.14/32", "94.140.15.15/32", "94.140.14.15/32", "94.140.15.16/32",
	"2a10:50c0::ad1:ff/128", "2a10:50c0::ad2:ff/128",
	// CleanBrowsing, Control D, Mullvad, DNS.SB, dns0.eu
	"185.228.168.9/32", "185.228.169.9/32", "76.76.2.0/32", "76.76.10.0/32",
	"194.242.2.2/32", "185.222.222.222/32", "45.11.45.11/32", "193.110.81.0/32", "185.253.5.0/32",
	// AliDNS (Alibaba Cloud public DNS; DoT on 853, DoH and its JSON API by IP)
	"223.5.5.5/32", "223.6.6.6/32", "2400:3200::1/128", "2400:3200:baba::1/128",
	// DNSPod (Tencent): DoH doh.pub, DoT dot.pub
	"119.29.29.29/32", "119.28.28.28/32", "1.12.12.12/32", "120.53.53.53/32", "2402:4e00::/128",
	// Comcast (Xfinity)
	"75.75.75.75/32", "75.75.76.76/32", "2001:558:feed::1/128", "2001:558:feed::2/128",
	// Hurricane Electric (ordns.he.net)
	"74.82.42.42/32", "2001:470:20::2/128",
	// LibreDNS
	"116.202.176.26/32",
	// Applied Privacy (doh.applied-privacy.net, and its former address)
	"146.255.56.98/32", "37.252.185.232/32", "2a00:63c1:a:229::3/128",
	// NextDNS: every configuration gets addresses in these anycast ranges
	"45.90.28.0/24", "45.90.30.0/24", "2a07:a8c0::/29", "2a07:a8c1::/29",
	// 360 Secure DNS, Quad101 (TWNIC)
	"101.226.4.6/32", "218.30.118.6/32", "101.101.101.101/32", "101.102.103.104/32",
	"2001:de4::101/128", "2001:de4::102/128",
}

// compileResolverNames adds the list's names as denies when the policy
// asks for it. They rank as list entries: a policy rule written for the
// exact name wins over them.
func (c *compiler) compileResolverNames(b *nameBuilder) error {
	if !c.e.dns.DNSSettings.DenyPublicResolvers {
		return nil
	}
	src := c.resolverSource()
	for _, n := range publicResolverNames {
		if err := b.add([]byte(n), kindTree|flagDeny, 0, src); err != nil {
			return fmt.Errorf("load policy %s: public resolver list: %w", c.pol.file, err)
		}
	}
	return nil
}

// compileResolverIPs adds the list's addresses as CIDR denies (a policy
// CIDR allow of the same prefix length ties, and the deny wins), and
// dns.deny_dot's important deny of every address at port 853.
func (c *compiler) compileResolverIPs() {
	set := &c.e.dns.DNSSettings
	if !set.DenyPublicResolvers && !set.DenyDoT {
		return
	}
	if set.DenyPublicResolvers {
		src := c.resolverSource()
		for _, s := range publicResolverAddrs {
			c.e.cidrs.rules = append(c.e.cidrs.rules, cidrRule{prefix: netip.MustParsePrefix(s), deny: true, src: src})
		}
	}
	if set.DenyDoT {
		c.e.sources = append(c.e.sources, source{
			file: c.pol.file, ruleID: RuleDoTPort, where: c.e.dns.dotSrc, ports: []portRange{{DoTPort, DoTPort}},
			label: "dns.deny_dot (DNS-over-TLS, port 853)", report: c.pol.report,
		})
		src := len(c.e.sources) - 1
		for _, p := range []string{"0.0.0.0/0", "::/0"} {
			c.e.cidrs.rules = append(c.e.cidrs.rules, cidrRule{prefix: netip.MustParsePrefix(p), deny: true, important: true, src: src})
		}
	}
	slices.SortStableFunc(c.e.cidrs.rules, func(a, b cidrRule) int { return b.prefix.Bits() - a.prefix.Bits() })
}

// resolverSource is the list's one source, added on first use.
func (c *compiler) resolverSource() int {
	for i, s := range c.e.sources {
		if s.ruleID == RulePublicResolver {
			return i
		}
	}
	where := c.e.dns.pubSrc
	c.e.sources = append(c.e.sources, source{
		file: c.pol.file, ruleID: RulePublicResolver, where: where,
		label: "the built-in public resolver list (dns.deny_public_resolvers)", report: c.pol.report,
	})
	return len(c.e.sources) - 1
}

package rules

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/agentg/agentg/addr"
)

// DNS over HTTPS and over TLS by shape rather than by name. The public
// resolver list (resolvers.go) lags behind the resolvers that exist, so
// two guards do not depend on it: dns.deny_dot denies port 853 (DoT's
// port) for every address, and every DoH-shaped exchange agentg reads
// (RFC 8484: a DNS message as the body or the dns= parameter, or the
// JSON dialect's media type; the proxy tells the shape) is refused unless
// it goes to a host dns.doh_resolvers names. The filter is the resolver;
// a DoH exchange elsewhere would step around it.

// Rule ids of the two guards.
const (
	RuleDoTPort = "builtin:dot-port"
	RuleDoH     = "builtin:doh"
	// DoTPort is DNS-over-TLS's port (RFC 7858).
	DoTPort = 853
)

// dohResolvers parses dns.doh_resolvers: host names (".name" for the name
// and its subdomains) or IP literals.
func (p *dnsParser) dohResolvers(n *yaml.Node) ([]string, error) {
	if n.Kind == yaml.SequenceNode && len(n.Content) == 0 {
		return []string{}, nil
	}
	its, err := p.ps.items(n)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, it := range its {
		v := strings.TrimSpace(it.Value)
		sub := strings.HasPrefix(v, ".")
		h, err := addr.ParseAuthority(strings.TrimPrefix(v, "."), 443)
		if err != nil || h.Port != 443 || strings.Contains(v, ":") && !h.IsIP() || sub && h.IsIP() {
			return nil, p.ps.errf(it, "bad DoH resolver %q (want a host name, .name for it and its subdomains, or an IP address)", it.Value)
		}
		c := h.Name
		if h.IsIP() {
			c = h.IP.Unmap().String()
		}
		if sub {
			c = "." + c
		}
		out = append(out, c)
	}
	return out, nil
}

// DoH decides a DNS-over-HTTPS exchange (the proxy recognised its shape)
// to h: Allow with Rule "" when dns.doh_resolvers names the host, else a
// Deny as RuleDoH, in report mode when the policy is.
func (d *DNSRules) DoH(agent string, h addr.Host) Decision {
	e := d.e
	name := h.Name
	if h.IsIP() {
		name = h.IP.Unmap().String()
	}
	for _, r := range d.DNSSettings.DoHResolvers {
		if sfx, ok := strings.CutPrefix(r, "."); ok {
			if name == sfx || strings.HasSuffix(name, r) {
				return noObjection
			}
		} else if name == r {
			return noObjection
		}
	}
	return Decision{Action: Deny, Report: e.report, Rule: RuleDoH, Source: d.dohSrc,
		Reason: fmt.Sprintf("a DNS-over-HTTPS exchange with %s, which dns.doh_resolvers does not name (agentg's DNS filter is the resolver)", h)}
}

// dotDenied is dns.deny_dot's decision for a name at port 853; addresses
// meet it as an important CIDR deny (compileResolverIPs), so that every
// question about an address at 853 (IP, CIDRAllows) gets it too.
func (d *DNSRules) dotDenied(h addr.Host) Decision {
	e := d.e
	return Decision{Action: Deny, Report: e.report, Rule: RuleDoTPort, Source: d.dotSrc,
		Reason: fmt.Sprintf("%s: port %d is DNS-over-TLS, denied by dns.deny_dot", h, DoTPort)}
}

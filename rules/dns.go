package rules

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"gopkg.in/yaml.v3"

	"github.com/agentg/agentg/addr"
)

func init() {
	register(section{key: "dns", rank: rankDNS,
		parse: func(p *parser, k, v *yaml.Node, pol *policy) (err error) {
			pol.dns, err = (&dnsParser{ps: p}).dnsSection(k, v)
			return err
		},
		// The public resolvers the section denies are names in the name
		// table and CIDRs among the ips rules.
		steps: []step{
			{phase: phaseNames, at: 60, run: func(c *compiler) error {
				c.compileDNS()
				return c.compileResolverNames(c.names)
			}},
			{phase: phaseRules, at: 20, run: func(c *compiler) error {
				c.compileResolverIPs()
				return nil
			}},
		}})
}

// dnsParser parses the dns section; the shared syntax is ps's.
type dnsParser struct{ ps *parser }

// The dns section: how the DNS filter (package dnsfilter) answers, where
// it forwards, how it caches, and the exfiltration guards. Which names it
// answers is not here: that is Engine.Name, the same host rules and lists
// the proxy decides by. The guards that need no state (name and label
// length, refused query types) are decided here by DNSRules.Query; the
// counting ones (distinct subdomains, query rate) are counted by the
// filter against the limits DNSSettings carries.

// Defaults of the dns section.
const (
	DefaultDNSTimeout      = 2 * time.Second
	DefaultDNSBlockTTL     = 60 * time.Second
	DefaultDNSCacheEntries = 100_000
	DefaultDNSCacheBytes   = 64 << 20
	// DefaultDNSMemory is the filter's memory budget: two thirds for the
	// cache (DefaultDNSCacheBytes, its size before the budget covered
	// the bindings), a third for the IP→name bindings (about 150,000).
	DefaultDNSMemory         = DefaultDNSCacheBytes / 2 * 3
	DefaultDNSMaxTTL         = time.Hour
	DefaultDNSNegativeTTL    = 5 * time.Minute
	DefaultDNSMaxNameLength  = 180
	DefaultDNSMaxLabelLength = 63
	DefaultDNSSubdomains     = 100 // distinct names per registered domain per agent per minute
	DefaultDNSQueryRate      = 200 // queries per agent per second
)

// DNSBlock is how the DNS filter answers a denied name.
type DNSBlock uint8

const (
	// BlockNXDomain answers NXDOMAIN with an SOA, so the client caches
	// the denial (RFC 2308). It is the zero value and the default.
	BlockNXDomain DNSBlock = iota
	// BlockRefused answers REFUSED.
	BlockRefused
	// BlockSinkhole answers A and AAAA questions with the sinkhole
	// addresses and every other type with no data.
	BlockSinkhole
)

// String returns the policy's spelling.
func (b DNSBlock) String() string {
	switch b {
	case BlockRefused:
		return "refused"
	case BlockSinkhole:
		return "sinkhole"
	}
	return "nxdomain"
}

// DNSLog chooses which DNS queries become events.
type DNSLog uint8

const (
	DNSLogAll     DNSLog = iota // every query (the default)
	DNSLogBlocked               // only queries not answered as asked: denied, report, failed
	DNSLogNone                  // none; decisions are still counted
)

// DNSUpstream is one resolver the filter forwards to.
type DNSUpstream struct {
	// Spec is the upstream as the policy writes it.
	Spec string
	// TLS is DNS-over-TLS (RFC 7858); otherwise plain DNS over UDP with
	// TCP when an answer is truncated.
	TLS bool
	// Addr is the address dialled, ip:port.
	Addr netip.AddrPort
	// ServerName is the name a TLS upstream's certificate must be valid
	// for (the address itself when the spec names none).
	ServerName string
}

// DNSCache bounds the filter's cache.
type DNSCache struct {
	MaxEntries int
	MaxBytes   int64
	// MinTTL and MaxTTL clamp the TTL an answer is cached for;
	// NegativeTTL is the most a negative answer (NXDOMAIN, no data) is
	// cached for.
	MinTTL, MaxTTL, NegativeTTL time.Duration
	// ServeStale is how long after expiry an answer may still be served
	// when no upstream answers (RFC 8767); 0 (the default) never.
	ServeStale time.Duration
}

// DNSSettings are the dns section, compiled. Every field has its default
// when the policy has no dns section.
type DNSSettings struct {
	// Defined is set when the policy has a dns section.
	Defined bool
	// Source is "<file>:<line>" of the dns section (the policy file when
	// there is none): the Source of the filter's own decisions.
	Source string
	Block  DNSBlock
	// Sinkhole4 and Sinkhole6 are BlockSinkhole's answers.
	Sinkhole4, Sinkhole6 netip.Addr
	// BlockTTL is the TTL of a blocked answer (and of the SOA's negative
	// TTL): short, so a policy reload reaches clients soon.
	BlockTTL time.Duration
	// Upstreams are tried in order; nil means the system's resolvers.
	Upstreams []DNSUpstream
	// Timeout bounds each attempt at one upstream.
	Timeout time.Duration
	Cache   DNSCache
	Log     DNSLog
	// Memory is the filter's memory budget (dns.memory, or
	// dns.cache.max_size): two thirds are the cache's Cache.MaxBytes,
	// the rest BindingsBytes, the IP→name bindings' (state.Bindings).
	Memory, BindingsBytes int64

	// The exfiltration guards. Zero disables a counting guard.
	MaxNameLength  int
	MaxLabelLength int
	// Subdomains is the most distinct names under one registered domain
	// (by the public suffix list) an agent may ask for in
	// SubdomainsWindow.
	Subdomains       int
	SubdomainsWindow time.Duration
	// QueryRate (per second) and QueryBurst bound each agent's queries.
	QueryRate  float64
	QueryBurst int
	// RefuseTypes are query types refused outright (NULL, ANY, AXFR,
	// IXFR by default), sorted.
	RefuseTypes []uint16

	// DenyPublicResolvers puts the built-in list of public DoH/DoT
	// resolvers (PublicResolvers) among the host and CIDR denies, so an
	// agent cannot step around the filter by resolving elsewhere.
	DenyPublicResolvers bool
	// PassTypes are answer record types the filter's checks cannot read
	// that the policy lets through as opaque data (dns.pass_types),
	// sorted; any other such type is dropped.
	PassTypes []uint16

	// DenyDoT denies every destination at port 853 (DNS-over-TLS, RFC
	// 7858), by address and above any allow, as RuleDoTPort.
	DenyDoT bool
	// DoHResolvers are the hosts DNS-over-HTTPS exchanges may go to
	// (canonical names, ".name" for a name and its subdomains, or IP
	// literals); a DoH-shaped request to any other is refused as RuleDoH.
	DoHResolvers []string
}

// Rule ids of the filter's own decisions.
const (
	RuleDNSNameLength  = "dns:max_name_length"
	RuleDNSLabelLength = "dns:max_label_length"
	RuleDNSType        = "dns:refuse_types"
	RuleDNSSubdomains  = "dns:subdomains"
	RuleDNSQueryRate   = "dns:query_rate"
)

// dnsSpec is the parsed dns section: settings plus the line of each key
// the guards' decisions name.
type dnsSpec struct {
	settings DNSSettings
	lines    map[string]int // key -> line
}

func defaultDNS(file string) DNSSettings {
	return DNSSettings{
		Source:    file,
		Sinkhole4: netip.IPv4Unspecified(), Sinkhole6: netip.IPv6Unspecified(),
		BlockTTL: DefaultDNSBlockTTL,
		Timeout:  DefaultDNSTimeout,
		Cache: DNSCache{MaxEntries: DefaultDNSCacheEntries, MaxBytes: DefaultDNSCacheBytes,
			MaxTTL: DefaultDNSMaxTTL, NegativeTTL: DefaultDNSNegativeTTL},
		Memory: DefaultDNSMemory, BindingsBytes: DefaultDNSMemory - DefaultDNSCacheBytes, // setBudget's split
		MaxNameLength: DefaultDNSMaxNameLength, MaxLabelLength: DefaultDNSMaxLabelLength,
		Subdomains: DefaultDNSSubdomains, SubdomainsWindow: time.Minute,
		QueryRate: DefaultDNSQueryRate, QueryBurst: DefaultDNSQueryRate,
		RefuseTypes: []uint16{dns.TypeNULL, dns.TypeIXFR, dns.TypeAXFR, dns.TypeANY},
	}
}

func (p *dnsParser) dnsSection(k, n *yaml.Node) (*dnsSpec, error) {
	if n.Kind != yaml.MappingNode {
		return nil, p.ps.errf(n, "dns must be a mapping (block, block_ttl, upstreams, timeout, cache, memory, log, limits, pass_types, deny_public_resolvers, deny_dot, doh_resolvers)")
	}
	d := &dnsSpec{settings: defaultDNS(p.ps.file), lines: map[string]int{}}
	s := &d.settings
	s.Defined, s.Source = true, fmt.Sprintf("%s:%d", p.ps.file, k.Line)
	err := p.ps.eachKey(n, func(k, v *yaml.Node) error {
		d.lines[k.Value] = k.Line
		var err error
		switch k.Value {
		case "block":
			err = p.dnsBlock(v, s)
		case "block_ttl":
			s.BlockTTL, err = p.ps.duration(v, 0, 24*time.Hour)
		case "upstreams":
			s.Upstreams, err = p.dnsUpstreams(v)
		case "timeout":
			s.Timeout, err = p.ps.duration(v, time.Millisecond, time.Minute)
		case "log":
			var l string
			if l, err = p.ps.oneOf(v, "all", "blocked", "none"); err == nil {
				s.Log = map[string]DNSLog{"all": DNSLogAll, "blocked": DNSLogBlocked, "none": DNSLogNone}[l]
			}
		case "cache":
			err = p.dnsCache(v, &s.Cache, d.lines)
		case "memory":
			s.Memory, err = p.ps.size(v, 1<<20, 64<<30)
		case "limits":
			err = p.dnsLimits(v, d)
		case "deny_public_resolvers":
			s.DenyPublicResolvers, err = p.ps.boolean(v)
		case "pass_types":
			s.PassTypes, err = p.dnsTypes(v)
		case "deny_dot":
			s.DenyDoT, err = p.ps.boolean(v)
		case "doh_resolvers":
			s.DoHResolvers, err = p.dohResolvers(v)
		default:
			err = p.ps.errf(k, "unknown dns key %q (want block, block_ttl, upstreams, timeout, cache, memory, log, limits, pass_types, deny_public_resolvers, deny_dot or doh_resolvers)", k.Value)
		}
		return err
	})
	if err != nil {
		return d, err
	}
	// One budget, spelled dns.memory or (as policies written before it
	// do) dns.cache.max_size: two thirds for the cache, the rest for the
	// IP bindings, so that what max_size says is all the filter holds.
	_, cacheSet := d.lines["cache.max_size"]
	_, memSet := d.lines["memory"]
	switch {
	case cacheSet && memSet:
		return d, p.ps.errf(n, "dns.memory and dns.cache.max_size are one budget (the cache and the IP bindings): set one")
	case cacheSet:
		s.Memory = s.Cache.MaxBytes
	}
	s.setBudget()
	return d, nil
}

// setBudget splits Memory: two thirds for the cache, the rest for the
// bindings.
func (s *DNSSettings) setBudget() {
	s.Cache.MaxBytes = s.Memory / 3 * 2
	s.BindingsBytes = s.Memory - s.Cache.MaxBytes
}

func (p *dnsParser) dnsBlock(v *yaml.Node, s *DNSSettings) error {
	val, err := p.ps.scalar(v)
	if err != nil {
		return err
	}
	mode, addrs, hasAddrs := strings.Cut(val, ":")
	switch {
	case mode == "nxdomain" && !hasAddrs:
		s.Block = BlockNXDomain
	case mode == "refused" && !hasAddrs:
		s.Block = BlockRefused
	case mode == "sinkhole":
		s.Block = BlockSinkhole
		if !hasAddrs {
			return nil
		}
		var have4, have6 bool
		for _, a := range strings.Split(addrs, ",") {
			ip, err := netip.ParseAddr(strings.TrimSpace(a))
			if err != nil || ip.Zone() != "" {
				return p.ps.errf(v, "bad sinkhole address %q in %q", a, val)
			}
			switch {
			case ip.Is4() && !have4:
				s.Sinkhole4, have4 = ip, true
			case ip.Is6() && !ip.Is4In6() && !have6:
				s.Sinkhole6, have6 = ip, true
			default:
				return p.ps.errf(v, "sinkhole takes at most one IPv4 and one IPv6 address, not %q", val)
			}
		}
	default:
		return p.ps.errf(v, "bad block %q (want nxdomain, refused, sinkhole or sinkhole:IPV4,IPV6)", val)
	}
	return nil
}

// dnsUpstreams parses "IP[:PORT]" (plain DNS, port 53) and
// "tls://[NAME@]IP[:PORT]" (DNS-over-TLS, port 853). Upstreams are
// addresses, never names: resolving the resolver would need a resolver.
func (p *dnsParser) dnsUpstreams(n *yaml.Node) ([]DNSUpstream, error) {
	its, err := p.ps.items(n)
	if err != nil {
		return nil, err
	}
	var out []DNSUpstream
	for _, it := range its {
		u, err := parseUpstream(strings.TrimSpace(it.Value))
		if err != nil {
			return nil, p.ps.errf(it, "bad upstream %q: %v", it.Value, err)
		}
		if slices.ContainsFunc(out, func(o DNSUpstream) bool { return o.Addr == u.Addr && o.TLS == u.TLS }) {
			return nil, p.ps.errf(it, "duplicate upstream %q", it.Value)
		}
		out = append(out, u)
	}
	return out, nil
}

func parseUpstream(spec string) (DNSUpstream, error) {
	u := DNSUpstream{Spec: spec}
	rest, port := spec, uint16(53)
	if r, ok := strings.CutPrefix(spec, "tls://"); ok {
		u.TLS, rest, port = true, r, 853
		if name, a, ok := strings.Cut(r, "@"); ok {
			c, err := addr.CanonicalName(name)
			if err != nil {
				return u, fmt.Errorf("server name: %v", err)
			}
			u.ServerName, rest = c, a
		}
	} else if strings.Contains(spec, "://") {
		return u, fmt.Errorf("unknown scheme (want IP[:PORT] or tls://[NAME@]IP[:PORT])")
	}
	ap, err := netip.ParseAddrPort(rest)
	if err != nil {
		ip, ierr := netip.ParseAddr(strings.Trim(rest, "[]"))
		if ierr != nil {
			return u, fmt.Errorf("want an IP address with an optional port")
		}
		ap = netip.AddrPortFrom(ip, port)
	}
	if ap.Port() == 0 || ap.Addr().Zone() != "" || ap.Addr().IsUnspecified() {
		return u, fmt.Errorf("want an IP address with a non-zero port")
	}
	u.Addr = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	if u.TLS && u.ServerName == "" {
		u.ServerName = u.Addr.Addr().String()
	}
	return u, nil
}

func (p *dnsParser) dnsCache(n *yaml.Node, c *DNSCache, lines map[string]int) error {
	return p.ps.eachKey(n, func(k, v *yaml.Node) error {
		lines["cache."+k.Value] = k.Line
		var err error
		switch k.Value {
		case "max_entries":
			c.MaxEntries, err = p.ps.count(v, 1, 100_000_000)
		case "max_size":
			c.MaxBytes, err = p.ps.size(v, 64<<10, 64<<30)
		case "min_ttl":
			c.MinTTL, err = p.ps.duration(v, 0, 24*time.Hour)
		case "max_ttl":
			c.MaxTTL, err = p.ps.duration(v, 0, 7*24*time.Hour)
		case "negative_ttl":
			c.NegativeTTL, err = p.ps.duration(v, 0, 24*time.Hour)
		case "serve_stale":
			c.ServeStale, err = p.ps.duration(v, 0, 7*24*time.Hour)
		default:
			err = p.ps.errf(k, "unknown dns cache key %q (want max_entries, max_size, min_ttl, max_ttl, negative_ttl or serve_stale)", k.Value)
		}
		if err == nil && c.MinTTL > c.MaxTTL {
			err = p.ps.errf(v, "min_ttl %s is above max_ttl %s", c.MinTTL, c.MaxTTL)
		}
		return err
	})
}

func (p *dnsParser) dnsLimits(n *yaml.Node, d *dnsSpec) error {
	s := &d.settings
	return p.ps.eachKey(n, func(k, v *yaml.Node) error {
		d.lines[k.Value] = k.Line
		var err error
		switch k.Value {
		case "max_name_length":
			s.MaxNameLength, err = p.ps.count(v, 1, 253)
		case "max_label_length":
			s.MaxLabelLength, err = p.ps.count(v, 1, 63)
		case "subdomains":
			var per float64
			per, s.Subdomains, err = p.dnsRate(v)
			if s.Subdomains > 0 {
				s.SubdomainsWindow = time.Duration(float64(s.Subdomains) / per * float64(time.Second))
			}
		case "query_rate":
			s.QueryRate, s.QueryBurst, err = p.dnsRate(v)
		case "refuse_types":
			s.RefuseTypes, err = p.dnsTypes(v)
		default:
			err = p.ps.errf(k, "unknown dns limits key %q (want max_name_length, max_label_length, subdomains, query_rate or refuse_types)", k.Value)
		}
		return err
	})
}

// dnsRate is "N/s", "N/m", "N/h", or "off" (zero).
func (p *dnsParser) dnsRate(n *yaml.Node) (float64, int, error) {
	s, err := p.ps.scalar(n)
	if err != nil {
		return 0, 0, err
	}
	if s == "off" {
		return 0, 0, nil
	}
	per, burst, ok := parseRate(s)
	if !ok {
		return 0, 0, p.ps.errf(n, "bad rate %q (want N/s, N/m, N/h or off)", s)
	}
	return per, burst, nil
}

func (p *dnsParser) dnsTypes(n *yaml.Node) ([]uint16, error) {
	if n.Kind == yaml.SequenceNode && len(n.Content) == 0 {
		return []uint16{}, nil // refuse none
	}
	its, err := p.ps.items(n)
	if err != nil {
		return nil, err
	}
	var out []uint16
	for _, it := range its {
		name := strings.ToUpper(strings.TrimSpace(it.Value))
		t, ok := dns.StringToType[name]
		if num, generic := strings.CutPrefix(name, "TYPE"); !ok && generic { // RFC 3597's TYPEnnn
			v, err := strconv.ParseUint(num, 10, 16)
			t, ok = uint16(v), err == nil && v > 0
		}
		if !ok {
			return nil, p.ps.errf(it, "unknown query type %q", it.Value)
		}
		out = append(out, t)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// count is a whole number from lo to hi.
func (p *parser) count(n *yaml.Node, lo, hi int) (int, error) {
	s, err := p.scalar(n)
	if err != nil {
		return 0, err
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		return 0, p.errf(n, "bad number %q (want a whole number from %d to %d)", s, lo, hi)
	}
	return v, nil
}

// duration is a Go duration ("30s", "5m") from lo to hi.
func (p *parser) duration(n *yaml.Node, lo, hi time.Duration) (time.Duration, error) {
	s, err := p.scalar(n)
	if err != nil {
		return 0, err
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < lo || d > hi {
		return 0, p.errf(n, "bad duration %q (want a duration like 30s or 5m, from %s to %s)", s, lo, hi)
	}
	return d, nil
}

// DNSRules is the compiled dns section: Engine.DNS returns it. Its
// settings are embedded; its methods are the DNS filter's questions.
type DNSRules struct {
	DNSSettings
	e *Engine
	// where each guard is written, for its decisions' Source
	nameSrc, labelSrc, typeSrc, pubSrc, dotSrc, dohSrc string
}

func (c *compiler) compileDNS() {
	pol := c.pol
	d := pol.dns
	if d == nil {
		d = &dnsSpec{settings: defaultDNS(pol.file)}
	}
	where := func(key string) string {
		if l, ok := d.lines[key]; ok {
			return fmt.Sprintf("%s:%d", pol.file, l)
		}
		return d.settings.Source
	}
	c.e.dns = DNSRules{DNSSettings: d.settings, e: c.e,
		nameSrc: where("max_name_length"), labelSrc: where("max_label_length"), typeSrc: where("refuse_types"),
		pubSrc: where("deny_public_resolvers"), dotSrc: where("deny_dot"), dohSrc: where("doh_resolvers")}
}

// DNS returns the compiled dns section. The settings' slices are the
// engine's own: treat them as read-only.
func (e *Engine) DNS() *DNSRules { return &e.dns }

// DNSQuery is one DNS question, as the filter asks about it.
type DNSQuery struct {
	Agent string
	// Name is the question's name as asked (any case, trailing dot or
	// not).
	Name string
	Type uint16
}

// Query applies the guards that need no state: the query type against
// refuse_types, the name's length against max_name_length and each
// label's against max_label_length. It returns Allow with Rule "" when
// none objects (the name is still to be decided by Name), else a Deny
// naming the guard ("dns:refuse_types", "dns:max_name_length",
// "dns:max_label_length"), in report mode when the policy is. Lengths
// are of the name as sent, without the trailing dot.
func (d *DNSRules) Query(q DNSQuery) Decision {
	s := &d.DNSSettings
	if _, refused := slices.BinarySearch(s.RefuseTypes, q.Type); refused {
		return d.deny(RuleDNSType, d.typeSrc, "query type "+dns.Type(q.Type).String()+" is refused (dns.limits.refuse_types)")
	}
	name := strings.TrimSuffix(q.Name, ".")
	if len(name) > s.MaxNameLength {
		return d.deny(RuleDNSNameLength, d.nameSrc,
			fmt.Sprintf("query name of %d bytes is longer than dns.limits.max_name_length %d", len(name), s.MaxNameLength))
	}
	for label := range strings.SplitSeq(name, ".") {
		if len(label) > s.MaxLabelLength {
			return d.deny(RuleDNSLabelLength, d.labelSrc,
				fmt.Sprintf("query label of %d bytes is longer than dns.limits.max_label_length %d", len(label), s.MaxLabelLength))
		}
	}
	return noObjection
}

// Limit is the decision for a breach of a counting guard
// (RuleDNSSubdomains, RuleDNSQueryRate) the filter detected, with reason
// in words; it carries the policy's report mode like every other deny.
func (d *DNSRules) Limit(rule, reason string) Decision {
	return d.deny(rule, d.DNSSettings.Source, reason)
}

func (d *DNSRules) deny(rule, src, reason string) Decision {
	e := d.e
	return Decision{Action: Deny, Report: e.report, Rule: rule, Source: src, Reason: reason}
}

// AnswerIP is the port-less question a DNS filter asks about an address
// in an answer: may a connection to ip be allowed at some port the
// policy lets through? A public address no rule objects to is Allow with
// Rule ""; a non-public address is denied ("builtin:non-public:<class>")
// unless a CIDR allow opens its range, as for a resolved address of a
// name (IP). The policy's ports never deny an address by themselves.
func (d *DNSRules) AnswerIP(agent string, ip netip.Addr) Decision {
	e := d.e
	q := nameQuestion{e: e, agent: agent, ip: ip.Unmap(), dflt: &noObjection}
	return q.anyPort()
}

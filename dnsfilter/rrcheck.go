package dnsfilter

import (
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/agentg/agentg/rules"
)

// What each record type carries that the answer checks must see. Every
// type an answer can hold is in exactly one class; a type in none is
// dropped (fail closed), so a type added to miekg/dns or a record an
// upstream sends in RFC 3597 form never passes unread.
//
//   - Aliases (CNAME, DNAME): the answer belongs to the target, so a
//     target the agent may not resolve denies the whole answer.
//   - Addresses (A, AAAA, the SVCB/HTTPS ipv4hint and ipv6hint, APL
//     prefixes, ILNP L32 locators, IPSECKEY and AMTRELAY gateways given
//     as addresses, an IP literal as a URI's host): each address meets the
//     rebinding rule of A/AAAA (Engine.DNS().AnswerIP); a record with one
//     address the agent may not reach is dropped whole (a hint list is
//     not edited: a client then asks A/AAAA, which are checked).
//   - Targets (MX, SRV, NS, PTR, NAPTR replacement, KX, AFSDB, RT, LP, PX,
//     NSAPPTR, HIP rendezvous servers, SVCB/HTTPS TargetName, IPSECKEY and
//     AMTRELAY gateways given as names, a URI's host name): names a client
//     goes on to resolve or connect to. A target the agent may not resolve
//     (Engine.Name) drops the record; the root name "." (SVCB's "this
//     owner", "no service" for MX and SRV) is no target.
//   - Opaque (TXT, SOA, CAA, the DNSSEC types, TLSA, SSHFP, ...): data no
//     client dials; passed as they are (TXT's exfiltration is the guards'
//     business, not this check's). dns.pass_types adds types to this
//     class; nothing else does.
//
// When every record of the answer but its CNAMEs is dropped, the answer
// is blocked (Filtered), as when every address was. Nothing outside the
// chain reaches this check: sanitize (check.go) drops the authority and
// additional sections (glue, SVCB's additional addresses) before caching.

// opaqueTypes carry no address and no name a client follows.
var opaqueTypes = map[uint16]bool{
	dns.TypeTXT: true, dns.TypeSPF: true, dns.TypeSOA: true, dns.TypeCAA: true,
	dns.TypeSSHFP: true, dns.TypeTLSA: true, dns.TypeSMIMEA: true, dns.TypeOPENPGPKEY: true,
	dns.TypeDNSKEY: true, dns.TypeCDNSKEY: true, dns.TypeDS: true, dns.TypeCDS: true, dns.TypeDLV: true,
	dns.TypeKEY: true, dns.TypeRRSIG: true, dns.TypeSIG: true, dns.TypeNSEC: true, dns.TypeNSEC3: true,
	dns.TypeNSEC3PARAM: true, dns.TypeCERT: true, dns.TypeDHCID: true, dns.TypeLOC: true, dns.TypeHINFO: true,
	dns.TypeCSYNC: true, dns.TypeZONEMD: true, dns.TypeEUI48: true, dns.TypeEUI64: true, dns.TypeGPOS: true,
	dns.TypeNID: true, dns.TypeL64: true, dns.TypeNULL: true,
}

// recordCheck is one record's verdict.
type recordCheck struct {
	alias bool           // a CNAME or DNAME: d denies the whole answer
	drop  bool           // the record is dropped; d says why
	d     rules.Decision // the deciding objection, or a report-mode one that passed
}

// checkRecord decides one answer record for agent.
func checkRecord(eng *rules.Engine, agent string, rr dns.RR) recordCheck {
	var rc recordCheck
	switch r := rr.(type) {
	case *dns.CNAME:
		rc.alias = true
		rc.target(eng, agent, r.Target, "CNAME")
	case *dns.DNAME:
		rc.alias = true
		rc.target(eng, agent, r.Target, "DNAME")
	case *dns.A:
		rc.address(eng, agent, r.A)
	case *dns.AAAA:
		rc.address(eng, agent, r.AAAA)
	case *dns.SVCB:
		rc.svcb(eng, agent, r, "SVCB")
	case *dns.HTTPS:
		rc.svcb(eng, agent, &r.SVCB, "HTTPS")
	case *dns.APL:
		for _, p := range r.Prefixes {
			rc.address(eng, agent, p.Network.IP)
		}
	case *dns.L32:
		rc.address(eng, agent, r.Locator32)
	case *dns.IPSECKEY:
		rc.gateway(eng, agent, r.GatewayType, r.GatewayAddr, r.GatewayHost, "IPSECKEY")
	case *dns.AMTRELAY:
		rc.gateway(eng, agent, r.GatewayType&0x7f, r.GatewayAddr, r.GatewayHost, "AMTRELAY")
	case *dns.URI:
		rc.uri(eng, agent, r.Target)
	case *dns.MX:
		rc.target(eng, agent, r.Mx, "MX")
	case *dns.SRV:
		rc.target(eng, agent, r.Target, "SRV")
	case *dns.NS:
		rc.target(eng, agent, r.Ns, "NS")
	case *dns.PTR:
		rc.target(eng, agent, r.Ptr, "PTR")
	case *dns.NAPTR:
		rc.target(eng, agent, r.Replacement, "NAPTR")
	case *dns.KX:
		rc.target(eng, agent, r.Exchanger, "KX")
	case *dns.AFSDB:
		rc.target(eng, agent, r.Hostname, "AFSDB")
	case *dns.RT:
		rc.target(eng, agent, r.Host, "RT")
	case *dns.LP:
		rc.target(eng, agent, r.Fqdn, "LP")
	case *dns.NSAPPTR:
		rc.target(eng, agent, r.Ptr, "NSAP-PTR")
	case *dns.PX:
		rc.target(eng, agent, r.Map822, "PX")
		rc.target(eng, agent, r.Mapx400, "PX")
	case *dns.HIP:
		for _, n := range r.RendezvousServers {
			rc.target(eng, agent, n, "HIP")
		}
	default:
		t := rr.Header().Rrtype
		if _, generic := rr.(*dns.RFC3597); (generic || !opaqueTypes[t]) && !passes(eng, t) {
			rc.drop = true
			rc.d = rules.Decision{Action: rules.Deny, Rule: RuleRecordType, Source: eng.DNS().Source,
				Reason: "record type " + dns.Type(rr.Header().Rrtype).String() + " is not one the answer checks can read"}
		}
	}
	return rc
}

// passes reports a type the policy lets through unread (dns.pass_types).
func passes(eng *rules.Engine, t uint16) bool {
	_, ok := slices.BinarySearch(eng.DNS().PassTypes, t)
	return ok
}

// RuleRecordType drops a record of a type the checks cannot classify.
const RuleRecordType = "dns:record_type"

// object records d: a denial drops the record (the first one says why),
// a report-mode deny is kept to be reported.
func (rc *recordCheck) object(d rules.Decision, what string) {
	switch {
	case rc.drop:
	case !d.Allowed():
		d.Reason = what + ": " + d.Reason
		rc.drop, rc.d = true, d
	case d.Action != rules.Allow && rc.d.Action == rules.Undecided:
		rc.d = d
	}
}

// target checks a name a record points at; "." points nowhere.
func (rc *recordCheck) target(eng *rules.Engine, agent, name, typ string) {
	n := canonical(name)
	if n == "" {
		return
	}
	rc.object(eng.Name(agent, n), typ+" to "+n)
}

// address checks an address a record carries; one that is not an
// address (a malformed APL prefix, say) is dropped.
func (rc *recordCheck) address(eng *rules.Engine, agent string, raw net.IP) {
	ip, ok := netip.AddrFromSlice(raw)
	if !ok {
		rc.object(rules.Decision{Action: rules.Deny, Rule: RuleRecordType, Source: eng.DNS().Source,
			Reason: "unreadable address"}, "record")
		return
	}
	rc.addr(eng, agent, ip.Unmap())
}

func (rc *recordCheck) addr(eng *rules.Engine, agent string, ip netip.Addr) {
	rc.object(eng.DNS().AnswerIP(agent, ip), "address "+ip.String())
}

// svcb checks a service binding's target and its address hints.
func (rc *recordCheck) svcb(eng *rules.Engine, agent string, r *dns.SVCB, typ string) {
	rc.target(eng, agent, r.Target, typ)
	for _, kv := range r.Value {
		switch h := kv.(type) {
		case *dns.SVCBIPv4Hint:
			for _, ip := range h.Hint {
				rc.address(eng, agent, ip)
			}
		case *dns.SVCBIPv6Hint:
			for _, ip := range h.Hint {
				rc.address(eng, agent, ip)
			}
		}
	}
}

// gateway checks an IPSECKEY or AMTRELAY gateway: 1 and 2 are addresses,
// 3 a name, 0 none.
func (rc *recordCheck) gateway(eng *rules.Engine, agent string, typ uint8, ip net.IP, host, rrType string) {
	switch typ {
	case 1, 2:
		rc.address(eng, agent, ip)
	case 3:
		rc.target(eng, agent, host, rrType)
	}
}

// uri checks a URI record's host: an address or a name, as a client
// would dial it; a target whose host cannot be read is dropped.
func (rc *recordCheck) uri(eng *rules.Engine, agent, target string) {
	u, err := url.Parse(target)
	host := ""
	if err == nil {
		host = u.Hostname()
	}
	if host == "" {
		if err == nil && u.Opaque != "" {
			// mailto:, tel:, urn:: no host to dial; the text is data.
			return
		}
		rc.object(rules.Decision{Action: rules.Deny, Rule: RuleRecordType, Source: eng.DNS().Source,
			Reason: "URI target without a readable host"}, "URI")
		return
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		rc.addr(eng, agent, ip.Unmap())
		return
	}
	if strings.Trim(host, ".") == "" {
		return
	}
	rc.target(eng, agent, host, "URI")
}

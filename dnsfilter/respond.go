package dnsfilter

import (
	"github.com/miekg/dns"

	"github.com/agentg/agentg/rules"
)

// Building and writing replies: the blocked answers (dns.block), the
// Extended DNS Error that says why (RFC 8914), and the size limits of the
// transport.

// ourUDPSize is the EDNS buffer size advertised and honoured: the DNS
// flag day 2020 value, which avoids IP fragmentation.
const ourUDPSize = 1232

// maxEDEText bounds the EDE text; a rule id and a short reason fit.
const maxEDEText = 256

// ede is an Extended DNS Error naming the rule of d.
func ede(code uint16, d rules.Decision) *dns.EDNS0_EDE {
	text := d.Rule
	if d.Reason != "" {
		text += ": " + d.Reason
	}
	if len(text) > maxEDEText {
		text = text[:maxEDEText]
	}
	return &dns.EDNS0_EDE{InfoCode: code, ExtraText: text}
}

// reply is a response to req with rcode, the question as the client
// asked it (case included), EDNS when the client spoke it, and e, when
// not nil, as an Extended DNS Error.
func (s *Server) reply(q *query, req *dns.Msg, rcode int, e *dns.EDNS0_EDE) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(req, rcode)
	m.RecursionAvailable = true
	m.Compress = true
	if q.edns != nil {
		opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		opt.SetUDPSize(ourUDPSize)
		if e != nil {
			opt.Option = append(opt.Option, e)
		}
		m.Extra = append(m.Extra, opt)
	}
	q.rcode = rcode
	return m
}

// block answers a denied question as the policy's dns.block says, with
// an EDE of code naming d's rule.
func (s *Server) block(q *query, req *dns.Msg, set *rules.DNSSettings, d rules.Decision, code uint16) *dns.Msg {
	s.metrics.Blocked.Add(1)
	e := ede(code, d)
	ttl := uint32(set.BlockTTL.Seconds())
	qq := req.Question[0]
	switch set.Block {
	case rules.BlockRefused:
		q.block = "refused"
		return s.reply(q, req, dns.RcodeRefused, e)
	case rules.BlockSinkhole:
		q.block = "sinkhole"
		m := s.reply(q, req, dns.RcodeSuccess, e)
		hdr := dns.RR_Header{Name: qq.Name, Class: dns.ClassINET, Ttl: ttl}
		switch qq.Qtype {
		case dns.TypeA:
			hdr.Rrtype = dns.TypeA
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: set.Sinkhole4.AsSlice()})
			q.addAnswer(set.Sinkhole4.String())
		case dns.TypeAAAA:
			hdr.Rrtype = dns.TypeAAAA
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: set.Sinkhole6.AsSlice()})
			q.addAnswer(set.Sinkhole6.String())
		default:
			m.Ns = append(m.Ns, blockSOA(qq.Name, ttl)) // no data, cacheable
		}
		return m
	}
	q.block = "nxdomain"
	m := s.reply(q, req, dns.RcodeNameError, e)
	m.Ns = append(m.Ns, blockSOA(qq.Name, ttl))
	return m
}

// blockSOA is the SOA of a blocked answer: owned by the name itself, so
// the client caches the denial of that name (RFC 2308) for ttl, and
// naming agentg in a domain that cannot exist (RFC 6761 .invalid).
func blockSOA(name string, ttl uint32) *dns.SOA {
	if name == "" || name[len(name)-1] != '.' {
		name += "."
	}
	return &dns.SOA{
		Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
		Ns:  "agentg.invalid.", Mbox: "blocked.agentg.invalid.",
		Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: ttl,
	}
}

// write sends resp within what the transport allows: 64 KiB on TCP, the
// client's EDNS size (at most ours) or 512 bytes on UDP; what does not
// fit is cut and marked truncated, so the client retries over TCP. A
// query answered from wire bytes (hit.go) sends them as they are: they
// were only taken when they fit.
func (s *Server) write(w dnsWriter, q *query, resp *dns.Msg) {
	var err error
	if q.wire != nil {
		_, err = w.Write(q.wire)
	} else {
		resp.Truncate(q.sizeLimit())
		err = w.WriteMsg(resp)
	}
	if err != nil {
		s.metrics.WriteErrors.Add(1)
		if q.errText == "" {
			q.errText = "write: " + err.Error()
		}
	}
}

// sizeLimit is the largest reply q's transport takes.
func (q *query) sizeLimit() int {
	if q.tcp {
		return dns.MaxMsgSize
	}
	if q.edns != nil {
		return min(max(int(q.edns.UDPSize()), dns.MinMsgSize), ourUDPSize)
	}
	return dns.MinMsgSize
}

// dnsWriter is the part of dns.ResponseWriter write needs.
type dnsWriter interface {
	WriteMsg(*dns.Msg) error
	Write([]byte) (int, error)
}

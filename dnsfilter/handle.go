package dnsfilter

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/time/rate"

	"github.com/agentg/agentg/rules"
)

// One query's path: who asks, the guards, the name's decision, the
// answer (from the cache or an upstream), its checks, the reply, the
// event. Every return path sets the query's decision and rcode, so the
// event always says what was answered and why.

// Rule ids of the filter's own refusals (besides the rules package's).
const (
	RuleMalformed = "dns:malformed" // a packet that could not be parsed
	RuleOpcode    = "dns:opcode"    // not a standard query
	RuleClass     = "dns:class"     // a class other than IN
	RuleAgent     = "dns:agent"     // the client's agent could not be named
	RuleUpstream  = "dns:upstream"  // no upstream answered
)

// query is one question being answered, and what its event will say.
type query struct {
	start    time.Time
	client   netip.AddrPort
	tcp      bool
	edns     *dns.OPT // the client's OPT, nil without EDNS
	agent    string
	name     string // canonical question name: lower case, no trailing dot
	qtype    uint16
	decision rules.Decision
	rcode    int
	answers  []string
	upstream string
	cached   bool
	block    string
	errText  string
	note     string // what the answer checks changed, for the event's reason
	wire     []byte // the reply, packed (a cache hit's fast path), instead of a *dns.Msg
}

// ServeDNS answers one query; it implements dns.Handler.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	q := &query{start: s.now(), edns: req.IsEdns0()}
	switch a := w.RemoteAddr().(type) {
	case *net.UDPAddr:
		q.client = a.AddrPort()
	case *net.TCPAddr:
		q.client, q.tcp = a.AddrPort(), true
	}
	q.client = netip.AddrPortFrom(q.client.Addr().Unmap(), q.client.Port())
	eng := s.cfg.Policy.Engine()
	ps := s.state(eng)
	resp := s.answer(ps, q, req)
	s.write(w, q, resp)
	s.finish(ps, q)
}

// answer decides and builds the reply to req. It is split in two so
// that neither half's stack frame is the sum of both: each query runs on
// a new goroutine (miekg/dns), and a deep first frame makes the runtime
// grow and copy its stack, which cost a cached answer more than the
// rules did.
func (s *Server) answer(ps *policyState, q *query, req *dns.Msg) *dns.Msg {
	if resp, done := s.admit(ps, q, req); done {
		return resp
	}
	return s.resolve(ps, q, req)
}

// admit runs the checks before the name's: the packet's shape, the
// agent, the stateless guards and the query rate. done reports that resp
// is the answer.
func (s *Server) admit(ps *policyState, q *query, req *dns.Msg) (resp *dns.Msg, done bool) {
	eng, set := ps.eng, &ps.set
	if len(req.Question) != 1 {
		// The header promised one (acceptMsg), the packet held fewer:
		// miekg/dns unpacks a short packet leniently.
		s.metrics.Malformed.Add(1)
		q.decision = s.refusal(eng, RuleMalformed, fmt.Sprintf("%d questions in the packet", len(req.Question)))
		m := new(dns.Msg)
		m.SetRcodeFormatError(req)
		q.rcode = dns.RcodeFormatError
		return m, true
	}
	qq := req.Question[0]
	q.qtype = qq.Qtype
	q.name = strings.ToLower(strings.TrimSuffix(qq.Name, "."))
	if req.Opcode != dns.OpcodeQuery {
		q.decision = s.refusal(eng, RuleOpcode, "opcode "+dns.OpcodeToString[req.Opcode]+" is not served")
		return s.reply(q, req, dns.RcodeNotImplemented, nil), true
	}
	if qq.Qclass != dns.ClassINET {
		q.decision = s.refusal(eng, RuleClass, "class "+dns.Class(qq.Qclass).String()+" is not served")
		return s.reply(q, req, dns.RcodeRefused, ede(dns.ExtendedErrorCodeNotSupported, q.decision)), true
	}

	// Who: the same step as the proxy's doors (rules.Engine.AgentAt).
	agent, err := eng.AgentAt(rules.Claim{Src: q.client.Addr()})
	if err != nil {
		q.decision = s.refusal(eng, RuleAgent, err.Error())
		return s.reply(q, req, dns.RcodeRefused, ede(dns.ExtendedErrorCodeProhibited, q.decision)), true
	}
	q.agent = agent

	// Stateless guards, then the query rate: refused outright.
	if d := eng.DNS().Query(rules.DNSQuery{Agent: agent, Name: qq.Name, Type: qq.Qtype}); !q.decide(d) {
		if d.Rule == rules.RuleDNSType {
			return s.reply(q, req, dns.RcodeRefused, ede(dns.ExtendedErrorCodeBlocked, d)), true
		}
		return s.block(q, req, set, d, dns.ExtendedErrorCodeBlocked), true
	}
	if qq.Qtype == dns.TypeTXT {
		s.metrics.TXT.Add(1)
	}
	if set.QueryRate > 0 {
		if ok, _ := s.rates.Allow(agent, rate.Limit(set.QueryRate), set.QueryBurst); !ok {
			s.metrics.Limited.Add(1)
			d := eng.DNS().Limit(rules.RuleDNSQueryRate, fmt.Sprintf("agent %s asked more than %s queries (dns.limits.query_rate)", agent, rateText(set.QueryRate)))
			if !q.decide(d) {
				return s.reply(q, req, dns.RcodeRefused, ede(dns.ExtendedErrorCodeBlocked, d)), true
			}
		}
	}
	return nil, false
}

// resolve decides the name and answers it, from the cache or an
// upstream, with the answer checks.
func (s *Server) resolve(ps *policyState, q *query, req *dns.Msg) *dns.Msg {
	eng, set := ps.eng, &ps.set
	qq := req.Question[0]
	agent := q.agent

	// The name, by the host rules and lists (remembered with a cached
	// answer, hit.go); then the subdomain guard on what would be
	// forwarded.
	ent, fresh := s.cache.get(cacheKey{name: q.name, qtype: qq.Qtype})
	var m *hitMemo
	var d rules.Decision
	if fresh {
		m = s.memo(eng, agent, q.name, qq.Qtype, ent)
		d = m.name
	} else {
		d = eng.Name(agent, q.name)
	}
	if !q.decide(d) {
		return s.block(q, req, set, d, dns.ExtendedErrorCodeBlocked)
	}
	if set.Subdomains > 0 {
		var reg string
		var ok bool
		if m != nil {
			reg, ok = m.reg, s.subs.allowKey(m.subKey, q.name, m.reg, set.Subdomains, set.SubdomainsWindow)
		} else {
			reg, ok = s.subs.allow(agent, q.name, set.Subdomains, set.SubdomainsWindow)
		}
		if !ok {
			s.metrics.Limited.Add(1)
			d := eng.DNS().Limit(rules.RuleDNSSubdomains, fmt.Sprintf("agent %s asked for more than %d names under %s in %s (dns.limits.subdomains)",
				agent, set.Subdomains, reg, set.SubdomainsWindow))
			if !q.decide(d) {
				return s.block(q, req, set, d, dns.ExtendedErrorCodeBlocked)
			}
		}
	}

	cached := true
	if !fresh {
		var err error
		ent, cached, err = s.lookup(ps, q.name, qq.Qtype)
		if err != nil {
			s.metrics.ServFail.Add(1)
			q.errText = err.Error()
			d := rules.Decision{Action: rules.Deny, Rule: RuleUpstream, Source: set.Source, Reason: err.Error()}
			q.decide(d)
			return s.reply(q, req, dns.RcodeServerFailure, ede(dns.ExtendedErrorCodeNoReachableAuthority, d))
		}
		m = s.memo(eng, agent, q.name, qq.Qtype, ent)
	}
	q.cached, q.upstream = cached, ent.upstream
	if cached {
		s.metrics.CacheHits.Add(1)
	} else {
		s.metrics.CacheMisses.Add(1)
	}

	chk := m.chk
	if chk.report.Action != rules.Undecided {
		q.decide(chk.report)
	}
	if chk.deny.Action != rules.Undecided {
		s.metrics.Filtered.Add(1)
		q.decide(chk.deny)
		return s.block(q, req, set, chk.deny, dns.ExtendedErrorCodeFiltered)
	}
	if chk.dropped > 0 {
		s.metrics.Dropped.Add(uint64(chk.dropped))
		q.note = fmt.Sprintf("; %d answer(s) dropped: %s", chk.dropped, chk.firstDrop.Reason)
	}
	ttl := ent.ttlLeft(s.now())
	q.answers = m.answers
	if w := fromWire(m, req, q.edns != nil, ttl, q.sizeLimit()); w != nil {
		q.rcode = ent.rcode
		q.wire = w
		s.bindAll(q, m, ttl)
		return nil
	}
	resp := s.reply(q, req, ent.rcode, nil)
	s.fill(resp, qq.Name, ent, chk, ttl)
	s.bindAll(q, m, ttl)
	keepWire(m, q.edns != nil, resp, ent)
	return resp
}

// decide records d as the query's decision when it is the first, or when
// it is worse than what was recorded (a report after an allow), and says
// whether the query may go on.
func (q *query) decide(d rules.Decision) bool {
	if d.Action == rules.Allow && d.Rule == "" {
		return true // no objection: the name's decision will speak
	}
	if q.decision.Action == rules.Undecided || q.decision.Action == rules.Allow && d.Action != rules.Allow || !d.Allowed() {
		q.decision = d
	}
	return d.Allowed()
}

// refusal is a decision of the filter itself.
func (s *Server) refusal(eng *rules.Engine, rule, reason string) rules.Decision {
	return rules.Decision{Action: rules.Deny, Rule: rule, Source: eng.DNS().Source, Reason: reason}
}

// fill puts the entry's records into resp, with the TTL left, the
// client's own spelling of the name, and only the records the checks
// kept.
func (s *Server) fill(resp *dns.Msg, asked string, ent *entry, chk answerCheck, ttl uint32) {
	for i, rr := range ent.answer {
		if chk.drop != nil && chk.drop[i] {
			continue
		}
		c := dns.Copy(rr)
		h := c.Header()
		h.Ttl = ttl
		if strings.EqualFold(h.Name, asked) {
			h.Name = asked // 0x20: the case the client sent
		}
		resp.Answer = append(resp.Answer, c)
	}
	for _, rr := range ent.ns {
		c := dns.Copy(rr)
		c.Header().Ttl = min(c.Header().Ttl, ttl)
		if soa, ok := c.(*dns.SOA); ok {
			soa.Minttl = min(soa.Minttl, ttl)
		}
		resp.Ns = append(resp.Ns, c)
	}
}

const maxEventAnswers = 16

func (q *query) addAnswer(a string) {
	if len(q.answers) < maxEventAnswers {
		q.answers = append(q.answers, a)
	}
}

func (s *Server) bind(q *query, ttl uint32, ips ...netip.Addr) {
	if err := s.cfg.Bindings.Bind(q.agent, q.name, time.Duration(ttl)*time.Second, ips...); err != nil {
		s.cfg.Log.Zerolog().Warn().Err(err).Str("name", q.name).Msg("dns: binding not recorded")
	}
}

func rateText(perSecond float64) string {
	if perSecond >= 1 {
		return fmt.Sprintf("%g/s", perSecond)
	}
	return fmt.Sprintf("%g/m", perSecond*60)
}

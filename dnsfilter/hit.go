package dnsfilter

import (
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/agentg/agentg/rules"
)

// The cache hit's fast path. What an agent is told from one cache entry
// depends only on the entry, the agent and the engine in force: the
// name's decision, the answer checks, the addresses to bind, the event's
// answers, and the reply's bytes but for the id, the flags copied from
// the query, the case of the question name (0x20) and the TTLs. An
// entry keeps the last of these it computed (a hit memo), keyed by the
// engine pointer (rules.Live hands out a new one on every reload) and
// the agent, so a hit asked again by the same agent under the same policy
// costs a copy and a few patched bytes instead of the rules, a message
// built and packed. Anything else (another agent, a reload, a question
// spelled with escapes, a reply that would be truncated) takes the full
// path, which leaves a memo for the next query.

// hitMemo is what one agent gets from one entry under one engine.
type hitMemo struct {
	eng   *rules.Engine
	agent string
	name  rules.Decision // eng.Name(agent, entry's name)
	chk   answerCheck
	// reg and subKey are the subdomain guard's registered domain and key.
	reg, subKey string
	// answers are the event's, ips the addresses to bind: both of the
	// records the checks kept.
	answers []string
	ips     []netip.Addr
	// bound is when the bindings of ips were last made to expire (Unix
	// nanoseconds): binding again is skipped while that holds.
	bound atomic.Int64
	// wire is the packed reply, by whether the client spoke EDNS.
	wire [2]atomic.Pointer[wireReply]
}

// wireReply is a packed reply and where its TTLs are.
type wireReply struct {
	b    []byte
	ttls []int // offsets of the answer records' TTL fields
}

// memo returns ent's memo for (eng, agent), computing and keeping a new
// one when the kept one is for someone else. The cache is charged for
// the first memo of an entry it holds (one at a time is kept).
func (s *Server) memo(eng *rules.Engine, agent, name string, qtype uint16, ent *entry) *hitMemo {
	if m := ent.memo.Load(); m != nil && m.eng == eng && m.agent == agent {
		return m
	}
	m := &hitMemo{eng: eng, agent: agent, name: eng.Name(agent, name), chk: checkAnswer(eng, agent, ent), reg: registered(name)}
	m.subKey = subKey(agent, m.reg)
	for i, rr := range ent.answer {
		if m.chk.drop != nil && m.chk.drop[i] {
			continue
		}
		var text string
		var ip netip.Addr
		var ok bool
		switch r := rr.(type) {
		case *dns.A:
			text = r.A.String()
			ip, ok = netip.AddrFromSlice(r.A)
			ip = ip.Unmap()
		case *dns.AAAA:
			text = r.AAAA.String()
			ip, ok = netip.AddrFromSlice(r.AAAA)
		case *dns.CNAME:
			text = strings.TrimSuffix(r.Target, ".")
		case *dns.HTTPS, *dns.SVCB:
			svcb, _ := r.(*dns.SVCB)
			if h, ok := r.(*dns.HTTPS); ok {
				svcb = &h.SVCB
			}
			from := len(m.ips)
			m.ips = appendHints(m.ips, svcb)
			for _, ip := range m.ips[from:] {
				if len(m.answers) < maxEventAnswers {
					m.answers = append(m.answers, ip.String())
				}
			}
			continue
		default:
			continue
		}
		if len(m.answers) < maxEventAnswers {
			m.answers = append(m.answers, text)
		}
		if ok {
			m.ips = append(m.ips, ip)
		}
	}
	m.answers = slices.Clip(m.answers)
	ent.memo.Store(m)
	if ent.charged.CompareAndSwap(false, true) {
		s.cache.charge(cacheKey{name: name, qtype: qtype}, ent, memoSize(name, ent))
	}
	return m
}

// bindAll binds m's addresses to q's name for ttl, unless they already
// are for that long (within a second: TTLs are whole seconds).
func (s *Server) bindAll(q *query, m *hitMemo, ttl uint32) {
	if s.cfg.Bindings == nil || q.decision.Action != rules.Allow || len(m.ips) == 0 {
		return
	}
	until := s.now().Add(time.Duration(ttl) * time.Second).UnixNano()
	if m.bound.Load() >= until-int64(time.Second) {
		return
	}
	s.bind(q, ttl, m.ips...)
	m.bound.Store(until)
}

// keepWire stores resp, the full path's reply to a cache hit, in m for
// the next identical question, when it can be patched safely: a positive
// answer only (a negative one's SOA TTLs are inside its data), whose
// records' owner names all point into the question (so the question's
// case is theirs).
func keepWire(m *hitMemo, edns bool, resp *dns.Msg, ent *entry) {
	if len(ent.ns) != 0 || len(resp.Answer) == 0 || len(resp.Ns) != 0 {
		return
	}
	b, err := resp.Pack()
	if err != nil {
		return
	}
	ttls, ok := answerTTLs(b, len(resp.Answer))
	if !ok {
		return
	}
	m.wire[b2i(edns)].Store(&wireReply{b: b, ttls: ttls})
}

// answerTTLs finds the TTL fields of the n answer records of b, a
// message packed by miekg/dns with one question; ok is false when an
// owner name is not a compression pointer.
func answerTTLs(b []byte, n int) (ttls []int, ok bool) {
	off := 12
	for off < len(b) && b[off] != 0 { // the question's name, never compressed: first in the message
		if b[off]&0xC0 != 0 {
			return nil, false
		}
		off += int(b[off]) + 1
	}
	off += 1 + 4 // root label, type, class
	for range n {
		if off+2 > len(b) || b[off]&0xC0 != 0xC0 {
			return nil, false
		}
		off += 2 + 4 // pointer, type, class
		if off+6 > len(b) {
			return nil, false
		}
		ttls = append(ttls, off)
		off += 4
		off += 2 + int(binary.BigEndian.Uint16(b[off:]))
	}
	if off > len(b) {
		return nil, false
	}
	return ttls, true
}

// fromWire is m's reply for req with TTL ttl, or nil when m holds none
// that fits: the bytes are copied and the id, the RD and CD flags, the
// question's spelling and the TTLs patched.
func fromWire(m *hitMemo, req *dns.Msg, edns bool, ttl uint32, limit int) []byte {
	w := m.wire[b2i(edns)].Load()
	if w == nil || len(w.b) > limit {
		return nil
	}
	b := slices.Clone(w.b)
	binary.BigEndian.PutUint16(b, req.Id)
	const rd, cd = 0x01, 0x10 // in the header's third and fourth bytes
	b[2] &^= rd
	if req.RecursionDesired {
		b[2] |= rd
	}
	b[3] &^= cd
	if req.CheckingDisabled {
		b[3] |= cd
	}
	if !patchName(b[12:], req.Question[0].Name) {
		return nil
	}
	for _, off := range w.ttls {
		binary.BigEndian.PutUint32(b[off:], ttl)
	}
	return b
}

// patchName writes name's spelling over the wire name at the start of
// b, which must be the same name but for case; a name with escapes or
// of another shape is refused (false) and takes the full path.
func patchName(b []byte, name string) bool {
	name = strings.TrimSuffix(name, ".")
	off, i := 0, 0
	for off < len(b) && b[off] != 0 {
		l := int(b[off])
		off++
		if off+l > len(b) || i+l > len(name) {
			return false
		}
		for j := range l {
			c := name[i+j]
			if c == '.' || c == '\\' || lowerASCII(c) != lowerASCII(b[off+j]) {
				return false
			}
			b[off+j] = c
		}
		off += l
		i += l
		if i < len(name) {
			if name[i] != '.' {
				return false
			}
			i++
		}
	}
	return i == len(name) && off < len(b)
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func b2i(v bool) int {
	if v {
		return 1
	}
	return 0
}

// appendHints adds a kept service binding's address hints to ips: the
// agent was told the name is there too, and a client may connect to a
// hint without asking A or AAAA (the transparent listener then asks the
// bindings). They passed the same checks as A and AAAA (rrcheck.go).
func appendHints(ips []netip.Addr, r *dns.SVCB) []netip.Addr {
	for _, kv := range r.Value {
		var hint []net.IP
		switch h := kv.(type) {
		case *dns.SVCBIPv4Hint:
			hint = h.Hint
		case *dns.SVCBIPv6Hint:
			hint = h.Hint
		}
		for _, raw := range hint {
			if ip, ok := netip.AddrFromSlice(raw); ok {
				ips = append(ips, ip.Unmap())
			}
		}
	}
	return ips
}

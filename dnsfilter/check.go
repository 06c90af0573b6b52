package dnsfilter

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/agentg/agentg/rules"
)

// Checking answers, in two steps. sanitize runs once per upstream answer,
// before anything is cached: the answer must be to the question asked,
// and only the records on the chain from the question's name (CNAMEs,
// then the asked type) are kept; everything else an upstream put in the
// answer, authority or additional sections (poisoning's usual vehicle) is
// dropped, but the SOA of a negative answer. checkAnswer runs for each
// agent on every answer, cached or not: a CNAME to a name the agent may
// not resolve denies the answer, and a record carrying an address the
// agent may not reach is dropped (rebinding protection: non-public
// addresses for public names, unless a CIDR rule opens them), whatever its
// type (rrcheck.go classifies them all).

// maxChain bounds a CNAME chain; resolvers give up far earlier.
const maxChain = 16

var errWrongQuestion = errors.New("answer to a question that was not asked")

// sanitize turns an upstream's reply into a cache entry for the question
// (name canonical, qtype), with TTLs clamped by c.
func sanitize(resp *dns.Msg, name string, qtype uint16, upstream string, c rules.DNSCache, now time.Time) (*entry, error) {
	if !resp.Response || len(resp.Question) != 1 {
		return nil, errWrongQuestion
	}
	rq := resp.Question[0]
	if rq.Qtype != qtype || rq.Qclass != dns.ClassINET || !sameName(rq.Name, name) {
		return nil, fmt.Errorf("%w (%s %s)", errWrongQuestion, rq.Name, dns.Type(rq.Qtype))
	}
	switch resp.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
	default:
		return nil, fmt.Errorf("upstream answered %s", dns.RcodeToString[resp.Rcode])
	}
	e := &entry{rcode: resp.Rcode, upstream: upstream}

	// Follow the chain from the question's name: a record is kept only
	// when its owner is a name on it. Upstreams may list the chain in any
	// order, so pass over the records until nothing more joins.
	chain := []string{name}
	used := make([]bool, len(resp.Answer))
	for grew := true; grew; {
		grew = false
		for i, rr := range resp.Answer {
			h := rr.Header()
			if used[i] || h.Class != dns.ClassINET || !onChain(chain, h.Name) {
				continue
			}
			switch r := rr.(type) {
			case *dns.CNAME:
				if qtype == dns.TypeCNAME {
					break
				}
				t := canonical(r.Target)
				if !onChain(chain, t) {
					if len(chain) > maxChain {
						return nil, fmt.Errorf("CNAME chain longer than %d", maxChain)
					}
					chain = append(chain, t)
					grew = true
				}
			}
			if h.Rrtype == qtype || h.Rrtype == dns.TypeCNAME {
				used[i] = true
				e.answer = append(e.answer, rr)
			}
		}
	}
	var ttl time.Duration
	if len(e.answer) > 0 {
		minTTL := uint32(math32)
		for _, rr := range e.answer {
			minTTL = min(minTTL, rr.Header().Ttl)
		}
		ttl = min(max(time.Duration(minTTL)*time.Second, c.MinTTL), c.MaxTTL)
	} else {
		// Negative (NXDOMAIN or no data): cached for the SOA's negative
		// TTL (RFC 2308), at most negative_ttl; without an SOA, not at all
		// unless min_ttl says so.
		for _, rr := range resp.Ns {
			if soa, ok := rr.(*dns.SOA); ok && soa.Hdr.Class == dns.ClassINET && isSuffix(name, canonical(soa.Hdr.Name)) {
				e.ns = []dns.RR{soa}
				neg := time.Duration(min(soa.Hdr.Ttl, soa.Minttl)) * time.Second
				ttl = min(max(neg, c.MinTTL), c.NegativeTTL)
				break
			}
		}
		if e.ns == nil {
			ttl = c.MinTTL
		}
	}
	e.expires = now.Add(ttl)
	e.size = entrySize(name, e)
	return e, nil
}

const math32 = 1<<32 - 1

// answerCheck is checkAnswer's verdict for one agent.
type answerCheck struct {
	deny      rules.Decision // set: the whole answer is refused
	report    rules.Decision // set: a report-mode deny let something through
	drop      []bool         // by index into entry.answer; nil: nothing dropped
	dropped   int
	firstDrop rules.Decision
}

// checkAnswer decides ent's records for agent, each by its type's class
// (rrcheck.go).
func checkAnswer(eng *rules.Engine, agent string, ent *entry) answerCheck {
	var c answerCheck
	checked := 0
	for i, rr := range ent.answer {
		rc := checkRecord(eng, agent, rr)
		if rc.alias {
			if rc.drop {
				c.deny = rc.d
				return c
			}
		} else {
			checked++
		}
		switch {
		case rc.drop:
			if c.drop == nil {
				c.drop = make([]bool, len(ent.answer))
				c.firstDrop = rc.d
			}
			c.drop[i] = true
			c.dropped++
		case rc.d.Action != rules.Undecided && rc.d.Action != rules.Allow && c.report.Action == rules.Undecided:
			c.report = rc.d
		}
	}
	if c.dropped > 0 && c.dropped == checked {
		c.deny = c.firstDrop
		c.deny.Reason = "every record in the answer was dropped: " + c.firstDrop.Reason
	}
	return c
}

// canonical lower-cases a name and drops the trailing dot.
func canonical(s string) string { return strings.ToLower(strings.TrimSuffix(s, ".")) }

// sameName compares a wire name with a canonical one.
func sameName(wire, name string) bool {
	return strings.EqualFold(strings.TrimSuffix(wire, "."), name)
}

func onChain(chain []string, wire string) bool {
	for _, n := range chain {
		if sameName(wire, n) {
			return true
		}
	}
	return false
}

// isSuffix reports whether zone is name or one of its parents (the root,
// "", included).
func isSuffix(name, zone string) bool {
	return zone == "" || name == zone || strings.HasSuffix(name, "."+zone)
}

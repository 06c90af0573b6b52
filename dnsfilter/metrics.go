package dnsfilter

import (
	"sync/atomic"

	"github.com/miekg/dns"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/rules"
	"github.com/agentg/agentg/state"
)

// Metrics counts what the filter did; every query is counted whether or
// not dns.log writes its event. The counters only grow.
type Metrics struct {
	Queries        atomic.Uint64
	Allowed        atomic.Uint64 // answered as the upstream said (report included)
	Denied         atomic.Uint64 // refused or blocked
	Reported       atomic.Uint64 // report mode let a deny through
	Blocked        atomic.Uint64 // answered per dns.block
	Filtered       atomic.Uint64 // blocked because of the answer (CNAME, addresses)
	Dropped        atomic.Uint64 // answer records dropped by the checks
	Limited        atomic.Uint64 // subdomain or query-rate guard breaches
	TXT            atomic.Uint64 // TXT questions (allowed, but a tunnel's favourite)
	CacheHits      atomic.Uint64
	CacheMisses    atomic.Uint64
	Stale          atomic.Uint64 // answers served stale
	UpstreamErrors atomic.Uint64 // lookups no upstream answered
	ServFail       atomic.Uint64
	Malformed      atomic.Uint64
	WriteErrors    atomic.Uint64
	Events         atomic.Uint64 // events written
}

// Snapshot is a copy of the counters, and the cache's size.
type Snapshot struct {
	Queries, Allowed, Denied, Reported, Blocked, Filtered, Dropped, Limited, TXT uint64
	CacheHits, CacheMisses, Stale, UpstreamErrors, ServFail, Malformed           uint64
	WriteErrors, Events                                                          uint64
	CacheEntries                                                                 int
	CacheBytes                                                                   int64
	// The memory budget (dns.memory) and its two parts: the cache's
	// share and use, the IP→name bindings' (nothing without bindings).
	Memory, CacheMaxBytes           int64
	BindingsRows                    int
	BindingsBytes, BindingsMaxBytes int64
}

// Metrics returns the counters now.
func (s *Server) Metrics() Snapshot {
	m := &s.metrics
	n, b := s.cache.stats()
	set := s.cur.Load().set
	var bs state.BindingsStats
	if s.cfg.Bindings != nil {
		bs = s.cfg.Bindings.Stats()
	}
	return Snapshot{
		Memory: set.Memory, CacheMaxBytes: set.Cache.MaxBytes,
		BindingsRows: bs.Rows, BindingsBytes: bs.Bytes, BindingsMaxBytes: bs.MaxBytes,
		Queries: m.Queries.Load(), Allowed: m.Allowed.Load(), Denied: m.Denied.Load(), Reported: m.Reported.Load(),
		Blocked: m.Blocked.Load(), Filtered: m.Filtered.Load(), Dropped: m.Dropped.Load(), Limited: m.Limited.Load(),
		TXT: m.TXT.Load(), CacheHits: m.CacheHits.Load(), CacheMisses: m.CacheMisses.Load(), Stale: m.Stale.Load(),
		UpstreamErrors: m.UpstreamErrors.Load(), ServFail: m.ServFail.Load(), Malformed: m.Malformed.Load(),
		WriteErrors: m.WriteErrors.Load(), Events: m.Events.Load(),
		CacheEntries: n, CacheBytes: b,
	}
}

// finish counts the query and writes its event as dns.log says.
func (s *Server) finish(ps *policyState, q *query) {
	m := &s.metrics
	m.Queries.Add(1)
	outcome := q.decision.Outcome()
	switch outcome {
	case "allow":
		m.Allowed.Add(1)
	case "report":
		m.Allowed.Add(1)
		m.Reported.Add(1)
	default:
		m.Denied.Add(1)
	}
	switch ps.set.Log {
	case rules.DNSLogNone:
		return
	case rules.DNSLogBlocked:
		if outcome == "allow" && q.rcode != dns.RcodeServerFailure {
			return
		}
	}
	m.Events.Add(1)
	// The event and its DNS part come from a pool: audit.Logger.Log
	// neither keeps nor hands out the event it is given (subscribers get
	// a copy), and a query's event is the filter's largest allocation.
	pe, _ := s.events.Get().(*pooledEvent)
	if pe == nil {
		pe = new(pooledEvent)
	}
	pe.dns = audit.DNS{Type: dns.Type(q.qtype).String(), Rcode: dns.RcodeToString[q.rcode], Answers: q.answers,
		Upstream: q.upstream, Cached: q.cached, Block: q.block}
	pe.ev = audit.Event{
		ID: s.cfg.Log.NewID(), Time: q.start, Kind: "dns", Agent: q.agent, Client: q.client.String(),
		Host: q.name, Decision: outcome, Rule: q.decision.Rule, RuleSource: q.decision.Source,
		Reason: q.decision.Reason + q.note, Duration: s.now().Sub(q.start), Error: q.errText,
		DNS: &pe.dns,
	}
	s.cfg.Log.Log(&pe.ev)
	pe.ev, pe.dns = audit.Event{}, audit.DNS{} // hold no query's strings while pooled
	s.events.Put(pe)
}

type pooledEvent struct {
	ev  audit.Event
	dns audit.DNS
}

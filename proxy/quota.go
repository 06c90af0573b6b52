package proxy

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/agentg/agentg/limit"
	"github.com/agentg/agentg/rules"
)

// The policy's quotas on the exchange path and on tunnels. A request the
// rules allowed takes one from each requests quota that covers it, and
// starts only if each bytes quota that covers it has something left; its
// bodies, both ways, are then charged to those bytes quotas as they flow,
// and an exchange that spends the last of one is cut there. Tunnels are
// counted against each tunnels quota while they are open.

// errQuotaSpent ends a body whose exchange spent a bytes quota.
var errQuotaSpent = errors.New("agentg: a bytes quota is spent")

// checkQuotas applies the quotas that cover f's request: nil, with f's
// byte meter set, when it may go on; else the 429 to answer.
func (p *pipeline) checkQuotas(eng *rules.Engine, f *flow) *refusal {
	qs := eng.Quotas(f.agent, f.host)
	if qs == nil {
		return nil
	}
	var m *byteMeter
	for _, q := range qs {
		key := q.Key(f.agent, f.host.Name)
		if q.Requests.Amount > 0 {
			if ok, retry := p.quotas.Take("r"+key, budget(q.Requests), 1); !ok {
				if ref := overQuota(f, q, "requests", q.Requests.Spec, retry); ref != nil {
					return ref
				}
			}
		}
		if q.Bytes.Amount > 0 {
			if ok, retry := p.quotas.Left("b"+key, budget(q.Bytes)); !ok {
				if ref := overQuota(f, q, "bytes", q.Bytes.Spec, retry); ref != nil {
					return ref
				}
			}
			if !q.Report {
				if m == nil {
					m = &byteMeter{b: p.quotas, f: f}
				}
				m.keys = append(m.keys, "b"+key)
				m.qs = append(m.qs, q)
			}
		}
	}
	f.meter = m
	return nil
}

func budget(r rules.Rate) limit.Budget { return limit.Budget{Amount: r.Amount, Period: r.Period} }

// overQuota records that q refused f: the 429 to send, or nil when q is
// in report mode (the event says report; the request goes on).
func overQuota(f *flow, q *rules.Quota, what, spec string, retry time.Duration) *refusal {
	d := rules.Decision{Action: rules.Deny, Report: q.Report, Rule: q.ID, Source: q.Source,
		Reason: fmt.Sprintf("quota %s: %s %s of %s used up", q.ID, what, spec, q.Scope(f.agent, f.host.Name))}
	if q.Report {
		if f.decision.Action == rules.Allow {
			f.decision = d
		}
		return nil
	}
	f.decision = d
	secs := retryAfterSeconds(retry)
	return &refusal{status: http.StatusTooManyRequests, text: "agentg: " + d.Reason + "; retry after " + secs + "s",
		header: http.Header{"Retry-After": {secs}, "X-Agentg-Rule": {q.ID}}}
}

// retryAfterSeconds rounds up to whole seconds, at least 1, at most a
// year (a budget that can never hold the request says so by its size).
func retryAfterSeconds(d time.Duration) string {
	secs := math.Ceil(d.Seconds())
	return strconv.FormatInt(int64(min(max(secs, 1), 366*24*3600)), 10)
}

// byteMeter charges one exchange's bodies to its bytes quotas; safe for
// the concurrent reads of a request body and its response.
type byteMeter struct {
	b    *limit.Quotas
	f    *flow
	keys []string
	qs   []*rules.Quota
}

// charge takes n bytes from every quota; errQuotaSpent when one is spent,
// and the flow's event then says which and that the exchange was cut.
func (m *byteMeter) charge(n int) error {
	var err error
	for i, key := range m.keys {
		if !m.b.Charge(key, budget(m.qs[i].Bytes), float64(n)) && err == nil {
			q := m.qs[i]
			m.f.deny(rules.Decision{Action: rules.Deny, Rule: q.ID, Source: q.Source,
				Reason: fmt.Sprintf("quota %s: bytes %s of %s used up; the exchange was cut", q.ID, q.Bytes.Spec, q.Scope(m.f.agent, m.f.host.Name))})
			err = errQuotaSpent
		}
	}
	return err
}

// tunnelCaps are the tunnels quotas covering t, as the tunnel set counts
// them.
func tunnelCaps(eng *rules.Engine, t *tunnel) []tunnelCap {
	qs := eng.Quotas(t.f.agent, t.f.host)
	var caps []tunnelCap
	for _, q := range qs {
		if q.Tunnels > 0 {
			caps = append(caps, tunnelCap{key: q.Key(t.f.agent, t.f.host.Name), q: q})
		}
	}
	return caps
}

// admitTunnel adds t to the open tunnels unless a cap refuses it: the
// flags' caps, then the policy's tunnels quotas.
func (p *pipeline) admitTunnel(t *tunnel) (rules.Decision, bool) {
	return p.tunnels.admit(t, p.maxTunnels, p.maxTunnelsPerAgent, tunnelCaps(p.policy.Engine(), t))
}

// refusal is the 429 for an exchange whose request body spent a quota,
// with the longest wait any of its quotas asks.
func (m *byteMeter) refusal() *refusal {
	var retry time.Duration
	for i, key := range m.keys {
		if ok, r := m.b.Left(key, budget(m.qs[i].Bytes)); !ok {
			retry = max(retry, r)
		}
	}
	m.f.mu.Lock()
	reason := m.f.decision.Reason
	rule := m.f.decision.Rule
	m.f.mu.Unlock()
	secs := retryAfterSeconds(retry)
	return &refusal{status: http.StatusTooManyRequests, text: "agentg: " + reason + "; retry after " + secs + "s",
		header: http.Header{"Retry-After": {secs}, "X-Agentg-Rule": {rule}}}
}

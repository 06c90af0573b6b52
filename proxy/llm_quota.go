package proxy

import (
	"fmt"
	"net/http"
	"time"

	"github.com/agentg/agentg/dissect/llm"
	"github.com/agentg/agentg/limit"
	"github.com/agentg/agentg/rules"
)

// Token and cost quotas on model calls (rules/llm_quota.go). They share
// the pipeline's quota buckets (package limit) with the quotas section,
// under keys of their own ("lt", "li", "lo", "lc" + the quota's key: total,
// input and output tokens, cost in micro-dollars' worth of USD). A call
// starts only while every quota covering it has something left; its
// turn's usage (and cost, at the price table's price) is charged when its
// event is made, and may overdraw the bucket: the next call then waits
// for the refill. A call refused here never reaches the provider, and is
// answered 429 in the provider's rate-limit error shape with Retry-After.
//
// Metrics: a refusal is the llm event's decision (deny, the quota's id),
// counted by agentg_decisions_total{kind="llm"} like every decision.

// llmQuotaKinds are the budgets of an llm quota and their key prefixes.
var llmQuotaKinds = [...]struct {
	prefix, what string
	rate         func(q *rules.LLMQuota) rules.Rate
	use          func(u llm.Usage, cost float64) float64
}{
	{"lt", "tokens", func(q *rules.LLMQuota) rules.Rate { return q.Tokens },
		func(u llm.Usage, _ float64) float64 { return float64(max(u.Input, 0) + max(u.Output, 0)) }},
	{"li", "input tokens", func(q *rules.LLMQuota) rules.Rate { return q.InputTokens },
		func(u llm.Usage, _ float64) float64 { return float64(max(u.Input, 0)) }},
	{"lo", "output tokens", func(q *rules.LLMQuota) rules.Rate { return q.OutputTokens },
		func(u llm.Usage, _ float64) float64 { return float64(max(u.Output, 0)) }},
	{"lc", "cost USD", func(q *rules.LLMQuota) rules.Rate { return q.Cost },
		func(_ llm.Usage, cost float64) float64 { return cost }},
}

// llmCheckQuotas applies the llm quotas covering c before it is sent:
// refused (and answered, and logged) when one is spent. The quotas are
// kept on c for llmCharge.
func (s *Server) llmCheckQuotas(eng *rules.Engine, f *flow, w http.ResponseWriter, c *llmCall) (refused bool) {
	l := eng.LLM()
	if !l.HasLLMQuotas() {
		return false
	}
	call := rules.ModelCall{Agent: f.agent, Provider: c.host.Provider, Model: c.req.Model}
	prov, model := call.Provider, call.Model
	qs := l.LLMQuotas(call)
	for _, q := range qs {
		key := q.Key(call)
		for _, k := range llmQuotaKinds {
			r := k.rate(q)
			if r.Amount == 0 {
				continue
			}
			if k.prefix == "lc" && l.Price(prov, model) == nil {
				// A cost that cannot be priced cannot be counted: the
				// call is refused rather than let through uncounted.
				d := rules.Decision{Action: rules.Deny, Report: q.Report, Rule: q.ID, Source: q.Source,
					Reason: fmt.Sprintf("llm quota %s counts cost, and no llm prices entry prices model %q at %s", q.ID, model, prov)}
				if s.llmOverQuota(w, f, c, d, http.StatusForbidden, 0) {
					return true
				}
				continue
			}
			if ok, retry := s.pipe.quotas.Left(k.prefix+key, llmBudget(r)); !ok {
				d := rules.Decision{Action: rules.Deny, Report: q.Report, Rule: q.ID, Source: q.Source,
					Reason: fmt.Sprintf("llm quota %s: %s %s of %s used up", q.ID, k.what, r.Spec, q.Scope(call))}
				if s.llmOverQuota(w, f, c, d, http.StatusTooManyRequests, retry) {
					return true
				}
			}
		}
	}
	c.quotas = qs
	return false
}

// llmOverQuota refuses c under d (status, and Retry-After when retry is
// set), or, for a quota in report mode, marks the call's decision report
// and lets it go on (false).
func (s *Server) llmOverQuota(w http.ResponseWriter, f *flow, c *llmCall, d rules.Decision, status int, retry time.Duration) bool {
	if d.Report {
		if c.decision.Action == rules.Allow {
			c.decision = d
		}
		return false
	}
	if status == http.StatusTooManyRequests {
		secs := retryAfterSeconds(retry)
		w.Header().Set("Retry-After", secs)
		d.Reason += "; retry after " + secs + "s"
	}
	s.llmRefuse(w, f, c, status, d)
	return true
}

// llmCharge charges c's turn to the quotas that covered it: its usage,
// and its cost when it was priced. A turn without usage charges nothing
// (its event says no usage).
func (s *Server) llmCharge(f *flow, c *llmCall, u llm.Usage, hasUsage bool, cost float64) {
	if len(c.quotas) == 0 || !hasUsage {
		return
	}
	call := rules.ModelCall{Agent: f.agent, Provider: c.host.Provider, Model: c.req.Model}
	for _, q := range c.quotas {
		key := q.Key(call)
		for _, k := range llmQuotaKinds {
			r := k.rate(q)
			if r.Amount == 0 {
				continue
			}
			if n := k.use(u, cost); n > 0 {
				s.pipe.quotas.Charge(k.prefix+key, llmBudget(r), n)
			}
		}
	}
}

func llmBudget(r rules.Rate) limit.Budget { return limit.Budget{Amount: r.Amount, Period: r.Period} }

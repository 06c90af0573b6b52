package admin

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentg/agentg/audit"
)

// llmMetrics count model turns (events of kind "llm"): tokens by kind
// and cost, by agent, provider and model. Agents are the policy's (or
// claimed names, with free agent names), providers the policy's, models
// what the answer names: the (agent, provider, model) triples are bounded
// together, past maxSeries they read "_other".
type llmMetrics struct {
	tokens *prometheus.CounterVec // agent, provider, model, kind
	cost   *prometheus.CounterVec // agent, provider, model
	labels bounded                // only the event goroutine touches it
}

func newLLMMetrics(reg *prometheus.Registry) *llmMetrics {
	m := &llmMetrics{
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "llm_tokens_total",
			Help: "Model tokens by agent, provider, model (as served) and kind: input (cached ones included), output (reasoning ones included), cached, cache_write, reasoning."},
			[]string{"agent", "provider", "model", "kind"}),
		cost: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "llm_cost_usd_total",
			Help: "Cost of model turns in USD from the policy's llm prices, by agent, provider and model (turns without a price count nothing)."},
			[]string{"agent", "provider", "model"}),
		labels: newBounded(maxSeries),
	}
	reg.MustRegister(m.tokens, m.cost)
	return m
}

// observe counts one llm event's tokens and cost.
func (m *llmMetrics) observe(e *audit.Event) {
	l := e.LLM
	if l == nil || l.NoUsage && !l.Priced {
		return
	}
	model := l.ServedModel
	if model == "" {
		model = l.Model
	}
	agent, provider, model := label(e.Agent), label(l.Provider), label(model)
	if m.labels.get(agent+"\x00"+provider+"\x00"+model) == other {
		agent, provider, model = other, other, other
	}
	for _, k := range [...]struct {
		kind string
		n    int64
	}{{"input", l.InputTokens}, {"output", l.OutputTokens}, {"cached", l.CachedTokens},
		{"cache_write", l.CacheWriteTokens}, {"reasoning", l.ReasoningTokens}} {
		if k.n > 0 {
			add(m.tokens, float64(k.n), agent, provider, model, k.kind)
		}
	}
	if l.Priced && l.Cost > 0 {
		add(m.cost, l.Cost, agent, provider, model)
	}
}

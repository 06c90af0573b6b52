package admin

import (
	"io"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/agentg/agentg/audit"
)

func TestLLMMetrics(t *testing.T) {
	m := newMetrics(Gauges{}, audit.New(io.Discard), func() int { return 0 }, func() uint64 { return 0 })
	turn := func(agent, model, served string, in, out, cached int64, cost float64, priced bool) *audit.Event {
		return &audit.Event{Kind: "llm", Agent: agent, Decision: "allow", Rule: "llm:default",
			LLM: &audit.LLM{Provider: "openai", Model: model, ServedModel: served, InputTokens: in, OutputTokens: out, CachedTokens: cached, Cost: cost, Priced: priced}}
	}
	m.observe(turn("coder", "gpt-4o", "gpt-4o-2024-08-06", 100, 10, 40, 0.5, true), "llm:default")
	m.observe(turn("coder", "gpt-4o", "gpt-4o-2024-08-06", 50, 5, 0, 0.25, true), "llm:default")
	m.observe(turn("coder", "o3", "", 7, 1, 0, 0, false), "llm:default") // no served model: the requested one
	m.observe(&audit.Event{Kind: "llm", Agent: "coder", Decision: "deny", Rule: "no-gpt4",
		LLM: &audit.LLM{Provider: "openai", Model: "gpt-4", NoUsage: true}}, "no-gpt4") // a refusal: no tokens

	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"coder", "openai", "gpt-4o-2024-08-06", "input"}, 150},
		{[]string{"coder", "openai", "gpt-4o-2024-08-06", "output"}, 15},
		{[]string{"coder", "openai", "gpt-4o-2024-08-06", "cached"}, 40},
		{[]string{"coder", "openai", "o3", "input"}, 7},
	} {
		if got := value(m.llm.tokens.WithLabelValues(c.labels...)); got != c.want {
			t.Errorf("tokens %v = %v, want %v", c.labels, got, c.want)
		}
	}
	if got := value(m.llm.cost.WithLabelValues("coder", "openai", "gpt-4o-2024-08-06")); got != 0.75 {
		t.Errorf("cost = %v, want 0.75", got)
	}
	if n := count(m.llm.cost); n != 1 {
		t.Errorf("%d cost series, want 1 (no price, no series)", n)
	}
	if got := value(m.decisions.WithLabelValues("llm", "deny", "no-gpt4")); got != 1 {
		t.Errorf("llm denials counted %v", got)
	}

	// Label triples are bounded: past maxSeries they read _other.
	for i := range maxSeries + 10 {
		m.observe(turn("a"+string(rune('a'+i%26))+string(rune(i)), "m", "m", 1, 1, 0, 0, false), "llm:default")
	}
	if got := value(m.llm.tokens.WithLabelValues(other, other, other, "input")); got == 0 {
		t.Error("no _other series past the bound")
	}
}

// value reads one counter.
func value(c prometheus.Counter) float64 {
	var d dto.Metric
	c.Write(&d)
	return d.GetCounter().GetValue()
}

// count is how many series a vector holds.
func count(v *prometheus.CounterVec) int {
	ch := make(chan prometheus.Metric, 64)
	go func() { v.Collect(ch); close(ch) }()
	n := 0
	for range ch {
		n++
	}
	return n
}

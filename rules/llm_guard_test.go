package rules

import (
	"strings"
	"testing"
	"time"
)

const llmGuardPolicy = `
llm:
  tool_use: enforce
  prices:
    - model: "gpt-4o*"
      input: 2.5
      output: 10
  quotas:
    - id: coder-tokens
      agents: [coder]
      models: ["gpt-4o*"]
      tokens: 1000/h
      output_tokens: 200/m
    - id: all-cost
      provider: openai
      cost: "$0.50/d"
      per: all
    - id: soft
      tokens: 10/s
      per: [agent]
      mode: report
`

func TestLLMGuardSettings(t *testing.T) {
	e := mustLoad(t, llmGuardPolicy, nil)
	l := e.LLM()
	if tu, src := l.ToolUse(); tu != ToolUseEnforce || src != e.file+":3" {
		t.Errorf("ToolUse = %v %s", tu, src)
	}
	if tu, _ := mustLoad(t, "llm:\n  unparsed: deny\n", nil).LLM().ToolUse(); tu != ToolUseOff {
		t.Errorf("default tool_use %v, want off", tu)
	}
	for _, c := range []struct {
		agent, provider, model string
		want                   []string
	}{
		{"coder", "openai", "GPT-4o-mini", []string{"coder-tokens", "all-cost", "soft"}},
		{"coder", "anthropic", "gpt-4o", []string{"coder-tokens", "soft"}},
		{"intern", "openai", "gpt-4o", []string{"all-cost", "soft"}},
		{"intern", "vllm", "llama", []string{"soft"}},
		// A model agentg could not read: every quota of the agent.
		{"coder", "openai", "", []string{"coder-tokens", "all-cost", "soft"}},
	} {
		qs := l.LLMQuotas(ModelCall{Agent: c.agent, Provider: c.provider, Model: c.model})
		var got []string
		for _, q := range qs {
			got = append(got, q.ID)
		}
		if len(got) != len(c.want) {
			t.Errorf("LLMQuotas(%s, %s, %s) = %v, want %v", c.agent, c.provider, c.model, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("LLMQuotas(%s, %s, %s) = %v, want %v", c.agent, c.provider, c.model, got, c.want)
			}
		}
	}
	qs := l.LLMQuotas(ModelCall{Agent: "coder", Provider: "openai", Model: "gpt-4o"})
	if q := qs[0]; q.Tokens.Amount != 1000 || q.Tokens.Period != time.Hour || q.OutputTokens.Amount != 200 || q.Report {
		t.Errorf("coder-tokens %+v", q)
	}
	if q := qs[1]; q.Cost.Amount != 0.5 || q.Cost.Period != 24*time.Hour || q.PerAgent || q.PerModel {
		t.Errorf("all-cost %+v", q)
	}
	if q := qs[2]; !q.Report || !q.PerAgent || q.PerModel {
		t.Errorf("soft %+v", q)
	}
	// Per model keys a model without regard to case, as the models rules
	// match it: a spelling must not open a fresh bucket.
	if qs[0].Key(ModelCall{"coder", "openai", "GPT-4o"}) != qs[0].Key(ModelCall{"coder", "openai", "gpt-4o"}) {
		t.Error("keys differ by the model's case")
	}
	if qs[2].Key(ModelCall{"coder", "openai", "a"}) != qs[2].Key(ModelCall{"coder", "openai", "b"}) ||
		qs[2].Key(ModelCall{"a", "openai", "m"}) == qs[2].Key(ModelCall{"b", "openai", "m"}) {
		t.Error("per agent keys wrong")
	}
	if mustLoad(t, "llm:\n  unparsed: deny\n", nil).LLM().LLMQuotas(ModelCall{"a", "b", "c"}) != nil {
		t.Error("quotas without any")
	}
}

func TestLLMGuardLoadErrors(t *testing.T) {
	checkLoadErrors(t, []loadErrorCase{
		{"tool_use value", "llm:\n  tool_use: maybe\n", `:2: "maybe" is not one of off, report, enforce`},
		{"quotas not list", "llm:\n  quotas: {}\n", ":2: llm quotas must be a list"},
		{"no budget", "llm:\n  quotas:\n    - id: x\n", ":3: an llm quota needs at least one of"},
		{"bad tokens", "llm:\n  quotas:\n    - tokens: lots/d\n", `:3: bad rate "lots/d"`},
		{"bad cost", "llm:\n  quotas:\n    - cost: -1/d\n", `:3: bad cost "-1/d"`},
		{"bad cost period", "llm:\n  quotas:\n    - cost: 1/week\n", `:3: bad cost "1/week"`},
		{"unknown key", "llm:\n  quotas:\n    - tokens: 1/d\n      requests: 1/d\n", `:4: unknown llm quotas key "requests"`},
		{"bad per", "llm:\n  quotas:\n    - tokens: 1/d\n      per: host\n", `:4: per "host"`},
		{"bad model", "llm:\n  quotas:\n    - tokens: 1/d\n      models: [\"\"]\n", `:4: bad model pattern`},
		{"cost unpriced", "llm:\n  quotas:\n    - cost: 1/d\n      id: c\n", `:3: llm quota c counts cost, and llm prices is empty`},
	})
}

func TestLLMGuardWarnings(t *testing.T) {
	for _, c := range []struct {
		policy string
		warn   bool
	}{
		{"llm:\n  tool_use: enforce\n", true},
		{"llm:\n  tool_use: report\nmcp:\n  redact:\n    - pattern: x\n", true},
		{"llm:\n  tool_use: off\n", false},
		{"llm:\n  tool_use: enforce\nmcp:\n  default: deny\n", false},
		{"llm:\n  tool_use: enforce\nmcp:\n  tools:\n    - deny: \"*.delete_*\"\n", false},
	} {
		found := false
		for _, w := range mustLoad(t, c.policy, nil).Warnings() {
			found = found || strings.Contains(w.Text, "every model tool call is allowed")
		}
		if found != c.warn {
			t.Errorf("%q: warned %v, want %v", c.policy, found, c.warn)
		}
	}
}

package rules

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Token and cost quotas on model calls (issue 18): how many tokens, and
// how many US dollars at the price table's prices, an agent may spend on
// a model in a period.
//
//	llm:
//	  quotas:
//	    - id: coder-daily
//	      agents: [coder]          # agents, mode, id as for every rule
//	      models: ["gpt-4o*"]      # optional model globs (default every model)
//	      provider: openai         # optional
//	      tokens: 2000000/d        # input + output tokens
//	      input_tokens: 1000000/d  # optional, by kind
//	      output_tokens: 200000/d
//	      cost: 5/d                # USD (at llm prices) per period
//	      per: [agent, model]      # default: each agent's use of each model
//
// They live under llm rather than in the top-level quotas section because
// what they count (tokens by kind, cost) and what they are scoped by
// (provider, model globs) are the llm section's vocabulary; the quotas
// section is scoped by hosts and counts requests and bytes. Both share
// one set of buckets (package limit, the proxy's quota table): an llm
// quota's budget is an amount per period that refills continuously, the
// same contract as a bytes quota. A turn is charged what its usage says
// once its event is made (it may overdraw: the debt is paid back by the
// refill); a call starts only while every quota covering it has something
// left, and is otherwise refused before it reaches the provider.

// LLMQuota is one llm quotas entry. Like every quota it is an obligation:
// it never allows anything, and every entry that covers a call applies.
type LLMQuota struct {
	ID     string // the entry's id, default "<file>:<line>"
	Source string // "<file>:<line>"
	// Budgets; a zero Amount is not counted.
	Tokens, InputTokens, OutputTokens Rate
	// Cost is in USD, at the prices of llm prices.
	Cost Rate
	// PerAgent and PerModel say what one bucket counts (both, the
	// default: each agent's use of each model; neither: everything the
	// entry covers in one bucket).
	PerAgent, PerModel bool
	// Report: a call past the quota is logged as report and passes.
	Report bool

	si       int
	provider string
	models   []modelGlob // nil: every model
}

type llmQuotaSpec struct {
	line     int
	opts     ruleOpts
	provider string
	models   []modelGlob
	q        LLMQuota
}

func (p *parser) llmQuotas(n *yaml.Node) ([]llmQuotaSpec, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.errf(n, "llm quotas must be a list of {agents, models, provider, tokens: N/d, input_tokens, output_tokens, cost: USD/d, per, mode, id}")
	}
	var out []llmQuotaSpec
	for _, it := range n.Content {
		s := llmQuotaSpec{line: it.Line, q: LLMQuota{PerAgent: true, PerModel: true}}
		err := p.eachKey(it, func(k, v *yaml.Node) (err error) {
			switch k.Value {
			case "models", "model":
				its, e := p.items(v)
				if e != nil {
					return e
				}
				for _, x := range its {
					g, e := compileModelGlob(x.Value)
					if e != nil {
						return p.errf(x, "%v", e)
					}
					s.models = append(s.models, g)
				}
			case "provider":
				if s.provider, err = p.scalar(v); err == nil && !validName(s.provider) {
					err = p.errf(v, "bad provider name %q", s.provider)
				}
			case "tokens":
				s.q.Tokens, err = p.rate(v, false)
			case "input_tokens":
				s.q.InputTokens, err = p.rate(v, false)
			case "output_tokens":
				s.q.OutputTokens, err = p.rate(v, false)
			case "cost":
				s.q.Cost, err = p.costRate(v)
			case "per":
				s.q.PerAgent, s.q.PerModel, err = p.quotaPer(v, "model")
			case "agents", "mode", "id":
				_, err = p.option(k, v, &s.opts)
			default:
				err = p.errf(k, "unknown llm quotas key %q (want agents, models, provider, tokens, input_tokens, output_tokens, cost, per, mode, id)", k.Value)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		q := &s.q
		if q.Tokens.Amount == 0 && q.InputTokens.Amount == 0 && q.OutputTokens.Amount == 0 && q.Cost.Amount == 0 {
			return nil, p.errf(it, "an llm quota needs at least one of tokens, input_tokens, output_tokens or cost")
		}
		out = append(out, s)
	}
	return out, nil
}

// costRate parses "USD/s|m|h|d": a decimal amount of US dollars, with or
// without a leading "$" ("5/d", "$0.50/h").
func (p *parser) costRate(v *yaml.Node) (Rate, error) {
	s, err := p.scalar(v)
	if err != nil {
		return Rate{}, err
	}
	num, unit, found := strings.Cut(s, "/")
	periods := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}
	per, okPer := periods[strings.TrimSpace(unit)]
	amount, err := strconv.ParseFloat(strings.TrimPrefix(strings.TrimSpace(num), "$"), 64)
	if !found || !okPer || err != nil || !(amount > 0) || math.IsInf(amount, 0) || amount > 1e9 {
		return Rate{}, p.errf(v, "bad cost %q (want USD/h or USD/d: 5/d, 0.50/h; more than 0, at most 1000000000)", s)
	}
	return Rate{Spec: s, Amount: amount, Period: per}, nil
}

func (c *compiler) compileLLMQuotas(l *LLM, specs []llmQuotaSpec) error {
	for _, s := range specs {
		si, err := c.ruleSource(s.line, s.opts)
		if err != nil {
			return err
		}
		src := &c.e.sources[si]
		src.label = "llm quota " + src.ruleID
		q := s.q
		q.ID, q.Source, q.Report = src.ruleID, src.where, src.report
		q.si, q.provider, q.models = si, s.provider, s.models
		if q.Cost.Amount > 0 && len(l.prices) == 0 {
			return fmt.Errorf("load policy %s: llm quota %s counts cost, and llm prices is empty: no call could be priced", src.where, q.ID)
		}
		l.guard.quotas = append(l.guard.quotas, q)
	}
	return nil
}

// LLMQuotas returns the llm quotas that cover call, in policy order;
// nil when none do (and then it allocates nothing). A call whose model
// is unknown (Model "": a request agentg could not read, passed by
// unparsed: report or allow) is covered by every quota of its agent and
// provider, whatever models they name: an unreadable request must not be
// the way around a model's quota.
func (l *LLM) LLMQuotas(call ModelCall) []*LLMQuota {
	var out []*LLMQuota
	for i := range l.guard.quotas {
		q := &l.guard.quotas[i]
		if !l.e.sources[q.si].appliesTo(call.Agent) || q.provider != "" && !strings.EqualFold(q.provider, call.Provider) {
			continue
		}
		if q.models != nil && call.Model != "" && !anyModel(q.models, call.Model) {
			continue
		}
		out = append(out, q)
	}
	return out
}

func anyModel(gs []modelGlob, model string) bool {
	for _, g := range gs {
		if g.match(model) {
			return true
		}
	}
	return false
}

// HasLLMQuotas reports whether the section has any quotas: a call when
// none do costs nothing more.
func (l *LLM) HasLLMQuotas() bool { return len(l.guard.quotas) > 0 }

// Key is the bucket key of q for call: the id, then what the quota
// counts per. The kind of budget is the caller's prefix.
func (q *LLMQuota) Key(call ModelCall) string {
	var b strings.Builder
	b.Grow(len(q.ID) + len(call.Agent) + len(call.Provider) + len(call.Model) + 3)
	b.WriteString(q.ID)
	b.WriteByte(0)
	if q.PerAgent {
		b.WriteString(call.Agent)
	}
	b.WriteByte(0)
	if q.PerModel {
		b.WriteString(call.Provider)
		b.WriteByte(0)
		b.WriteString(asciiLower(call.Model))
	}
	return b.String()
}

// Scope says, for messages, whose calls one bucket of q counts.
func (q *LLMQuota) Scope(call ModelCall) string {
	switch {
	case q.PerAgent && q.PerModel:
		return fmt.Sprintf("agent %s on model %s", call.Agent, call.Model)
	case q.PerAgent:
		return "agent " + call.Agent
	case q.PerModel:
		return "every agent on model " + call.Model
	}
	return "every call it covers"
}

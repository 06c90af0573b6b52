package rules

import (
	"math"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/agentg/agentg/addr"
	"github.com/agentg/agentg/dissect/llm"
)

const llmTestPolicy = `
agents:
  - name: coder
  - name: intern
llm:
  hosts:
    - host: llm.internal.example
      path: /v1/**
      dialects: [openai-chat]
      provider: vllm
  default_hosts: true
  unparsed: deny
  models:
    - deny: "gpt-4*"
      id: no-gpt4
    - allow: "gpt-4o-mini"
      id: mini-ok
    - deny: "claude-*"
      provider: anthropic
      agents: [intern]
      id: intern-no-claude
    - deny: "*opus*"
      important: true
      id: no-opus
    - allow: "claude-opus-4"
      id: opus-exact
    - deny: "o1*"
      mode: report
      id: o1-report
  prices:
    - model: "gpt-4o*"
      input: 2.5
      output: 10
    - model: "gpt-4o-mini*"
      input: 0.15
      cached_input: 0.075
      output: 0.6
    - model: "*"
      provider: vllm
      input: 0
      output: 0
`

func TestLLMModels(t *testing.T) {
	e := mustLoad(t, llmTestPolicy, nil)
	l := e.LLM()
	for _, c := range []struct {
		agent, provider, model string
		want                   Action
		report                 bool
		rule                   string
	}{
		{"coder", "openai", "gpt-4o", Deny, false, "no-gpt4"},
		{"coder", "openai", "GPT-4O", Deny, false, "no-gpt4"},       // case does not step around a deny
		{"coder", "openai", "gpt-4o-mini", Allow, false, "mini-ok"}, // the exact name is more specific
		{"coder", "openai", "gpt-4o-mini-2024", Deny, false, "no-gpt4"},
		{"coder", "openai", "gpt-3.5-turbo", Allow, false, "llm:default"},
		{"coder", "anthropic", "claude-sonnet-4", Allow, false, "llm:default"},
		{"intern", "anthropic", "claude-sonnet-4", Deny, false, "intern-no-claude"},
		{"intern", "bedrock", "claude-sonnet-4", Allow, false, "llm:default"}, // the rule names its provider
		{"coder", "anthropic", "claude-opus-4", Deny, false, "no-opus"},       // important beats the exact allow
		{"coder", "openai", "o1-preview", Deny, true, "o1-report"},
	} {
		d := l.Model(ModelCall{Agent: c.agent, Provider: c.provider, Model: c.model})
		if d.Action != c.want || d.Report != c.report || d.Rule != c.rule {
			t.Errorf("%s %s %s: %+v, want %v report=%v %s", c.agent, c.provider, c.model, d, c.want, c.report, c.rule)
		}
		if d.Action == Deny && (d.Reason == "" || !strings.Contains(d.Source, "policy.yaml:")) {
			t.Errorf("%s: deny without reason or source: %+v", c.model, d)
		}
	}
}

func TestLLMHostsAndTunnel(t *testing.T) {
	e := mustLoad(t, llmTestPolicy, nil)
	l := e.LLM()
	h := l.Host(addr.Host{Name: "llm.internal.example", Port: 8000}, "/v1/chat/completions")
	if h == nil || h.Provider != "vllm" || !h.Speaks(llm.OpenAIChat) || h.Speaks(llm.AnthropicMessages) {
		t.Fatalf("internal host: %+v", h)
	}
	if l.Host(addr.Host{Name: "llm.internal.example", Port: 8000}, "/other/chat/completions") != nil {
		t.Error("a path outside the entry's glob is bound")
	}
	for name, prov := range map[string]string{"api.openai.com": "openai", "api.anthropic.com": "anthropic", "generativelanguage.googleapis.com": "google"} {
		h := l.Host(addr.Host{Name: name, Port: 443}, "/v1/x")
		if h == nil || h.Provider != prov || h.Source != "builtin:llm-default-hosts" {
			t.Errorf("%s: %+v", name, h)
		}
		if tp := e.Tunnel("coder", addr.Host{Name: name, Port: 443}); !tp.Intercept || tp.Rule != "llm:host" {
			t.Errorf("%s is not intercepted: %+v", name, tp)
		}
	}
	if tp := e.Tunnel("coder", addr.Host{Name: "example.com", Port: 443}); tp.Intercept {
		t.Errorf("an unbound host is intercepted: %+v", tp)
	}
	if l.Unparsed() != UnparsedDeny || l.UnparsedDecision("x").Allowed() {
		t.Error("unparsed: deny does not deny")
	}

	// Defaults: with hosts named, only when asked; with none, always
	// unless turned off; without the section, nothing.
	for _, c := range []struct {
		policy string
		openai bool
	}{
		{"llm:\n  unparsed: report\n", true},
		{"llm:\n  default_hosts: false\n", false},
		{"llm:\n  hosts: [{host: x.example}]\n", false},
		{"hosts: []\n", false},
	} {
		e := mustLoad(t, c.policy, nil)
		if got := e.LLM().Host(addr.Host{Name: "api.openai.com", Port: 443}, "/v1/responses") != nil; got != c.openai {
			t.Errorf("%q: api.openai.com bound = %v", c.policy, got)
		}
		if got := e.Tunnel("a", addr.Host{Name: "api.openai.com", Port: 443}).Intercept; got != c.openai {
			t.Errorf("%q: api.openai.com intercepted = %v", c.policy, got)
		}
	}
	if d := mustLoad(t, "llm: {unparsed: report}\n", nil).LLM().UnparsedDecision("x"); d.Action != Deny || !d.Report || !d.Allowed() {
		t.Errorf("unparsed: report: %+v", d)
	}
}

func TestLLMPrices(t *testing.T) {
	l := mustLoad(t, llmTestPolicy, nil).LLM()
	u := llm.Usage{Input: 1000, Cached: 400, Output: 100}
	for _, c := range []struct {
		provider, model string
		want            float64 // -1: no price
	}{
		{"openai", "gpt-4o-2024-08-06", (1000*2.5 + 100*10) / 1e6}, // cached_input defaults to input
		{"openai", "gpt-4o-mini-2024-07-18", (600*0.15 + 400*0.075 + 100*0.6) / 1e6},
		{"vllm", "llama-3", 0},
		{"openai", "o3", -1},
	} {
		p := l.Price(c.provider, c.model)
		switch {
		case c.want < 0 && p != nil:
			t.Errorf("%s: priced %+v", c.model, p)
		case c.want >= 0 && p == nil:
			t.Errorf("%s: no price", c.model)
		case p != nil && math.Abs(p.Cost(u)-c.want) > 1e-12:
			t.Errorf("%s: cost %v, want %v", c.model, p.Cost(u), c.want)
		}
	}
	// Anthropic's cache writes at their own price; nonsense usage costs
	// nothing negative.
	p := Price{Input: 3, CachedInput: 0.3, CacheWrite: 3.75, Output: 15}
	if got, want := p.Cost(llm.Usage{Input: 2620, Cached: 2048, CacheWrite: 100, Output: 91}), (472*3+2048*0.3+100*3.75+91*15)/1e6; math.Abs(got-want) > 1e-12 {
		t.Errorf("anthropic cost %v, want %v", got, want)
	}
	if got := p.Cost(llm.Usage{Input: -5, Cached: 10, Output: -1}); got != 0 {
		t.Errorf("negative usage costs %v", got)
	}
}

func TestLLMModelGlob(t *testing.T) {
	for _, c := range []struct {
		glob, name string
		want       bool
	}{
		{"gpt-4o", "gpt-4o", true},
		{"gpt-4o", "gpt-4o-mini", false},
		{"gpt-4*", "GPT-4o", true},
		{"*", "", true},
		{"*mini*", "gpt-4o-mini-2024", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "ac", false},
		{"ab*b", "ab", false},
		{"meta-llama/*", "meta-llama/Llama-3-8B", true},
		{"*-20250929", "claude-sonnet-4-5-20250929", true},
	} {
		g, err := compileModelGlob(c.glob)
		if err != nil {
			t.Fatal(err)
		}
		if got := g.match(c.name); got != c.want {
			t.Errorf("%q ~ %q = %v", c.glob, c.name, got)
		}
	}
}

func TestLLMLoadErrors(t *testing.T) {
	for _, c := range []struct{ policy, want string }{
		{"llm:\n  nope: 1\n", "policy.yaml:2: unknown llm key"},
		{"llm:\n  unparsed: maybe\n", "policy.yaml:2:"},
		{"llm:\n  hosts:\n    - path: /v1\n", "policy.yaml:3: an llm hosts entry needs a host"},
		{"llm:\n  hosts:\n    - host: 10.0.0.1\n", "policy.yaml:3: IP literal"},
		{"llm:\n  hosts:\n    - host: x.example\n      dialects: [cobol]\n", "policy.yaml:4: unknown dialect"},
		{"llm:\n  hosts:\n    - host: x.example\n      path: v1\n", "policy.yaml:4:"},
		{"llm:\n  models:\n    - deny: \"\"\n", "policy.yaml:3: bad model pattern"},
		{"llm:\n  models:\n    - deny: x\n      ports: [443]\n", "policy.yaml:3: ports do not apply"},
		{"llm:\n  models:\n    - approve: x\n", "policy.yaml:3:"},
		{"llm:\n  models:\n    - allow: x\n      important: true\n", "policy.yaml:3: important applies to deny"},
		{"llm:\n  models:\n    - deny: x\n      id: a\n    - deny: y\n      id: a\n", "duplicate rule id"},
		{"llm:\n  prices:\n    - model: x\n      input: 1\n", "policy.yaml:3: a price needs"},
		{"llm:\n  prices:\n    - model: x\n      input: -1\n      output: 1\n", "policy.yaml:4: bad price"},
		{"llm:\n  prices:\n    - model: x\n      input: NaN\n      output: 1\n", "policy.yaml:4: bad price"},
		{"llm:\n  prices:\n    - {model: x, input: 1, output: 1, tax: 2}\n", "policy.yaml:3: unknown llm prices key"},
		{"llm:\n  hosts: x.example\n", "policy.yaml:2: llm hosts must be a list"},
		{"passthrough: [.example.com]\nllm:\n  hosts: [{host: llm.example.com}]\n", "policy.yaml:1: passthrough entry covers llm host llm.example.com of /"},
		{"passthrough:\n  - host: .openai.com\nllm: {unparsed: deny}\n", "policy.yaml:2: passthrough entry covers llm host api.openai.com of builtin:llm-default-hosts (one of"},
	} {
		_, err := Load(writePolicy(t, c.policy, nil))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.policy, err, c.want)
		}
	}
}

func TestLLMHostNoAlloc(t *testing.T) {
	l := mustLoad(t, llmTestPolicy, nil).LLM()
	h := addr.Host{Name: "api.openai.com", Port: 443}
	q := ModelCall{Agent: "coder", Provider: "openai", Model: "gpt-4o-mini"}
	if n := testing.AllocsPerRun(100, func() {
		l.Host(h, "/v1/chat/completions")
		l.Model(q)
		l.Price("openai", "gpt-4o-mini")
	}); n != 0 {
		t.Errorf("%v allocations per decision", n)
	}
}

// FuzzModelGlob holds the model glob's matcher to a regular expression
// built from the same pattern: '*' any run, the rest literal, ASCII case
// folded.
func FuzzModelGlob(f *testing.F) {
	for _, s := range [][2]string{{"gpt-4*", "GPT-4o"}, {"*mini*", "gpt-4o-mini"}, {"a*b*c", "abbc"}, {"ab*b", "ab"}, {"*", ""}, {"é*", "É"}, {"k*", "\u212a"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pat, name string) {
		g, err := compileModelGlob(pat)
		if err != nil {
			return
		}
		var re strings.Builder
		re.WriteString("^")
		for i, part := range strings.Split(pat, "*") {
			if i > 0 {
				re.WriteString(".*")
			}
			// By rune: regexp reads \xC3 as U+00C3, not as a byte, so a
			// byte-wise reference disagreed on every non-ASCII name.
			for _, r := range part {
				if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
					re.WriteString("[" + strings.ToLower(string(r)) + strings.ToUpper(string(r)) + "]")
				} else {
					re.WriteString(regexp.QuoteMeta(string(r)))
				}
			}
		}
		re.WriteString("$")
		want := regexp.MustCompile("(?s)" + re.String()).MatchString(name)
		if utf8.ValidString(pat) && utf8.ValidString(name) && g.match(name) != want {
			t.Fatalf("%q ~ %q: glob %v, regexp %v", pat, name, g.match(name), want)
		}
	})
}

func TestLLMWarnings(t *testing.T) {
	for _, c := range []struct {
		policy string
		warn   bool
	}{
		{"llm:\n  models:\n    - deny: x\n", true},
		{"llm:\n  default: deny\n  unparsed: allow\n", true},
		{"llm:\n  unparsed: deny\n  models:\n    - deny: x\n", false},
		{"llm:\n  models:\n    - allow: x\n", false},
	} {
		found := false
		for _, w := range mustLoad(t, c.policy, nil).Warnings() {
			found = found || strings.Contains(w.Text, "unparsed is not deny")
		}
		if found != c.warn {
			t.Errorf("%q: warned %v, want %v", c.policy, found, c.warn)
		}
	}
}

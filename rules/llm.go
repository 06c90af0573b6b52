package rules

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/agentg/agentg/addr"
	"github.com/agentg/agentg/dissect/llm"
)

func init() {
	register(section{key: "llm", rank: rankLLM, parse: parseLLM,
		steps: []step{{phase: phaseRules, at: 90, run: compileLLM}}})
}

// rankLLM places llm after credentials in the key list errors print.
const rankLLM = rankCredentials + 10

// The llm section (issue 18): which hosts speak a model API, what to do
// with an exchange there that cannot be read, what each model costs, and
// which agents may use which models:
//
//	llm:
//	  hosts:                       # the first entry that covers a request binds it
//	    - host: llm.internal.example   # host patterns, as in hosts
//	      path: /v1/**             # optional glob
//	      dialects: [openai-chat]  # optional; default every dialect, told apart by path
//	      provider: vllm           # optional; default the host's name
//	  default_hosts: true          # the providers' own hosts (llm.DefaultHosts); default:
//	                               # true when hosts names none, else false
//	  unparsed: report             # deny | report (default) | allow
//	  default: allow               # allow (default) | deny: models no rule matches
//	  models:
//	    - deny: "gpt-4o*"          # model globs, '*' any run, matched without regard to case
//	      provider: openai         # optional
//	      agents: [coder]          # agents, mode, important, id as for hosts
//	  prices:                      # USD per million tokens; the most specific model glob wins
//	    - model: "gpt-4o-mini*"
//	      provider: openai         # optional
//	      input: 0.15
//	      cached_input: 0.075      # default: input
//	      cache_write: 0.1875      # default: input
//	      output: 0.60
//
// Every host the section binds is intercepted (Engine.Tunnel), as an mcp
// server's is: a model exchange inside TLS agentg does not terminate
// could not be read or decided.

// LLMHost is one compiled hosts entry.
type LLMHost struct {
	Provider string
	Source   string // file:line, or "builtin:llm-default-hosts"
	dialects []llm.Dialect
	host     pattern
	glob     *glob
}

// Speaks reports whether the entry binds dialect d.
func (h *LLMHost) Speaks(d llm.Dialect) bool {
	return h.dialects == nil || slices.Contains(h.dialects, d)
}

// Unparsed is what happens to a model exchange agentg cannot read.
type Unparsed uint8

const (
	UnparsedReport Unparsed = iota // logged as report, passed
	UnparsedDeny                   // refused (a request) or logged as deny (an answer already sent)
	UnparsedAllow                  // logged as allow, passed
)

// Price is one prices entry: USD per million tokens.
type Price struct {
	Input, CachedInput, CacheWrite, Output float64
	Source                                 string
}

// Cost is what usage costs at p, in USD.
func (p *Price) Cost(u llm.Usage) float64 {
	cached := min(max(u.Cached, 0), max(u.Input, 0))
	write := min(max(u.CacheWrite, 0), max(u.Input, 0)-cached)
	plain := max(u.Input, 0) - cached - write
	return (float64(plain)*p.Input + float64(cached)*p.CachedInput +
		float64(write)*p.CacheWrite + float64(max(u.Output, 0))*p.Output) / 1e6
}

type modelRule struct {
	si        int // the rule's source
	deny      bool
	important bool
	provider  string // "" every provider
	model     modelGlob
}

type priceEntry struct {
	provider string
	model    modelGlob
	price    Price
}

// LLM is the compiled llm section: Engine.LLM returns it.
type LLM struct {
	e        *Engine
	defined  bool
	hosts    []LLMHost
	unparsed Unparsed
	// unparsedSrc is where the setting is written (the policy file when
	// it is not).
	unparsedSrc string
	dflt        Decision
	models      []modelRule
	prices      []priceEntry
	guard       llmGuard // tool_use and quotas (llm_tooluse.go, llm_quota.go)
}

var noLLM = &LLM{}

// LLM returns the compiled llm section; with none in the policy it binds
// nothing (Defined is false).
func (e *Engine) LLM() *LLM {
	if l, ok := e.views.get("llm").(*LLM); ok {
		return l
	}
	return noLLM
}

// Defined reports whether the policy has an llm section.
func (l *LLM) Defined() bool { return l.defined }

// Unparsed is the section's unparsed setting.
func (l *LLM) Unparsed() Unparsed { return l.unparsed }

// UnparsedDecision is the unparsed setting as the decision about an
// exchange that could not be read for reason: rule "llm:unparsed", a
// Deny (deny), a Deny in report mode (report) or an Allow (allow).
func (l *LLM) UnparsedDecision(reason string) Decision {
	d := Decision{Rule: "llm:unparsed", Source: l.unparsedSrc, Reason: reason}
	switch l.unparsed {
	case UnparsedDeny:
		d.Action = Deny
	case UnparsedAllow:
		d.Action = Allow
	default:
		d.Action, d.Report = Deny, true
	}
	return d
}

// Host returns the entry that binds a request to h at the decoded path,
// or nil. It does not allocate.
func (l *LLM) Host(h addr.Host, path string) *LLMHost {
	if !l.defined || h.IsIP() {
		return nil
	}
	for i := range l.hosts {
		e := &l.hosts[i]
		if e.host.covers(h.Name) && (e.glob == nil || e.glob.matchLoose(path)) {
			return e
		}
	}
	return nil
}

// binds reports whether any entry names h, whatever the path: its
// tunnels are intercepted.
func (l *LLM) binds(h addr.Host) bool {
	if !l.defined || h.IsIP() {
		return false
	}
	for i := range l.hosts {
		if l.hosts[i].host.covers(h.Name) {
			return true
		}
	}
	return false
}

// ModelCall is the question llm.models answers: may agent use model at
// provider.
type ModelCall struct {
	Agent    string
	Provider string
	Model    string
}

// Model decides a ModelCall: among the models rules that apply to the
// agent and whose provider and model glob match, the most specific model
// glob wins (an exact name beats a glob, a longer literal prefix a
// shorter), then one naming the provider beats one that does not; on a
// tie deny wins; an important deny beats every allow. No match is
// "llm:default".
func (l *LLM) Model(q ModelCall) Decision {
	if !l.defined {
		return Decision{Action: Allow, Rule: "llm:default", Reason: "no llm section"}
	}
	var best *modelRule
	bestRank := -1
	var imp *modelRule
	for i := range l.models {
		m := &l.models[i]
		if !l.e.sources[m.si].appliesTo(q.Agent) {
			continue
		}
		if m.provider != "" && !strings.EqualFold(m.provider, q.Provider) {
			continue
		}
		if !m.model.match(q.Model) {
			continue
		}
		if m.important && imp == nil {
			imp = m
		}
		r := m.model.rank * 2
		if m.provider != "" {
			r++
		}
		if r > bestRank || r == bestRank && m.deny && !best.deny {
			best, bestRank = m, r
		}
	}
	if imp != nil {
		best = imp
	}
	if best == nil {
		return l.dflt
	}
	s := &l.e.sources[best.si]
	d := Decision{Action: Allow, Rule: s.ruleID, Source: s.where}
	if best.deny {
		d.Action, d.Report = Deny, s.report
		d.Reason = "model " + strconv.Quote(q.Model) + " at " + q.Provider + " denied by " + s.label
	}
	return d
}

// Price returns the price of model at provider: the entry with the most
// specific model glob, one naming the provider first; nil when none.
func (l *LLM) Price(provider, model string) *Price {
	var best *Price
	bestRank := -1
	for i := range l.prices {
		p := &l.prices[i]
		if p.provider != "" && !strings.EqualFold(p.provider, provider) || !p.model.match(model) {
			continue
		}
		r := p.model.rank * 2
		if p.provider != "" {
			r++
		}
		if r > bestRank {
			best, bestRank = &p.price, r
		}
	}
	return best
}

// modelGlob is a model name pattern: '*' matches any run of bytes ('/'
// too: compatible servers name models "org/model"), the rest literally,
// without regard to ASCII case (a deny must not be stepped around by a
// spelling a provider may accept; model names are ASCII, and no wider
// folding is done, so an allow cannot widen through Unicode folding).
type modelGlob struct {
	parts []string // lower-cased literal runs between '*'
	star  bool
	rank  int // twice the literal prefix before the first '*', plus one for no '*'
}

func compileModelGlob(s string) (modelGlob, error) {
	if s == "" || len(s) > 256 {
		return modelGlob{}, fmt.Errorf("bad model pattern %q (1 to 256 bytes)", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return modelGlob{}, fmt.Errorf("control character in model pattern %q", s)
		}
	}
	g := modelGlob{parts: strings.Split(asciiLower(s), "*")}
	g.star = len(g.parts) > 1
	g.rank = 2 * len(g.parts[0])
	if !g.star {
		g.rank++
	}
	return g, nil
}

// match reports whether the glob covers name. It allocates nothing: the
// name is compared piecewise, folding ASCII case only (byte for byte, so
// the pieces' lengths agree).
func (g modelGlob) match(name string) bool {
	if !g.star {
		return len(name) == len(g.parts[0]) && foldEq(name, g.parts[0])
	}
	first, last := g.parts[0], g.parts[len(g.parts)-1]
	if len(name) < len(first)+len(last) || !foldEq(name[:len(first)], first) ||
		!foldEq(name[len(name)-len(last):], last) {
		return false
	}
	rest := name[len(first) : len(name)-len(last)]
	for _, p := range g.parts[1 : len(g.parts)-1] {
		i := indexFold(rest, p)
		if i < 0 {
			return false
		}
		rest = rest[i+len(p):]
	}
	return true
}

// indexFold is strings.Index without regard to ASCII case; sub is lower.
func indexFold(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if foldEq(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}

// foldEq reports whether s equals lower, of the same length, with s's
// ASCII letters lowered.
func foldEq(s, lower string) bool {
	for i := 0; i < len(lower); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// DefaultProvider names the provider of one of llm.DefaultHosts; any
// other host is its own provider.
func DefaultProvider(host string) string {
	switch host {
	case "api.openai.com":
		return "openai"
	case "api.anthropic.com":
		return "anthropic"
	case "generativelanguage.googleapis.com":
		return "google"
	}
	return host
}

func compileLLM(c *compiler) error {
	spec, _ := c.pol.specs.get("llm").(*llmSpec)
	if spec == nil {
		return compileToolNames(c, nil)
	}
	if err := compileToolNames(c, spec.toolNames); err != nil {
		return err
	}
	l := &LLM{e: c.e, defined: true, unparsed: spec.unparsed, prices: spec.prices, unparsedSrc: c.pol.file}
	if spec.unparsedLine > 0 {
		l.unparsedSrc = fmt.Sprintf("%s:%d", c.pol.file, spec.unparsedLine)
	}
	l.dflt = Decision{Action: Allow, Rule: "llm:default", Source: c.pol.file, Reason: "no llm models rule matched; default allow"}
	if spec.dfltDeny {
		l.dflt = Decision{Action: Deny, Report: c.pol.report, Rule: "llm:default", Source: fmt.Sprintf("%s:%d", c.pol.file, spec.dfltLine),
			Reason: "no llm models rule matched; default deny"}
	}
	for _, hs := range spec.hosts {
		for _, pt := range hs.hosts {
			prov := hs.provider
			if prov == "" {
				prov = DefaultProvider(pt.name)
			}
			l.hosts = append(l.hosts, LLMHost{Provider: prov, Source: fmt.Sprintf("%s:%d", c.pol.file, hs.line),
				dialects: hs.dialects, host: pt, glob: hs.glob})
		}
	}
	if spec.defaultHosts == nil && len(spec.hosts) == 0 || spec.defaultHosts != nil && *spec.defaultHosts {
		names := make([]string, 0, len(llm.DefaultHosts))
		for n := range llm.DefaultHosts {
			names = append(names, n)
		}
		slices.Sort(names) // a stable order for agentg check
		for _, n := range names {
			l.hosts = append(l.hosts, LLMHost{Provider: DefaultProvider(n), Source: "builtin:llm-default-hosts",
				dialects: llm.DefaultHosts[n], host: pattern{name: n, kind: kindExact}})
		}
	}
	// Like an mcp server's, a model API host is always intercepted: a
	// passthrough entry covering one would say otherwise, so it is an
	// error rather than a rule that silently never applies.
	for _, h := range l.hosts {
		for _, r := range c.pol.passthrough {
			for _, pt := range r.patterns {
				if patternsOverlap(pt, h.host) {
					hint := ""
					if h.Source == "builtin:llm-default-hosts" {
						hint = " (one of the well-known providers' hosts; llm default_hosts: false leaves them out)"
					}
					return fmt.Errorf("load policy %s:%d: passthrough entry covers llm host %s of %s%s: a model API host is always intercepted, so that its calls are read and decided",
						c.pol.file, r.line, h.host.name, h.Source, hint)
				}
			}
		}
	}
	for _, ms := range spec.models {
		si, err := c.ruleSource(ms.line, ms.opts)
		if err != nil {
			return err
		}
		c.e.sources[si].label = "llm models rule " + c.e.sources[si].ruleID
		for _, g := range ms.models {
			l.models = append(l.models, modelRule{si: si, deny: ms.deny, important: ms.opts.important, provider: ms.provider, model: g})
		}
	}
	if err := compileLLMGuard(c, l); err != nil {
		return err
	}
	c.e.views.set("llm", l)
	return nil
}

// llmWarnings warns of models rules that deny while a request agentg
// cannot read passes undecided (unparsed: report or allow): an agent
// could send one, on purpose, to reach a denied model.
func (w *warner) llmWarnings() {
	l := w.e.LLM()
	if !l.defined || l.unparsed == UnparsedDeny {
		return
	}
	denies := l.dflt.Action == Deny
	for i := range l.models {
		denies = denies || l.models[i].deny
	}
	if denies {
		w.add(l.unparsedSrc, "llm models rules deny, but unparsed is not deny: a model request agentg cannot read passes without its model decided; set llm unparsed: deny to enforce them")
	}
}

package rules

import (
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// The mcp redact and rate_limits sub-sections: obligations. They never
// decide a call; every entry that covers a call applies to it, whatever
// the verdict, and they match tool names the way a deny does (without
// regard to case), so a spelling cannot slip past one.

// Redaction is one redact entry: strings in the covered scope that
// Pattern matches are replaced by Marker.
type Redaction struct {
	ID     string // the entry's id, default "<file>:<line>"
	Source string // "<file>:<line>"
	// Pattern is compiled once at load and safe for concurrent use; it
	// never matches the empty string.
	Pattern *regexp.Regexp
	// Marker is the replacement text, "[REDACTED:<ID>]".
	Marker string
	// Arguments and Results say where it applies: every string and
	// member name of every message from the client to the server
	// (arguments); of every message from the server to the client
	// (results). See dissect/mcp.RedactMessage for the few places that
	// are checked rather than rewritten.
	Arguments, Results bool
}

// RateLimit is one rate_limits entry: a token bucket of Burst tokens
// refilled at Limit per second, one bucket per rule and per key.
type RateLimit struct {
	ID     string // the entry's id, default "<file>:<line>"
	Source string // "<file>:<line>"
	Spec   string // the limit as written ("30/m"), for messages
	Limit  float64
	Burst  int
	// Per is the bucket key: "agent" (one bucket per agent), "server"
	// (per server, shared by every agent) or "tool" (per server and
	// tool, shared by every agent).
	Per string
	// Report is set when the entry (or the policy) is in report mode: a
	// call past the limit is logged as report and passes.
	Report bool
}

type redactSpec struct {
	line    int
	re      *regexp.Regexp
	args    bool
	results bool
	pats    []toolPat // nil: every tool
	opts    ruleOpts
}

type rateSpec struct {
	line  int
	spec  string
	limit float64
	burst int
	per   string
	pats  []toolPat
	opts  ruleOpts
}

func (p *mcpParser) redactRules(n *yaml.Node) ([]redactSpec, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.ps.errf(n, "mcp redact must be a list of {pattern: REGEXP, in: [arguments, results], ...}")
	}
	var out []redactSpec
	for _, it := range n.Content {
		r := redactSpec{line: it.Line, args: true, results: true}
		err := p.ps.eachKey(it, func(k, v *yaml.Node) error {
			var err error
			switch k.Value {
			case "pattern":
				var s string
				if s, err = p.ps.scalar(v); err != nil {
					return err
				}
				if r.re, err = regexp.Compile(s); err != nil {
					return p.ps.errf(v, "bad regexp %q: %v", s, err)
				}
				if canMatchEmpty(s) {
					return p.ps.errf(v, "regexp %q can match the empty string: it would redact between every character", s)
				}
			case "in":
				its, e := p.ps.items(v)
				if e != nil {
					return e
				}
				r.args, r.results = false, false
				for _, x := range its {
					switch x.Value {
					case "arguments":
						r.args = true
					case "results":
						r.results = true
					default:
						return p.ps.errf(x, "redact in %q (want arguments or results)", x.Value)
					}
				}
			case "tools":
				r.pats, err = p.toolPats(v)
			case "agents", "id":
				_, err = p.ps.option(k, v, &r.opts)
			default:
				err = p.ps.errf(k, "unknown redact key %q (want pattern, in, tools, agents, id)", k.Value)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		if r.re == nil {
			return nil, p.ps.errf(it, "redact entry without a pattern")
		}
		out = append(out, r)
	}
	return out, nil
}

// canMatchEmpty reports whether the regexp can match an empty string
// somewhere; empty-width assertions (^, $, \b) count as empty.
func canMatchEmpty(s string) bool {
	re, err := syntax.Parse(s, syntax.Perl)
	if err != nil {
		return false
	}
	var nullable func(*syntax.Regexp) bool
	nullable = func(r *syntax.Regexp) bool {
		switch r.Op {
		case syntax.OpLiteral, syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL, syntax.OpNoMatch:
			return r.Op == syntax.OpLiteral && len(r.Rune) == 0
		case syntax.OpCapture, syntax.OpPlus:
			return nullable(r.Sub[0])
		case syntax.OpStar, syntax.OpQuest:
			return true
		case syntax.OpRepeat:
			return r.Min == 0 || nullable(r.Sub[0])
		case syntax.OpConcat:
			for _, sub := range r.Sub {
				if !nullable(sub) {
					return false
				}
			}
			return true
		case syntax.OpAlternate:
			return slices.ContainsFunc(r.Sub, nullable)
		}
		return true // empty match, anchors, word boundaries
	}
	return nullable(re)
}

func (p *mcpParser) rateRules(n *yaml.Node) ([]rateSpec, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.ps.errf(n, "mcp rate_limits must be a list of {tools: PATTERN, limit: N/s|N/m|N/h, per: agent|server|tool}")
	}
	var out []rateSpec
	for _, it := range n.Content {
		r := rateSpec{line: it.Line, per: "agent"}
		var burstNode *yaml.Node
		err := p.ps.eachKey(it, func(k, v *yaml.Node) error {
			var err error
			switch k.Value {
			case "tools":
				r.pats, err = p.toolPats(v)
			case "limit":
				if r.spec, err = p.ps.scalar(v); err == nil {
					var ok bool
					if r.limit, r.burst, ok = parseRate(r.spec); !ok {
						err = p.ps.errf(v, "bad limit %q (want N/s, N/m or N/h, N from 1 to 1000000000)", r.spec)
					}
				}
			case "burst":
				burstNode = v
			case "per":
				r.per, err = p.ps.oneOf(v, "agent", "server", "tool")
			case "agents", "id", "mode":
				_, err = p.ps.option(k, v, &r.opts)
			default:
				err = p.ps.errf(k, "unknown rate_limits key %q (want tools, limit, burst, per, agents, mode, id)", k.Value)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		if r.spec == "" {
			return nil, p.ps.errf(it, "rate limit without a limit")
		}
		if burstNode != nil {
			b, err := strconv.Atoi(burstNode.Value)
			if err != nil || b < 1 || b > 1_000_000_000 {
				return nil, p.ps.errf(burstNode, "bad burst %q (want a whole number from 1 to 1000000000)", burstNode.Value)
			}
			r.burst = b
		}
		out = append(out, r)
	}
	return out, nil
}

// parseRate parses "N/s", "N/m" or "N/h" into a rate per second and a
// burst of N: a full window's worth may come at once, then the bucket
// refills evenly.
func parseRate(s string) (perSecond float64, burst int, ok bool) {
	num, unit, found := strings.Cut(s, "/")
	if !found {
		return 0, 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(num))
	if err != nil || n < 1 || n > 1_000_000_000 {
		return 0, 0, false
	}
	var secs float64
	switch strings.TrimSpace(unit) {
	case "s":
		secs = 1
	case "m":
		secs = 60
	case "h":
		secs = 3600
	default:
		return 0, 0, false
	}
	return float64(n) / secs, n, true
}

// Scopes obligations are collected for.
const (
	scopeArguments = iota
	scopeResults
	scopeAll
)

// obligation is what decides whether one obligation covers a call.
type obligation struct {
	pats   []toolPat // nil: every tool
	agents []string  // nil: every agent
}

func (o *obligation) coversAgent(agent string) bool {
	return o.agents == nil || slices.Contains(o.agents, agent)
}

func (o *obligation) covers(agent, server, tool string) bool {
	if !o.coversAgent(agent) {
		return false
	}
	if o.pats == nil {
		return true
	}
	for i := range o.pats {
		if o.pats[i].matches(server, tool, true) {
			return true
		}
	}
	return false
}

// oblSet is the obligations of one scope, in policy order.
type oblSet[T any] struct {
	items []T // clipped, so a caller's append copies
	m     []obligation
}

// obligations is a compiled redact or rate_limits sub-section.
type obligations[T any] struct {
	sets [3]oblSet[T]
}

func (o *obligations[T]) add(scope int, item T, ob obligation) {
	s := &o.sets[scope]
	s.items = slices.Clip(append(s.items, item))
	s.m = append(s.m, ob)
}

// collect returns the obligations of the scope that cover the call: nil
// when none does and the shared slice when all do, so neither allocates.
func (o *obligations[T]) collect(agent, server, tool string, scope int) []T {
	s := &o.sets[scope]
	n := 0
	for i := range s.m {
		if s.m[i].covers(agent, server, tool) {
			n++
		}
	}
	switch n {
	case 0:
		return nil
	case len(s.m):
		return s.items
	}
	out := make([]T, 0, n)
	for i := range s.m {
		if s.m[i].covers(agent, server, tool) {
			out = append(out, s.items[i])
		}
	}
	return out
}

// ResultRedactions returns the redactions that apply to the results of
// a call of tool on server by agent, in policy order (nil when none; the
// slice is shared and must not be modified).
//
// A tool name longer than MaxToolName gets every result redaction.
func (m *MCPRules) ResultRedactions(agent, server, tool string) []Redaction {
	if len(tool) > MaxToolName {
		return m.redact.sets[scopeResults].items
	}
	return m.redact.collect(agent, server, tool, scopeResults)
}

// AllResultRedactions are the redactions of results of every entry,
// whatever its tools and agents: for a result whose tool cannot be known
// (the result of a task agentg did not see created), which is redacted as
// any tool's result could be.
func (m *MCPRules) AllResultRedactions() []Redaction {
	return m.redact.sets[scopeResults].items
}

// MessageRedactions are the redactions that apply to an MCP message not
// tied to one tool call, in one direction (results: server to client;
// otherwise client to server): notifications, requests of the server's,
// the client's answers to them, prompts/get and resources/read and their
// answers, tools/list, errors. Every entry of that direction that covers
// agent applies, whatever its tools: such a message can carry what any
// tool's could, and redacting more is safe. Policy order; nil when none;
// the slice may be shared and must not be modified.
func (m *MCPRules) MessageRedactions(agent string, results bool) []Redaction {
	scope := scopeArguments
	if results {
		scope = scopeResults
	}
	s := &m.redact.sets[scope]
	n := 0
	for i := range s.m {
		if s.m[i].coversAgent(agent) {
			n++
		}
	}
	switch n {
	case 0:
		return nil
	case len(s.m):
		return s.items
	}
	out := make([]Redaction, 0, n)
	for i := range s.m {
		if s.m[i].coversAgent(agent) {
			out = append(out, s.items[i])
		}
	}
	return out
}

func (c *compiler) compileRedact(rs []redactSpec) error {
	e := c.e
	for _, r := range rs {
		src, err := c.mcpSource(r.line, r.opts, "redact")
		if err != nil {
			return err
		}
		id, where := src.ruleID, src.where
		red := Redaction{ID: id, Source: where, Pattern: r.re, Marker: "[REDACTED:" + id + "]", Arguments: r.args, Results: r.results}
		ob := obligation{pats: r.pats, agents: r.opts.agents}
		if r.args {
			e.mcp.redact.add(scopeArguments, red, ob)
		}
		if r.results {
			e.mcp.redact.add(scopeResults, red, ob)
		}
		e.mcp.redact.add(scopeAll, red, ob)
		for _, tp := range r.pats {
			c.toolRef(tp, where, "redact "+id)
		}
		e.stats.MCPRedactions++
	}
	return nil
}

func (c *compiler) compileRates(rs []rateSpec) error {
	e := c.e
	for _, r := range rs {
		src, err := c.mcpSource(r.line, r.opts, "rate limit")
		if err != nil {
			return err
		}
		id, where := src.ruleID, src.where
		rl := RateLimit{ID: id, Source: where, Spec: r.spec, Limit: r.limit, Burst: r.burst, Per: r.per, Report: src.report}
		e.mcp.rates.add(scopeAll, rl, obligation{pats: r.pats, agents: r.opts.agents})
		for _, tp := range r.pats {
			c.toolRef(tp, where, "rate limit "+id)
		}
		e.stats.MCPRateLimits++
	}
	return nil
}

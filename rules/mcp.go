package rules

import (
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

func init() {
	register(section{key: "mcp", rank: rankMCP,
		parse: func(p *parser, k, v *yaml.Node, pol *policy) (err error) {
			pol.mcp, err = (&mcpParser{ps: p}).mcpSection(k, v)
			return err
		},
		steps: []step{{phase: phaseRules, at: 40, run: (*compiler).compileMCP}}})
}

// mcpParser parses the mcp section and its sub-sections (servers, tools,
// prompts, resources, redact, rate_limits); the shared rule syntax is
// ps's.
type mcpParser struct{ ps *parser }

// The mcp section: tool-level policy for Model Context Protocol traffic.
// This file holds the section's settings (default, unknown_servers,
// deny_as, max_message, pinning), the parse of its keys, and the compile
// step that runs the sub-sections: servers (mcp_servers.go), tools
// (mcp_tools.go, mcp_conds.go), redact and rate_limits
// (mcp_obligations.go). Nothing here parses JSON: argument conditions read
// a message through ArgLookup, which the codec implements.

const (
	defaultMaxMessage = 4 << 20
	minMaxMessage     = 1 << 10
	maxMaxMessage     = 1 << 30
)

// mcpSpec is the parsed mcp section, before compilation.
type mcpSpec struct {
	line         int
	defaultDeny  bool
	unknown      string // "allow", "deny" or "report"
	denyAsResult bool
	maxMessage   int64
	pinDeny      bool
	servers      []serverSpec
	tools        []toolRule
	redact       []redactSpec
	rates        []rateSpec
	// prompts and resources rule prompts/get and resources/read
	// (mcp_reads.go); has* is set by the key's presence, even empty.
	prompts                  []toolRule
	resources                []resRule
	hasPrompts, hasResources bool
	unrequested              unrequestedSpec // mcp_unrequested.go
}

func (p *mcpParser) mcpSection(k, n *yaml.Node) (*mcpSpec, error) {
	if n.Kind != yaml.MappingNode {
		return nil, p.ps.errf(n, "mcp must be a mapping (default, unknown_servers, deny_as, max_message, servers, tools, prompts, resources, redact, rate_limits, pinning, unrequested, link_window)")
	}
	m := &mcpSpec{line: k.Line, unknown: "allow", maxMessage: defaultMaxMessage}
	err := p.ps.eachKey(n, func(k, v *yaml.Node) error {
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			switch k.Value {
			case "prompts":
				m.hasPrompts = true
				return nil
			case "resources":
				m.hasResources = true
				return nil
			case "servers", "tools", "redact", "rate_limits":
				return nil // an empty sub-section
			}
		}
		var err error
		var s string
		if ok, err := p.parseUnrequested(m, k, v); ok {
			return err
		}
		switch k.Value {
		case "default":
			s, err = p.ps.oneOf(v, "allow", "deny")
			m.defaultDeny = s == "deny"
		case "unknown_servers":
			m.unknown, err = p.ps.oneOf(v, "allow", "deny", "report")
		case "deny_as":
			s, err = p.ps.oneOf(v, "error", "result")
			m.denyAsResult = s == "result"
		case "max_message":
			m.maxMessage, err = p.ps.size(v, minMaxMessage, maxMaxMessage)
		case "pinning":
			s, err = p.ps.oneOf(v, "alert", "deny")
			m.pinDeny = s == "deny"
		case "servers":
			m.servers, err = p.mcpServers(v)
		case "tools":
			m.tools, err = p.toolRules(v)
		case "prompts":
			m.prompts, err = p.promptRules(v)
			m.hasPrompts = true
		case "resources":
			m.resources, err = p.resourceRules(v)
			m.hasResources = true
		case "redact":
			m.redact, err = p.redactRules(v)
		case "rate_limits":
			m.rates, err = p.rateRules(v)
		default:
			err = p.ps.errf(k, "unknown mcp key %q (want default, unknown_servers, deny_as, max_message, servers, tools, prompts, resources, redact, rate_limits, pinning, unrequested or link_window)", k.Value)
		}
		return err
	})
	return m, err
}

// size parses a byte count: a plain number of bytes, or one with a
// binary suffix (B, KiB, MiB, GiB), between lo and hi.
func (p *parser) size(n *yaml.Node, lo, hi int64) (int64, error) {
	s, err := p.scalar(n)
	if err != nil {
		return 0, err
	}
	num, mult := s, int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = strings.TrimSpace(v), u.mult
			break
		}
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v <= 0 || v > hi/mult || v*mult < lo {
		return 0, p.errf(n, "bad size %q (want bytes or a number with KiB, MiB or GiB, from %d to %d bytes)", s, lo, hi)
	}
	return v * mult, nil
}

// DenyAs is how the MCP guard answers a denied request.
type DenyAs uint8

const (
	// DenyAsError answers with a JSON-RPC error for the request's own id
	// (code -32001, data.rule naming the rule). It is the zero value.
	DenyAsError DenyAs = iota
	// DenyAsResult answers a tools/call with a result whose isError is
	// true and whose text names the rule, so the model reads it.
	DenyAsResult
)

// String returns "error" or "result", as the policy spells them.
func (d DenyAs) String() string {
	if d == DenyAsResult {
		return "result"
	}
	return "error"
}

// MCPSettings are the mcp section's settings: what the MCP guard needs
// besides the answer to each tool call. The Decisions are built at load,
// so a guard logs them as they are.
type MCPSettings struct {
	// Defined is set when the policy has an mcp section (an empty
	// "mcp:" is no section). Without one, every setting has its default.
	Defined bool
	// Default is what Tool answers when no tool rule matches (rule
	// "mcp:default"): Allow unless the section says "default: deny".
	Default Decision
	// UnknownServers is the answer for MCP on a host and path no servers
	// entry binds (rule "mcp:unknown_servers"): Allow ("allow", the
	// default), Deny ("deny"), or a Deny in report mode ("report": the
	// exchange passes and is logged as report). When it passes, tool
	// calls there are decided with Server "".
	UnknownServers Decision
	// DenyAs is how a denied call is answered.
	DenyAs DenyAs
	// MaxMessage is the largest MCP message, in bytes, the guard reads;
	// a larger one is refused, never passed unread (default 4 MiB).
	MaxMessage int64
	// Pinning is the answer for a call to a tool whose definition
	// changed since it was first seen (rule "mcp:pinning"): Allow
	// ("alert", the default: the change is an event and the call is
	// decided as usual) or Deny ("deny": refused until the new
	// definition is accepted).
	Pinning Decision
	// Unrequested is what a tools/call no model turn asked for gets
	// (mcp_unrequested.go).
	Unrequested UnrequestedSettings
}

// MCPRules is the compiled mcp section: Engine.MCP returns it. Its
// settings are embedded; its methods decide tool calls, prompts,
// resources and which server a host and path bind.
type MCPRules struct {
	MCPSettings
	e       *Engine
	servers serverTable // mcp_servers.go
	addrs   serverAddrs // mcp_addrs.go
	tools   toolTable   // mcp_tools.go
	reads   readsPolicy // mcp_reads.go: prompts and resources
	redact  obligations[Redaction]
	rates   obligations[RateLimit]
}

// MCP returns the compiled mcp section.
func (e *Engine) MCP() *MCPRules { return &e.mcp }

func (c *compiler) compileMCP() error {
	e, pol := c.e, c.pol
	m := pol.mcp
	if m == nil {
		m = &mcpSpec{unknown: "allow", maxMessage: defaultMaxMessage}
	}
	deny := func(rule, reason string) Decision {
		return Decision{Action: Deny, Report: pol.report, Rule: rule, Source: pol.file, Reason: reason}
	}
	allow := func(rule, reason string) Decision {
		return Decision{Action: Allow, Rule: rule, Source: pol.file, Reason: reason}
	}
	s := &e.mcp.MCPSettings
	s.Defined = pol.mcp != nil
	s.MaxMessage = m.maxMessage
	if m.denyAsResult {
		s.DenyAs = DenyAsResult
	}
	s.Default = allow("mcp:default", "no tool rule matched; mcp default allow")
	if m.defaultDeny {
		s.Default = deny("mcp:default", "no tool rule matched; mcp default deny")
	}
	switch m.unknown {
	case "allow":
		s.UnknownServers = allow("mcp:unknown_servers", "MCP on a host no mcp server entry names; unknown_servers: allow")
	case "deny":
		s.UnknownServers = deny("mcp:unknown_servers", "MCP on a host no mcp server entry names; unknown_servers: deny")
	case "report":
		s.UnknownServers = deny("mcp:unknown_servers", "MCP on a host no mcp server entry names; unknown_servers: report")
		s.UnknownServers.Report = true
	}
	s.Pinning = allow("mcp:pinning", "tool definition changed since it was first seen; pinning: alert")
	if m.pinDeny {
		s.Pinning = deny("mcp:pinning", "tool definition changed since it was first seen; pinning: deny (accept it with agentg mcp pins accept)")
	}
	s.Unrequested = compileUnrequested(pol.file, pol.report, m.unrequested)
	if err := c.compileServers(m.servers); err != nil {
		return err
	}
	c.compileServerAddrs()
	if err := c.compileTools(m.tools); err != nil {
		return err
	}
	r := &e.mcp.reads
	r.promptsRuled, r.resourcesRuled = m.hasPrompts, m.hasResources
	r.promptDefault = allow("mcp:default", "no prompt rule matched; mcp default allow")
	r.resDefault = allow("mcp:default", "no resource rule matched; mcp default allow")
	if m.defaultDeny {
		r.promptDefault = deny("mcp:default", "no prompt rule matched; mcp default deny")
		r.resDefault = deny("mcp:default", "no resource rule matched; mcp default deny")
	}
	if err := c.compilePrompts(m.prompts); err != nil {
		return err
	}
	if err := c.compileResources(m.resources); err != nil {
		return err
	}
	if err := c.compileRedact(m.redact); err != nil {
		return err
	}
	return c.compileRates(m.rates)
}

// mcpSource records a redact or rate_limits entry as a rule source: its
// id is unique among every rule id of the policy, and Warnings sees its
// agents. what names the kind of entry in reasons and warnings.
func (c *compiler) mcpSource(line int, o ruleOpts, what string) (*source, error) {
	si, err := c.ruleSource(line, o)
	if err != nil {
		return nil, err
	}
	s := &c.e.sources[si]
	s.label = what + " " + s.ruleID
	return s, nil
}

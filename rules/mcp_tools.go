package rules

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// The mcp tools sub-section: allow and deny rules for tool calls, by
// "SERVER.TOOL" pattern, agent and conditions (mcp_conds.go), and
// MCPRules.Tool, the one question the MCP guard asks about a call.

// toolPat is one compiled "SERVER.TOOL" pattern. The server part ends at
// the first dot (server names have none); the tool part may contain dots.
// Either part may hold '*', any run of bytes; "*" alone is every tool of
// every server.
type toolPat struct {
	text       string // as written
	server     string
	serverWild bool
	tool       string
	toolWild   bool
	// rank is the specificity: twice the length of the literal text
	// before the first '*' of "SERVER.TOOL", plus one for a pattern
	// without '*', so an exact name beats every glob and a longer
	// literal prefix beats a shorter. lits (the literal bytes in all)
	// breaks a tie: "*.delete_project" beats "*".
	rank, lits int
}

func parseToolPat(s string) (toolPat, error) {
	bad := func(why string) (toolPat, error) {
		return toolPat{}, fmt.Errorf(`bad tool pattern %q: %s (want SERVER.TOOL, e.g. "jira.create_issue", "jira.*", "*.delete_*", or "*")`, s, why)
	}
	if s == "*" {
		return toolPat{text: s, server: "*", serverWild: true, tool: "*", toolWild: true}, nil
	}
	server, tool, ok := strings.Cut(s, ".")
	switch {
	case !ok:
		return bad("no dot between server and tool")
	case server == "":
		return bad("empty server name")
	case tool == "":
		return bad("empty tool name")
	case len(s) > 256:
		return bad("longer than 256 bytes")
	case !utf8.ValidString(tool):
		return bad("not UTF-8")
	}
	for i := 0; i < len(server); i++ {
		if c := server[i]; !isServerByte(c) && c != '*' {
			return bad("a server name is letters, digits, '_' and '-' (or '*')")
		}
	}
	for _, r := range tool {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return bad("space or control character in the tool name")
		}
	}
	tp := toolPat{
		text: s, server: server, serverWild: strings.Contains(server, "*"),
		tool: tool, toolWild: strings.Contains(tool, "*"),
	}
	if k := strings.IndexByte(s, '*'); k < 0 {
		tp.rank = 2*len(s) + 1
	} else {
		tp.rank = 2 * k
	}
	tp.lits = len(s) - strings.Count(s, "*") - 1
	return tp, nil
}

// matches reports whether the pattern covers the call. The server part
// is compared exactly: server names come from the policy's own binding.
// A loose match (denies and obligations) compares the tool name without
// regard to case, so that a server that looks tools up that way cannot be
// reached past a deny by a spelling; an allow matches the name as sent.
func (tp *toolPat) matches(server, tool string, loose bool) bool {
	if tp.serverWild {
		if !wildMatch(tp.server, server) {
			return false
		}
	} else if tp.server != server {
		return false
	}
	switch {
	case !loose && !tp.toolWild:
		return tp.tool == tool
	case !loose:
		return wildMatch(tp.tool, tool)
	case !tp.toolWild:
		return strings.EqualFold(tp.tool, tool)
	}
	return wildMatchFold(tp.tool, tool)
}

// toolPats parses a value that is one tool pattern or a list of them.
func (p *mcpParser) toolPats(n *yaml.Node) ([]toolPat, error) {
	vals, err := p.ps.items(n)
	if err != nil {
		return nil, err
	}
	var out []toolPat
	for _, v := range vals {
		tp, err := parseToolPat(v.Value)
		if err != nil {
			return nil, p.ps.errf(v, "%v", err)
		}
		out = append(out, tp)
	}
	return out, nil
}

type toolRule struct {
	line  int
	deny  bool
	hold  *Hold // an approve rule's
	pats  []toolPat
	conds []toolCond
	opts  ruleOpts
}

func (p *mcpParser) toolRules(n *yaml.Node) ([]toolRule, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.ps.errf(n, "mcp tools must be a list of rules")
	}
	var out []toolRule
	for _, it := range n.Content {
		var conds []toolCond
		vb, val, hold, o, err := p.ps.ruleVerdict(it, func(k, v *yaml.Node) (bool, error) {
			if k.Value != "when" {
				return true, p.ps.errf(k, "unknown tool rule key %q (want allow, deny or approve, agents, mode, important, id, when, timeout, via)", k.Value)
			}
			var err error
			conds, err = p.toolConds(v)
			return true, err
		}, true)
		if err != nil {
			return nil, err
		}
		if o.ports != nil {
			return nil, p.ps.errf(keyNode(it, "ports"), "ports do not apply to tool rules (scope the server's url with ports instead)")
		}
		pats, err := p.toolPats(val)
		if err != nil {
			return nil, err
		}
		out = append(out, toolRule{line: it.Line, deny: vb == verbDeny, hold: hold, pats: pats, conds: conds, opts: o})
	}
	return out, nil
}

// keyNode returns the key node k of mapping m, or m when it has none.
func keyNode(m *yaml.Node, k string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == k {
			return m.Content[i]
		}
	}
	return m
}

// toolEntry is one compiled tool rule pattern; its decision is built at
// load, so deciding never allocates.
type toolEntry struct {
	pat       toolPat
	deny      bool
	hold      *Hold // an approve entry's
	important bool
	conds     []toolCond
	src       int
	d         Decision
}

// toolTable is the compiled tools sub-section.
type toolTable struct {
	byServer map[string][]toolEntry // patterns whose server part is a name
	wild     []toolEntry            // patterns whose server part has '*'
	order    []toolRef              // every pattern in policy order, for Warnings
}

// toolRef is one tool pattern as written, for Warnings.
type toolRef struct {
	server string // "" when the server part is a glob
	where  string
	what   string // "tool rule <id>", "redact <id>", "rate limit <id>"
	text   string
}

func (c *compiler) compileTools(rs []toolRule) error {
	return c.compilePatterns(rs, &c.e.mcp.tools, "tool call", "tool rule", &c.e.stats.ToolRules)
}

// compilePatterns compiles SERVER.NAME rules into t: tool rules, and the
// prompt rules that share their matching and precedence. what names the
// request in reasons ("tool call"), kind the rule in references.
func (c *compiler) compilePatterns(rs []toolRule, t *toolTable, what, kind string, count *int) error {
	e := c.e
	for _, r := range rs {
		si, err := c.ruleSource(r.line, r.opts)
		if err != nil {
			return err
		}
		s := &e.sources[si]
		when := condsText(r.conds)
		for _, tp := range r.pats {
			d := Decision{Action: Allow, Rule: s.ruleID, Source: s.where}
			verb := "allowed"
			if r.deny {
				d.Action, d.Report, verb = Deny, s.report, "denied"
			}
			d.Reason = what + " " + verb + " by " + s.label + " (" + tp.text + when + ")"
			if r.hold != nil {
				d.Action, d.Hold = Approve, r.hold
				d.Reason = holdReason(what, s.label, tp.text+when, r.hold)
			}
			en := toolEntry{pat: tp, deny: r.deny, hold: r.hold, important: r.opts.important, conds: r.conds, src: si, d: d}
			if tp.serverWild {
				t.wild = append(t.wild, en)
			} else {
				if t.byServer == nil {
					t.byServer = map[string][]toolEntry{}
				}
				t.byServer[tp.server] = append(t.byServer[tp.server], en)
			}
			c.toolRef(tp, s.where, kind+" "+s.ruleID)
			*count++
		}
	}
	return nil
}

func (c *compiler) toolRef(tp toolPat, where, what string) {
	ref := toolRef{where: where, what: what, text: tp.text}
	if !tp.serverWild {
		ref.server = tp.server
	}
	c.e.mcp.tools.order = append(c.e.mcp.tools.order, ref)
}

// ToolCall is one tool call to decide. Fields may be added; the zero
// value of a new field will mean what a call without it meant.
type ToolCall struct {
	Agent string
	// Server is the policy name of the server, from MCPRules.Server;
	// never the serverInfo.name the server reports (the server controls
	// that). "" on a host no servers entry binds: only patterns whose
	// server part is a glob ("*", "*.read_*") match there.
	Server string
	// Tool is the tool name as the server will read it (escapes decoded
	// by the codec); it may contain dots.
	Tool string
	// Args reads the call's arguments; nil means the call has none.
	Args ArgLookup
	// Annotations are the hints the server's definition of the tool
	// explicitly sets to true. They come from the server, so they can
	// only make a rule match, never unlock one.
	Annotations ToolHints
}

// ToolVerdict is the answer to a ToolCall: a decision, and the
// obligations that hold whatever it is. The slices are shared by every
// caller and must not be modified.
type ToolVerdict struct {
	// Decision is Allow, Deny or Approve (with its Hold), with the rule
	// that fired.
	Decision
	// Redactions are every redact entry that covers the call and applies
	// to its arguments, in policy order.
	Redactions []Redaction
	// RateLimits are every rate limit that covers the call, in policy
	// order; the call counts against each.
	RateLimits []RateLimit
}

// Tool decides one tool call and gathers its obligations.
//
// Candidates are the tool rules that apply to the agent, whose pattern
// covers the call (a deny's tool part without regard to case, an allow's
// as sent) and whose conditions all hold. The most specific pattern wins
// (see toolPat.rank: an exact name beats a glob, a longer literal prefix
// beats a shorter, more literal text breaks a tie); on a tie deny wins;
// an important deny beats every allow. No candidate: MCPSettings.Default
// (rule "mcp:default").
//
// Redactions and rate limits accumulate across every entry that covers
// the call, whatever the decision. Tool takes no lock, and a call no rule
// or obligation covers allocates nothing.
//
// A tool name longer than MaxToolName is denied as "builtin:tool-name"
// before any pattern sees it (matching is linear in the name times the
// pattern, and no real tool has such a name), with every argument
// redaction and no rate limit.
func (m *MCPRules) Tool(q ToolCall) ToolVerdict {
	if len(q.Tool) > MaxToolName {
		return ToolVerdict{
			Decision:   m.toolTooLong(len(q.Tool)),
			Redactions: m.redact.sets[scopeArguments].items, // every one: more is safe, and the call is refused anyway
		}
	}
	return ToolVerdict{
		Decision:   m.toolDecide(&q),
		Redactions: m.redact.collect(q.Agent, q.Server, q.Tool, scopeArguments),
		RateLimits: m.rates.collect(q.Agent, q.Server, q.Tool, scopeAll),
	}
}

// MaxToolName is the longest tool name Tool decides by its rules, in
// bytes; the specification asks for at most 128.
const MaxToolName = 1024

func (m *MCPRules) toolTooLong(n int) Decision {
	e := m.e
	return Decision{Action: Deny, Report: e.report, Rule: "builtin:tool-name", Source: e.file,
		Reason: "tool name of " + strconv.Itoa(n) + " bytes is longer than " + strconv.Itoa(MaxToolName)}
}

func (m *MCPRules) toolDecide(q *ToolCall) Decision {
	return m.patternDecide(&m.tools, q, m.MCPSettings.Default)
}

// beats reports whether en is more specific than o, or as specific and
// stricter (deny over approve over allow).
func (en *toolEntry) beats(o *toolEntry) bool {
	a, b := &en.pat, &o.pat
	switch {
	case a.rank != b.rank:
		return a.rank > b.rank
	case a.lits != b.lits:
		return a.lits > b.lits
	}
	return en.verb().rank() > o.verb().rank()
}

func (en *toolEntry) verb() verb {
	switch {
	case en.deny:
		return verbDeny
	case en.hold != nil:
		return verbApprove
	}
	return verbAllow
}

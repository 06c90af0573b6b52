package mcp

import (
	"context"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/dissect/llm"
	"github.com/agentg/agentg/dissect/mcp/wire"
	"github.com/agentg/agentg/rules"
)

// The link from a tools/call to the model turn that asked for it (issue
// 18). The proxy keeps each agent's last model turns (Guard.Turns, the
// llm.Recent it adds to); every tools/call, through any door, claims the
// oldest tool call of its agent's turns within mcp.link_window whose name
// names the call's tool (llm.tool_names and the conventions, rules
// ToolNames) and whose arguments are the call's in canonical JSON (RFC
// 8785, as tool definitions are pinned: member order, whitespace,
// escapes and number spellings do not count). Each model tool call is
// claimed once. The call's event names the turn (llm_turn) and carries
// its text and visible reasoning, redacted by the redactions of the
// call's arguments, masked by the leak guard, and cut to
// audit.MaxTurnText bytes each.
//
// A call no turn asked for is marked unrequested, and mcp.unrequested
// decides it (report: it runs, marked; approve: it is held; deny: it is
// refused), but only for an agent agentg has seen a model turn of: for
// one whose model path agentg does not see, no call could be tied, and
// a default that refused them would break every such deployment. A
// 2026-07-28 retry (retry_of) repeats a call already decided and linked,
// so it is neither linked nor marked again.

// linkWait bounds how long a tools/call waits for a model call of its
// agent's in flight to end, when no kept turn asked for it (llm.ClaimWait).
const linkWait = 2 * time.Second

// link ties c to its model turn, or marks it unrequested and lets
// mcp.unrequested decide it; v is the call's verdict so far.
func (ex *exchange) link(c *call, v *callVerdict) {
	g, x := ex.g, ex.x
	if g.Turns == nil || c.ev.MCP.RetryOf != "" {
		return
	}
	names := x.Engine.ToolNames()
	st := rules.ServerTool{Server: x.Server, Tool: c.m.Tool}
	has := func(o rules.ServerTool) bool { _, ok := g.State.Pin(o.Server, o.Tool); return ok }
	// The call's canonical arguments are made only once a turn's tool
	// call names its tool: an agent without turns costs a lookup.
	var args string
	var argsRead, argsOK bool
	match := func(tc llm.ToolCall) bool {
		if tc.Truncated || !names.Names(tc.Name, st, has) {
			return false
		}
		if !argsRead {
			args, argsOK = canonicalArgs(c.m.Args)
			argsRead = true
		}
		a, ok := canonicalArgs(tc.Arguments)
		return argsOK && ok && a == args
	}
	since := g.now().Add(-ex.set.Unrequested.Window)
	rt, _, found := g.Turns.ClaimWait(context.Background(), x.Agent, since, linkWait, match)
	if found {
		reds := scoped(v.Redactions, true)
		c.ev.MCP.LLMTurn = rt.Event
		c.ev.MCP.TurnText = ex.turnText(rt.Turn.Text, reds)
		c.ev.MCP.TurnReasoning = ex.turnText(rt.Turn.Reasoning, reds)
		return
	}
	if !g.Turns.Seen(x.Agent) {
		return
	}
	c.ev.MCP.Unrequested = true
	d := ex.set.Unrequested.Decision
	switch {
	case !v.Allowed() && v.Action != rules.Approve:
		// Refused already: the rule that refused it stays the reason.
	case d.Action == rules.Deny && !d.Report:
		v.Decision = d
	case d.Action == rules.Approve && v.Action != rules.Approve:
		v.Decision = d
	}
}

// turnText is a turn's text for a tools/call event: redacted whole (a
// cut could split a match), masked, then cut on a rune boundary.
func (ex *exchange) turnText(s string, reds []wire.Redaction) string {
	if s == "" {
		return ""
	}
	s = wire.RedactText(s, reds)
	if ex.g.Leaks.Active() {
		s = ex.g.Leaks.Mask(s)
	}
	if len(s) <= audit.MaxTurnText {
		return s
	}
	n := audit.MaxTurnText
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// canonicalArgs is a tool call's arguments in RFC 8785 canonical JSON,
// the form tool definitions are pinned in (wire.ToolHash); none (absent,
// empty or null) is the empty object, as a server reads it.
func canonicalArgs(v jsontext.Value) (string, bool) {
	if len(v) == 0 || string(v) == "null" {
		return "{}", true
	}
	c := v.Clone()
	if err := c.Canonicalize(jsontext.CanonicalizeRawInts(false)); err != nil {
		return "", false
	}
	if string(c) == "null" {
		return "{}", true
	}
	return string(c), true
}

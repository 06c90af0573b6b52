package rules

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// Unrequested tool calls (issue 18). The MCP guard ties each tools/call to
// the model turn that asked for it (same agent, the tool by llm.tool_names,
// the same arguments, within link_window); a call no visible turn asked
// for came from somewhere else (a prompt injection acting through the
// agent's code, a script, a person) and is marked unrequested:
//
//	mcp:
//	  unrequested: report          # report (default) | approve | deny
//	  link_window: 10m             # how long a turn's tool calls wait for their MCP call
//
// report lets the call run, marked; approve holds it as an approve rule
// would (any approver, DefaultHoldTimeout); deny refuses it. The setting
// applies only to agents agentg has seen at least one model turn of
// (their model path goes through agentg): for an agent whose model calls
// agentg never sees, no call could be tied to a turn, and marking or
// refusing them all would break every deployment without an llm section.

// Link window bounds.
const (
	DefaultLinkWindow = 10 * time.Minute
	minLinkWindow     = time.Second
	maxLinkWindow     = 24 * time.Hour
)

// UnrequestedSettings are mcp.unrequested and mcp.link_window.
type UnrequestedSettings struct {
	// Decision is what an unrequested call gets (rule "mcp:unrequested"):
	// a Deny in report mode (report: allowed and marked), an Approve
	// (with its Hold) or a Deny.
	Decision Decision
	// Window is how long after its turn ended a model's tool call may be
	// matched by an MCP call.
	Window time.Duration
}

// unrequestedSpec is the parsed pair.
type unrequestedSpec struct {
	mode       string // "report", "approve", "deny"
	line       int
	window     time.Duration
	windowLine int
}

// parseUnrequested reads one of the two keys into m; ok is false for any
// other key.
func (p *mcpParser) parseUnrequested(m *mcpSpec, k, v *yaml.Node) (ok bool, err error) {
	switch k.Value {
	case "unrequested":
		m.unrequested.mode, err = p.ps.oneOf(v, "report", "approve", "deny")
		m.unrequested.line = k.Line
	case "link_window":
		m.unrequested.window, err = p.ps.duration(v, minLinkWindow, maxLinkWindow)
		m.unrequested.windowLine = k.Line
	default:
		return false, nil
	}
	return true, err
}

// compileUnrequested builds the settings; report mode (report: at the
// top of the policy) makes a deny a report, as it does every deny.
func compileUnrequested(file string, report bool, u unrequestedSpec) UnrequestedSettings {
	src := file
	if u.line > 0 {
		src = fmt.Sprintf("%s:%d", file, u.line)
	}
	s := UnrequestedSettings{Window: DefaultLinkWindow}
	if u.window > 0 {
		s.Window = u.window
	}
	d := Decision{Rule: "mcp:unrequested", Source: src}
	switch u.mode {
	case "approve":
		d.Action, d.Hold = Approve, &Hold{Timeout: DefaultHoldTimeout, Console: true}
		d.Reason = "no model turn asked for this tool call; unrequested: approve"
	case "deny":
		d.Action, d.Report = Deny, report
		d.Reason = "no model turn asked for this tool call; unrequested: deny"
	default:
		d.Action, d.Report = Deny, true
		d.Reason = "no model turn asked for this tool call; unrequested: report"
	}
	s.Decision = d
	return s
}

// unrequestedWarnings warns of mcp.unrequested: approve or deny in a
// policy without an llm section: agentg then reads no model turn, so no
// agent is ever known to have one and the setting never applies.
func (w *warner) unrequestedWarnings() {
	d := w.e.mcp.Unrequested.Decision
	if d.Action == Deny && d.Report || w.e.LLM().Defined() {
		return
	}
	w.add(d.Source, "mcp unrequested: %s applies only to agents agentg has seen a model turn of, and without an llm section it reads none: add an llm section (the providers' hosts are bound by default)", d.Action)
}

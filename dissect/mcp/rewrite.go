package mcp

import (
	"encoding/hex"
	"net/http"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/dissect/mcp/wire"
	"github.com/agentg/agentg/rules"
	store "github.com/agentg/agentg/state"
)

// answers is the answer side of one exchange (a POST's answer, or a GET
// stream): what the server sends back is rewritten by it before the
// client sees it. q holds the events of answers rewritten until they are
// sent.
type answers struct {
	g   *Guard
	x   *Exchange
	set rules.MCPSettings
	q   *eventQueue
}

// rewrite rewrites one body or event of the server's: each answer
// to a request of the client's (found, and taken, with lookup) gets its result
// filtered (tools/list), and the request's event is written with the
// outcome. Every message, answers, errors, the server's requests and
// notifications alike, is then redacted whole (redactmsg.go); one that
// cannot be is withheld (an answer: replaced by an error) or dropped.
// Bytes that need no change are returned as they came; nil when every
// message was dropped.
func (a answers) rewrite(data []byte, lookup func(jsontext.Value) *call) ([]byte, error) {
	g, x, set := a.g, a.x, a.set
	body, err := wire.Parse(data, wire.Limits{MaxMessage: int(set.MaxMessage)})
	if err != nil {
		return nil, err
	}
	outs := make([][]byte, 0, len(body.Messages))
	changed := false
	for _, m := range body.Messages {
		out := []byte(m.Raw)
		c := (*call)(nil)
		if m.Kind == wire.KindResponse || m.Kind == wire.KindErrorResponse {
			c = lookup(m.ID)
		}
		switch {
		case c != nil:
			b, err := a.rewriteAnswer(m, c)
			if err != nil {
				return nil, err
			}
			if b != nil {
				out = b
			}
			out = a.redactAnswer(m, out, c)
		case m.Kind == wire.KindResponse:
			// A result for a request agentg has no record of (a
			// replayed answer, or a request it never saw) could not
			// be given its tool's obligations: it does not pass.
			out = wire.ErrorResponse(m.ID, wire.CodeInternalError,
				"agentg: an answer to a request agentg has no record of was withheld",
				map[string]any{"rule": "builtin:mcp-unmatched"})
			g.logRefusal(x, "builtin:mcp-unmatched", "withheld an answer (id "+string(m.ID)+") to a request agentg has no record of", 0)
		default: // the server's requests and notifications, unmatched errors
			out = g.redactPassing(x, m, true, "", "")
		}
		if out == nil || &out[0] != &m.Raw[0] || len(out) != len(m.Raw) {
			changed = true
		}
		if out != nil {
			outs = append(outs, out)
		}
	}
	switch {
	case !changed:
		return data, nil
	case len(outs) == 0:
		return nil, nil
	case body.Batch:
		return wire.EncodeBatch(outs), nil
	}
	return outs[0], nil
}

// redactAnswer redacts the server's answer to c, out (m as it came, or as
// filtered), and notes on c's event what fired. An answer that cannot be
// redacted is withheld: the client gets an error in its place.
func (a answers) redactAnswer(m *wire.Message, out []byte, c *call) []byte {
	x, set := a.x, a.set
	red := answerRedactions(x, c)
	if len(red) == 0 {
		return out
	}
	msg := m
	if &out[0] != &m.Raw[0] || len(out) != len(m.Raw) {
		b, err := wire.Parse(out, wire.Limits{MaxMessage: int(set.MaxMessage)})
		if err != nil || len(b.Messages) != 1 {
			c.ev.Decision, c.ev.Rule, c.ev.Reason = "deny", ruleRedact, "withheld the answer: agentg's own rewrite of it does not parse"
			c.ev.MCP.ErrorCode = wire.CodeInternalError
			return wire.ErrorResponse(m.ID, wire.CodeInternalError, "agentg: cannot redact the answer", map[string]any{"rule": ruleRedact})
		}
		msg = b.Messages[0]
	}
	res, fired, err := wire.RedactMessage(msg, red)
	if err != nil {
		c.ev.Decision, c.ev.Rule, c.ev.Reason = "deny", ruleRedact, "withheld the answer: "+err.Error()
		c.ev.MCP.ErrorCode = wire.CodeInternalError
		return wire.ErrorResponse(m.ID, wire.CodeInternalError, "agentg: withheld an answer that cannot be redacted: "+err.Error(), map[string]any{"rule": ruleRedact})
	}
	c.ev.MCP.Redactions = append(c.ev.MCP.Redactions, fired...)
	return res
}

// rewriteAnswer is one answer to a request of the client's: the bytes to
// send instead, or nil to send it as it came. The request's event, now
// complete, goes to q, to be written once the answer has been sent.
func (a answers) rewriteAnswer(m *wire.Message, c *call) ([]byte, error) {
	g, x, q := a.g, a.x, a.q
	ev := c.ev
	defer q.add(ev)
	ev.MCP.Upstream = g.now().Sub(c.start)
	ev.MCP.ResultBytes = len(m.Result)
	if m.Kind == wire.KindErrorResponse {
		ev.MCP.ErrorCode = wire.ErrorCode(m.Error)
		return nil, nil
	}
	facts := wire.FactsOf(m.Result)
	ev.MCP.IsError = facts.IsError
	if facts.ResultType == "input_required" {
		g.sawInputRequired(x, c, m.Result)
	}
	switch c.m.Method {
	case "initialize", "server/discover":
		rev := wire.ProtocolVersion(m.Result)
		name, ver := wire.ServerName(m.Result)
		info := store.ServerInfo{Name: name, Version: ver}
		ev.MCP.ServerInfo = infoText(info)
		if rev == "" {
			rev = ev.MCP.Revision
		}
		g.sawServer(x, store.ServerSighting{Info: info, Revision: rev}, c.m.Method)
		if ev.MCP.Session != "" {
			_, elicit := wire.Lookup(c.m.Params, "/capabilities/elicitation")
			g.State.PutSession(store.Session{Key: store.SessionKey{Server: x.stateServer(), ID: ev.MCP.Session},
				Agent: x.Agent, Revision: rev, Server: info, Elicitation: elicit})
		}
		// A legacy session started when its stream named the endpoint;
		// an initialize answered without a session id opened none.
		if c.m.Method == "server/discover" || ev.MCP.Session != "" && !c.legacy {
			g.sessionStarted(x, c.m.Method, ev.MCP.Session, rev, info)
		}
		return nil, nil
	case "tools/list":
		return a.filterTools(m, c)
	case "prompts/list", "resources/list", "resources/templates/list":
		return a.filterListed(m, c)
	case "tools/call":
		g.sawTask(x, c, facts.Task) // redacted whole, with the others, in redactAnswer
	}
	return nil, nil
}

// filterTools hides the tools the agent may not call, on every page, and
// checks each listed definition against its pin.
func (a answers) filterTools(m *wire.Message, c *call) ([]byte, error) {
	g, x, set := a.g, a.x, a.set
	tl, err := wire.ParseToolsList(m.Result)
	if err != nil {
		return nil, err
	}
	e := enforcer{g: g, x: x, set: set}
	hidden := map[string]bool{}
	for _, t := range tl.Tools {
		sum := store.Hash(wire.ToolHash(t.Raw))
		a.migratePin(c, t.Name, t.Raw, sum)
		pin := g.State.CheckPin(x.Server, t.Name, sum)
		hints := hintsOf(t.Annotations)
		g.State.SetToolHints(x.Server, t.Name, uint8(hints))
		params := ToolParams(t.Raw)
		g.State.SetToolParams(x.Server, t.Name, params)
		if params.Invalid != "" && c.ev.MCP.Revision >= "2026-07-28" {
			// The specification has a conforming client drop such a tool
			// from the list; agentg drops it too, and refuses calls to it
			// (params.go), since its headers cannot be checked.
			a.paramDeclEvent(c, t.Name, params.Invalid)
			hidden[t.Name] = true
			continue
		}
		if pin == store.PinNew || pin == store.PinChanged {
			a.pinEvent(c, t.Name, sum, pin)
		}
		if !e.visible(t.Name, hints, pin) {
			hidden[t.Name] = true
		}
	}
	if len(hidden) == 0 {
		return nil, nil
	}
	out, _ := m.WithResult(tl.Filter(func(name string) bool { return !hidden[name] }))
	return out, nil
}

// filterListed hides the prompts, resources and resource templates the
// agent may not get or read, on every page.
func (a answers) filterListed(m *wire.Message, c *call) ([]byte, error) {
	g, x, set := a.g, a.x, a.set
	kind := wire.ListKindOf(c.m.Method)
	nl, err := wire.ParseNamedList(m.Result, kind)
	if err != nil {
		return nil, err
	}
	e := enforcer{g: g, x: x, set: set}
	hidden := 0
	res := nl.Filter(func(key string) bool {
		ok := e.listedVisible(kind, key)
		if !ok {
			hidden++
		}
		return ok
	})
	if hidden == 0 {
		return nil, nil
	}
	out, _ := m.WithResult(res)
	return out, nil
}

func hintsOf(a wire.Annotations) rules.ToolHints {
	var h rules.ToolHints
	if a.DestructiveHint {
		h |= rules.HintDestructive
	}
	if a.ReadOnlyHint {
		h |= rules.HintReadOnly
	}
	if a.IdempotentHint {
		h |= rules.HintIdempotent
	}
	if a.OpenWorldHint {
		h |= rules.HintOpenWorld
	}
	return h
}

// pinEvent records a tool seen for the first time, or a definition that
// changed under the agent's feet.
func (a answers) pinEvent(c *call, tool string, sum store.Hash, pin store.PinResult) {
	g, x, set := a.g, a.x, a.set
	ev := g.newEvent(x)
	ev.Method, ev.Decision, ev.Rule = "tools/list", "allow", "mcp:pin-new"
	ev.Reason = "tool " + x.Server + "." + tool + " first seen, definition " + hex.EncodeToString(sum[:8])
	ev.MCP = &audit.MCP{Action: ActionToolNew, Server: x.Server, Tool: tool, Pin: "new", Session: c.ev.MCP.Session, Revision: c.ev.MCP.Revision}
	if pin == store.PinChanged {
		ev.MCP.Pin, ev.MCP.Action, ev.Rule = "changed", ActionToolChanged, "mcp:pinning"
		ev.Reason = "tool " + x.Server + "." + tool + " changed its definition (now " + hex.EncodeToString(sum[:8]) + ")"
		ev.Decision = "report"
		if pinChangeDenies(set) {
			ev.Decision = "deny"
			ev.Reason += "; calls are denied until: agentg mcp pins accept " + x.Server + " " + tool
		}
	}
	g.emit(ev)
}

// migratePin re-pins, under the whole-definition hash (sum), a tool
// whose pin an older agentg wrote under version 1, which hashed six
// members only: when the pin is the version 1 hash of this very
// definition, the tool is what was pinned (or accepted, or pending: that
// is kept), as far as version 1 could tell. Without this, every pin would
// read as changed on upgrade and train operators to accept blindly. What
// version 1 did not hash (_meta, icons, execution) is trusted at this
// first sight under version 2, as any new tool is; the event says so.
func (a answers) migratePin(c *call, tool string, raw []byte, sum store.Hash) {
	g, x := a.g, a.x
	p, ok := g.State.Pin(x.Server, tool)
	if !ok || p.Hash == sum {
		return
	}
	old := store.Hash(wire.ToolHashV1(raw))
	if p.Hash != old || !g.State.MigratePin(x.Server, tool, old, sum) {
		return
	}
	ev := g.newEvent(x)
	ev.Method, ev.Decision, ev.Rule = "tools/list", "allow", "mcp:pin-migrated"
	ev.Reason = "tool " + x.Server + "." + tool + " pinned by an older agentg (definition hash v1 " + hex.EncodeToString(old[:8]) +
		"): re-pinned as the whole definition " + hex.EncodeToString(sum[:8])
	ev.MCP = &audit.MCP{Action: ActionToolMigrated, Server: x.Server, Tool: tool, Pin: "migrated", Session: c.ev.MCP.Session, Revision: c.ev.MCP.Revision}
	g.emit(ev)
}

// paramDeclEvent records a listed tool hidden because its x-mcp-header
// declarations break the specification's constraints.
func (a answers) paramDeclEvent(c *call, tool, why string) {
	g, x := a.g, a.x
	ev := g.newEvent(x)
	ev.Method, ev.Decision, ev.Rule = "tools/list", "deny", "builtin:mcp-param-declaration"
	ev.Reason = "tool " + x.Server + "." + tool + " hidden from tools/list: " + why
	ev.MCP = &audit.MCP{Server: x.Server, Tool: tool, Session: c.ev.MCP.Session, Revision: c.ev.MCP.Revision}
	g.emit(ev)
}

// writeJSONError answers a request agentg refuses whole.
func writeJSONError(w http.ResponseWriter, status int, id jsontext.Value, code int, msg string, data any) {
	out := wire.ErrorResponse(id, code, msg, data)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Del("Content-Length")
	w.Header().Del("Content-Encoding")
	w.WriteHeader(status)
	w.Write(out)
}

// logRefusal is the event of a body refused before any message in it
// could be decided.
func (g *Guard) logRefusal(x *Exchange, rule, why string, status int) {
	ev := g.newEvent(x)
	ev.Path, ev.Decision, ev.Rule, ev.Reason, ev.Status = x.Path, "deny", rule, why, status
	ev.MCP = &audit.MCP{Server: x.Server}
	g.emit(ev)
}

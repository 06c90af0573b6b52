package mcp

import (
	"encoding/hex"
	"net/http"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/rules"
	store "github.com/agentg/agentg/state"
)

// rewriteMessages rewrites one body or event of the server's: each answer
// to a request of the client's (found with lookup) gets its result
// filtered (tools/list) or redacted (tools/call, tasks/result), and the
// request's event is written with the outcome. Requests and
// notifications of the server's pass as they are. Bytes that need no
// change are returned as they came.
func (g *Guard) rewriteMessages(data []byte, x *Exchange, set rules.MCPSettings, lookup func(jsontext.Value) *call, q *eventQueue) ([]byte, error) {
	body, err := Parse(data, Limits{MaxMessage: int(set.MaxMessage)})
	if err != nil {
		return nil, err
	}
	outs := make([][]byte, len(body.Messages))
	changed := false
	for i, m := range body.Messages {
		outs[i] = m.Raw
		if m.Kind != KindResponse && m.Kind != KindErrorResponse {
			continue
		}
		c := lookup(m.ID)
		if c == nil {
			if m.Kind == KindResponse {
				// A result for a request agentg has no record of (a
				// replayed answer, or a request it never saw) could not
				// be given its tool's obligations: it does not pass.
				outs[i], changed = ErrorResponse(m.ID, CodeInternalError,
					"agentg: an answer to a request agentg has no record of was withheld",
					map[string]any{"rule": "builtin:mcp-unmatched"}), true
				g.logRefusal(x, "builtin:mcp-unmatched", "withheld an answer (id "+string(m.ID)+") to a request agentg has no record of", 0)
			}
			continue
		}
		out, err := g.rewriteAnswer(m, c, x, set, q)
		if err != nil {
			return nil, err
		}
		if out != nil {
			outs[i], changed = out, true
		}
	}
	switch {
	case !changed:
		return data, nil
	case body.Batch:
		return EncodeBatch(outs), nil
	}
	return outs[0], nil
}

// rewriteAnswer is one answer to a request of the client's: the bytes to
// send instead, or nil to send it as it came. The request's event, now
// complete, goes to q, to be written once the answer has been sent.
func (g *Guard) rewriteAnswer(m *Message, c *call, x *Exchange, set rules.MCPSettings, q *eventQueue) ([]byte, error) {
	ev := c.ev
	defer q.add(ev)
	ev.MCP.Upstream = g.now().Sub(c.start)
	ev.MCP.ResultBytes = len(m.Result)
	if m.Kind == KindErrorResponse {
		ev.MCP.ErrorCode = errorCode(m.Error)
		return nil, nil
	}
	facts := factsOf(m.Result)
	ev.MCP.IsError = facts.isError
	if facts.resultType == "input_required" {
		g.sawInputRequired(x, c, m.Result)
	}
	switch c.m.Method {
	case "initialize", "server/discover":
		rev := protocolVersion(m.Result)
		name, ver := serverName(m.Result)
		info := store.ServerInfo{Name: name, Version: ver}
		ev.MCP.ServerInfo = infoText(info)
		if rev == "" {
			rev = ev.MCP.Revision
		}
		g.sawServer(x, store.ServerSighting{Info: info, Revision: rev}, c.m.Method)
		if ev.MCP.Session != "" {
			_, elicit := Lookup(c.m.Params, "/capabilities/elicitation")
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
		return g.filterTools(m, c, x, set)
	case "prompts/list", "resources/list", "resources/templates/list":
		return g.filterListed(m, c, x, set)
	case "tools/call", "tasks/result":
		var red []Redaction
		switch {
		case c.m.Method == "tools/call":
			g.sawTask(x, c, facts.task)
			fallthrough
		case c.tool != "":
			red = scoped(x.Engine.ResultRedactions(x.Agent, x.Server, c.tool), false)
		default: // a task's result, its tool unknown
			red = scoped(x.Engine.AllResultRedactions(), false)
		}
		if len(red) == 0 {
			return nil, nil
		}
		res, fired, err := Redact(m.Result, Results, red)
		if err != nil || len(fired) == 0 {
			return nil, err
		}
		ev.MCP.Redactions = append(ev.MCP.Redactions, fired...)
		out, _ := m.WithResult(res)
		return out, nil
	}
	return nil, nil
}

// filterTools hides the tools the agent may not call, on every page, and
// checks each listed definition against its pin.
func (g *Guard) filterTools(m *Message, c *call, x *Exchange, set rules.MCPSettings) ([]byte, error) {
	tl, err := ParseToolsList(m.Result)
	if err != nil {
		return nil, err
	}
	ex := &exchange{g: g, x: x, set: set}
	hidden := map[string]bool{}
	for _, t := range tl.Tools {
		sum := store.Hash(ToolHash(t.Raw))
		pin := g.State.CheckPin(x.Server, t.Name, sum)
		hints := hintsOf(t.Annotations)
		g.State.SetToolHints(x.Server, t.Name, uint8(hints))
		params := ToolParams(t.Raw)
		g.State.SetToolParams(x.Server, t.Name, params)
		if params.Invalid != "" && c.ev.MCP.Revision >= "2026-07-28" {
			// The specification has a conforming client drop such a tool
			// from the list; agentg drops it too, and refuses calls to it
			// (params.go), since its headers cannot be checked.
			g.paramDeclEvent(x, c, t.Name, params.Invalid)
			hidden[t.Name] = true
			continue
		}
		if pin == store.PinNew || pin == store.PinChanged {
			g.pinEvent(x, c, t.Name, sum, pin, set)
		}
		if !ex.visible(t.Name, hints, pin) {
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
func (g *Guard) filterListed(m *Message, c *call, x *Exchange, set rules.MCPSettings) ([]byte, error) {
	kind := ListKindOf(c.m.Method)
	nl, err := ParseNamedList(m.Result, kind)
	if err != nil {
		return nil, err
	}
	ex := &exchange{g: g, x: x, set: set}
	hidden := 0
	res := nl.Filter(func(key string) bool {
		ok := ex.listedVisible(kind, key)
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

func hintsOf(a Annotations) rules.ToolHints {
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
func (g *Guard) pinEvent(x *Exchange, c *call, tool string, sum store.Hash, pin store.PinResult, set rules.MCPSettings) {
	ev := g.newEvent(x)
	ev.Method, ev.Decision, ev.Rule = "tools/list", "allow", "mcp:pin-new"
	ev.Reason = "tool " + x.Server + "." + tool + " first seen, definition " + hex.EncodeToString(sum[:8])
	ev.MCP = &audit.MCP{Action: ActionToolNew, Server: x.Server, Tool: tool, Pin: "new", Session: c.ev.MCP.Session, Revision: c.ev.MCP.Revision}
	if pin == store.PinChanged {
		ev.MCP.Pin, ev.MCP.Action, ev.Rule = "changed", ActionToolChanged, "mcp:pinning"
		ev.Reason = "tool " + x.Server + "." + tool + " changed its definition (now " + hex.EncodeToString(sum[:8]) + ")"
		ev.Decision = "report"
		if set.Pinning.Action == rules.Deny {
			ev.Decision = "deny"
			ev.Reason += "; calls are denied until: agentg mcp pins accept " + x.Server + " " + tool
		}
	}
	g.emit(ev)
}

// paramDeclEvent records a listed tool hidden because its x-mcp-header
// declarations break the specification's constraints.
func (g *Guard) paramDeclEvent(x *Exchange, c *call, tool, why string) {
	ev := g.newEvent(x)
	ev.Method, ev.Decision, ev.Rule = "tools/list", "deny", "builtin:mcp-param-declaration"
	ev.Reason = "tool " + x.Server + "." + tool + " hidden from tools/list: " + why
	ev.MCP = &audit.MCP{Server: x.Server, Tool: tool, Session: c.ev.MCP.Session, Revision: c.ev.MCP.Revision}
	g.emit(ev)
}

// writeJSONError answers a request agentg refuses whole.
func writeJSONError(w http.ResponseWriter, status int, id jsontext.Value, code int, msg string, data any) {
	out := ErrorResponse(id, code, msg, data)
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

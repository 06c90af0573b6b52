package proxy

import (
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/agentg/agentg/approval"
	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/dissect/llm"
	"github.com/agentg/agentg/dissect/mcp/wire"
	"github.com/agentg/agentg/rules"
)

// The tool-use guard (llm.tool_use, issue 18): each tool call in a model's
// answer is decided by the mcp tool rules (rules.MCPRules.Tool, the model's
// name for the tool mapped to SERVER.TOOL by mapToolName) before the agent
// reads the answer.
//
//   - enforce: a denied call is struck from the answer (dissect/llm's
//     rewriting: a text part naming the rule in its place, the stop
//     reason fixed); an approve rule holds the call like a held MCP call
//     (the approvals broker; the rule's timeout, or the client going
//     away, ends the hold and the call is struck). A whole answer is
//     held until it is decided; a streamed one passes as it comes except
//     each tool call's own events, held until that call is complete.
//     What cannot be read under enforce (an encoded answer, one over the
//     bound, one that does not parse) is never handed on: a whole answer
//     becomes a 502 in the provider's error shape, a stream ends there.
//   - report: the same decisions are logged; the answer passes unchanged.
//
// Events: one of kind "llm-tool" per tool call that was not simply
// allowed (struck, held, or, in report mode, one that would have been),
// with the rule id, the server and tool it was decided as, and its
// arguments after redaction; its parent is the turn's llm event. Allowed
// calls are listed on the llm event, as every call is.
//
// Without tool_use (off, the default) none of this runs: llmServe's
// writer is the client's own.

// toolGuard decides the tool calls of one model answer.
type toolGuard struct {
	s      *Server
	f      *flow
	c      *llmCall
	r      *http.Request
	eng    *rules.Engine
	report bool // tool_use: report
	src    string
}

// llmToolGuard returns the guard for c, or nil when tool_use is off.
func (s *Server) llmToolGuard(eng *rules.Engine, f *flow, c *llmCall, r *http.Request) *toolGuard {
	tu, src := eng.LLM().ToolUse()
	if tu == rules.ToolUseOff {
		return nil
	}
	if c.id == "" {
		c.id = s.events.log.NewID()
	}
	return &toolGuard{s: s, f: f, c: c, r: r, eng: eng, report: tu == rules.ToolUseReport, src: src}
}

// decide is the llm.Decider of the answer.
func (g *toolGuard) decide(tc llm.ToolCall) llm.Verdict {
	server, tool, found, ambiguous := mapToolName(g.eng, tc.Name)
	var args rules.ArgLookup
	if len(tc.Arguments) > 0 {
		args = rawArgs(tc.Arguments)
	}
	var d rules.Decision
	switch {
	case ambiguous:
		d = rules.Decision{Action: rules.Deny, Rule: "builtin:llm-tool-name", Source: g.src,
			Reason: "the model's tool name " + strconv.Quote(tc.Name) + " names a tool of more than one server"}
	case found:
		d = g.eng.MCP().Tool(rules.ToolCall{Agent: g.f.agent, Server: server, Tool: tool, Args: args}).Decision
	default:
		// No convention names a server: the name may be an MCP tool's
		// bare name (an agent may offer it so) or a tool of the agent's
		// own. It is held to the strictest of the rules for it on no
		// server and on each server the policy names, so a bare name
		// cannot step around a server's deny.
		tool = tc.Name
		d = g.eng.MCP().Tool(rules.ToolCall{Agent: g.f.agent, Tool: tool, Args: args}).Decision
		for _, sb := range g.eng.MCP().Servers() {
			v := g.eng.MCP().Tool(rules.ToolCall{Agent: g.f.agent, Server: sb.Name, Tool: tool, Args: args}).Decision
			if strictness(v) > strictness(d) {
				d, server = v, sb.Name
			}
		}
	}
	switch {
	case d.Action == rules.Allow:
		return llm.Verdict{}
	case g.report || d.Report:
		// Logged as what would have happened; the call passes.
		g.event(tc, server, tool, d, "report", nil)
		return llm.Verdict{}
	case d.Action == rules.Approve:
		return g.hold(tc, server, tool, d)
	}
	g.event(tc, server, tool, d, "deny", nil)
	return llm.Verdict{Strike: true, Note: strikeNote(tc.Name, d.Rule, "denied")}
}

// strictness orders decisions for a name that may be any server's tool:
// an enforced deny, then an approve, then a deny in report mode, then an
// allow.
func strictness(d rules.Decision) int {
	switch {
	case d.Action == rules.Deny && !d.Report:
		return 3
	case d.Action == rules.Approve:
		return 2
	case d.Action == rules.Deny:
		return 1
	}
	return 0
}

// strikeNote is the text that stands in the answer for a struck call: it
// names the tool and the rule, never the arguments.
func strikeNote(name, rule, what string) string {
	if len(name) > 128 {
		name = name[:128] + "…"
	}
	return "[agentg: the tool call " + strconv.Quote(name) + " was removed: " + what + " by rule " + rule + "]"
}

// hold holds the call for approval: nothing of it reaches the agent
// until an approver approves it; denied, expired, the client gone, or no
// broker: it is struck.
func (g *toolGuard) hold(tc llm.ToolCall, server, tool string, d rules.Decision) llm.Verdict {
	b := g.s.cfg.Approvals
	if b == nil {
		d.Reason = "held for approval, and this agentg has no approvals broker: nothing can approve it"
		g.event(tc, server, tool, d, "deny", nil)
		return llm.Verdict{Strike: true, Note: strikeNote(tc.Name, d.Rule, "not approved")}
	}
	id := g.s.events.log.NewID()
	f := g.f
	t := b.Begin(approval.Request{Kind: "llm-tool", Agent: f.agent, Server: server, Tool: tool, Args: redactedArgs(g.eng, f.agent, tc),
		Decision: d, Event: id, Client: f.client, Host: f.host.Name, Port: f.host.Port, Mask: g.s.leaks.Mask})
	o := t.Wait(g.r.Context())
	ap := &audit.Approval{ID: o.Approval.ID, By: o.By, Scope: o.Approval.Scope, For: o.Approval.For}
	if o.Approved && g.r.Context().Err() == nil {
		d.Action, d.Reason = rules.Allow, d.Reason+"; "+o.Reason
		g.eventID(id, tc, server, tool, d, "allow", ap)
		return llm.Verdict{}
	}
	d.Action, d.Reason = rules.Deny, o.Reason
	g.eventID(id, tc, server, tool, d, "deny", ap)
	return llm.Verdict{Strike: true, Note: strikeNote(tc.Name, d.Rule, "not approved")}
}

func (g *toolGuard) event(tc llm.ToolCall, server, tool string, d rules.Decision, outcome string, ap *audit.Approval) {
	g.eventID(g.s.events.log.NewID(), tc, server, tool, d, outcome, ap)
}

// eventID logs one tool call's decision as event id.
func (g *toolGuard) eventID(id string, tc llm.ToolCall, server, tool string, d rules.Decision, outcome string, ap *audit.Approval) {
	f, c := g.f, g.c
	e := &audit.Event{ID: id, Parent: c.id, Time: time.Now(), Kind: "llm-tool",
		Agent: f.agent, Client: f.client, Method: f.method, Scheme: f.scheme,
		Host: f.host.Name, Port: f.host.Port, Path: f.path, Door: f.door,
		Decision: outcome, Rule: d.Rule, RuleSource: d.Source, Reason: d.Reason, Approval: ap,
		MCP: &audit.MCP{Action: "model-tool-call", Server: server, Tool: tool, Args: redactedArgsString(g.eng, f.agent, tc)}}
	g.s.events.log.Log(e)
}

// redactedArgs are the call's arguments after the redact rules, as an
// approver or an event may show them.
func redactedArgs(eng *rules.Engine, agent string, tc llm.ToolCall) []byte {
	ev := toolCallsForEvent(eng, agent, []llm.ToolCall{tc})
	if len(ev) == 0 {
		return nil
	}
	return []byte(ev[0].Args)
}

func redactedArgsString(eng *rules.Engine, agent string, tc llm.ToolCall) string {
	s := string(redactedArgs(eng, agent, tc))
	if len(s) > audit.MaxArgs {
		s = s[:audit.MaxArgs]
	}
	return s
}

// rawArgs lets the policy's argument conditions read a model's tool call
// arguments through the MCP codec's own lookup, so a condition reads a
// model's call as it reads the MCP call the agent would make of it.
type rawArgs []byte

func (a rawArgs) Arg(pointer string) (rules.ArgValue, bool) {
	v, ok := wire.Lookup([]byte(a), pointer)
	return rules.ArgValue{Kind: rules.ArgKind(v.Kind), Text: v.Text}, ok
}

var _ rules.ArgLookup = rawArgs(nil)

// guardWriter sits between the answer's forwarder and the client under
// tool_use: enforce, holding what must be decided before the client
// reads it.
type guardWriter struct {
	http.ResponseWriter // the client's
	g                   *toolGuard
	mode                uint8
	status              int
	rw                  *llm.Rewriter
	whole               []byte
	failed              string // why the answer was not handed on
}

const (
	guardPass   uint8 = iota // not a turn (an error status, 1xx): passes
	guardStream              // an event stream, rewritten as it passes
	guardWhole               // one JSON body, held whole and rewritten
	guardRefuse              // unreadable under enforce: a 502 was sent, the body is dropped
)

func (gw *guardWriter) Unwrap() http.ResponseWriter { return gw.ResponseWriter }

func (gw *guardWriter) WriteHeader(code int) {
	if gw.status != 0 || code < 200 {
		if gw.status == 0 {
			gw.ResponseWriter.WriteHeader(code)
		}
		return
	}
	gw.status = code
	h := gw.Header()
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	enc := h.Get("Content-Encoding")
	switch {
	case code < 200 || code > 299:
		gw.mode = guardPass
	case enc != "" && !strings.EqualFold(enc, "identity"):
		gw.refuse("the answer is " + enc + "-encoded and its tool calls cannot be read")
		return
	case mt == "text/event-stream":
		gw.mode = guardStream
		gw.rw = llm.NewRewriter(gw.g.c.route.Dialect, flushWriter{gw.ResponseWriter}, gw.g.decide)
		h.Del("Content-Length")
	case mt == "application/json":
		gw.mode = guardWhole
		return // the head goes with the decided body
	default:
		gw.refuse("the answer's content type " + strconv.Quote(mt) + " cannot be read for tool calls")
		return
	}
	gw.ResponseWriter.WriteHeader(code)
}

// refuse answers 502 in the provider's error shape instead of an answer
// the guard cannot read; the answer's body is then dropped.
func (gw *guardWriter) refuse(why string) {
	gw.mode, gw.failed = guardRefuse, why
	body := providerError(gw.g.c.route.Dialect, http.StatusBadGateway, "agentg: "+why+" (llm tool_use: enforce)")
	h := gw.Header()
	for k := range h {
		delete(h, k)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Agentg-Rule", "llm:tool_use")
	gw.ResponseWriter.WriteHeader(http.StatusBadGateway)
	gw.ResponseWriter.Write(body)
}

func (gw *guardWriter) Write(p []byte) (int, error) {
	if gw.status == 0 {
		gw.WriteHeader(http.StatusOK)
	}
	switch gw.mode {
	case guardStream:
		if _, err := gw.rw.Write(p); err != nil {
			if gw.failed == "" {
				gw.failed = "the streamed answer was cut: " + err.Error()
			}
			return 0, err
		}
		return len(p), nil
	case guardWhole:
		if len(gw.whole)+len(p) > maxLLMAnswer {
			gw.whole = nil
			gw.refuse("the answer is over " + strconv.Itoa(maxLLMAnswer>>20) + " MiB and its tool calls cannot be read")
			return len(p), nil
		}
		gw.whole = append(gw.whole, p...)
		return len(p), nil
	case guardRefuse:
		return len(p), nil
	}
	return gw.ResponseWriter.Write(p)
}

// Flush passes a stream's flushes on; a held body has nothing to flush.
func (gw *guardWriter) Flush() {
	if gw.mode == guardPass || gw.mode == guardStream {
		http.NewResponseController(gw.ResponseWriter).Flush()
	}
}

// finish ends the answer: a held body decided and sent, a stream's last
// event. It returns why the answer was not handed on as it came, if it
// was not.
func (gw *guardWriter) finish() string {
	switch gw.mode {
	case guardStream:
		if err := gw.rw.Close(); err != nil && gw.failed == "" {
			gw.failed = "the streamed answer was cut: " + err.Error()
		}
	case guardWhole:
		out, _, err := llm.RewriteAnswer(gw.g.c.route.Dialect, gw.whole, gw.g.decide)
		if err != nil {
			gw.refuse("the answer could not be read for tool calls: " + err.Error())
			break
		}
		if gw.g.r.Context().Err() != nil {
			gw.failed = "the client went away"
			break
		}
		gw.Header().Set("Content-Length", strconv.Itoa(len(out)))
		gw.ResponseWriter.WriteHeader(gw.status)
		gw.ResponseWriter.Write(out)
	}
	return gw.failed
}

// flushWriter flushes each write of a rewritten stream to the client, so
// an event is not left sitting in a buffer.
type flushWriter struct{ w http.ResponseWriter }

func (fw flushWriter) Write(p []byte) (int, error) {
	n, err := fw.w.Write(p)
	if err == nil {
		err = http.NewResponseController(fw.w).Flush()
	}
	return n, err
}

// llmGuardServe wraps w for c's answer under tool_use: enforce; the
// returned finish ends the answer (nil without the guard).
func (s *Server) llmGuardServe(eng *rules.Engine, f *flow, c *llmCall, w http.ResponseWriter, r *http.Request) (http.ResponseWriter, func()) {
	g := s.llmToolGuard(eng, f, c, r)
	c.guard = g
	if g == nil || g.report {
		return w, nil
	}
	gw := &guardWriter{ResponseWriter: w, g: g}
	return gw, func() {
		if why := gw.finish(); why != "" {
			c.guardFailed = why
			c.guardRefused = gw.mode == guardRefuse
		}
	}
}

// llmGuardEvent completes the turn's event e with the guard's part: in
// report mode the calls are decided (and logged) now, from the turn as
// read; under enforce, an answer not handed on says why.
func (c *llmCall) llmGuardEvent(e *audit.Event, turn llm.Turn) {
	g := c.guard
	if g == nil {
		return
	}
	if g.report {
		for _, tc := range turn.ToolCalls {
			g.decide(tc)
		}
		return
	}
	if c.guardFailed != "" {
		e.Decision, e.Rule, e.RuleSource, e.Reason = "deny", "llm:tool_use", g.src, c.guardFailed
		if c.guardRefused {
			e.Status = http.StatusBadGateway
		}
	}
}

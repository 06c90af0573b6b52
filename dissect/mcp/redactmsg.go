package mcp

import (
	"errors"
	"net/http"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/dissect/mcp/wire"
	"github.com/agentg/agentg/rules"
)

// redactmsg.go applies redaction to whole messages, in both directions,
// for the guard: which redactions apply is asked in enforce.go, what in a
// message is rewritten is redact.go's. A message that cannot be redacted
// (a match in its id, method or the name it is decided by; see
// RedactMessage) never passes: a request is answered with an error, any
// other message is dropped, and each refusal is one event.

// ActionRedacted marks the event of a message that is not a request of
// the client's (a notification, a request of the server's, an answer to
// one) that a redaction rewrote or refused.
const ActionRedacted = "redacted"

const ruleRedact = "builtin:mcp-redact"

// redactRequest rewrites one request of the client's. It returns the
// bytes to forward, or the answer to give instead when the request cannot
// be redacted (c's event is then written, a deny).
func (ex *exchange) redactRequest(c *call, red []wire.Redaction) (out, answer []byte) {
	m := c.m
	out, fired, err := wire.RedactMessage(m, red)
	if err == nil && len(ex.params) > 0 {
		err = paramsUnredactable(ex.params, red)
	}
	if err != nil {
		// The event must not keep what the message could not be rid of.
		c.ev.MCP.Tool, c.ev.MCP.Prompt, c.ev.MCP.URI = wire.RedactText(c.ev.MCP.Tool, red), wire.RedactText(c.ev.MCP.Prompt, red), wire.RedactText(c.ev.MCP.URI, red)
		c.ev.MCP.Args = eventArgs(m, red)
		c.ev.Decision, c.ev.Rule, c.ev.Reason = "deny", ruleRedact, "cannot redact the request: "+err.Error()
		code := wire.CodeInternalError
		if unredactable(err) {
			code = wire.CodeDenied
		}
		c.ev.MCP.ErrorCode = code
		ex.g.emit(c.ev)
		return nil, wire.ErrorResponse(m.ID, code, "agentg: cannot redact the request: "+err.Error(), map[string]any{"rule": ruleRedact})
	}
	if len(fired) > 0 {
		c.ev.MCP.Redactions = fired
	}
	return out, nil
}

// redactPassing rewrites a message that is not a request agentg decides:
// a notification or an answer to a request of the other side's, in the
// direction results says (server to client). It returns the bytes to
// send, or nil to drop the message, with an event when anything fired.
func (g *Guard) redactPassing(x *Exchange, m *wire.Message, results bool, session, revision string) []byte {
	red := messageRedactions(x, results)
	if len(red) == 0 {
		return m.Raw
	}
	out, fired, err := wire.RedactMessage(m, red)
	if err == nil && len(fired) == 0 {
		return out
	}
	ev := g.newEvent(x)
	ev.Method = m.Method
	ev.MCP = &audit.MCP{Action: ActionRedacted, Server: x.Server, Session: session, Revision: revision, Redactions: fired}
	if err != nil {
		ev.Decision, ev.Rule, ev.Reason = "deny", ruleRedact, "dropped a "+m.Kind.String()+" "+direction(results)+" that cannot be redacted: "+err.Error()
		g.emit(ev)
		return nil
	}
	ev.Decision, ev.Rule, ev.Reason = "allow", fired[0], "redacted a "+m.Kind.String()+" "+direction(results)
	g.emit(ev)
	return out
}

func direction(results bool) string {
	if results {
		return "from the server"
	}
	return "from the client"
}

func unredactable(err error) bool {
	var u *wire.Unredactable
	return errors.As(err, &u)
}

// argsOf is the arguments of a message agentg rewrote, for its event.
func argsOf(msg []byte, set rules.MCPSettings) string {
	b, err := wire.Parse(msg, wire.Limits{MaxMessage: int(set.MaxMessage)})
	if err != nil || len(b.Messages) != 1 {
		return ""
	}
	return string(b.Messages[0].Args)
}

// refuseURL refuses a POST whose URL carries what an arguments redaction
// covers (urlUnredactable): every request in it is answered with an
// error, and a body of notifications only still gets its event.
func (ex *exchange) refuseURL(w http.ResponseWriter, body wire.Body, u *wire.Unredactable) {
	requests := false
	for _, m := range body.Messages {
		requests = requests || m.Kind == wire.KindRequest
	}
	if !requests {
		ex.g.logRefusal(ex.x, ruleRedact, "refused a POST: "+u.Error(), http.StatusForbidden)
	}
	ex.refuseAll(w, body, http.StatusForbidden, wire.CodeDenied, ruleRedact, u.Error())
}

// paramsUnredactable reports a match of red in an Mcp-Param header (as
// sent, and decoded). Such a header mirrors an argument the body carries:
// rewriting the body alone would leave the secret in the header (and the
// server would refuse the disagreement), and a header is not rewritten,
// so the request is refused.
func paramsUnredactable(params map[string][]string, red []wire.Redaction) error {
	for name, vs := range params {
		for _, v := range vs {
			texts := [2]string{v, v}
			if t, err := headerText(v); err == nil {
				texts[1] = t
			}
			for _, t := range texts {
				for _, r := range red {
					if matchesNonEmpty(r, t) {
						return &wire.Unredactable{Field: "Mcp-Param-" + name + " header", Rule: r.ID}
					}
				}
			}
		}
	}
	return nil
}

// eventArgs are a refused call's arguments for its event, redacted as they
// would have been sent, so that agentg's log does not keep what the
// policy redacts; "" when they cannot be read.
func eventArgs(m *wire.Message, red []wire.Redaction) string {
	args, _, err := wire.Redact(m.Args, red)
	if err != nil {
		return ""
	}
	return string(args)
}

package mcp

import (
	"fmt"
	"strings"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/agentg/agentg/approval"
	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/dissect/mcp/wire"
)

// In-band approval: where an approve rule says via: [elicitation] and the
// client declared the elicitation capability when its session began,
// agentg asks the client's user itself. On a stateful 2025-06-18 or
// 2025-11-25 session it sends an elicitation/create request on the held
// call's own event stream (the one agentg opened while the call is held,
// holdcall.go), under an id of its own ("agentg-approval-" and the
// approval id); the client's answer, POSTed to the session like any
// answer to a server's request, is consumed here and never reaches the
// server. "accept" approves this call only; "decline", "cancel" or an
// error denies it. The answer counts only from the session and agent the
// call came from, and only while the approval is pending.

// elicitIDPrefix starts the id of every elicitation agentg sends; no
// answer with such an id is ever forwarded.
const elicitIDPrefix = `"agentg-approval-`

// approvalSession names the exchange's session for the approvals broker.
func (hd *holding) approvalSession() string {
	ex := hd.ex
	if ex.session == "" {
		return ""
	}
	return ex.x.stateServer() + "\x00" + ex.session
}

// canElicit reports whether the session's client may be asked in band on
// the call's stream.
func (hd *holding) canElicit() bool {
	ex := hd.ex
	if ex.session == "" || ex.legacy != nil || ex.revision < "2025-06-18" || ex.revision >= "2026-07-28" {
		return false
	}
	s, ok := ex.g.State.Session(ex.sessionKey())
	return ok && s.Elicitation && s.Agent == ex.x.Agent
}

// elicit sends an elicitation/create for each held call whose rule allows
// it, on the stream agentg opened.
func (hd *holding) elicit(rw *respWriter) {
	ex := hd.ex
	if !hd.canElicit() {
		return
	}
	for _, h := range hd.calls {
		hold := h.v.Hold
		if h.t == nil || h.t.Immediate() || hold == nil || !hold.Elicitation {
			continue
		}
		a := h.t.Approval()
		msg := fmt.Sprintf("agentg: allow the call of tool %s.%s by agent %s with arguments %s? (rule %s; approval %s; expires in %s)",
			a.Server, a.Tool, a.Agent, a.Args, a.Rule, a.ID, a.Expires.Sub(a.Created).Round(1e9))
		params := map[string]any{
			"message":         msg,
			"requestedSchema": map[string]any{"type": "object", "properties": map[string]any{}},
		}
		if ex.revision >= "2025-11-25" {
			params["mode"] = "form"
		}
		id := jsontext.Value(elicitIDPrefix + a.ID + `"`)
		req, err := encodeRequest(id, "elicitation/create", params)
		if err != nil {
			continue
		}
		rw.injectEvent(wire.MessageEvent(req))
	}
}

// takeElicitAnswer consumes a client's answer to an elicitation agentg
// sent; ok is false for any other message.
func (hd *holding) takeElicitAnswer(m *wire.Message) bool {
	ex := hd.ex
	if (m.Kind != wire.KindResponse && m.Kind != wire.KindErrorResponse) || !strings.HasPrefix(string(m.ID), elicitIDPrefix) {
		return false
	}
	id := strings.TrimSuffix(strings.TrimPrefix(string(m.ID), elicitIDPrefix), `"`)
	ev := ex.event(m)
	ev.Method, ev.Approval = "elicitation/create", &audit.Approval{ID: id, By: "elicitation"}
	defer ex.g.emit(ev)
	b := ex.g.Approvals
	if b == nil {
		ev.Decision, ev.Rule, ev.Reason = "deny", "builtin:mcp-elicitation", "no approvals broker"
		return true
	}
	a, found := b.Get(id)
	switch {
	case !found || a.State != approval.StatePending:
		ev.Decision, ev.Rule, ev.Reason = "deny", "builtin:mcp-elicitation", "an answer to no pending approval of agentg's: dropped"
		return true
	case a.Session == "" || a.Session != hd.approvalSession() || a.Agent != ex.x.Agent:
		ev.Decision, ev.Rule, ev.Reason = "deny", "builtin:mcp-elicitation", "an answer from another session or agent than the held call's: dropped"
		return true
	}
	ev.Rule = a.Rule
	action := ""
	if m.Kind == wire.KindResponse {
		if v, ok := wire.Lookup(m.Result, "/action"); ok && v.Kind == wire.ValueString {
			action = v.Text
		}
	}
	var err error
	if action == "accept" {
		_, err = b.Approve(id, "", 0, "elicitation")
		ev.Decision, ev.Reason = "allow", "the user accepted in band"
	} else {
		why := "the user answered " + action
		if action == "" {
			why = "the client answered without an action"
		}
		_, err = b.Deny(id, why, "elicitation")
		ev.Decision, ev.Reason = "deny", why
	}
	if err != nil {
		ev.Error = err.Error()
	}
	return true
}

// encodeRequest is a JSON-RPC request of agentg's own.
func encodeRequest(id jsontext.Value, method string, params any) ([]byte, error) {
	p := wire.EncodeData(params)
	if p == nil {
		return nil, fmt.Errorf("mcp: cannot encode the params of %s", method)
	}
	b := append([]byte(`{"jsonrpc":"2.0","id":`), id...)
	b = append(b, `,"method":`...)
	b = wire.AppendString(b, method)
	b = append(b, `,"params":`...)
	b = append(b, p...)
	return append(b, '}'), nil
}

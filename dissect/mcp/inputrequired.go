package mcp

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/agentg/agentg/approval"
	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/dissect/mcp/wire"
	"github.com/agentg/agentg/rules"
)

// In-band approval on 2026-07-28, where a server cannot send the client a
// request of its own: the multi round-trip pattern instead. A tools/call
// an approve rule holds with via: [elicitation], on a 2026-07-28 exchange
// whose request declares the elicitation capability (form mode) in
// _meta's io.modelcontextprotocol/clientCapabilities, is answered by
// agentg itself, nothing sent upstream, with an InputRequiredResult:
// inputRequests holds one elicitation/create (a form asking the user
// whether to allow the call, with its arguments as they would be sent),
// under the key "agentg-approval-<id>", and requestState a token of
// agentg's (approval.Broker.SealToken) binding the pending approval to
// the exact call: agent, server, tool, the digest of the arguments' canonical
// form, and the approval's expiry (the rule's timeout).
//
// The client's retry (a new id, the same params, with inputResponses and
// the requestState echoed) is decided here:
//   - a requestState of agentg's that does not verify (altered, another
//     process's, past its expiry) is refused with the policy's error;
//   - one that verifies but was given to another agent or server is
//     refused; one for another tool or other arguments is a new decision:
//     the call is held again (a new approval, a new question);
//   - otherwise the answer decides the approval, once: "accept" with
//     allow true approves it (by "elicitation") and the call goes to the
//     server, with agentg's requestState and its inputResponses entry
//     taken out, so the server sees the call as first sent; anything
//     else denies it. An approval the console (or a grant) approved while
//     the user answered passes the call all the same; one denied or
//     expired meanwhile passes nothing; and a token is good for one call
//     (a replay of an accepted retry is refused).

// inputKey is the inputRequests key of approval id's elicitation.
func inputKey(id string) string { return "agentg-approval-" + id }

// inBandVerdict is what inBand decided about a held call.
type inBandVerdict int

const (
	inBandHold    inBandVerdict = iota // not for this path: hold as usual
	inBandHeld                         // held already (a grant passes it, or it could not be held): settled as usual
	inBandAnswer                       // agentg answers (InputRequiredResult or a refusal)
	inBandForward                      // approved: forward the bytes given
)

// mrtrElicit reports whether the request declares form elicitation in its
// per-request capabilities (an elicitation object with "form", or with
// neither "form" nor "url", which the specification reads as form).
func mrtrElicit(m *wire.Message) bool {
	v, ok := wire.Lookup(m.Meta, "/io.modelcontextprotocol~1clientCapabilities/elicitation")
	if !ok || v.Kind != wire.ValueObject {
		return false
	}
	_, form := wire.Lookup(v.Raw, "/form")
	_, url := wire.Lookup(v.Raw, "/url")
	return form || !url
}

// argsDigest is the digest an approval token binds of the arguments as
// sent: their canonical form (members sorted, no whitespace, strings in
// one spelling; numbers exactly as written).
func argsDigest(args string) [32]byte {
	v := jsontext.Value(args).Clone()
	if len(v) == 0 {
		v = jsontext.Value("{}")
	} else if err := v.Canonicalize(jsontext.CanonicalizeRawInts(false), jsontext.CanonicalizeRawFloats(false)); err != nil {
		v = append(jsontext.Value("invalid\n"), args...)
	}
	return approval.ArgsDigest(v)
}

// inBand decides a call held by v on the 2026-07-28 path; args are its
// arguments as they would be sent (after redaction). For inBandHold and
// inBandHeld the bytes are the call to forward if it is approved (without
// a stale requestState of agentg's); for inBandAnswer agentg's answer; for
// inBandForward the approved call.
func (hd *holding) inBand(c *call, v callVerdict, out []byte, args string) (inBandVerdict, []byte) {
	ex := hd.ex
	b, m := ex.g.Approvals, c.m
	if b == nil || v.Hold == nil || !v.Hold.Elicitation || ex.revision < "2026-07-28" || ex.legacy != nil {
		return inBandHold, out
	}
	here := approval.Binding{Agent: ex.x.Agent, Server: ex.server(), Tool: m.Tool, Args: argsDigest(args)}
	if isOurState(m.RequestState) {
		bind, err := b.OpenToken(m.RequestState)
		switch {
		case err != nil:
			return inBandAnswer, hd.refuseInBand(c, v, "", "the retry's requestState was refused: "+err.Error())
		case bind.Agent != here.Agent || bind.Server != here.Server:
			return inBandAnswer, hd.refuseInBand(c, v, bind.Approval, "the retry's requestState was given to another agent or server")
		case bind.Matches(here):
			return hd.takeInputResponse(c, v, bind.Approval, args)
		}
		// Another tool or other arguments: a new decision, asked anew,
		// and the stale state is never the server's.
		fwd, err := withoutApprovalState(m, inputKey(bind.Approval), args)
		if err != nil {
			return inBandAnswer, hd.refuseInBand(c, v, bind.Approval, "agentg cannot take its own input out of the retry: "+err.Error())
		}
		out = fwd
		c.ev.Reason += "; the retry's requestState is approval " + bind.Approval + "'s, of another call: a new decision"
	}
	if !mrtrElicit(m) {
		return inBandHold, out
	}
	t := b.Begin(approval.Request{Kind: "mcp", Agent: ex.x.Agent, Server: ex.server(), Tool: m.Tool,
		Args: []byte(args), Decision: v.Decision, Event: c.ev.ID, Client: ex.x.Client, Host: ex.x.Host, Port: ex.x.Port,
		Mask: ex.g.Leaks.Mask})
	if t.Immediate() {
		hd.calls = append(hd.calls, &heldCall{c: c, v: v, t: t})
		return inBandHeld, out
	}
	// Nothing waits on the call itself: this ends the approval at its
	// timeout (expired) unless a retry decides it first.
	go t.Wait(context.Background())
	a := t.Approval()
	here.Approval, here.Expires = a.ID, a.Expires
	msg := fmt.Sprintf("Allow agent %s to call %s.%s with arguments %s? (agentg approval %s, rule %s; expires in %s)",
		a.Agent, a.Server, a.Tool, orEmpty(a.Args), a.ID, a.Rule, a.Expires.Sub(a.Created).Round(1e9))
	result := map[string]any{
		"resultType": "input_required",
		"inputRequests": map[string]any{inputKey(a.ID): map[string]any{
			"method": "elicitation/create",
			"params": map[string]any{
				"mode":    "form",
				"message": msg,
				"requestedSchema": map[string]any{
					"type": "object",
					"properties": map[string]any{"allow": map[string]any{
						"type": "boolean", "title": "Allow this call", "default": false,
						"description": fmt.Sprintf("%s.%s with %s", a.Server, a.Tool, orEmpty(a.Args))}},
					"required": []string{"allow"},
				},
			},
		}},
		"requestState": b.SealToken(here),
	}
	enc := wire.EncodeData(result)
	if enc == nil {
		b.Deny(a.ID, "agentg could not encode its question", "elicitation")
		return inBandAnswer, hd.refuseInBand(c, v, a.ID, "agentg could not encode its question")
	}
	c.ev.Approval = &audit.Approval{ID: a.ID}
	c.ev.Reason += "; the client's user is asked in band (input_required)"
	ex.g.sawInputRequired(ex.x, c, enc)
	ex.g.emit(c.ev)
	resp := append([]byte(`{"jsonrpc":"2.0","id":`), m.ID...)
	resp = append(append(resp, `,"result":`...), enc...)
	return inBandAnswer, append(resp, '}')
}

func orEmpty(args string) string {
	if args == "" {
		return "{}"
	}
	return args
}

// isOurState reports a requestState agentg made (or one posing as such:
// it is then refused, never passed on).
func isOurState(s string) bool {
	return len(s) >= len(approval.TokenPrefix) && s[:len(approval.TokenPrefix)] == approval.TokenPrefix
}

// takeInputResponse decides approval id by the retry's answer to it.
func (hd *holding) takeInputResponse(c *call, v callVerdict, id, args string) (inBandVerdict, []byte) {
	ex := hd.ex
	b := ex.g.Approvals
	key := inputKey(id)
	action, allow := "", false
	if r, ok := wire.Lookup(c.m.InputResponses, "/"+key); ok && r.Kind == wire.ValueObject {
		if a, ok := wire.Lookup(r.Raw, "/action"); ok && a.Kind == wire.ValueString {
			action = a.Text
		}
		if a, ok := wire.Lookup(r.Raw, "/content/allow"); ok && a.Kind == wire.ValueBool {
			allow = a.Text == "true"
		}
	}
	c.ev.Approval = &audit.Approval{ID: id, By: "elicitation"}
	if action != "accept" || !allow {
		why := "the user answered " + action
		switch {
		case action == "":
			why = "the retry carries no answer to agentg's question"
		case action == "accept":
			why = "the user accepted without allow: true"
		}
		if _, err := b.Deny(id, why, "elicitation"); err != nil {
			why += " (" + err.Error() + ")"
		}
		return inBandAnswer, hd.refuseInBand(c, v, id, "approval "+id+" denied by elicitation: "+why)
	}
	fwd, err := withoutApprovalState(c.m, key, args)
	if err != nil {
		b.Deny(id, "agentg cannot take its own input out of the retry", "elicitation")
		return inBandAnswer, hd.refuseInBand(c, v, id, "agentg cannot take its own input out of the retry: "+err.Error())
	}
	if _, err := b.Approve(id, "", 0, "elicitation"); err != nil && !errors.Is(err, approval.ErrDecided) {
		return inBandAnswer, hd.refuseInBand(c, v, id, "approval "+id+" cannot be approved: "+err.Error())
	}
	// Approved now, or already (the console or a grant got there while
	// the user answered): the token passes its call once either way.
	a, err := b.Use(id)
	if err != nil {
		why := "approval " + id + " cannot pass the call: " + err.Error()
		switch {
		case errors.Is(err, approval.ErrUsed):
			why = "approval " + id + " already passed its call (a token passes one)"
		case errors.Is(err, approval.ErrNotApproved):
			why = "approval " + id + " was already " + a.State + " by " + a.By
		}
		return inBandAnswer, hd.refuseInBand(c, v, id, why)
	}
	c.ev.Approval.By = a.By
	c.ev.Decision, c.ev.Reason = "allow", c.ev.Reason+"; approved by "+a.By+" (input_required retry)"
	ex.g.State.CountCall(ex.server(), c.m.Tool)
	return inBandForward, fwd
}

// refuseInBand answers a held call with the policy's error, its event
// saying why.
func (hd *holding) refuseInBand(c *call, v callVerdict, id, why string) []byte {
	ex := hd.ex
	if id != "" && c.ev.Approval == nil {
		c.ev.Approval = &audit.Approval{ID: id, By: "elicitation"}
	}
	answer := hd.heldRefusal(c, v, id, why)
	ex.g.emit(c.ev)
	return answer
}

// heldRefusal is the answer to a held call its approval refused (id, ""
// when none was made): the policy's error in the policy's form, naming
// the rule and the approval; c's event says deny and why.
func (hd *holding) heldRefusal(c *call, v callVerdict, id, why string) []byte {
	ex := hd.ex
	v.Decision = rules.Decision{Action: rules.Deny, Rule: v.Rule, Source: v.Source, Reason: why}
	c.ev.Decision, c.ev.Reason = "deny", why
	msg := deniedMessage(v, ex.server()+"."+c.m.Tool)
	if ex.set.DenyAs == rules.DenyAsResult {
		return wire.ToolErrorResult(c.m.ID, msg)
	}
	c.ev.MCP.ErrorCode = wire.CodeDenied
	data := map[string]any{"rule": v.Rule}
	if id != "" {
		data["approval"] = id
	}
	return wire.ErrorResponse(c.m.ID, wire.CodeDenied, msg, data)
}

// withoutApprovalState is the retry as forwarded: the call with its
// arguments as sent (args, after redaction), params.requestState taken
// out (it is agentg's) and agentg's entry taken out of
// params.inputResponses (the whole member when nothing else is left),
// every other member as it was.
func withoutApprovalState(m *wire.Message, key, args string) ([]byte, error) {
	params, err := rebuildObject(m.Params, func(name string, v jsontext.Value) (jsontext.Value, bool, error) {
		switch name {
		case "arguments":
			if args != "" {
				return jsontext.Value(args), true, nil
			}
		case "requestState":
			return nil, false, nil
		case "inputResponses":
			rest, err := rebuildObject(v, func(k string, r jsontext.Value) (jsontext.Value, bool, error) {
				return r, k != key, nil
			})
			if err != nil || string(rest) == "{}" {
				return nil, false, err
			}
			return rest, true, nil
		}
		return v, true, nil
	})
	if err != nil {
		return nil, err
	}
	b := []byte(`{"jsonrpc":"2.0","id":`)
	b = append(b, m.ID...)
	b = append(b, `,"method":`...)
	b = wire.AppendString(b, m.Method)
	b = append(b, `,"params":`...)
	b = append(b, params...)
	return append(b, '}'), nil
}

// rebuildObject writes object v again with each member as keep says
// (its value, perhaps replaced, and whether to keep it).
func rebuildObject(v jsontext.Value, keep func(name string, v jsontext.Value) (jsontext.Value, bool, error)) (jsontext.Value, error) {
	d := jsontext.NewDecoder(bytes.NewReader(v))
	if tok, err := d.ReadToken(); err != nil || tok.Kind() != '{' {
		return nil, fmt.Errorf("not an object")
	}
	out := []byte{'{'}
	for d.PeekKind() == '"' {
		name, err := d.ReadToken()
		if err != nil {
			return nil, err
		}
		n := name.String() // before the next read voids the token
		val, err := d.ReadValue()
		if err != nil {
			return nil, err
		}
		nv, ok, err := keep(n, val)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = wire.AppendString(out, n)
		out = append(out, ':')
		out = append(out, nv...)
	}
	if _, err := d.ReadToken(); err != nil {
		return nil, err
	}
	return append(out, '}'), nil
}

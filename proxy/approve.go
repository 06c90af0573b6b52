package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/agentg/agentg/approval"
	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/rules"
)

// holdRequest holds a request an http approve rule covers: nothing of it
// goes upstream until an approver approves it. Its body is read whole
// first (at most approval.MaxBody; a larger one is refused 413, never
// held): the approval binds its digest and shows its approver a redacted
// preview (decoded from its Content-Encoding; one agentg cannot decode is
// refused 415), and, the body read to its end, net/http watches the
// connection and cancels the request's context when the client goes
// away, which cancels the approval (event status 499) so that it can no
// longer be approved. Denied, expired, or no broker: the policy's 403,
// naming the approval.
func (s *Server) holdRequest(r *http.Request, f *flow) *refusal {
	d := f.decision
	b := s.cfg.Approvals
	if b == nil {
		f.decision = rules.Decision{Action: rules.Deny, Rule: d.Rule, Source: d.Source,
			Reason: "held for approval, and this agentg has no approvals broker: nothing can approve it"}
		return denied(f)
	}
	body, err := readHeldBody(r)
	if err != nil {
		f.decision = rules.Decision{Action: rules.Deny, Rule: d.Rule, Source: d.Source, Reason: err.Error()}
		ref := denied(f)
		if errors.Is(err, errHeldBodyTooLarge) {
			ref.status = http.StatusRequestEntityTooLarge
		} else {
			ref.status, ref.close = http.StatusBadRequest, true
		}
		return ref
	}
	// What a Content-Encoding would hide is decoded for the approver to
	// read; a coding agentg cannot undo is refused, never shown as noise.
	enc := strings.Join(r.Header.Values("Content-Encoding"), ",")
	var decoded []byte
	if strings.TrimSpace(enc) != "" {
		if decoded, err = approval.DecodeBody(body, enc); err != nil {
			f.decision = rules.Decision{Action: rules.Deny, Rule: d.Rule, Source: d.Source,
				Reason: "a request held for approval must show its body to the approver: " + err.Error()}
			ref := denied(f)
			ref.status = http.StatusUnsupportedMediaType
			if errors.Is(err, approval.ErrBodyTooLarge) {
				ref.status = http.StatusRequestEntityTooLarge
			}
			return ref
		}
	}
	u := f.scheme + "://" + f.host.String() + r.URL.RequestURI()
	t := b.Begin(approval.Request{Kind: "http", Agent: f.agent, Method: r.Method, URL: u, Decision: d,
		Body: body, Decoded: decoded, BodyEncoding: enc, Redactions: s.cfg.Policy.Engine().MCP().AllRedactions(),
		Event: f.id, Client: f.client, Host: f.host.Name, Port: f.host.Port, Mask: s.leaks.Mask})
	o := t.Wait(r.Context())
	f.approval = &audit.Approval{ID: o.Approval.ID, By: o.By, Scope: o.Approval.Scope, For: o.Approval.For}
	gone := r.Context().Err() != nil
	if o.Approved && !gone {
		f.decision = rules.Decision{Action: rules.Allow, Rule: d.Rule, Source: d.Source, Reason: d.Reason + "; " + o.Reason}
		return nil
	}
	reason := o.Reason
	if o.Approved {
		// Approved as the client went: there is no one to answer, and
		// nothing is sent for no one.
		reason = "the client went away as the call was approved; it was not sent"
	}
	f.decision = rules.Decision{Action: rules.Deny, Rule: d.Rule, Source: d.Source, Reason: reason}
	ref := denied(f)
	if gone {
		ref.status = statusClientGone
	}
	return ref
}

// statusClientGone is the status of a request whose client went away
// before it was answered, as in the events of the forwarder.
const statusClientGone = 499

var errHeldBodyTooLarge = fmt.Errorf("the request body is %w", approval.ErrBodyTooLarge)

// readHeldBody reads r's body whole (at most approval.MaxBody) and puts
// the bytes back for the forwarder, with the original body's Close.
func readHeldBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if r.ContentLength > approval.MaxBody {
		return nil, errHeldBodyTooLarge
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, approval.MaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("could not read the body of a request held for approval: %w", err)
	}
	if len(b) > approval.MaxBody {
		return nil, errHeldBodyTooLarge
	}
	r.Body = readCloser{bytes.NewReader(b), r.Body}
	return b, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

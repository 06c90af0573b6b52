package proxy

import (
	"net/http"

	"github.com/agentg/agentg/approval"
	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/rules"
)

// holdRequest holds a request an http approve rule covers: nothing of it
// (its body included, which stays unread in the client's connection) goes
// upstream until an approver approves it. Its approver sees the method
// and URL. Denied, expired, the client gone, or no broker: the policy's
// 403, naming the approval.
func (s *Server) holdRequest(r *http.Request, f *flow) *refusal {
	d := f.decision
	b := s.cfg.Approvals
	if b == nil {
		f.decision = rules.Decision{Action: rules.Deny, Rule: d.Rule, Source: d.Source,
			Reason: "held for approval, and this agentg has no approvals broker: nothing can approve it"}
		return s.denied(f)
	}
	u := f.scheme + "://" + f.host.String() + r.URL.RequestURI()
	t := b.Begin(approval.Request{Kind: "http", Agent: f.agent, Method: r.Method, URL: u, Decision: d,
		Event: f.id, Client: f.client, Host: f.host.Name, Port: f.host.Port})
	o := t.Wait(r.Context())
	f.approval = &audit.Approval{ID: o.Approval.ID, By: o.By, Scope: o.Approval.Scope, For: o.Approval.For}
	if o.Approved {
		f.decision = rules.Decision{Action: rules.Allow, Rule: d.Rule, Source: d.Source, Reason: d.Reason + "; " + o.Reason}
		return nil
	}
	f.decision = rules.Decision{Action: rules.Deny, Rule: d.Rule, Source: d.Source, Reason: o.Reason}
	return s.denied(f)
}

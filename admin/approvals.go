package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/agentg/agentg/approval"
)

// The approvals endpoints: the calls held for a person's decision, and
// the decision.
//
//	GET  /v1/approvals               {"items": [Approval...]}, the pending ones, oldest first
//	GET  /v1/approvals/{id}          Approval (decided ones are kept a while)
//	POST /v1/approvals/{id}/approve  {"scope": "call"|"agent-tool", "for": "10m"}, both optional
//	POST /v1/approvals/{id}/deny     {"reason": "..."}, optional
//
// A decision on an approval already decided (a cancelled one included:
// its client went away) is 409 "decided"; an unknown
// id 404 "not_found"; a scope or for that does not parse 400.

// Approvals is what the API asks of the approvals broker;
// *approval.Broker implements it.
type Approvals interface {
	List() []approval.Approval
	Get(id string) (approval.Approval, bool)
	Approve(id, scope string, forDur time.Duration, by string) (approval.Approval, error)
	Deny(id, reason, by string) (approval.Approval, error)
	PendingCount() int
}

var _ Approvals = (*approval.Broker)(nil)

// Approval is one held call as the API shows it.
type Approval struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"` // "mcp" or "http"
	Agent  string `json:"agent"`
	Server string `json:"server,omitempty"`
	Tool   string `json:"tool,omitempty"`
	// Args are the arguments exactly as they will be sent (after
	// redaction), as JSON text.
	Args   string `json:"args,omitempty"`
	Method string `json:"method,omitempty"`
	URL    string `json:"url,omitempty"`
	// Body (http kind) is a preview of the request's body: at most
	// 4 KiB, redacted with the policy's redact patterns, bytes that are
	// not UTF-8 shown as \xNN; BodyTruncated when cut. BodySize and
	// BodySHA256 are the whole body's: the approval, and a grant it
	// remembers, bind that digest.
	Body          string `json:"body,omitempty"`
	BodyTruncated bool   `json:"body_truncated,omitempty"`
	BodySize      int64  `json:"body_size,omitempty"`
	BodySHA256    string `json:"body_sha256,omitempty"`
	// BodyEncoding is the Content-Encoding the preview was decoded
	// from (size and digest stay the body's as sent).
	BodyEncoding string    `json:"body_encoding,omitempty"`
	Rule         string    `json:"rule"`
	Created      time.Time `json:"created"`
	Expires      time.Time `json:"expires"`
	Via          []string  `json:"via"`
	State        string    `json:"state"` // "pending", "approved", "denied", "expired", "cancelled"
	// Once decided: by whom, why, the scope remembered and for how long.
	By      string     `json:"by,omitempty"`
	Reason  string     `json:"reason,omitempty"`
	Scope   string     `json:"scope,omitempty"`
	For     string     `json:"for,omitempty"`
	Decided *time.Time `json:"decided,omitempty"`
}

func apiApproval(a approval.Approval) Approval {
	out := Approval{ID: a.ID, Kind: a.Kind, Agent: a.Agent, Server: a.Server, Tool: a.Tool, Args: a.Args,
		Method: a.Method, URL: a.URL, Body: a.Body, BodyTruncated: a.BodyTruncated, BodySize: a.BodySize,
		BodySHA256: a.BodySHA256, BodyEncoding: a.BodyEncoding, Rule: a.Rule, Created: a.Created, Expires: a.Expires, Via: a.Via,
		State: a.State, By: a.By, Reason: a.Reason, Scope: a.Scope}
	if out.Via == nil {
		out.Via = []string{}
	}
	if a.For > 0 {
		out.For = a.For.String()
	}
	if !a.Decided.IsZero() {
		d := a.Decided
		out.Decided = &d
	}
	return out
}

// ApproveRequest is the body of POST /v1/approvals/{id}/approve.
type ApproveRequest struct {
	Scope string `json:"scope,omitempty"` // "call" (default) or "agent-tool"
	For   string `json:"for,omitempty"`   // agent-tool: how long, a Go duration ("10m"); default 10m
}

// DenyRequest is the body of POST /v1/approvals/{id}/deny.
type DenyRequest struct {
	Reason string `json:"reason,omitempty"`
}

func (s *Server) approvalRoutes() {
	s.Handle("GET /v1/approvals", http.HandlerFunc(s.serveApprovals))
	s.Handle("GET /v1/approvals/{id}", http.HandlerFunc(s.serveApproval))
	s.Handle("POST /v1/approvals/{id}/approve", http.HandlerFunc(s.serveApprove))
	s.Handle("POST /v1/approvals/{id}/deny", http.HandlerFunc(s.serveDeny))
}

func (s *Server) approvals(w http.ResponseWriter) bool {
	if s.cfg.Approvals == nil {
		writeError(w, http.StatusServiceUnavailable, "no_approvals", "this agentg holds no approvals")
		return false
	}
	return true
}

func (s *Server) serveApprovals(w http.ResponseWriter, r *http.Request) {
	if !s.approvals(w) {
		return
	}
	l := List[Approval]{Items: []Approval{}}
	for _, a := range s.cfg.Approvals.List() {
		l.Items = append(l.Items, apiApproval(a))
	}
	writeJSON(w, http.StatusOK, l)
}

func (s *Server) serveApproval(w http.ResponseWriter, r *http.Request) {
	if !s.approvals(w) {
		return
	}
	a, ok := s.cfg.Approvals.Get(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no approval "+r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusOK, apiApproval(a))
}

func (s *Server) serveApprove(w http.ResponseWriter, r *http.Request) {
	if !s.approvals(w) {
		return
	}
	var req ApproveRequest
	if err := readOptionalJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error()+` (want {"scope": "call"|"agent-tool", "for": "10m"})`)
		return
	}
	var d time.Duration
	if req.For != "" {
		var err error
		if d, err = time.ParseDuration(req.For); err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("for %q: want a duration such as 10m", req.For))
			return
		}
		if req.Scope == "" {
			req.Scope = approval.ScopeAgentTool // "for" says it is remembered
		}
	}
	a, err := s.cfg.Approvals.Approve(r.PathValue("id"), req.Scope, d, "console")
	s.decided(w, a, err)
}

func (s *Server) serveDeny(w http.ResponseWriter, r *http.Request) {
	if !s.approvals(w) {
		return
	}
	var req DenyRequest
	if err := readOptionalJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error()+` (want {"reason": "..."})`)
		return
	}
	a, err := s.cfg.Approvals.Deny(r.PathValue("id"), req.Reason, "console")
	s.decided(w, a, err)
}

func (s *Server) decided(w http.ResponseWriter, a approval.Approval, err error) {
	switch {
	case errors.Is(err, approval.ErrNoApproval):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, approval.ErrDecided):
		writeError(w, http.StatusConflict, "decided", err.Error())
	case errors.Is(err, approval.ErrBadScope):
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
	case err != nil:
		writeError(w, http.StatusInternalServerError, "decide_failed", err.Error())
	default:
		writeJSON(w, http.StatusOK, apiApproval(a))
	}
}

// readOptionalJSON is readJSON where an empty body means every default.
func readOptionalJSON(r *http.Request, v any) error {
	if r.Body == nil || r.ContentLength == 0 {
		return nil
	}
	err := readJSON(r, v)
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// Approvals is GET /v1/approvals.
func (c *Client) Approvals(ctx context.Context) ([]Approval, error) {
	var l List[Approval]
	err := c.call(ctx, http.MethodGet, "/v1/approvals", nil, &l)
	return l.Items, err
}

// Approval is GET /v1/approvals/{id}.
func (c *Client) Approval(ctx context.Context, id string) (Approval, error) {
	var a Approval
	err := c.call(ctx, http.MethodGet, "/v1/approvals/"+url.PathEscape(id), nil, &a)
	return a, err
}

// Approve is POST /v1/approvals/{id}/approve.
func (c *Client) Approve(ctx context.Context, id string, req ApproveRequest) (Approval, error) {
	var a Approval
	err := c.call(ctx, http.MethodPost, "/v1/approvals/"+url.PathEscape(id)+"/approve", req, &a)
	return a, err
}

// Deny is POST /v1/approvals/{id}/deny.
func (c *Client) Deny(ctx context.Context, id, reason string) (Approval, error) {
	var a Approval
	err := c.call(ctx, http.MethodPost, "/v1/approvals/"+url.PathEscape(id)+"/deny", DenyRequest{Reason: reason}, &a)
	return a, err
}

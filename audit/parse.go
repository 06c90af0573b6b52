package audit

import (
	"encoding/json"
	"fmt"
	"time"
)

// ParseJSON reads one event as Log writes it (the fields a log line
// carries), the inverse of JSON for what an event of another process
// sends on: `agentg wrap` writes its events with its own Logger and the
// running agentg logs them again through the admin API, so that one log
// holds them. Fields Log does not write are not read.
func ParseJSON(line []byte) (*Event, error) {
	var l logLine
	if err := json.Unmarshal(line, &l); err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	t, err := time.Parse(time.RFC3339Nano, l.Time)
	if err != nil {
		return nil, fmt.Errorf("event time %q: %w", l.Time, err)
	}
	e := &Event{ID: l.ID, Parent: l.Parent, Opened: l.Opened, Time: t, Kind: l.Kind, Agent: l.Agent,
		Client: l.Client, Method: l.Method, Scheme: l.Scheme, Host: l.Host, Port: l.Port, IP: l.IP,
		Path: l.Path, Decision: l.Decision, Rule: l.Rule, RuleSource: l.RuleSource, Reason: l.Reason,
		Status: l.Status, BytesUp: l.BytesUp, BytesDown: l.BytesDown,
		Duration: time.Duration(l.DurationMS * float64(time.Millisecond)), Error: l.Error, TLS: l.TLS,
		TLSVersion: l.TLSVersion, ALPN: l.ALPN, Door: l.Door, OriginalDst: l.OriginalDst,
		Binding: l.Binding, Credential: l.Credential, CausedBy: l.CausedBy}
	if l.Kind != "mcp" {
		e.Server = l.Server
	}
	if l.Kind == "mcp" || l.Tool != "" || l.Session != "" {
		e.MCP = &MCP{Action: l.Action, Server: l.Server, ServerInfo: l.ServerInfo, Session: l.Session,
			Revision: l.Revision, Tool: l.Tool, Prompt: l.Prompt, URI: l.URI, Args: l.Args,
			Redactions: l.Redactions, RateLimit: l.RateLimit, Pin: l.Pin, IsError: l.IsError,
			ErrorCode: l.ErrorCode, ResultBytes: l.ResultBytes,
			Upstream: time.Duration(l.UpstreamMS * float64(time.Millisecond)), RetryOf: l.RetryOf, Task: l.Task,
			LLMTurn: l.LLMTurn, TurnText: l.TurnText, TurnReasoning: l.TurnReasoning, Unrequested: l.Unrequested}
	}
	if l.Approval != "" || l.ApprovalBy != "" {
		e.Approval = &Approval{ID: l.Approval, Action: l.ApprovalAction, By: l.ApprovalBy, Scope: l.ApprovalScope,
			For: time.Duration(l.ApprovalForS * float64(time.Second)), URL: l.URL}
	}
	return e, nil
}

// logLine is a log line's fields, by the names Log writes.
type logLine struct {
	ID, Parent, Opened, Time, Kind, Agent, Client, Method, Scheme, Host string
	Port                                                                uint16
	IP, Path, Decision, Rule                                            string
	RuleSource                                                          string `json:"rule_source"`
	Reason                                                              string
	Status                                                              int
	BytesUp                                                             int64   `json:"bytes_up"`
	BytesDown                                                           int64   `json:"bytes_down"`
	DurationMS                                                          float64 `json:"duration_ms"`
	Error, TLS                                                          string
	TLSVersion                                                          string `json:"tls_version"`
	ALPN, Door                                                          string
	OriginalDst                                                         string `json:"original_dst"`
	Binding, Credential                                                 string
	CausedBy                                                            string `json:"caused_by"`

	Action, Server          string
	ServerInfo              string `json:"server_info"`
	Session, Revision, Tool string
	Prompt, URI, Args       string
	Redactions              []string
	RateLimit               string `json:"rate_limit"`
	Pin                     string
	IsError                 bool    `json:"is_error"`
	ErrorCode               int     `json:"error_code"`
	ResultBytes             int     `json:"result_bytes"`
	UpstreamMS              float64 `json:"upstream_ms"`
	RetryOf                 string  `json:"retry_of"`
	Task                    string
	LLMTurn                 string `json:"llm_turn"`
	TurnText                string `json:"turn_text"`
	TurnReasoning           string `json:"turn_reasoning"`
	Unrequested             bool
	Approval                string
	ApprovalAction          string  `json:"approval_action"`
	ApprovalBy              string  `json:"approval_by"`
	ApprovalScope           string  `json:"approval_scope"`
	ApprovalForS            float64 `json:"approval_for_s"`
	URL                     string
}

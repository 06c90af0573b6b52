package audit

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"
)

// Event is one decision about one request, tunnel or query.
type Event struct {
	ID     string // unique per event, from Logger.NewID
	Parent string // the enclosing event's ID: a request's tunnel
	// Opened is, on a tunnel's own event (written when it closes), the
	// ID of its tunnel-open event, if one was written.
	Opened string
	Time   time.Time
	Kind   string // "http", "connect", "dns"
	Agent  string
	// Server is, on the events of a request an MCP server agentg started
	// made itself (agent "server:NAME"), that server's name; CausedBy the
	// event id of its tool call in flight then, if one was.
	Server     string
	CausedBy   string
	Client     string // client address, ip:port
	Method     string
	Scheme     string // "http", "https" (CONNECT tunnels: "tunnel")
	Host       string
	Port       uint16
	IP         string // the address that was dialed, if any
	Path       string
	Decision   string // "allow", "deny" or "report"
	Rule       string // id of the rule that fired
	RuleSource string // where that rule is written (file:line)
	Reason     string
	Status     int
	BytesUp    int64 // client → upstream
	BytesDown  int64 // upstream → client
	Duration   time.Duration
	Error      string
	TLS        string // "intercepted" when agentg terminated TLS
	TLSVersion string // upstream TLS version
	ALPN       string

	// Door is the listener an event's connection came in through when it
	// is not the explicit proxy: "transparent" (left out for the explicit
	// listener). OriginalDst is the ip:port a transparently redirected
	// connection was going to.
	Door        string
	OriginalDst string

	MCP *MCP // kind "mcp": the message's side of the story
	DNS *DNS // kind "dns": the query's side
	LLM *LLM // kind "llm": one model turn (llm.go)

	// Approval is set on the events of a held call (kind "approval") and
	// on the event of a call an approval decided.
	Approval *Approval

	// Binding is the id of the credential binding that attached a secret
	// to the request; Credential the secret's name (names, joined with
	// ","). Never a value.
	Binding    string
	Credential string
}

// DNS is what an event about one DNS query adds. The name is Host, the
// latency Duration.
type DNS struct {
	Type     string   // query type, "A", "AAAA", ...
	Rcode    string   // the answer's response code, "NOERROR", "NXDOMAIN", ...
	Answers  []string // addresses (and CNAME targets) answered
	Upstream string   // the upstream that answered, as the policy writes it
	Cached   bool     // answered from the cache
	Block    string   // how a block was answered: nxdomain, refused, sinkhole
}

// Approval is what an event about a held call adds.
type Approval struct {
	ID string
	// Action is, on a kind "approval" event, what happened: "held",
	// "approved", "denied", "expired", "cancelled" (the client went
	// away); "" on the call's own event.
	Action string
	// By is who decided: "console" (the admin API and its users),
	// "elicitation" (the client's user, in band), "grant" (a remembered
	// approval), "timeout", "client" (it went away), "restart",
	// "shutdown".
	By    string
	Scope string        // approved: "call" or "agent-tool"
	For   time.Duration // how long an agent-tool approval is remembered
	URL   string        // the held request's URL (http kind)
}

// MCP is what an event about one MCP message adds.
type MCP struct {
	// Action says what an event that is not about one request of the
	// client's records: "session-start" (initialize answered with a
	// session, server/discover, a legacy endpoint event), "server-new",
	// "tool-new", "tool-changed", "refused-answer" (an answer agentg
	// withheld); "" on a request's own event.
	Action      string
	Server      string // the policy's name for the server (its binding), never what the server calls itself
	ServerInfo  string // serverInfo name and version as the server reported them
	Session     string
	Revision    string // the protocol revision in use
	Tool        string
	Prompt      string   // prompts/get: the prompt's name
	URI         string   // resources/read: the URI, cut to MaxArgs bytes
	Args        string   // arguments after redaction, cut to MaxArgs bytes
	Redactions  []string // ids of the redact rules that fired
	RateLimit   string   // the rate limit that refused the call, with when to retry
	Pin         string   // "new", "changed", "accepted": the tool definition's pin, when it was checked
	IsError     bool     // the result said isError
	ErrorCode   int      // the JSON-RPC error the client got, if any
	ResultBytes int
	Upstream    time.Duration // request to answer, at agentg
	// RetryOf is, on a 2026-07-28 retry (a request carrying
	// inputResponses), the event id of the first call it repeats.
	RetryOf string
	// Task is the task id (2025-11-25) a request or answer is about: the
	// one a task-augmented tools/call created, or tasks/result fetches.
	Task string
	// LLMTurn is, on a tools/call, the event id of the model turn (kind
	// llm) whose tool call it carries out; TurnText and TurnReasoning
	// are that turn's assistant text and visible reasoning, redacted as
	// the call's arguments are and cut to MaxTurnText bytes each.
	// Unrequested marks a tools/call no model turn agentg saw asked for.
	LLMTurn       string
	TurnText      string
	TurnReasoning string
	Unrequested   bool
}

// MaxTurnText bounds the model turn's text and reasoning a tools/call
// event carries: context for the call, not a transcript.
const MaxTurnText = 2048

// MaxArgs bounds the arguments an event carries.
const MaxArgs = 2048

// Logger writes events and agentg's operational messages as JSON lines.
type Logger struct {
	zl  zerolog.Logger // decision events: they carry their own time
	ops zerolog.Logger // operational messages, timestamped by zerolog
	ids idSource
	buf *bufWriter // set for a buffered Logger (buffer.go)
	// sink is set for a Logger made by NewWithOptions (sink.go).
	sink *sink

	subs subscribers // subscribe.go
}

// New returns a Logger writing to w. Each event is one Write call; w is
// wrapped so that concurrent events never interleave.
func New(w io.Writer) *Logger {
	sw := zerolog.SyncWriter(w)
	return newLogger(sw, sw)
}

// newLogger writes events to events and operational messages to ops.
func newLogger(events, ops io.Writer) *Logger {
	return &Logger{zl: zerolog.New(events), ops: zerolog.New(ops).With().Timestamp().Logger(), ids: newIDSource()}
}

// Zerolog returns the underlying logger for operational messages (startup,
// reloads, errors), so they share the stream and the format of events.
func (l *Logger) Zerolog() *zerolog.Logger { return &l.ops }

// Log writes one event.
func (l *Logger) Log(e *Event) {
	ev := l.zl.Log()
	optStr(ev, "id", e.ID)
	optStr(ev, "parent", e.Parent)
	optStr(ev, "opened", e.Opened)
	ev.Str("time", e.Time.UTC().Format(time.RFC3339Nano)).
		Str("kind", e.Kind).
		Str("agent", e.Agent).
		Str("client", e.Client)
	optStr(ev, "method", e.Method)
	optStr(ev, "scheme", e.Scheme)
	ev.Str("host", e.Host)
	if e.Port != 0 {
		ev.Uint16("port", e.Port)
	}
	optStr(ev, "ip", e.IP)
	optStr(ev, "path", e.Path)
	ev.Str("decision", e.Decision).
		Str("rule", e.Rule)
	optStr(ev, "rule_source", e.RuleSource)
	optStr(ev, "reason", e.Reason)
	if e.Status != 0 {
		ev.Int("status", e.Status)
	}
	ev.Int64("bytes_up", e.BytesUp).
		Int64("bytes_down", e.BytesDown).
		Float64("duration_ms", float64(e.Duration.Microseconds())/1000)
	optStr(ev, "error", e.Error)
	optStr(ev, "tls", e.TLS)
	optStr(ev, "tls_version", e.TLSVersion)
	optStr(ev, "alpn", e.ALPN)
	optStr(ev, "door", e.Door)
	optStr(ev, "original_dst", e.OriginalDst)
	optStr(ev, "binding", e.Binding)
	optStr(ev, "credential", e.Credential)
	if e.MCP == nil {
		optStr(ev, "server", e.Server) // an MCP event names its server below
	}
	optStr(ev, "caused_by", e.CausedBy)
	if m := e.MCP; m != nil {
		optStr(ev, "action", m.Action)
		optStr(ev, "server", m.Server)
		optStr(ev, "server_info", m.ServerInfo)
		optStr(ev, "session", m.Session)
		optStr(ev, "revision", m.Revision)
		optStr(ev, "tool", m.Tool)
		optStr(ev, "prompt", m.Prompt)
		if uri := m.URI; uri != "" {
			ev.Str("uri", uri[:min(len(uri), MaxArgs)])
		}
		if m.Args != "" {
			args := m.Args
			if len(args) > MaxArgs {
				args = args[:MaxArgs]
			}
			ev.Str("args", args)
		}
		if len(m.Redactions) > 0 {
			ev.Strs("redactions", m.Redactions)
		}
		optStr(ev, "rate_limit", m.RateLimit)
		optStr(ev, "pin", m.Pin)
		if m.IsError {
			ev.Bool("is_error", true)
		}
		if m.ErrorCode != 0 {
			ev.Int("error_code", m.ErrorCode)
		}
		if m.ResultBytes != 0 {
			ev.Int("result_bytes", m.ResultBytes)
		}
		if m.Upstream != 0 {
			ev.Float64("upstream_ms", float64(m.Upstream.Microseconds())/1000)
		}
		optStr(ev, "retry_of", m.RetryOf)
		optStr(ev, "task", m.Task)
		optStr(ev, "llm_turn", m.LLMTurn)
		optStr(ev, "turn_text", m.TurnText)
		optStr(ev, "turn_reasoning", m.TurnReasoning)
		if m.Unrequested {
			ev.Bool("unrequested", true)
		}
	}
	if d := e.DNS; d != nil {
		optStr(ev, "qtype", d.Type)
		optStr(ev, "rcode", d.Rcode)
		if len(d.Answers) > 0 {
			ev.Strs("answers", d.Answers)
		}
		optStr(ev, "upstream", d.Upstream)
		if d.Cached {
			ev.Bool("cached", true)
		}
		optStr(ev, "block", d.Block)
	}
	if m := e.LLM; m != nil {
		m.log(ev)
	}
	if a := e.Approval; a != nil {
		ev.Str("approval", a.ID)
		optStr(ev, "approval_action", a.Action)
		optStr(ev, "approval_by", a.By)
		optStr(ev, "approval_scope", a.Scope)
		if a.For > 0 {
			ev.Float64("approval_for_s", a.For.Seconds())
		}
		optStr(ev, "url", a.URL)
	}
	ev.Msg("decision")
	l.publish(e)
}

func optStr(ev *zerolog.Event, key, val string) {
	if val != "" {
		ev.Str(key, val)
	}
}

// OpenFile opens path for appending events, creating it (and its directory)
// if needed, so that a restart continues the same file.
func OpenFile(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("open log file %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log file %s: %w", path, err)
	}
	return f, nil
}

// Kinds are the kinds of event agentg logs, and Outcomes the decisions an
// event may carry. A new kind is added here, so that a filter naming a
// kind or decision that can never match (agentg events --kind htpp) is
// refused rather than silently empty. Read them; never change them.
var (
	Kinds    = []string{"http", "connect", "tunnel-open", "dns", "mcp", "llm", "llm-tool", "approval", "oauth"}
	Outcomes = []string{"allow", "deny", "report", "approve"}
)

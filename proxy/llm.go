package proxy

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/dissect/llm"
	"github.com/agentg/agentg/dissect/mcp/wire"
	"github.com/agentg/agentg/rules"
)

// Model calls on the exchange path (issue 18). A POST to a host the
// policy's llm section binds, on a path whose dialect dissect/llm
// recognises, is read here: the request body once (bounded), its model
// decided by llm.models before any credential is attached, and, once
// forwarded, the answer streamed to the client unchanged and unbuffered
// while a copy is read (llm.Stream for an event stream, a bounded copy for
// one JSON body). Each exchange becomes one event of kind "llm", whose
// parent is the HTTP exchange's event.
//
// The upstream is asked for an identity-encoded answer (Accept-Encoding:
// identity): a compressed answer could not be read as it passes, and the
// agent's own transport gets the same bytes it would have decoded. An
// upstream that compresses anyway is sent on as it came and the turn is
// unreadable (the unparsed setting says what the event records).

// maxLLMRequest bounds the request body read to decide it; a larger one
// cannot be read (llm.unparsed decides) and is forwarded whole, what was
// read first.
const maxLLMRequest = 16 << 20

// maxLLMAnswer bounds the copy of a whole (non-streamed) answer kept to
// read it once it has passed; past it the turn is unreadable.
const maxLLMAnswer = 8 << 20

// llmCall is one model exchange.
type llmCall struct {
	host     *rules.LLMHost
	route    llm.Route
	req      llm.Request
	unparsed string // why the request could not be read
	decision rules.Decision
	start    time.Time
	quotas   []*rules.LLMQuota // the llm quotas it is charged to (llm_quota.go)
	// The tool-use guard (llm_guard.go): nil when tool_use is off; id is
	// the turn's event id, named by the guard's events as their parent.
	guard        *toolGuard
	id           string
	guardFailed  string
	guardRefused bool
	// redactions are the redact rules that fired on the request's
	// conversation (llm_scrub.go).
	redactions []string
}

// llmPrepare reads and decides a model request; nil, nil when r is not
// one (the common case costs a method compare and a boolean). A refusal
// is written in the provider's own error shape, and its event logged.
func (s *Server) llmPrepare(eng *rules.Engine, f *flow, w http.ResponseWriter, r *http.Request) (c *llmCall, refused bool) {
	if r.Method != http.MethodPost || !eng.LLM().Defined() {
		return nil, false
	}
	h := eng.LLM().Host(f.host, r.URL.Path)
	if h == nil {
		return nil, false
	}
	rt := llm.RoutePath(r.URL.Path)
	if rt.Dialect == llm.Unknown {
		// A server may take "/V1/Chat/Completions/" for its route (some
		// match without regard to case or a trailing slash): such a
		// spelling must not carry a model past llm.models unread.
		rt = llm.RoutePath(strings.ToLower(strings.TrimRight(r.URL.Path, "/")))
	}
	if rt.Dialect == llm.Unknown || !h.Speaks(rt.Dialect) {
		return nil, false
	}
	c = &llmCall{host: h, route: rt, start: f.start, req: llm.Request{Dialect: rt.Dialect, Model: rt.Model, Stream: rt.Stream}}
	body, err := readLLMBody(r)
	switch {
	case errors.Is(err, errLLMTooLarge):
		c.unparsed = "request body over " + strconv.Itoa(maxLLMRequest>>20) + " MiB"
	case err != nil:
		// The body broke or stalled: nothing can be forwarded whole.
		s.llmRefuse(w, f, c, http.StatusBadRequest, rules.Decision{Action: rules.Deny, Rule: "builtin:llm-request",
			Reason: "could not read the request body: " + err.Error()})
		return c, true
	default:
		if c.req, err = llm.ParseRequest(rt, body); err != nil {
			c.unparsed = err.Error()
		}
	}
	if c.unparsed != "" {
		c.decision = unparsedDecision(eng, "request unreadable: "+c.unparsed)
		if !c.decision.Allowed() {
			s.llmRefuse(w, f, c, http.StatusBadRequest, c.decision)
			return c, true
		}
	} else {
		c.decision = eng.LLM().Model(rules.ModelCall{Agent: f.agent, Provider: h.Provider, Model: c.req.Model})
		if !c.decision.Allowed() {
			s.llmRefuse(w, f, c, http.StatusForbidden, c.decision)
			return c, true
		}
	}
	// What the request carries to the provider: the leak guard and the
	// redact rules (llm_scrub.go).
	if s.llmScrub(eng, f, w, r, c, body) || s.llmCheckQuotas(eng, f, w, c) {
		return c, true
	}
	// The answer is read as it passes: ask for it unencoded (see above).
	r.Header.Set("Accept-Encoding", "identity")
	return c, false
}

var errLLMTooLarge = errors.New("request body too large to read")

// readLLMBody reads r's body whole, up to maxLLMRequest, and puts it back
// so it is forwarded as read: the one reading of it. Past the bound, what
// was read is put back in front of the rest (errLLMTooLarge).
func readLLMBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if r.ContentLength > maxLLMRequest {
		return nil, errLLMTooLarge
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxLLMRequest+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxLLMRequest {
		r.Body = readCloser{io.MultiReader(bytes.NewReader(body), r.Body), r.Body}
		return nil, errLLMTooLarge
	}
	r.Body = readCloser{bytes.NewReader(body), r.Body}
	r.ContentLength = int64(len(body))
	r.TransferEncoding = nil
	return body, nil
}

// unparsedDecision is the llm.unparsed setting as a decision.
func unparsedDecision(eng *rules.Engine, reason string) rules.Decision {
	return eng.LLM().UnparsedDecision(reason)
}

// llmServe forwards the allowed model request and reads its answer as it
// passes, then logs the turn's event.
func (s *Server) llmServe(w http.ResponseWriter, r *http.Request, up http.Handler, f *flow, c *llmCall) {
	// The turn is noted in flight before a byte goes upstream: a tool
	// call the agent acts on before the turn is kept is waited for
	// (llm.Recent.ClaimWait), not called unrequested.
	defer s.turns.Begin(f.agent)()
	w, finish := s.llmGuardServe(s.cfg.Policy.Engine(), f, c, w, r)
	tw := &turnWriter{ResponseWriter: w, c: c}
	// The answer is ended and the event logged however the forwarder
	// ends: an SDK that has read a stream's last event may hang up before
	// the provider ends the body, and the forwarder then ends the handler
	// with a panic (http.ErrAbortHandler). The turn was whole; it is still
	// a turn.
	defer func() {
		if finish != nil {
			// The tool-use guard hands on what it held (llm_guard.go).
			finish()
		}
		if tw.status != 0 {
			// The answer is the client's before it is read: the last
			// bytes of a whole answer wait in the writer's buffer until
			// the handler returns, and reading it (up to 8 MiB of JSON)
			// would hold them back (bench/README.md, Model calls).
			http.NewResponseController(w).Flush()
		}
		s.llmEvent(f, c, tw)
	}()
	up.ServeHTTP(tw, r)
}

// turnWriter hands the answer on, then reads a copy of what it handed
// on: the client never waits for the reading.
type turnWriter struct {
	http.ResponseWriter
	c      *llmCall
	status int
	why    string      // the answer cannot be read as a turn, and why
	stream *llm.Stream // an event stream's reading
	whole  []byte      // a whole answer's copy
	first  time.Time   // the first byte of the answer's body
	over   bool        // the whole answer passed maxLLMAnswer
}

func (t *turnWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

func (t *turnWriter) WriteHeader(code int) {
	if t.status == 0 && code >= 200 {
		t.status = code
		t.classify()
	}
	t.ResponseWriter.WriteHeader(code)
}

// classify decides, from the answer's head, how its body will be read.
func (t *turnWriter) classify() {
	h := t.ResponseWriter.Header()
	if t.status < 200 || t.status > 299 {
		t.why = "-" // an error answer is not a turn (the event has its status)
		return
	}
	if enc := h.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "identity") {
		t.why = "answer is " + enc + "-encoded"
		return
	}
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	switch mt {
	case "text/event-stream":
		t.stream = llm.NewStream(t.c.route.Dialect)
	case "application/json":
		// A sized answer is copied into one allocation of its size, or
		// not at all when it is over the bound.
		if n, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64); err == nil && n >= 0 {
			if n > maxLLMAnswer {
				t.over = true
			} else {
				t.whole = make([]byte, 0, n)
			}
		}
	default:
		t.why = "answer content type " + strconv.Quote(mt)
	}
}

func (t *turnWriter) Write(p []byte) (int, error) {
	if t.status == 0 {
		t.WriteHeader(http.StatusOK)
	}
	n, err := t.ResponseWriter.Write(p)
	if t.first.IsZero() && n > 0 {
		t.first = time.Now()
	}
	switch {
	case t.why != "":
	case t.stream != nil:
		t.stream.Write(p[:n])
	case !t.over:
		if len(t.whole)+n > maxLLMAnswer {
			t.over, t.whole = true, nil
		} else {
			t.whole = append(t.whole, p[:n]...)
		}
	}
	return n, err
}

// turn is what the answer said, or why it cannot be read.
func (t *turnWriter) turn() (llm.Turn, string) {
	switch {
	case t.status == 0:
		return llm.Turn{}, "no answer"
	case t.why != "":
		return llm.Turn{}, t.why
	case t.stream != nil:
		turn, err := t.stream.Turn()
		turn.Streamed = true
		if err != nil {
			return turn, err.Error()
		}
		return turn, ""
	case t.over:
		return llm.Turn{}, "answer over " + strconv.Itoa(maxLLMAnswer>>20) + " MiB"
	}
	turn, err := llm.ReadAnswer(t.c.route.Dialect, t.whole)
	if err != nil {
		return turn, err.Error()
	}
	return turn, ""
}

// llmEvent logs the turn's one event.
func (s *Server) llmEvent(f *flow, c *llmCall, t *turnWriter) {
	eng := s.cfg.Policy.Engine()
	turn, why := t.turn()
	e := s.llmBase(f, c, c.decision)
	e.Status = t.status
	m := e.LLM
	m.ServedModel, m.StopReason = turn.Model, turn.StopReason
	m.Stream = t.stream != nil
	if turn.HasUsage {
		m.InputTokens, m.OutputTokens = turn.Usage.Input, turn.Usage.Output
		m.CachedTokens, m.CacheWriteTokens, m.ReasoningTokens = turn.Usage.Cached, turn.Usage.CacheWrite, turn.Usage.Reasoning
		model := turn.Model
		if model == "" {
			model = c.req.Model
		}
		if p := eng.LLM().Price(c.host.Provider, model); p != nil {
			m.Cost, m.Priced = p.Cost(turn.Usage), true
		} else if p := eng.LLM().Price(c.host.Provider, c.req.Model); p != nil {
			m.Cost, m.Priced = p.Cost(turn.Usage), true
		}
	} else {
		m.NoUsage = true
	}
	s.llmCharge(f, c, turn.Usage, turn.HasUsage, m.Cost)
	switch {
	case t.stream != nil && !t.stream.FirstOutput().IsZero():
		m.TTFT = t.stream.FirstOutput().Sub(c.start)
	case t.stream == nil && !t.first.IsZero() && why == "":
		m.TTFT = t.first.Sub(c.start)
	}
	m.ToolCalls = toolCallsForEvent(eng, f.agent, turn.ToolCalls)
	if why != "" && why != "-" && m.Unparsed == "" {
		// The bytes went to the client already: the setting decides only
		// what the event says.
		m.Unparsed = why
		if c.decision.Allowed() && c.decision.Rule != "llm:unparsed" {
			d := unparsedDecision(eng, "answer unreadable: "+why)
			e.Decision, e.Rule, e.RuleSource, e.Reason = d.Outcome(), d.Rule, d.Source, d.Reason
		}
	}
	c.llmGuardEvent(e, turn)
	e.Duration = time.Since(c.start)
	s.events.log.Log(e)
	if why == "" {
		s.turns.Add(f.agent, llm.RecentTurn{Event: e.ID, At: time.Now(), Turn: turn})
	}
}

// RecentTurns returns agent's last model turns that ended at or after
// since, oldest first (at most llm.RecentPerAgent): the seam by which the
// MCP guard can tie a tools/call to the turn that asked for it.
func (s *Server) RecentTurns(agent string, since time.Time) []llm.RecentTurn {
	return s.turns.Since(agent, since)
}

// llmBase is the event of model call c under decision d, without the
// answer's part.
func (s *Server) llmBase(f *flow, c *llmCall, d rules.Decision) *audit.Event {
	id := c.id
	if id == "" {
		id = s.events.log.NewID()
	}
	e := &audit.Event{ID: id, Parent: f.id, Time: c.start, Kind: "llm",
		Agent: f.agent, Client: f.client, Method: f.method, Scheme: f.scheme,
		Host: f.host.Name, Port: f.host.Port, Path: f.path, Door: f.door,
		Decision: d.Outcome(), Rule: d.Rule, RuleSource: d.Source, Reason: d.Reason,
		LLM: &audit.LLM{Provider: c.host.Provider, Dialect: c.route.Dialect.String(), Model: c.req.Model,
			Stream: c.req.Stream, Unparsed: c.unparsed, Redactions: c.redactions}}
	return e
}

// toolCallsForEvent is the calls with their arguments redacted by the
// policy's mcp redact rules of the arguments direction that cover the
// agent (the one redaction engine, wire.Redact): the calls are not yet
// tied to a server's tool, so every such rule applies.
func toolCallsForEvent(eng *rules.Engine, agent string, calls []llm.ToolCall) []audit.LLMToolCall {
	if len(calls) == 0 {
		return nil
	}
	var reds []wire.Redaction
	for _, r := range eng.MCP().MessageRedactions(agent, false) {
		reds = append(reds, wire.Redaction{ID: r.ID, Pattern: r.Pattern})
	}
	out := make([]audit.LLMToolCall, 0, min(len(calls), audit.MaxToolCalls))
	for _, tc := range calls[:min(len(calls), audit.MaxToolCalls)] {
		ec := audit.LLMToolCall{ID: wire.RedactText(tc.ID, reds), Name: wire.RedactText(tc.Name, reds), Truncated: tc.Truncated}
		if len(tc.Arguments) > 0 {
			v, fired, err := wire.Redact(tc.Arguments, reds)
			if err != nil {
				// Arguments the redaction cannot read or rewrite are not
				// shown at all: a secret in them would be shown whole.
				ec.Truncated = true
			} else {
				ec.Args, ec.Redactions = string(v), fired
			}
		}
		out = append(out, ec)
	}
	return out
}

// llmRefuse answers a refused model request in its provider's own error
// shape, so the agent's SDK surfaces an API error naming the rule, and
// logs the refusal's one event (the HTTP exchange's event records the
// status).
func (s *Server) llmRefuse(w http.ResponseWriter, f *flow, c *llmCall, status int, d rules.Decision) {
	msg := "agentg: " + d.Reason
	if d.Reason == "" {
		msg = "agentg: refused by rule " + d.Rule
	}
	if !strings.Contains(msg, d.Rule) {
		msg += " (rule " + d.Rule + ")"
	}
	body := providerError(c.route.Dialect, status, msg)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Agentg-Rule", d.Rule)
	w.WriteHeader(status)
	w.Write(body)
	// The exchange's own event says where the refusal is recorded.
	f.setStatus(status, "model call refused by rule "+d.Rule+" (its llm event)")
	e := s.llmBase(f, c, d)
	e.Status = status
	f.mu.Lock()
	e.Credential = f.credential // the leak guard's refusal names the secret (llm_scrub.go)
	f.mu.Unlock()
	e.LLM.NoUsage = true
	e.Duration = time.Since(c.start)
	s.events.log.Log(e)
}

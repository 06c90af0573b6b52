package mcp

import (
	"bytes"
	"encoding/base64"
	"errors"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/creds"
	"github.com/agentg/agentg/dissect/mcp/wire"
	"github.com/agentg/agentg/rules"
	store "github.com/agentg/agentg/state"
)

// exchange is one POST of a governed (or detected) MCP exchange: the
// client's messages, what was decided about each, and the requests whose
// answers are still to come.
type exchange struct {
	g        *Guard
	x        *Exchange
	set      rules.MCPSettings
	revision string
	session  string
	legacy   *stream // a 2024-11-05 POST: answers come on this GET stream

	params map[string][]string // its Mcp-Param headers, which mirror arguments (redactmsg.go)

	held    holding // the calls held for approval (holdcall.go)
	mu      sync.Mutex
	pending map[string]*call // by IDKey
	sent    eventQueue       // events of answers rewritten, written once sent

	// swapping names the secrets whose placeholders the message being
	// decided carries, for its event (decide).
	swapping string
}

// call is one request of the client's on its way through.
type call struct {
	m      *wire.Message
	ev     *audit.Event
	start  time.Time
	tool   string
	legacy bool // sent on a 2024-11-05 HTTP+SSE session
	// claimed: the session key (inFlightIDs) under which the id is
	// claimed in flight across the session's POSTs; "" for none.
	claimed  string
	recorded bool // in the store: its answer may come on a resumed stream
}

func (g *Guard) newExchange(r *http.Request, x *Exchange, set rules.MCPSettings) *exchange {
	ex := &exchange{g: g, x: x, set: set, pending: map[string]*call{}, params: paramHeaderValues(r.Header),
		revision: r.Header.Get("MCP-Protocol-Version"), session: r.Header.Get("Mcp-Session-Id")}
	ex.held.ex = ex
	return ex
}

func (ex *exchange) server() string { return ex.x.Server }

// serve decides every message of the POST, forwards the ones that pass and
// answers the rest.
func (ex *exchange) serve(w http.ResponseWriter, r *http.Request, body wire.Body, raw []byte) {
	ex.learnSession(r, body)
	if ex.refuseWhole(w, r, body) {
		return
	}
	var buf [4][]byte // most POSTs carry one message: no allocation for the list
	keep, d := ex.decideAll(w, r, body, buf[:0])
	ex.send(w, r, body, raw, keep, d)
}

// learnSession finds the POST's session and revision: the headers', a
// 2024-11-05 session's (its GET stream), or, for a request that carries
// no header, what the session negotiated.
func (ex *exchange) learnSession(r *http.Request, body wire.Body) {
	ex.legacy = ex.g.legacyStream(ex.x, r)
	if ex.legacy != nil && ex.session == "" {
		ex.session = legacyKey(r.URL)
	}
	if ex.revision == "" {
		ex.revision = wire.MetaRevision(body)
	}
	if ex.revision == "" {
		// Only the first requests of a session go without the header:
		// the session knows what was negotiated.
		if ex.legacy != nil {
			ex.revision = "2024-11-05"
		} else if s, ok := ex.g.State.Session(ex.sessionKey()); ok && ex.session != "" {
			ex.revision = s.Revision
		}
	}
}

// refuseWhole refuses a POST that is refused as a whole (a batch where
// the revision has none, headers that disagree with the body), answering
// each of its requests; it reports whether it did.
func (ex *exchange) refuseWhole(w http.ResponseWriter, r *http.Request, body wire.Body) bool {
	if body.Batch && ex.revision >= "2025-06-18" {
		ex.refuseAll(w, body, http.StatusBadRequest, wire.CodeInvalidRequest, "builtin:mcp-batch",
			"JSON-RPC batches are not part of MCP "+ex.revision)
		return true
	}
	if why := headerMismatch(r.Header, body, wire.MetaRevision(body)); why != "" {
		ex.refuseAll(w, body, http.StatusBadRequest, wire.CodeHeaderMismatch, "builtin:mcp-header-mismatch", why)
		return true
	}
	if why := ex.paramMismatch(r.Header, body); why != "" { // params.go
		ex.refuseAll(w, body, http.StatusBadRequest, wire.CodeHeaderMismatch, "builtin:mcp-header-mismatch", why)
		return true
	}
	return false
}

// decided is what became of a POST's messages besides the ones to send
// on: agentg's own answers (extra), whether the body sent on differs from
// the one read, and the stream agentg opened to the client while calls
// were held (nil if none).
type decided struct {
	extra   [][]byte
	changed bool
	opened  *respWriter
}

// decideAll decides every message of the POST and waits for the calls an
// approve rule holds: no byte goes upstream before each is decided. The
// messages to send on (perhaps rewritten) are appended to keep.
func (ex *exchange) decideAll(w http.ResponseWriter, r *http.Request, body wire.Body, keep [][]byte) ([][]byte, decided) {
	var d decided
	var kept []*wire.Message
	for _, m := range body.Messages {
		out, answer := ex.decide(m)
		switch {
		case answer != nil:
			d.extra = append(d.extra, answer)
			d.changed = true
		case out != nil:
			d.changed = d.changed || !bytes.Equal(out, m.Raw)
			keep = append(keep, out)
			kept = append(kept, m)
		default:
			d.changed = true // dropped unanswered: the body sent on must not carry it
		}
	}
	if len(ex.held.calls) > 0 {
		// No byte goes upstream before every held call is decided.
		d.opened = ex.held.awaitHolds(w, r)
		n := len(keep)
		if keep, d.extra = ex.held.settle(keep, kept, d.extra); len(keep) != n {
			d.changed = true
		}
	}
	return keep, d
}

// send answers the POST as decided: agentg's answers alone when nothing
// goes to the server, else the messages kept, through the exchange's
// Upstream, with the server's answer rewritten on its way back.
func (ex *exchange) send(w http.ResponseWriter, r *http.Request, body wire.Body, raw []byte, keep [][]byte, d decided) {
	extra, opened := d.extra, d.opened
	if ex.legacy != nil {
		// HTTP+SSE: every answer goes on the session's GET stream; the
		// POST itself only ever gets 202.
		for _, m := range extra {
			ex.legacy.inject(m)
		}
		extra = nil
		if len(keep) == 0 {
			w.WriteHeader(http.StatusAccepted)
			return
		}
	}
	if len(keep) == 0 {
		// Nothing for the server: agentg answers alone.
		if opened != nil {
			for _, m := range extra {
				opened.injectEvent(wire.MessageEvent(m))
			}
		} else {
			writeAnswers(w, body.Batch, extra)
		}
		ex.finish(nil)
		return
	}
	if d.changed {
		raw = keep[0]
		if body.Batch || len(keep) > 1 {
			raw = wire.EncodeBatch(keep)
		}
	}
	rw := opened
	if rw == nil {
		rw = newRespWriter(r.Context(), w, ex.rewriteServer, extra, int(ex.set.MaxMessage))
	} else {
		rw.extra = extra
	}
	rw.onHeader = ex.sawHeader
	rw.onRefused = ex.g.refusedEvent(ex.x)
	rw.onSent = func(delivered bool) { ex.sent.flush(ex.g, delivered) }
	if ex.x.Governed() || rw.opened {
		rw.strict, rw.withhold = true, func(err error) []byte { return ex.withheld(err, body.Batch, extra) }
	}
	rw.ack = ex.legacy != nil
	// finish runs even when the forwarder ends the handler with a panic
	// (ErrAbortHandler): no writer outlives the handler.
	defer func() { ex.finish(rw.finish()) }()
	forwardBody(rw, r, raw, ex.x.Upstream)
}

// decide is the verdict on one client message: the bytes to forward
// (perhaps rewritten), or agentg's own answer to it. The leak guard is
// asked first (enforce.go, leak): a held value or a placeholder that may
// not go where the message goes refuses it, whatever else would decide.
func (ex *exchange) decide(m *wire.Message) (forward, answer []byte) {
	lv := ex.policy().leak(m)
	if lv.Action == rules.Deny {
		return nil, ex.refuseLeak(m, lv)
	}
	if lv.swap != nil {
		// The message's event names the secrets swapped in (event).
		names := make([]string, 0, len(lv.swap))
		for n := range lv.swap {
			names = append(names, n)
		}
		slices.Sort(names)
		ex.swapping = strings.Join(names, ",")
		defer func() { ex.swapping = "" }()
	}
	forward, answer = ex.decideMessage(m)
	if lv.swap != nil && forward != nil {
		forward = []byte(creds.SwapPlaceholders(string(forward), lv.swap, creds.JSONEscape))
	}
	return forward, answer
}

// refuseLeak refuses m for the leak guard: one event naming the secret,
// and for a request a JSON-RPC error in its framing (a notification or
// an answer is dropped: nothing could carry a refusal).
func (ex *exchange) refuseLeak(m *wire.Message, lv leakVerdict) []byte {
	ev := ex.event(m)
	ev.Decision, ev.Rule, ev.Reason, ev.Credential = "deny", lv.Rule, lv.Reason, lv.secret
	ev.MCP.Args = string(m.Args) // masked as every event is (emit)
	var answer []byte
	if m.Kind == wire.KindRequest {
		ev.MCP.ErrorCode = wire.CodeDenied
		answer = wire.ErrorResponse(m.ID, wire.CodeDenied, "agentg: "+lv.Reason, map[string]any{"rule": lv.Rule})
	}
	ex.g.emit(ev)
	return answer
}

// decideMessage decides m once the leak guard let it through.
func (ex *exchange) decideMessage(m *wire.Message) (forward, answer []byte) {
	if m.Kind == wire.KindNotification && !strings.HasPrefix(m.Method, "notifications/") {
		// A request method sent without an id ("tools/call" as a
		// notification): a server may still run it, and no answer could
		// carry a refusal, so it never passes.
		ev := ex.event(m)
		ev.Decision, ev.Rule = "deny", "builtin:mcp-notification"
		ev.Reason = "method " + m.Method + " sent as a notification (no id): it cannot be decided and answered"
		ex.g.emit(ev)
		return nil, nil
	}
	if ex.held.takeElicitAnswer(m) {
		return nil, nil // an answer to agentg's own elicitation (elicit.go): never the server's
	}
	if m.Kind != wire.KindRequest {
		// Notifications, and the client's answers to the server: nothing
		// to decide, but redacted like any message (redactmsg.go).
		return ex.g.redactPassing(ex.x, m, false, ex.session, ex.revision), nil
	}
	c := &call{m: m, start: ex.g.now(), tool: m.Tool, legacy: ex.legacy != nil}
	c.ev = ex.event(m)
	switch {
	case m.Method == "tasks/result":
		ex.followTask(c)
	case m.InputResponses != nil || m.RequestState != "":
		ex.followRetry(c)
	}
	v := ex.decideRequest(c)
	if v.stop {
		return nil, v.answer
	}
	return ex.admit(c, &v)
}

// requestVerdict is what decideRequest made of one client request.
type requestVerdict struct {
	out    []byte // the request to send on
	answer []byte // with stop: agentg's own answer, if any
	stop   bool   // it goes no further: answer is all the client gets
	hold   bool   // an approve rule holds it, with verdict held
	held   callVerdict
}

// decideRequest decides one client request, c, and applies its
// obligations.
func (ex *exchange) decideRequest(c *call) (v requestVerdict) {
	m := c.m
	if m.Method == "tools/call" {
		return ex.decideToolCall(c)
	}
	if d, ok := ex.policy().decideRead(m); ok { // prompts/get, resources/read
		c.ev.Decision, c.ev.Rule, c.ev.RuleSource, c.ev.Reason = d.Outcome(), d.Rule, d.Source, d.Reason
		if !d.Allowed() {
			// Never as a tool result (deny_as): neither answer has one.
			c.ev.MCP.ErrorCode = wire.CodeDenied
			ex.g.emit(c.ev)
			v.answer, v.stop = wire.ErrorResponse(m.ID, wire.CodeDenied, deniedReadMessage(d, m), map[string]any{"rule": d.Rule}), true
			return v
		}
	} else {
		c.ev.Decision, c.ev.Rule = "allow", "mcp:method"
	}
	if v.out, v.answer = ex.redactRequest(c, messageRedactions(ex.x, false)); v.answer != nil {
		v.out, v.stop = nil, true
	}
	return v
}

// decideToolCall decides one tools/call, c, as decideRequest does.
func (ex *exchange) decideToolCall(c *call) (rv requestVerdict) {
	m := c.m
	v := ex.policy().decideCall(m)
	ex.link(c, &v) // the model turn that asked for it, or unrequested (llmlink.go)
	c.ev.Decision, c.ev.Rule, c.ev.RuleSource, c.ev.Reason = v.Outcome(), v.Rule, v.Source, v.Reason
	c.ev.MCP.RateLimit = v.limited
	if !v.Allowed() && v.Action != rules.Approve {
		msg := deniedMessage(v, ex.server()+"."+m.Tool)
		if ex.set.DenyAs == rules.DenyAsResult {
			rv.answer = wire.ToolErrorResult(m.ID, msg)
		} else {
			c.ev.MCP.ErrorCode = wire.CodeDenied
			rv.answer = wire.ErrorResponse(m.ID, wire.CodeDenied, msg, map[string]any{"rule": v.Rule})
		}
		c.ev.MCP.Args = eventArgs(m, scoped(v.Redactions, true))
		ex.g.emit(c.ev)
		rv.stop = true
		return rv
	}
	// The whole call is redacted, by the redactions covering its tool.
	out, answer := ex.redactRequest(c, scoped(v.Redactions, true))
	if answer != nil {
		rv.answer, rv.stop = answer, true
		return rv
	}
	c.ev.MCP.Args = string(m.Args)
	if c.ev.MCP.Redactions != nil {
		c.ev.MCP.Args = argsOf(out, ex.set)
	}
	if v.Action != rules.Approve {
		ex.g.State.CountCall(ex.server(), m.Tool)
		rv.out = out
		return rv
	}
	// 2026-07-28 asks the client's user by input_required
	// (inputrequired.go); otherwise the call waits here.
	switch verdict, b := ex.held.inBand(c, v, out, c.ev.MCP.Args); verdict {
	case inBandAnswer:
		rv.answer, rv.stop = b, true
	case inBandForward, inBandHeld:
		rv.out = b
	default:
		rv.out, rv.hold, rv.held = b, true, v
	}
	return rv
}

// admit takes a request decided to go on (v.out) into the exchange's
// requests in flight, refusing a second one with its id, and starts the
// approval of one held.
func (ex *exchange) admit(c *call, v *requestVerdict) (forward, answer []byte) {
	if ex.legacy != nil {
		if !ex.legacy.add(c) {
			return nil, ex.duplicate(c)
		}
		if v.hold {
			ex.held.holdCall(c, v.held, c.ev.MCP.Args)
		}
		return v.out, nil
	}
	if !ex.track(c) {
		return nil, ex.duplicate(c)
	}
	if v.hold {
		ex.held.holdCall(c, v.held, c.ev.MCP.Args) // decided in serve, before anything goes upstream
	}
	return v.out, nil
}

func (ex *exchange) sessionKey() store.SessionKey {
	return store.SessionKey{Server: ex.x.stateServer(), ID: ex.session}
}

// sawHeader takes the session id a server assigns in its answer to
// initialize, so the session (and its negotiated revision) is known, and
// records the calls in flight when the answer is a stream.
func (ex *exchange) sawHeader(h http.Header) {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if id := h.Get("Mcp-Session-Id"); id != "" && ex.session == "" {
		ex.session = id
		for _, c := range ex.pending {
			c.ev.MCP.Session = id
		}
	}
	if mt, _, _ := mime.ParseMediaType(h.Get("Content-Type")); mt == "text/event-stream" && ex.session != "" {
		ex.recordLocked()
	}
}

// recordLocked puts the calls still waiting into the store. A stateful
// session's SSE answer may be cut and resumed on a GET (Last-Event-ID),
// where the answer is matched, and rewritten, by what the store
// remembers. A JSON answer always comes on this POST, so those calls are
// never recorded: the store is written only when a stream could need it.
func (ex *exchange) recordLocked() {
	k := ex.sessionKey()
	for id, c := range ex.pending {
		err := ex.g.State.BeginRequest(store.Request{Session: k, ID: []byte(id),
			Method: c.m.Method, Tool: c.tool, Agent: ex.x.Agent, Start: c.start, EventID: c.ev.ID})
		switch {
		case err == nil:
			c.recorded = true
		case errors.Is(err, store.ErrDuplicateID):
			// Another POST of this session has the same id in flight: a
			// resumed answer could belong to either, so neither is
			// remembered and such an answer is withheld as unmatched.
			ex.g.State.EndRequest(k, []byte(id))
		}
		// Otherwise (the session's bound is reached) the call is answered
		// on this stream as usual; only a resumed answer to it is withheld.
	}
}

// withheld is what the client gets for an answer agentg withheld (see
// withhold.go): an error for each of its requests still waiting, with
// agentg's own answers, and an event saying why.
func (ex *exchange) withheld(err error, batch bool, extra [][]byte) []byte {
	const rule = ruleAnswerType
	ev := ex.g.lifecycleEvent(ex.x, ActionRefusedAnswer, "")
	ev.Decision, ev.Rule, ev.Reason, ev.Status = "deny", rule, err.Error(), http.StatusBadGateway
	ev.MCP.Session, ev.MCP.Revision = ex.session, ex.revision
	ex.g.emit(ev)
	ex.mu.Lock()
	msgs := extra
	for _, c := range ex.pending {
		c.ev.MCP.ErrorCode = wire.CodeInternalError
		msgs = append(msgs, wire.ErrorResponse(c.m.ID, wire.CodeInternalError, "agentg: "+err.Error(), map[string]any{"rule": rule}))
	}
	ex.mu.Unlock()
	switch {
	case len(msgs) == 0:
		return wire.ErrorResponse(nil, wire.CodeInternalError, "agentg: "+err.Error(), map[string]any{"rule": rule})
	case len(msgs) == 1 && !batch:
		return msgs[0]
	}
	return mergeBatch(nil, msgs)
}

// writeAnswers writes agentg's own answers when nothing went to the server.
func writeAnswers(w http.ResponseWriter, batch bool, msgs [][]byte) {
	var out []byte
	if batch || len(msgs) != 1 {
		out = mergeBatch(nil, msgs)
	} else {
		out = msgs[0]
	}
	if len(msgs) == 0 {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(out)
}

// refuseAll answers every request of a body refused as a whole.
func (ex *exchange) refuseAll(w http.ResponseWriter, body wire.Body, status, code int, rule, why string) {
	var msgs [][]byte
	for _, m := range body.Messages {
		if m.Kind != wire.KindRequest {
			continue
		}
		ev := ex.event(m)
		ev.Decision, ev.Rule, ev.Reason = "deny", rule, why
		ev.MCP.ErrorCode = code
		ex.g.emit(ev)
		msgs = append(msgs, wire.ErrorResponse(m.ID, code, "agentg: "+why, map[string]any{"rule": rule}))
	}
	if len(msgs) == 0 {
		msgs = append(msgs, wire.ErrorResponse(nil, code, "agentg: "+why, map[string]any{"rule": rule}))
	}
	out := msgs[0]
	if body.Batch {
		out = mergeBatch(nil, msgs)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(out)
}

// rewriteServer rewrites what the server sends on this POST's answer:
// answers to this POST's requests get their results filtered and redacted.
func (ex *exchange) rewriteServer(data []byte) ([]byte, error) {
	return answers{g: ex.g, x: ex.x, set: ex.set, q: &ex.sent}.rewrite(data, ex.lookup)
}

func (ex *exchange) lookup(id jsontext.Value) *call {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	k := wire.IDKey(id)
	c := ex.pending[k]
	delete(ex.pending, k)
	if c != nil {
		ex.untrackLocked(c)
	}
	if c != nil && c.recorded {
		// Ended once the answer has reached the client: one lost with
		// a cut stream still matches when the server replays it.
		ex.sent.end(ex.sessionKey(), k)
	}
	return c
}

// finish writes the events of requests whose answers never came.
func (ex *exchange) finish(err error) {
	ex.sent.flush(ex.g, false)
	ex.mu.Lock()
	defer ex.mu.Unlock()
	for id, c := range ex.pending {
		if err != nil {
			c.ev.Error = err.Error()
		}
		ex.g.emit(c.ev)
		ex.untrackLocked(c)
		delete(ex.pending, id)
	}
}

// eventQueue holds the events of answers already rewritten until the
// answer has been written to the client, so that writing the log is not on
// the answer's path, and the in-flight records those answers matched,
// which end only if the answer got there. Its zero value is ready.
type eventQueue struct {
	mu   sync.Mutex
	evs  []*audit.Event
	ends []inFlight
}

type inFlight struct {
	session store.SessionKey
	id      string
}

func (q *eventQueue) add(ev *audit.Event) {
	q.mu.Lock()
	q.evs = append(q.evs, ev)
	q.mu.Unlock()
}

// end ends the record of request id in session k at the next flush, if
// the answer was delivered by then.
func (q *eventQueue) end(k store.SessionKey, id string) {
	q.mu.Lock()
	q.ends = append(q.ends, inFlight{k, id})
	q.mu.Unlock()
}

// flush writes the events held, and ends the records held if what was
// written reached the client; if not, they stay (until their session ends
// or they expire) for the server's replay on a resumed stream.
func (q *eventQueue) flush(g *Guard, delivered bool) {
	q.mu.Lock()
	evs, ends := q.evs, q.ends
	q.evs, q.ends = nil, nil
	q.mu.Unlock()
	for _, ev := range evs {
		g.emit(ev)
	}
	if delivered {
		for _, r := range ends {
			g.State.EndRequest(r.session, []byte(r.id))
		}
	}
}

// event starts the event of one client request.
func (ex *exchange) event(m *wire.Message) *audit.Event {
	ev := ex.g.newEvent(ex.x)
	ev.Method = m.Method
	ev.MCP = &audit.MCP{Server: ex.server(), Session: ex.session, Revision: ex.revision, Tool: m.Tool, Prompt: m.Prompt, URI: m.URI}
	ev.Credential = ex.swapping
	return ev
}

func (g *Guard) emit(ev *audit.Event) {
	ev.Duration = g.now().Sub(ev.Time)
	if g.Leaks.Active() {
		// An event never shows a value agentg holds: one that may go
		// where it went is in the arguments or the path as sent.
		ev.Path, ev.Reason = g.Leaks.Mask(ev.Path), g.Leaks.Mask(ev.Reason)
		if ev.MCP != nil {
			ev.MCP.Args, ev.MCP.URI = g.Leaks.Mask(ev.MCP.Args), g.Leaks.Mask(ev.MCP.URI)
		}
	}
	g.Log.Log(ev)
}

func (g *Guard) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

// scoped converts the policy's redactions of one scope for the codec.
func scoped(rs []rules.Redaction, arguments bool) []wire.Redaction {
	var out []wire.Redaction
	for _, r := range rs {
		if arguments && r.Arguments || !arguments && r.Results {
			out = append(out, wire.Redaction{ID: r.ID, Pattern: r.Pattern})
		}
	}
	return out
}

// headerMismatch checks 2026-07-28's Mcp-Method and Mcp-Name headers
// against the body they mirror. A header that is absent is not a
// mismatch: the body is what the server executes, so the body is what is
// decided.
func headerMismatch(h http.Header, body wire.Body, bodyRevision string) string {
	method, hasMethod := h["Mcp-Method"]
	name, hasName := h["Mcp-Name"]
	header := h.Get("MCP-Protocol-Version")
	if header != "" && bodyRevision != "" && header != bodyRevision {
		return "MCP-Protocol-Version header " + header + " does not match the body's protocol version " + bodyRevision
	}
	if !hasMethod && !hasName {
		if header >= "2026-07-28" && len(body.Messages) == 1 && body.Messages[0].Kind == wire.KindRequest {
			// A request that declares 2026-07-28 must mirror its method
			// (and name): the server refuses it otherwise, and so does
			// agentg, before it reaches the server.
			return "a " + header + " request without the Mcp-Method header"
		}
		return ""
	}
	if body.Batch || len(body.Messages) != 1 {
		return "Mcp-Method and Mcp-Name headers on a body of more than one message"
	}
	m := body.Messages[0]
	if hasMethod && (len(method) != 1 || method[0] != m.Method) {
		return "Mcp-Method header " + quoteAll(method) + " does not match the body's method " + m.Method
	}
	if !hasName && header >= "2026-07-28" && (m.Method == "tools/call" || m.Method == "resources/read" || m.Method == "prompts/get") {
		return "a " + header + " " + m.Method + " without the Mcp-Name header"
	}
	if hasName {
		want := m.Tool
		switch m.Method {
		case "resources/read":
			want = m.URI
		case "prompts/get":
			want = m.Prompt
		}
		got, ok := decodeSentinel(name)
		if !ok || got != want {
			return "Mcp-Name header " + quoteAll(name) + " does not match the body's name " + want
		}
	}
	return ""
}

// decodeSentinel reads an Mcp-Name value, undoing the =?base64?…?= form.
func decodeSentinel(vs []string) (string, bool) {
	if len(vs) != 1 {
		return "", false
	}
	v := vs[0]
	if inner, ok := strings.CutPrefix(v, "=?base64?"); ok {
		inner, ok = strings.CutSuffix(inner, "?=")
		if !ok {
			return "", false
		}
		b, err := base64.StdEncoding.DecodeString(inner)
		if err != nil {
			return "", false
		}
		return string(b), true
	}
	return v, true
}

func quoteAll(vs []string) string { return `"` + strings.Join(vs, `", "`) + `"` }

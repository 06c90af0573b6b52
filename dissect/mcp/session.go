package mcp

import (
	"bytes"
	"context"
	"errors"
	"sync"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/agentg/agentg/dissect/mcp/wire"
	store "github.com/agentg/agentg/state"
)

// Session is the guard on a message stream: MCP that comes one JSON-RPC
// message at a time in each direction, with no HTTP around it (the stdio
// transport under `agentg wrap`, a stdio child of the gateway). It is the
// door-agnostic entry beside Serve, and no second decision path: every
// client message goes through the exchange's decide (and so enforce.go),
// every server message through the answers' rewrite, exactly as the
// messages of a POST and of its answer do. The Session is one exchange
// that lasts as long as the stream, so its requests in flight are matched
// to their answers across lines.
//
// The caller reads lines and hands each over (FromClient, FromServer); the
// Session writes what passes with ToServer and ToClient, which must each
// be safe to call from more than one goroutine (a held call is answered
// from its own). There is no Content-Type on such a stream: every line is
// read by the strict codec under mcp.max_message, and a line that cannot
// be read is refused, never forwarded (an error back to its sender when it
// has a readable id).
type Session struct {
	g        *Guard
	ex       *exchange
	toServer func([]byte) error
	toClient func([]byte) error

	ctx    context.Context // ends with Close: held calls are refused
	cancel context.CancelFunc
	mu     sync.Mutex // one client line decided at a time, in order
	held   sync.WaitGroup
	closed bool
}

// SessionIO is where a Session writes: one JSON-RPC message (or batch)
// per call, without a line end (the caller frames it).
type SessionIO struct {
	ToServer func(msg []byte) error
	ToClient func(msg []byte) error
}

// NewSession starts the guard on one message stream. x says who and where
// as for Serve (Door names the door: "wrap", "gateway"); x.Upstream is not
// used: what passes goes to io.ToServer. x.Server should name the server:
// on a stream there is no destination to tell one server from another.
func (g *Guard) NewSession(x Exchange, io SessionIO) *Session {
	set := x.Engine.MCP().MCPSettings
	if x.URL == "" {
		x.URL = "stdio:" + x.Server // for the inventory: where it was seen
	}
	ex := &exchange{g: g, x: &x, set: set, pending: map[string]*call{},
		// A stream is one session from its first line to its last; the
		// id is agentg's own (no server names one on stdio), so that the
		// session's revision, elicitation and in-flight ids are kept as
		// an HTTP session's are.
		session: "stdio-" + g.Log.NewID()}
	ex.held.ex = ex
	ctx, cancel := context.WithCancel(context.Background())
	s := &Session{g: g, ex: ex, toServer: io.ToServer, toClient: io.ToClient, ctx: ctx, cancel: cancel}
	g.sawServer(&x, store.ServerSighting{}, "")
	return s
}

// ID is the session id events of this stream carry.
func (s *Session) ID() string { return s.ex.session }

// FromClient decides one line the client sent: what passes is written to
// the server, agentg's own answers (refusals) to the client. A call held
// for approval waits in its own goroutine, so the lines after it are
// decided meanwhile (an answer to the server's sampling request, a
// cancellation).
func (s *Session) FromClient(line []byte) {
	if blank(line) {
		return // nothing to read, and nothing is forwarded
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	ex := s.ex
	body, err := wire.Parse(line, wire.Limits{MaxMessage: int(ex.set.MaxMessage)})
	if err != nil {
		s.refuseClientLine(line, err)
		return
	}
	ex.revision = wire.MetaRevision(body)
	if ex.revision == "" {
		ex.revision = s.negotiated()
	}
	if body.Batch && ex.revision >= "2025-06-18" {
		s.refuseBatch(body)
		return
	}
	var keep, extra [][]byte
	var kept []*wire.Message
	for _, m := range body.Messages {
		out, answer := ex.decide(m)
		switch {
		case answer != nil:
			extra = append(extra, answer)
		case out != nil:
			keep = append(keep, out)
			kept = append(kept, m)
		}
	}
	held := ex.held.calls
	ex.held.calls = nil
	if len(held) == 0 {
		s.send(body.Batch, keep, kept, extra)
		return
	}
	// No byte of a held call goes on before it is decided; the other
	// messages of its line (a batch) wait with it, as a POST's do.
	s.held.Add(1)
	go func() {
		defer s.held.Done()
		hd := holding{ex: ex, calls: held}
		hd.wait(s.ctx)
		keep, extra := hd.settle(keep, kept, extra)
		var still []*wire.Message
		for _, m := range kept {
			if ex.isPending(m) || m.Kind != wire.KindRequest {
				still = append(still, m)
			}
		}
		s.send(body.Batch, keep, still, extra)
	}()
}

// send writes what a client line left to go: the messages kept to the
// server, agentg's answers to the client. A server that cannot be written
// to fails the requests that were to go.
func (s *Session) send(batch bool, keep [][]byte, kept []*wire.Message, extra [][]byte) {
	if len(keep) > 0 {
		out := keep[0]
		if batch {
			out = wire.EncodeBatch(keep)
		}
		// A call is a cause from before its first byte reaches the
		// server: the server may reach the network at once.
		for _, m := range kept {
			if c := s.ex.peek(m); c != nil && c.m.Method == "tools/call" {
				s.g.causes.begin(s.ex.server(), c.ev.ID, c.tool)
			}
		}
		if err := s.toServer(out); err != nil {
			for _, m := range kept {
				if m.Kind == wire.KindRequest {
					if c := s.lookup(m.ID); c != nil {
						extra = append(extra, s.failCall(c, err))
					}
				}
			}
		}
	}
	s.answer(batch, extra)
}

// answer writes agentg's own answers to the client: a batch's as one
// array, as JSON-RPC answers a batch.
func (s *Session) answer(batch bool, msgs [][]byte) {
	switch {
	case len(msgs) == 0:
	case batch:
		s.toClient(wire.EncodeBatch(msgs))
	default:
		for _, m := range msgs {
			s.toClient(m)
		}
	}
}

// FromServer rewrites one line the server sent (answers filtered and
// redacted, the call's event written once the answer is out) and writes it
// to the client. A line that cannot be read never reaches the client: it
// is refused with an event, and a request of the client's it answers (when
// its id can be read) gets an error in its place.
func (s *Session) FromServer(line []byte) {
	if blank(line) {
		return
	}
	a := answers{g: s.g, x: s.ex.x, set: s.ex.set, q: &s.ex.sent}
	out, err := a.rewrite(line, s.lookup)
	if err != nil {
		s.g.logRefusal(s.ex.x, "builtin:mcp-parse", "refused a line from the server: "+err.Error(), 0)
		if id := lenientID(line); id != nil {
			if c := s.lookup(id); c != nil {
				s.toClient(s.failCall(c, errors.New("the server's answer cannot be read: "+err.Error())))
			}
		}
		return
	}
	delivered := true
	if out != nil {
		delivered = s.toClient(out) == nil
	}
	s.ex.sent.flush(s.g, delivered)
}

// lookup takes the call an answer answers, ending its cause.
func (s *Session) lookup(id jsontext.Value) *call {
	c := s.ex.lookup(id)
	if c != nil && c.m.Method == "tools/call" {
		s.g.causes.end(s.ex.server(), c.ev.ID)
	}
	return c
}

// Close ends the session: held calls are refused, and every request
// still waiting for the server gets an error (why) and its event. It
// returns when no held call is left.
func (s *Session) Close(why error) {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.held.Wait()
	ex := s.ex
	ex.sent.flush(s.g, false)
	ex.mu.Lock()
	var waiting []*call
	for id, c := range ex.pending {
		waiting = append(waiting, c)
		ex.untrackLocked(c)
		delete(ex.pending, id)
	}
	ex.mu.Unlock()
	for _, c := range waiting {
		if c.m.Method == "tools/call" {
			s.g.causes.end(ex.server(), c.ev.ID)
		}
		s.toClient(s.failCall(c, why))
	}
}

// failCall writes the event of a call that will get no answer from the
// server and returns the error the client gets for it.
func (s *Session) failCall(c *call, why error) []byte {
	msg := "the server is gone"
	if why != nil {
		msg = why.Error()
	}
	c.ev.Error = msg
	c.ev.MCP.ErrorCode = wire.CodeInternalError
	s.g.emit(c.ev)
	return wire.ErrorResponse(c.m.ID, wire.CodeInternalError, "agentg: "+msg, map[string]any{"rule": ruleStreamGone})
}

// ruleStreamGone names the error of a request whose server went away (or
// could not be written to) before it answered.
const ruleStreamGone = "builtin:mcp-server-gone"

// refuseClientLine refuses a line of the client's that the codec cannot
// read: an error for its id when one can be read (null otherwise), and an
// event. Nothing of it reaches the server.
func (s *Session) refuseClientLine(line []byte, err error) {
	code, msg := wire.CodeParseError, err.Error()
	if pe, ok := err.(*wire.ParseError); ok {
		code = pe.Code
	}
	if err == wire.ErrTooLarge {
		code = wire.CodeInvalidRequest
	}
	s.g.logRefusal(s.ex.x, "builtin:mcp-parse", "refused a line from the client: "+msg, 0)
	id := lenientID(line)
	if id == nil && code != wire.CodeParseError {
		return // a message with no id is a notification's: nothing to answer
	}
	s.toClient(wire.ErrorResponse(id, code, "agentg: "+msg, map[string]any{"rule": "builtin:mcp-parse"}))
}

// refuseBatch answers each request of a batch sent where the revision has
// none.
func (s *Session) refuseBatch(body wire.Body) {
	const rule = "builtin:mcp-batch"
	why := "JSON-RPC batches are not part of MCP " + s.ex.revision
	var msgs [][]byte
	for _, m := range body.Messages {
		if m.Kind != wire.KindRequest {
			continue
		}
		ev := s.ex.event(m)
		ev.Decision, ev.Rule, ev.Reason = "deny", rule, why
		ev.MCP.ErrorCode = wire.CodeInvalidRequest
		s.g.emit(ev)
		msgs = append(msgs, wire.ErrorResponse(m.ID, wire.CodeInvalidRequest, "agentg: "+why, map[string]any{"rule": rule}))
	}
	s.answer(true, msgs)
}

// negotiated is the revision the session's initialize settled, once
// answered.
func (s *Session) negotiated() string {
	if st, ok := s.g.State.Session(s.ex.sessionKey()); ok {
		return st.Revision
	}
	return ""
}

// isPending reports whether request m is still waiting for its answer.
func (ex *exchange) isPending(m *wire.Message) bool { return ex.peek(m) != nil }

// peek is the call in flight for request m, if any, left in place.
func (ex *exchange) peek(m *wire.Message) *call {
	if m.Kind != wire.KindRequest {
		return nil
	}
	ex.mu.Lock()
	defer ex.mu.Unlock()
	return ex.pending[m.IDKey()]
}

func blank(line []byte) bool {
	for _, b := range line {
		if b != ' ' && b != '\t' && b != '\r' && b != '\n' {
			return false
		}
	}
	return true
}

// lenientID reads the top-level "id" of a line the strict codec refused,
// so that its sender can be told which request failed. Only a string or a
// number is taken; anything else gives nil (the error goes with id null).
func lenientID(line []byte) jsontext.Value {
	dec := jsontext.NewDecoder(bytes.NewReader(line), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return nil
	}
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil || tok.Kind() != '"' {
			return nil
		}
		name := tok.String() // before the next read voids the token
		v, err := dec.ReadValue()
		if err != nil {
			return nil
		}
		if name == "id" && (v.Kind() == '"' || v.Kind() == '0') {
			return append(jsontext.Value(nil), v...)
		}
	}
	return nil
}

// RefuseLine refuses a line the reader could not take whole (longer than
// mcp.max_message, cut by the stream's end): an event, and, from the
// client, an error with id null, as no id could be read. Nothing of the
// line is forwarded.
func (s *Session) RefuseLine(fromClient bool, err error) {
	from := "the server"
	if fromClient {
		from = "the client"
	}
	s.g.logRefusal(s.ex.x, "builtin:mcp-parse", "refused a line from "+from+": "+err.Error(), 0)
	if fromClient {
		s.toClient(wire.ErrorResponse(nil, wire.CodeInvalidRequest, "agentg: "+err.Error(), map[string]any{"rule": "builtin:mcp-parse"}))
	}
}

// MaxLine is the longest line the session reads: mcp.max_message.
func (s *Session) MaxLine() int { return int(s.ex.set.MaxMessage) }

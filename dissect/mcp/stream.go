package mcp

import (
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/dissect/mcp/wire"
	"github.com/agentg/agentg/rules"
	store "github.com/agentg/agentg/state"
)

// GET streams. A Streamable HTTP GET carries the server's own requests and
// notifications, and, when a client resumes a broken stream, answers to
// its earlier requests. A 2024-11-05 HTTP+SSE GET is the session itself:
// its first event names the endpoint the client POSTs to, and every answer
// comes back on it, so a POST to that endpoint is answered 202 and an
// error agentg gives is injected into this stream.

// stream is one open GET stream, where answers and injected errors go.
type stream struct {
	rw      *respWriter
	sent    eventQueue // events of answers rewritten, written once sent
	mu      sync.Mutex
	pending map[string]*call // by IDKey
}

// add puts c among the requests in flight on the stream, by IDKey as
// everywhere; it reports false, adding nothing, when one with an equal id
// already is.
func (s *stream) add(c *call) bool {
	k := c.m.IDKey()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.pending[k]; dup {
		return false
	}
	s.pending[k] = c
	return true
}

func (s *stream) take(id jsontext.Value) *call {
	k := wire.IDKey(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.pending[k]
	delete(s.pending, k)
	return c
}

// inject sends one message of agentg's on the stream.
func (s *stream) inject(msg []byte) { s.rw.injectEvent(wire.MessageEvent(msg)) }

func (g *Guard) serveStream(w http.ResponseWriter, r *http.Request, x *Exchange, set rules.MCPSettings) {
	st := &stream{pending: map[string]*call{}}
	base := *r.URL
	var endpoint string
	session := r.Header.Get("Mcp-Session-Id")
	lookup := func(id jsontext.Value) *call {
		if c := st.take(id); c != nil {
			return c
		}
		if session == "" {
			return nil
		}
		// An answer replayed on a resumed stream, to a call an earlier
		// POST carried. Its record ends once the answer has reached the
		// client, as on the POST.
		k, key := store.SessionKey{Server: x.stateServer(), ID: session}, wire.IDKey(id)
		req, ok := g.State.InFlight(k, []byte(key))
		if !ok {
			return nil
		}
		st.sent.end(k, key)
		return g.resumedCall(x, req)
	}
	rewrite := func(data []byte) ([]byte, error) {
		return answers{g: g, x: x, set: set, q: &st.sent}.rewrite(data, lookup)
	}
	st.rw = newRespWriter(r.Context(), w, rewrite, nil, int(set.MaxMessage))
	st.rw.onSent = func(delivered bool) { st.sent.flush(g, delivered) }
	st.rw.onRefused = g.refusedEvent(x)
	if x.Governed() || session != "" {
		// An MCP stream, whatever its header says: the Go SDK's
		// 2024-11-05 client reads any 2xx body of its GET as an event
		// stream, the TypeScript one any type that starts with
		// text/event-stream. One agentg does not read as an event
		// stream passes only if it carries nothing (withhold.go).
		st.rw.strict, st.rw.stream = true, true
		st.rw.withhold = func(err error) []byte {
			g.logRefusal(x, ruleAnswerType, err.Error(), http.StatusBadGateway)
			return wire.ErrorResponse(nil, wire.CodeInternalError, "agentg: "+err.Error(), map[string]any{"rule": ruleAnswerType})
		}
	}
	if !x.Governed() && session == "" {
		// Nothing says this stream is MCP until its first event does.
		st.rw.sniff = func(endpoint bool) (sniffVerdict, []byte) {
			if !endpoint {
				return sniffPass, nil
			}
			d := unknownServer(set)
			if cs := st.rw.charset; d.Allowed() && !(wire.MediaType{Charset: cs}).UTF8() {
				// MCP, in a charset a client could decode into other
				// messages than agentg would read.
				err := errAnswerCharset(cs)
				g.logRefusal(x, "builtin:mcp-parse", err.Error(), http.StatusBadGateway)
				return sniffRefuse, wire.ErrorResponse(nil, wire.CodeInternalError, "agentg: "+err.Error(), map[string]any{"rule": "builtin:mcp-parse"})
			}
			if d.Allowed() {
				return sniffDissect, nil
			}
			why := "a 2024-11-05 MCP stream (its first event names an endpoint) from a server the policy does not name (" + x.URL + ")"
			g.logRefusal(x, d.Rule, why, http.StatusForbidden)
			return sniffRefuse, wire.ErrorResponse(nil, wire.CodeDenied, "agentg: "+why, map[string]any{"rule": d.Rule})
		}
		st.rw.onLate = func() {
			g.logRefusal(x, ruleSSEEvent, errLateEndpoint.Error(), 0)
		}
	}
	st.rw.onEvent = func(ev *wire.Event) bool {
		if ev.Type != "endpoint" {
			return true
		}
		if endpoint != "" {
			// Another endpoint: a client that takes every one (the
			// TypeScript SDK's) would post where agentg knows no
			// session. The session has its endpoint.
			return false
		}
		ref, err := url.Parse(strings.TrimSpace(ev.Data))
		if err != nil {
			// Clients parse URLs more leniently than Go (WHATWG strips
			// tabs and newlines): one agentg cannot read, no client
			// gets.
			return false
		}
		u := base.ResolveReference(ref)
		// The client gets the endpoint as agentg read it, the session's
		// key: resolved, and relative if it came relative (the client
		// knows the origin by its own spelling).
		ev.Data = u.String()
		if ref.Scheme == "" && ref.Host == "" {
			ev.Data = u.RequestURI()
		}
		endpoint = legacyKey(u)
		g.State.PutSession(store.Session{Key: store.SessionKey{Server: x.stateServer(), ID: endpoint, Legacy: true},
			Agent: x.Agent, Revision: "2024-11-05", Stream: st})
		g.sessionStarted(x, "", endpoint, "2024-11-05", store.ServerInfo{})
		return true
	}
	// The forwarder may end the handler with a panic (ErrAbortHandler,
	// when a side goes away): the stream is drained and the session
	// forgotten all the same.
	defer func() {
		st.rw.finish()
		if endpoint != "" {
			g.State.DeleteSession(store.SessionKey{Server: x.stateServer(), ID: endpoint, Legacy: true})
		}
		st.mu.Lock()
		for _, c := range st.pending {
			g.emit(c.ev)
		}
		st.mu.Unlock()
	}()
	x.Upstream.ServeHTTP(st.rw, r)
}

// legacyKey names a legacy session by its endpoint's path and query
// (the session key's server already names where it is).
func legacyKey(u *url.URL) string {
	return u.EscapedPath() + "?" + u.RawQuery
}

// legacyStream finds the open GET stream of a legacy session by the URL a
// POST went to.
func (g *Guard) legacyStream(x *Exchange, r *http.Request) *stream {
	if s, ok := g.State.Session(store.SessionKey{Server: x.stateServer(), ID: legacyKey(r.URL), Legacy: true}); ok {
		if st, ok := s.Stream.(*stream); ok {
			return st
		}
	}
	return nil
}

// resumedCall rebuilds what the guard needs of a call the store
// remembered: its answer gets the obligations of its tool, and an event
// of its own that names the request's.
func (g *Guard) resumedCall(x *Exchange, req store.Request) *call {
	m := &wire.Message{Kind: wire.KindRequest, Method: req.Method, Tool: req.Tool}
	ev := g.newEvent(x)
	ev.Agent = req.Agent
	ev.Method, ev.Decision, ev.Rule = req.Method, "allow", "mcp:resumed"
	ev.Reason = "answer on a resumed stream to request event " + req.EventID
	ev.MCP = &audit.MCP{Server: x.Server, Session: req.Session.ID, Tool: req.Tool}
	return &call{m: m, ev: ev, start: req.Start, tool: req.Tool}
}

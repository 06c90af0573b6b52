package gateway

// The fast path of tools/call. A client's plain tools/call is the
// gateway's hot path, and through the SDK it costs two extra JSON hops
// (the SDK server decoding the client's request and encoding the answer,
// the SDK client encoding the request and decoding the server's answer),
// about a dozen decodes of 32 KiB buffers a call. fastCall carries such
// a call itself: it reads the one request with the strict codec, routes
// the name through the session's catalogue, and sends it to the server
// through the same guardTransport the session's SDK client uses (the
// same Exchange, so every decision is still the guard's: tool rules,
// redaction both ways, rate limits, pins, approvals, events). The
// server's answer, as the guard let it through, goes back to the client
// framed as the SDK server would have framed it (SSE, one message event,
// no event id: the gateway's handler has no event store).
//
// The client's session is one the gateway knows by its Mcp-Session-Id
// (2025-03-26 … 2025-11-25, bound to the agent that opened it), or, at
// 2026-07-28, the agent's own (agentSession), whose per-request _meta
// says the revision and who the client is and nothing else.
//
// Anything it does not handle exactly falls back to the SDK path before
// a byte has gone upstream: a batch, another method, a session it does
// not know (or another agent's), a name not in the catalogue, an
// upstream session not open yet, any other _meta (progress tokens), a
// task, a multi round trip retry, Mcp-* headers it does not check, a
// revision it does not speak (2024-11-05; an upstream session at
// 2026-07-28), a non-HTTP dialer. After the request has
// gone upstream it falls back only on the upstream's 404 (the server
// forgot the session: the SDK path opens a new one and sends the call
// again, as upstream.do does).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentg/agentg/dissect/mcp/wire"
)

// fastEntry is a client session the fast path can find by its id.
type fastEntry struct {
	s *session
	// sdkSeen is when the SDK's handler last saw a request of the
	// session (unix nanoseconds): its idle timer restarts only on the
	// requests it serves, so the fast path leaves it one now and then.
	sdkSeen atomic.Int64

	mu    sync.Mutex
	calls map[string]context.CancelFunc // the fast calls in flight, by the client's id (wire.IDKey)
}

// track records a fast call in flight under the client's id; false when
// that id is in flight already (the SDK's handler refuses the duplicate).
func (e *fastEntry) track(key string, cancel context.CancelFunc) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, dup := e.calls[key]; dup {
		return false
	}
	if e.calls == nil {
		e.calls = map[string]context.CancelFunc{}
	}
	e.calls[key] = cancel
	return true
}

func (e *fastEntry) untrack(key string) {
	e.mu.Lock()
	delete(e.calls, key)
	e.mu.Unlock()
}

// cancel ends the fast call a client's notifications/cancelled names:
// the SDK's server does not know the call, so it would not.
func (e *fastEntry) cancel(body []byte) {
	b, err := wire.Parse(body, wire.Limits{})
	if err != nil || b.Batch || len(b.Messages) != 1 {
		return
	}
	m := b.Messages[0]
	if m.Kind != wire.KindNotification || m.Method != "notifications/cancelled" {
		return
	}
	var p struct {
		RequestID json.RawMessage `json:"requestId"`
	}
	if json.Unmarshal(m.Params, &p) != nil || len(p.RequestID) == 0 {
		return
	}
	e.mu.Lock()
	c := e.calls[wire.IDKey(jsontext.Value(p.RequestID))]
	e.mu.Unlock()
	if c != nil {
		c()
	}
}

// indexSession makes the client session id findable by the fast path
// (session.bind calls it on the session's first request).
func (g *Gateway) indexSession(id string, s *session) {
	if id == "" {
		return
	}
	e := &fastEntry{s: s}
	e.sdkSeen.Store(time.Now().UnixNano())
	g.fast.Store(id, e)
}

// unindexSession forgets the id once the client session has ended.
func (g *Gateway) unindexSession(id string) { g.fast.Delete(id) }

// FastCalls is how many tools/call the fast path has carried (tests and
// benchmarks read it to know which path a call took).
func (g *Gateway) FastCalls() int64 { return g.fastCalls.Load() }

// fastTarget is what a request needs to take the fast path.
type fastTarget struct {
	s     *session
	u     *upstream
	tr    *guardTransport
	cs    *sdk.ClientSession
	route route
	msg   *wire.Message
}

// fastCall serves r when it can; it returns false, with r's body as it
// was, when the SDK path must serve it.
func (g *Gateway) fastCall(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost || !isHTTPDialer(g.cfg.Dial) || rebound(r) {
		return false
	}
	pv := r.Header.Get("MCP-Protocol-Version")
	stateless := pv >= "2026-07-28"
	var e *fastEntry
	if stateless {
		// 2026-07-28: no session id; the agent's session (agentSession).
		if pv != "2026-07-28" || !fastHeaders(r.Header, true) {
			return false
		}
		v, ok := g.fast.Load(agentKey(whoOf(r).Agent))
		if !ok {
			return false
		}
		if e = v.(*fastEntry); !e.s.stateless {
			return false
		}
	} else {
		id := r.Header.Get("Mcp-Session-Id")
		if id == "" || !fastHeaders(r.Header, false) {
			return false
		}
		v, ok := g.fast.Load(id)
		if !ok {
			return false
		}
		e = v.(*fastEntry)
		if e.s.stateless || e.s.who.Agent != whoOf(r).Agent {
			return false // another agent's session: the SDK path answers as it does
		}
		// Leave the SDK's handler a request of the session every quarter
		// of its idle timeout, so that it does not close a session in use.
		now := time.Now().UnixNano()
		if now-e.sdkSeen.Load() > int64(g.cfg.SessionTimeout/4) {
			e.sdkSeen.Store(now)
			return false
		}
		ss := e.s.client()
		if ss == nil || ss.InitializeParams() == nil {
			return false
		}
		if pv != "" && pv != negotiated(ss) {
			return false
		}
	}
	s := e.s
	body, err := readBounded(r.Body, wire.DefaultMaxMessage)
	if err != nil {
		r.Body = rejoin(body, r.Body)
		return false
	}
	r.Body = rejoin(body, http.NoBody)
	if !stateless && bytes.Contains(body, []byte(`"notifications/cancelled"`)) {
		// (At 2026-07-28 the clients of one agent share its session and
		// pick their ids themselves: a call is cancelled by closing its
		// request, never by an id another client could name.)
		e.cancel(body) // and the SDK's server reads it as well
		return false
	}
	if !bytes.Contains(body, []byte(`"tools/call"`)) {
		return false // not worth parsing: the SDK path's (a method spelled with escapes is its too)
	}
	t, ok := g.fastTargetOf(s, body)
	if !ok {
		return false
	}
	if stateless && !statelessCall(r.Header, t.msg, pv) {
		return false
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	if !stateless {
		key := t.msg.IDKey()
		if !e.track(key, cancel) {
			return false
		}
		defer e.untrack(key)
	}
	return g.fastServe(w, r.WithContext(ctx), t)
}

// fastTargetOf reads body as one plain tools/call the session can route
// to an open upstream session.
func (g *Gateway) fastTargetOf(s *session, body []byte) (fastTarget, bool) {
	b, err := wire.Parse(body, wire.Limits{})
	if err != nil || b.Batch || len(b.Messages) != 1 {
		return fastTarget{}, false // the SDK path answers what it answers
	}
	m := b.Messages[0]
	if m.Kind != wire.KindRequest || m.Method != "tools/call" || m.Meta != nil && !s.stateless || m.Task != nil ||
		m.InputResponses != nil || m.RequestState != "" || len(m.Params) == 0 {
		return fastTarget{}, false
	}
	rt, ok := s.cat.lookup(kindTools, m.Tool)
	if !ok {
		return fastTarget{}, false // unlisted: the middleware's route, with its refusal
	}
	s.mu.Lock()
	u := s.ups[rt.server]
	s.mu.Unlock()
	if u == nil {
		return fastTarget{}, false
	}
	u.mu.Lock()
	cs, tr := u.cs, u.tr
	u.mu.Unlock()
	if cs == nil || tr == nil || cs.ID() == "" {
		return fastTarget{}, false
	}
	if ir := cs.InitializeResult(); ir == nil || ir.ProtocolVersion < "2025-03-26" || ir.ProtocolVersion >= "2026-07-28" {
		return fastTarget{}, false
	}
	return fastTarget{s: s, u: u, tr: tr, cs: cs, route: rt, msg: m}, true
}

// fastServe sends the call upstream and streams the answer to the
// client. It returns false only when nothing was written to w.
func (g *Gateway) fastServe(w http.ResponseWriter, r *http.Request, t fastTarget) bool {
	upID := "agentg-f" + strconv.FormatUint(g.fastIDs.Add(1), 10)
	g.fastCalls.Add(1)
	resp, err := t.post(r.Context(), upstreamCall(upID, t.route.name, t.msg.Args))
	answered := false
	defer func() {
		if !answered {
			t.cancelled(r.Context(), upID)
		}
	}()
	if err != nil {
		if r.Context().Err() != nil {
			fastHead(w) // the client left, or cancelled the call: an empty stream
			return true
		}
		g.fastAnswer(w, t.msg.ID, nil, fmt.Errorf("agentg gateway: mcp server %s: %w", t.route.server, err))
		return true
	}
	body := resp.Body // the stream being read: a resumed one replaces it
	defer func() { body.Close() }()
	if resp.StatusCode == http.StatusNotFound {
		// The server forgot the session: the SDK path opens a new one.
		answered = true
		g.fastCalls.Add(-1)
		return false
	}
	ans, err := t.answer(r.Context(), resp, &body, upID, w, t.msg.ID)
	answered = ans != nil
	if err != nil && ans == nil {
		if r.Context().Err() != nil {
			fastHead(w)
			return true
		}
		g.fastAnswer(w, t.msg.ID, nil, fmt.Errorf("agentg gateway: mcp server %s: %w", t.route.server, err))
		return true
	}
	g.fastAnswer(w, t.msg.ID, ans, nil)
	// The rest of the stream (the server ends it after the response) is
	// read to its end, so that the guard and the forwarder finish and
	// the upstream connection goes back to the pool instead of being cut
	// when this request's context ends (a server that keeps it open gets
	// 100 ms).
	b := body
	stop := time.AfterFunc(100*time.Millisecond, func() { b.Close() })
	io.Copy(io.Discard, b)
	stop.Stop()
	return true
}

// post sends one message to the server on the upstream session, through
// the guard, with the headers the SDK client sends.
func (t fastTarget) post(ctx context.Context, msg []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.tr.end.String(), bytes.NewReader(msg))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", t.cs.InitializeResult().ProtocolVersion)
	req.Header.Set("Mcp-Session-Id", t.cs.ID())
	return t.tr.RoundTrip(req)
}

// cancelled tells the server, when the client left before the answer,
// that the call is cancelled, as the SDK client does when its call's
// context ends.
func (t fastTarget) cancelled(ctx context.Context, upID string) {
	if ctx.Err() == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	b := append([]byte(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":`), wire.AppendString(nil, upID)...)
	b = append(b, `,"reason":"the client left"}}`...)
	if resp, err := t.post(ctx, b); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// upstreamCall is the request the SDK client would send for the call:
// the server's own name, the client's arguments as they were.
func upstreamCall(id, name string, args jsontext.Value) []byte {
	b := make([]byte, 0, 80+len(name)+len(args))
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = wire.AppendString(b, id)
	b = append(b, `,"method":"tools/call","params":{"name":`...)
	b = wire.AppendString(b, name)
	if len(args) > 0 {
		b = append(b, `,"arguments":`...)
		b = append(b, args...)
	}
	return append(b, "}}"...)
}

// fastHeaders reports whether the request's headers are the ones the
// SDK's handler takes for a POST on a session (stateless: for a
// 2026-07-28 request, whose Mcp-Method and Mcp-Name statelessCall
// checks); anything else is its to refuse.
func fastHeaders(h http.Header, stateless bool) bool {
	if len(h.Values("Last-Event-ID")) > 0 {
		return false
	}
	for k := range h {
		// Mcp-Method, Mcp-Name, Mcp-Param-*: the SDK's handler checks
		// them against the body, and refuses what disagrees.
		if len(k) > 4 && strings.EqualFold(k[:4], "Mcp-") && !strings.EqualFold(k, "Mcp-Session-Id") && !strings.EqualFold(k, "Mcp-Protocol-Version") &&
			!(stateless && (strings.EqualFold(k, "Mcp-Method") || strings.EqualFold(k, "Mcp-Name"))) {
			return false
		}
	}
	if mt, _, err := mime.ParseMediaType(h.Get("Content-Type")); err != nil || mt != "application/json" {
		return false
	}
	var j, s bool
	for _, v := range h.Values("Accept") {
		for _, tok := range strings.Split(v, ",") {
			base, _, _ := strings.Cut(tok, ";")
			switch strings.ToLower(strings.TrimSpace(base)) {
			case "application/json", "application/*":
				j = true
			case "text/event-stream", "text/*":
				s = true
			case "*/*":
				j, s = true, true
			}
		}
	}
	return j && s
}

// agentKey is the index key of an agent's 2026-07-28 session: no
// session id (rand.Text's alphabet) starts with a NUL.
func agentKey(agent string) string { return "\x00" + agent }

// statelessCall reports whether a 2026-07-28 tools/call is one the SDK's
// handler takes as it is: Mcp-Method and Mcp-Name agree with the body,
// and its _meta says the header's revision and nothing but who the
// client is (which a server of an older revision is not sent).
func statelessCall(h http.Header, m *wire.Message, pv string) bool {
	if h.Get("Mcp-Method") != "tools/call" || h.Get("Mcp-Name") != m.Tool || len(m.Meta) == 0 {
		return false
	}
	var meta map[string]json.RawMessage
	if json.Unmarshal(m.Meta, &meta) != nil {
		return false
	}
	for k, v := range meta {
		switch k {
		case sdk.MetaKeyProtocolVersion:
			var got string
			if json.Unmarshal(v, &got) != nil || got != pv {
				return false
			}
		case sdk.MetaKeyClientInfo, sdk.MetaKeyClientCapabilities:
		default:
			return false // a progress token, or anything the SDK path handles
		}
	}
	_, ok := meta[sdk.MetaKeyProtocolVersion]
	return ok
}

func negotiated(ss *sdk.ServerSession) string {
	if p := ss.InitializeParams(); p != nil {
		// The SDK server answers the client's revision when it speaks it,
		// and the fast path only serves revisions it speaks.
		return p.ProtocolVersion
	}
	return ""
}

func isHTTPDialer(d Dialer) bool {
	_, ok := d.(HTTPDialer)
	return ok
}

// readBounded reads r to its end, at most limit bytes; past that it
// returns what it read and an error.
func readBounded(r io.Reader, limit int) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return b, err
	}
	if len(b) > limit {
		return b, fmt.Errorf("over %d bytes", limit)
	}
	return b, nil
}

// rejoin is a body that reads read and then rest.
func rejoin(read []byte, rest io.ReadCloser) io.ReadCloser {
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(read), rest), rest}
}

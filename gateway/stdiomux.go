package gateway

import (
	"context"
	"fmt"
	"sync"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/agentg/agentg/dissect/mcp/wire"
	"github.com/agentg/agentg/gateway/child"
)

// The stdio multiplexer: the client sessions of the gateway that use one
// command server share its one process and its one MCP session (a stdio
// server has exactly one), as the policy's supervisor keeps one process
// per server. Each client session's upstream session is a stdioConn with
// a guard session of its own; what the guard lets through meets the
// multiplexer, which gives every request an id of its own on the child's
// stream and maps the answer back, so no session ever reads another's:
//
//   - requests: the child sees ids 1, 2, 3… of the multiplexer's; the
//     answer goes to the session that asked, under its own id;
//   - progress tokens are replaced by the multiplexer's, and progress
//     goes to the session whose call it is;
//   - notifications/cancelled names the child's id for the session's;
//   - 2026-07-28 subscriptions (subscriptions/listen) are identified by
//     their request's id: notifications carrying it go to that session;
//   - initialize reaches the child once per process: the first session's
//     is sent, the others get its answer (the gateway's client is the
//     same for each) and the multiplexer sends notifications/initialized;
//   - a request of the server's (sampling, elicitation, roots: before
//     2026-07-28, stdio carries no link to the call that caused it) goes
//     to the one session with requests in flight; with several, it
//     cannot be told whose it is and the server gets an error (never
//     another agent's answer); ping is answered here;
//   - log messages go to the one session with requests in flight, or to
//     every session when none has one; with several they are dropped
//     (one agent's call must not show its logs to another); list_changed
//     and the other notifications go to every session.
//
// Bounded: at most maxStdioPending requests in flight on one child, and
// each session's queue toward its client is bounded (a session that does
// not read is closed, never the others held up).

// maxStdioPending bounds the requests in flight on one child.
const maxStdioPending = 4096

// stdioMux is the multiplexer of one supervised child: its current run.
type stdioMux struct {
	g  *Gateway
	ch *child.Child

	mu  sync.Mutex
	cur *stdioRun
}

// run is the multiplexer of the child's running process, started when
// the first session needs it.
func (m *stdioMux) run(ctx context.Context) (*stdioRun, error) {
	p, err := m.ch.Current(ctx)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cur != nil && m.cur.proc == p {
		return m.cur, nil
	}
	r := &stdioRun{m: m, proc: p, conns: map[*stdioConn]struct{}{}, pending: map[string]*stdioPending{},
		tokens: map[string]*stdioPending{}, asked: map[string]*stdioConn{}}
	m.cur = r
	go r.read()
	return r, nil
}

// stdioRun is one process of the child, as the multiplexer serves it.
type stdioRun struct {
	m    *stdioMux
	proc *child.Proc

	mu      sync.Mutex
	conns   map[*stdioConn]struct{}
	pending map[string]*stdioPending // the requests in flight, by the child's id for them
	tokens  map[string]*stdioPending // the same, by the child's progress token
	asked   map[string]*stdioConn    // the server's requests in flight, by their id, and where they went
	next    int64
	init    jsontext.Value // the child's initialize result, once it gave one
	initing chan struct{}  // closed when the initialize in flight is answered
	ended   bool
}

// stdioPending is a session's request in flight on the child.
type stdioPending struct {
	c      *stdioConn
	id     jsontext.Value // the session's own id
	key    string         // the child's id
	token  string         // the child's progress token, when the request has one
	orig   jsontext.Value // the session's progress token
	listen bool           // a 2026-07-28 subscription: long-lived, not a call in flight
	init   bool
	orphan bool // its session has gone: the answer goes to no one
}

// attach adds a session; false when the process has ended already.
func (r *stdioRun) attach(c *stdioConn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

// detach forgets a session and what it had in flight: the child is told
// its requests are cancelled (no one will read their answers).
func (r *stdioRun) detach(c *stdioConn) {
	r.mu.Lock()
	delete(r.conns, c)
	var cancel []string
	for k, p := range r.pending {
		if p.c != c {
			continue
		}
		if p.init {
			// The child's answer still initializes its session for the
			// others (and releases those waiting for it): kept, for no one.
			p.orphan = true
			continue
		}
		r.forgetLocked(p)
		cancel = append(cancel, k)
	}
	for id, to := range r.asked {
		if to == c {
			delete(r.asked, id)
		}
	}
	ended := r.ended
	r.mu.Unlock()
	if ended {
		return
	}
	for _, k := range cancel {
		r.send(cancelled(jsontext.Value(k), "the client's session ended"))
	}
}

func cancelled(id jsontext.Value, why string) []byte {
	b, _ := (&stdioMsg{JSONRPC: "2.0", Method: "notifications/cancelled",
		Params: mustJSON(map[string]any{"requestId": id, "reason": why})}).encode()
	return b
}

func (r *stdioRun) forgetLocked(p *stdioPending) {
	delete(r.pending, p.key)
	if p.token != "" {
		delete(r.tokens, p.token)
	}
	delete(p.c.ids, string(p.id))
}

func (r *stdioRun) send(line []byte) error { return r.proc.Send(line) }

// fromClient takes what a session's guard let through toward the child.
// An error fails the request (the guard answers the client with it).
func (r *stdioRun) fromClient(c *stdioConn, line []byte) error {
	m, err := parseStdioMsg(line)
	if err != nil {
		return fmt.Errorf("agentg gateway: a message to mcp server %s: %w", r.m.ch.Name(), err)
	}
	switch {
	case m.isRequest() && m.Method == "initialize":
		return r.initialize(c, m)
	case m.isRequest():
		return r.request(c, m, false)
	case m.Method == "notifications/initialized":
		return nil // the multiplexer sent the child its own
	case m.Method == "notifications/cancelled":
		return r.cancel(c, m)
	case m.isNotification():
		return r.sendMsg(m)
	default: // an answer to a request of the server's
		r.mu.Lock()
		to, ok := r.asked[m.key()]
		if ok && to == c {
			delete(r.asked, m.key())
		}
		r.mu.Unlock()
		if !ok || to != c {
			return nil // not this session's to answer: dropped
		}
		return r.sendMsg(m)
	}
}

func (r *stdioRun) sendMsg(m *stdioMsg) error {
	b, err := m.encode()
	if err != nil {
		return err
	}
	return r.send(b)
}

// request sends a session's request under an id (and a progress token)
// of the child's stream.
func (r *stdioRun) request(c *stdioConn, m *stdioMsg, init bool) error {
	r.mu.Lock()
	if r.ended {
		r.mu.Unlock()
		return fmt.Errorf("mcp server %s: %w", r.m.ch.Name(), child.ErrExited)
	}
	if len(r.pending) >= maxStdioPending {
		r.mu.Unlock()
		return fmt.Errorf("agentg gateway: mcp server %s has %d requests in flight already", r.m.ch.Name(), maxStdioPending)
	}
	r.next++
	n := r.next
	p := &stdioPending{c: c, id: m.ID, key: string(childID(n)), listen: m.Method == "subscriptions/listen", init: init}
	if tok := m.meta(metaProgressToken); len(tok) > 0 {
		p.orig, p.token = tok, string(tokenValue(n))
		if err := m.setMeta(metaProgressToken, tokenValue(n)); err != nil {
			r.mu.Unlock()
			return err
		}
		r.tokens[p.token] = p
	}
	m.ID = childID(n)
	r.pending[p.key] = p
	c.ids[string(p.id)] = p.key
	r.mu.Unlock()
	if err := r.sendMsg(m); err != nil {
		r.mu.Lock()
		r.forgetLocked(p)
		r.mu.Unlock()
		return err
	}
	return nil
}

// initialize sends the child the first initialize of its process, and
// answers the later ones with its answer.
func (r *stdioRun) initialize(c *stdioConn, m *stdioMsg) error {
	for {
		r.mu.Lock()
		switch {
		case r.ended:
			r.mu.Unlock()
			return fmt.Errorf("mcp server %s: %w", r.m.ch.Name(), child.ErrExited)
		case r.init != nil:
			res := r.init
			r.mu.Unlock()
			b, err := (&stdioMsg{JSONRPC: "2.0", ID: m.ID, Result: res}).encode()
			if err != nil {
				return err
			}
			// From its own goroutine: the guard that called this holds
			// its client lock, and its answer path takes it too.
			go c.deliver(b)
			return nil
		case r.initing != nil:
			wait := r.initing
			r.mu.Unlock()
			// Wait in the background: the guard decides this session's
			// lines in order, and an initialize blocks nothing else.
			go func() {
				<-wait
				if err := r.initialize(c, m); err != nil {
					c.deliver(errorAnswer(m.ID, wire.CodeInternalError, "agentg: "+err.Error()))
				}
			}()
			return nil
		default:
			r.initing = make(chan struct{})
			r.mu.Unlock()
			if err := r.request(c, m, true); err != nil {
				r.mu.Lock()
				close(r.initing)
				r.initing = nil
				r.mu.Unlock()
				return err
			}
			return nil
		}
	}
}

// cancel passes a session's cancellation on under the child's id.
func (r *stdioRun) cancel(c *stdioConn, m *stdioMsg) error {
	id := m.param("requestId")
	if len(id) == 0 {
		return nil
	}
	id = id.Clone()
	if id.Canonicalize() != nil {
		return nil
	}
	r.mu.Lock()
	key, ok := c.ids[string(id)]
	r.mu.Unlock()
	if !ok {
		return nil // answered already, or never sent: nothing to cancel
	}
	if err := m.setParam("requestId", jsontext.Value(key)); err != nil {
		return err
	}
	return r.sendMsg(m)
}

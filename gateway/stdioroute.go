package gateway

import (
	"fmt"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/agentg/agentg/dissect/mcp/wire"
)

// What a command server writes, routed by the stdio multiplexer
// (stdiomux.go) to the session it belongs to: answers by the child's id,
// progress by the child's token, subscription notifications by their
// request's id, a server's own request to the one session with calls in
// flight, the rest to every session.

// read routes what the child writes until its process ends.
func (r *stdioRun) read() {
	for l := range r.proc.Recv() {
		if l.Err != nil {
			r.refuse(l.Msg, l.Err)
			continue
		}
		r.fromServer(l.Msg)
	}
	r.end(r.proc.Err())
}

// end fails every session of the run: each one's guard answers its
// requests in flight with the error (and their events say so), and the
// session ends, so the next use opens one on the next process.
func (r *stdioRun) end(why error) {
	r.mu.Lock()
	r.ended = true
	if r.initing != nil {
		close(r.initing)
		r.initing = nil
	}
	conns := make([]*stdioConn, 0, len(r.conns))
	for c := range r.conns {
		conns = append(conns, c)
	}
	r.mu.Unlock()
	for _, c := range conns {
		c.fail(why)
	}
}

// refuse handles a line of the child's that cannot be read: it goes to
// no one, and the request it answers (when a lenient read finds its id)
// gets an error.
func (r *stdioRun) refuse(line []byte, err error) {
	r.m.g.stdioRefused(r.m.ch.Name(), err)
	key, ok := lenientStdioID(line)
	if !ok {
		return
	}
	r.mu.Lock()
	p := r.pending[key]
	r.mu.Unlock()
	if p != nil {
		r.fromServer(errorAnswer(jsontext.Value(key), wire.CodeInternalError, "agentg: the server's answer cannot be read: "+err.Error()))
	}
}

// fromServer routes one message of the child's.
func (r *stdioRun) fromServer(line []byte) {
	m, err := parseStdioMsg(line)
	if err != nil {
		r.refuse(line, err)
		return
	}
	switch {
	case m.isAnswer():
		r.answer(m)
	case m.isRequest():
		r.serverRequest(m)
	default:
		r.notification(m)
	}
}

// answer goes to the session that asked, under its own id.
func (r *stdioRun) answer(m *stdioMsg) {
	r.mu.Lock()
	p := r.pending[m.key()]
	if p == nil {
		r.mu.Unlock()
		return // no one asked (a session gone, a cancelled call): no one reads it
	}
	r.forgetLocked(p)
	if p.init {
		if len(m.Result) > 0 {
			r.init = m.Result.Clone()
		}
		if r.initing != nil {
			defer close(r.initing)
			r.initing = nil
		}
	}
	r.mu.Unlock()
	if p.init && len(m.Result) > 0 {
		// Before the answer reaches anyone: the child's session is
		// ready before any session's next request.
		b, _ := (&stdioMsg{JSONRPC: "2.0", Method: "notifications/initialized"}).encode()
		r.send(b)
	}
	if p.orphan {
		return
	}
	m.ID = p.id
	if sid := m.meta(metaSubscriptionID); p.listen && len(sid) > 0 {
		m.setMeta(metaSubscriptionID, p.id)
	}
	p.c.deliverMsg(m)
}

// serverRequest goes to the one session with calls in flight.
func (r *stdioRun) serverRequest(m *stdioMsg) {
	if m.Method == "ping" {
		b, _ := (&stdioMsg{JSONRPC: "2.0", ID: m.ID, Result: jsontext.Value(`{}`)}).encode()
		r.send(b)
		return
	}
	r.mu.Lock()
	to, n := r.soleCaller()
	if to != nil {
		r.asked[m.key()] = to
	}
	r.mu.Unlock()
	if to == nil {
		why := "no client session has a call in flight on it"
		if n > 1 {
			why = fmt.Sprintf("%d client sessions have calls in flight on it, and stdio does not say whose this is", n)
		}
		r.m.g.stdioUnrouted(r.m.ch.Name(), m.Method, why)
		r.send(errorAnswer(m.ID, wire.CodeInternalError, "agentg gateway: "+m.Method+" cannot be routed to a client: "+why))
		return
	}
	to.deliverMsg(m)
}

// soleCaller is the one session with calls in flight (subscriptions and
// initialize aside), and how many have one.
func (r *stdioRun) soleCaller() (*stdioConn, int) {
	var one *stdioConn
	n := 0
	for _, p := range r.pending {
		if p.listen || p.init || p.c == one {
			continue
		}
		if one == nil {
			one, n = p.c, 1
			continue
		}
		return nil, 2
	}
	return one, n
}

// notification routes one of the child's notifications.
func (r *stdioRun) notification(m *stdioMsg) {
	switch m.Method {
	case "notifications/progress":
		tok := m.param(metaProgressToken)
		r.mu.Lock()
		p := r.tokens[string(tok)]
		r.mu.Unlock()
		if p == nil || m.setParam(metaProgressToken, p.orig) != nil {
			return // no call of a session's
		}
		p.c.deliverMsg(m)
		return
	case "notifications/cancelled":
		// The server gave up a request of its own.
		id := m.param("requestId").Clone()
		if id.Canonicalize() != nil {
			return
		}
		r.mu.Lock()
		to := r.asked[string(id)]
		delete(r.asked, string(id))
		r.mu.Unlock()
		if to != nil {
			to.deliverMsg(m)
		}
		return
	}
	if sid := m.meta(metaSubscriptionID); len(sid) > 0 {
		sid = sid.Clone()
		if sid.Canonicalize() != nil {
			return
		}
		r.mu.Lock()
		p := r.pending[string(sid)]
		r.mu.Unlock()
		if p == nil || m.setMeta(metaSubscriptionID, p.id) != nil {
			return // a subscription no session holds
		}
		p.c.deliverMsg(m)
		return
	}
	r.mu.Lock()
	var to []*stdioConn
	if m.Method == "notifications/message" {
		switch one, n := r.soleCaller(); {
		case one != nil:
			to = []*stdioConn{one}
		case n > 1:
			to = nil // whose call it logs is unknown: no one's to read
		default:
			to = r.all()
		}
	} else {
		to = r.all()
	}
	r.mu.Unlock()
	for _, c := range to {
		c.deliverMsg(m)
	}
}

func (r *stdioRun) all() []*stdioConn {
	out := make([]*stdioConn, 0, len(r.conns))
	for c := range r.conns {
		out = append(out, c)
	}
	return out
}

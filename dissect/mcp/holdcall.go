package mcp

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/agentg/agentg/approval"
	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/dissect/mcp/wire"
)

// Calls held for approval. A tools/call an approve rule covers is held
// before any byte of its POST goes upstream: the whole POST waits (a
// batch is one body), each held call on its own approval. What the client
// sees while it waits depends on what it accepts:
//   - an event stream (every Streamable HTTP client accepts one): agentg
//     answers at once with a stream of its own, sends a comment line every
//     Guard.KeepAlive so that intermediaries keep it open, and, once every
//     held call is decided, the server's answer (JSON or events) as events
//     on it, or the policy's error;
//   - JSON only, or a 2024-11-05 POST (answered 202, answers on the GET
//     stream): nothing until decided.
// A denied, expired or unheld call (no broker) gets the policy's error
// for its id; a client that goes away while its calls are held cancels
// their approvals (net/http cancels the request's context: the body was
// read whole before the hold), and none of them is sent; an approved one goes upstream byte for byte as shown to the
// approver (its arguments after redaction).

// statusClientGone is the status of a call whose client went away before
// it was answered, as the proxy's events give a request's.
const statusClientGone = 499

// DefaultKeepAlive is how often a held call's stream gets a comment line.
const DefaultKeepAlive = 15 * time.Second

// holding is the side of an exchange that holds its calls until they are
// decided: out of band, by the approval broker (here), in band, by an
// input-required result the client answers (inputrequired.go), and by
// elicitation of the client's user (elicit.go). The exchange decides
// which calls are held; holding keeps them, waits and settles.
type holding struct {
	ex    *exchange
	calls []*heldCall
}

// heldCall is one tools/call waiting for its approval.
type heldCall struct {
	c       *call
	v       callVerdict
	t       *approval.Ticket
	outcome approval.Outcome
	gone    bool // the client went away while the call was held
}

// holdCall starts the approval of a call decided Approve; args are the
// arguments as they will be sent.
func (hd *holding) holdCall(c *call, v callVerdict, args string) {
	ex := hd.ex
	h := &heldCall{c: c, v: v}
	if b := ex.g.Approvals; b != nil {
		x := ex.x
		h.t = b.Begin(approval.Request{Kind: "mcp", Agent: x.Agent, Server: ex.server(), Tool: c.m.Tool,
			Args: []byte(args), Decision: v.Decision, Event: c.ev.ID, Client: x.Client, Host: x.Host, Port: x.Port,
			Session: hd.approvalSession(), Mask: ex.g.Leaks.Mask})
		if id := h.t.ID(); id != "" {
			c.ev.Approval = &audit.Approval{ID: id}
		}
	}
	hd.calls = append(hd.calls, h)
}

// awaitHolds waits for every held call's decision. When the client
// accepts an event stream (and the POST is not a legacy one) and some
// call must really wait, it answers the client with agentg's own stream
// first, kept alive while the calls wait, and returns the writer the
// server's answer must go through; otherwise nil.
func (hd *holding) awaitHolds(w http.ResponseWriter, r *http.Request) *respWriter {
	ex := hd.ex
	wait := false
	for _, h := range hd.calls {
		wait = wait || h.t != nil && !h.t.Immediate()
	}
	var rw *respWriter
	stop := func() {}
	if wait && ex.legacy == nil && wire.AcceptsEventStream(r.Header) {
		rw = newRespWriter(r.Context(), w, ex.rewriteServer, nil, int(ex.set.MaxMessage))
		rw.opened, rw.detached, rw.written = true, http.Header{}, true
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Del("Content-Length")
		w.WriteHeader(http.StatusOK)
		stop = hd.keepAlive(rw)
		hd.elicit(rw) // elicit.go: ask the client's user, where the rule and the session allow
	}
	hd.wait(r.Context())
	stop()
	return rw
}

// wait waits for every held call's decision, whatever door they came
// through (awaitHolds for a POST, Session for a message stream). A
// context ended while they wait means the client went: every call is
// refused, even one approved as it went.
func (hd *holding) wait(ctx context.Context) {
	var wg sync.WaitGroup
	for _, h := range hd.calls {
		if h.t == nil {
			h.outcome = approval.Outcome{By: "agentg", Reason: "this agentg has no approvals broker: nothing can approve the call"}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.outcome = h.t.Wait(ctx)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		// The client went as a call was approved: no one would read the
		// answer, and nothing is sent for no one.
		for _, h := range hd.calls {
			h.gone = true
			if h.outcome.Approved {
				h.outcome.Approved = false
				h.outcome.Reason = "the client went away as the call was approved; it was not sent"
			}
		}
	}
}

// keepAlive sends a comment line on the held stream every KeepAlive
// until stopped.
func (hd *holding) keepAlive(rw *respWriter) (stop func()) {
	ex := hd.ex
	every := ex.g.KeepAlive
	if every <= 0 {
		every = DefaultKeepAlive
	}
	var ids []string
	for _, h := range hd.calls {
		if h.t != nil && h.t.ID() != "" {
			ids = append(ids, h.t.ID())
		}
	}
	line := ": agentg: held for approval " + strings.Join(ids, ", ") + "\n\n"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	rw.send(func(w io.Writer) { io.WriteString(w, line) }) // at once: the client knows it waits
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				rw.send(func(w io.Writer) { io.WriteString(w, line) })
			}
		}
	}()
	return func() { cancel(); <-done }
}

// settle applies each held call's outcome: an approved call stays in the
// body sent on (and is counted), a refused one is taken out of it and
// answered with the policy's error. keep and msgs are the body's
// messages to forward and the Message each came from.
func (hd *holding) settle(keep [][]byte, msgs []*wire.Message, extra [][]byte) ([][]byte, [][]byte) {
	ex := hd.ex
	refused := map[*wire.Message]bool{}
	for _, h := range hd.calls {
		c, o := h.c, h.outcome
		if h.gone { // never approved: awaitHolds refused what was
			c.ev.Status = statusClientGone
		}
		if c.ev.Approval != nil || o.Approval.ID != "" {
			c.ev.Approval = &audit.Approval{ID: o.Approval.ID, By: o.By, Scope: o.Approval.Scope, For: o.Approval.For}
		} else if o.By != "" {
			c.ev.Approval = &audit.Approval{By: o.By}
		}
		if o.Approved {
			c.ev.Decision, c.ev.Reason = "allow", c.ev.Reason+"; "+o.Reason
			ex.g.State.CountCall(ex.server(), c.m.Tool)
			continue
		}
		refused[c.m] = true
		answer := hd.heldRefusal(c, h.v, o.Approval.ID, o.Reason)
		ex.mu.Lock()
		if ex.pending[c.m.IDKey()] == c {
			delete(ex.pending, c.m.IDKey())
			ex.untrackLocked(c)
		}
		ex.mu.Unlock()
		if ex.legacy != nil {
			ex.legacy.take(c.m.ID)
		}
		ex.g.emit(c.ev)
		extra = append(extra, answer)
	}
	if len(refused) == 0 {
		return keep, extra
	}
	var out [][]byte
	for i, m := range msgs {
		if !refused[m] {
			out = append(out, keep[i])
		}
	}
	return out, extra
}

package otlp

import (
	"time"

	"github.com/agentg/agentg/audit"
	"go.opentelemetry.io/otel/trace"
)

// The linker decides each event's place in a trace: which span is its
// parent and which trace it is in.
//
// An event names its cause by event id, in the first of these that is
// set: llm_turn (a tool call: the model turn that asked for it),
// caused_by (a request a server made: the tool call in flight), parent
// (an answer's request, a request's tunnel, an approval's held call).
// The parent span id is derived from that id (ids.go); the trace id is
// the root event's, derived from the root's id. A tunnel is a transport,
// not a cause: its requests are not its children (a kept-alive
// connection would put every turn of an agent's day in one trace), so a
// parent that is a tunnel is passed over (the tunnel-open event, logged
// as the tunnel opens, says which ids are tunnels).
//
// Events are logged when what they record ends, so a cause is often
// logged after its effects: a tool's HTTP requests end before the tool
// call does; a model turn's event is written before its HTTP request's.
// An event whose cause has not been seen waits for it (at most
// maxPending events, each at most wait); when the cause arrives, its
// waiting effects are placed under it. One that waits in vain is placed
// as if its cause were a root: its parent span id is right in any case,
// and the trace too when the cause is a root (the common case of a
// request whose tunnel-open was lost).

// causes are an event's cause ids, most specific first.
func causes(e *audit.Event, out *[3]string) []string {
	n := 0
	if id := llmTurnOf(e); id != "" {
		out[n] = id
		n++
	}
	if e.CausedBy != "" {
		out[n] = e.CausedBy
		n++
	}
	if e.Parent != "" {
		out[n] = e.Parent
		n++
	}
	return out[:n]
}

// llmTurnOf is the model turn that asked for a tool call (the MCP
// part's llm_turn), "" when none did or e is no MCP message.
func llmTurnOf(e *audit.Event) string {
	if e.MCP == nil {
		return ""
	}
	return e.MCP.LLMTurn
}

// placed is where an event's span goes: parent is zero for a root.
type placed struct {
	trace  trace.TraceID
	parent trace.SpanID
}

// node is what the linker remembers of an event it has placed.
type node struct {
	trace  trace.TraceID
	tunnel bool
}

type waiter struct {
	e     *audit.Event
	on    string // the cause it waits for
	since time.Time
	done  bool
}

type linker struct {
	emit func(*audit.Event, placed)

	// seen is the events placed, in two generations: when cur is full it
	// becomes prev and a new cur starts, so memory is bounded and a
	// cause is remembered for at least maxSeen events after it.
	cur, prev map[string]node
	maxSeen   int

	waiting    map[string][]*waiter // by the cause waited for
	queue      []*waiter            // in arrival order, for expiry
	nwaiting   int
	maxPending int
	wait       time.Duration
}

func newLinker(emit func(*audit.Event, placed), maxSeen, maxPending int, wait time.Duration) *linker {
	return &linker{emit: emit, cur: map[string]node{}, maxSeen: maxSeen,
		waiting: map[string][]*waiter{}, maxPending: maxPending, wait: wait}
}

func (l *linker) lookup(id string) (node, bool) {
	if n, ok := l.cur[id]; ok {
		return n, true
	}
	n, ok := l.prev[id]
	return n, ok
}

func (l *linker) remember(id string, n node) {
	if id == "" {
		return
	}
	if len(l.cur) >= l.maxSeen {
		l.prev, l.cur = l.cur, make(map[string]node, l.maxSeen/4)
	}
	l.cur[id] = n
}

// add places e, or has it wait for its cause.
func (l *linker) add(e *audit.Event, now time.Time) {
	if e.Kind == kindTunnelOpen {
		// Not a decision of its own (the tunnel's close event is): it
		// only says that its parent id is a tunnel, before the requests
		// inside it are logged.
		if e.Parent != "" {
			l.remember(e.Parent, node{trace: traceOf(e.Parent), tunnel: true})
			l.release(e.Parent)
		}
		return
	}
	if e.Kind == "connect" {
		l.remember(e.ID, node{trace: traceOf(e.ID), tunnel: true})
	}
	if !l.place(e) {
		l.pend(e, now)
	}
}

// place puts e under its first cause that is known and not a tunnel, or
// at a root when it has none; it reports false when a cause is not known
// yet (e must wait).
func (l *linker) place(e *audit.Event) bool {
	var buf [3]string
	for _, c := range causes(e, &buf) {
		n, ok := l.lookup(c)
		if !ok {
			return false
		}
		if n.tunnel {
			continue
		}
		l.placeAt(e, placed{trace: n.trace, parent: spanOf(c)})
		return true
	}
	l.placeAt(e, placed{trace: traceOf(e.ID)})
	return true
}

func (l *linker) placeAt(e *audit.Event, p placed) {
	l.emit(e, p)
	if e.Kind != "connect" { // remembered as a tunnel already
		l.remember(e.ID, node{trace: p.trace})
	}
	l.release(e.ID)
}

func (l *linker) pend(e *audit.Event, now time.Time) {
	if l.nwaiting >= l.maxPending {
		l.expireOldest()
	}
	var buf [3]string
	on := ""
	for _, c := range causes(e, &buf) {
		if _, ok := l.lookup(c); !ok {
			on = c
			break
		}
	}
	w := &waiter{e: e, on: on, since: now}
	l.waiting[on] = append(l.waiting[on], w)
	l.queue = append(l.queue, w)
	l.nwaiting++
}

// release places the events that waited for id, now that it is placed.
func (l *linker) release(id string) {
	ws, ok := l.waiting[id]
	if !ok {
		return
	}
	delete(l.waiting, id)
	for _, w := range ws {
		w.done = true
		l.nwaiting--
		// Placing w.e may release others in turn: a chain is as deep
		// as causes go (a turn, its call, the call's requests).
		if !l.place(w.e) {
			// Another of its causes is unknown: wait for that one.
			l.pendAgain(w)
		}
	}
}

func (l *linker) pendAgain(w *waiter) {
	nw := &waiter{e: w.e, since: w.since}
	var buf [3]string
	for _, c := range causes(w.e, &buf) {
		if _, ok := l.lookup(c); !ok {
			nw.on = c
			break
		}
	}
	l.waiting[nw.on] = append(l.waiting[nw.on], nw)
	l.queue = append(l.queue, nw)
	l.nwaiting++
}

// expire places the events that have waited wait or longer.
func (l *linker) expire(now time.Time) {
	for len(l.queue) > 0 {
		w := l.queue[0]
		if !w.done && now.Sub(w.since) < l.wait {
			break
		}
		l.queue[0] = nil
		l.queue = l.queue[1:]
		if !w.done {
			l.giveUp(w)
		}
	}
}

// expireOldest places the oldest waiting event now, to make room.
func (l *linker) expireOldest() {
	for len(l.queue) > 0 {
		w := l.queue[0]
		l.queue[0] = nil
		l.queue = l.queue[1:]
		if !w.done {
			l.giveUp(w)
			return
		}
	}
}

// flush places every waiting event (on shutdown).
func (l *linker) flush() {
	for len(l.queue) > 0 {
		l.expireOldest()
	}
}

// giveUp places w's event as if the cause it waited for were a root.
func (l *linker) giveUp(w *waiter) {
	w.done = true
	l.nwaiting--
	ws := l.waiting[w.on]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(l.waiting, w.on)
	} else {
		l.waiting[w.on] = ws
	}
	l.placeAt(w.e, placed{trace: traceOf(w.on), parent: spanOf(w.on)})
}

package audit

import (
	"bytes"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"
)

// Subscribers: whoever wants the events as they are logged (metrics, the
// admin API's live stream) without reading the log back. The contract:
// Log never waits for a subscriber. Each subscription has a bounded
// buffer; an event that finds it full is dropped for that subscriber
// alone, and counted (Subscription.Dropped, Logger.Dropped), so a slow
// reader costs the request path one failed channel send, never latency.
// With no subscriber, Log pays one atomic load.

// SubscribeOptions say what a subscription receives.
type SubscribeOptions struct {
	// Buffer is how many events may wait for the reader; default 1024.
	Buffer int
	// Filter, when set, picks the events this subscription receives. It
	// runs inside Log, on the request path: it must be quick, must not
	// block, and must not keep or modify the event.
	Filter func(*Event) bool
}

// Subscription receives the events logged after Subscribe. Read them from
// Events until Close.
type Subscription struct {
	l       *Logger
	ch      chan *Event
	filter  func(*Event) bool
	dropped atomic.Uint64
	once    sync.Once
}

// subscribers is the set a Logger fans out to, replaced whole on change
// (copy on write) so that Log reads it with one atomic load and no lock.
type subscribers struct {
	mu      sync.Mutex // serialises changes, never taken by Log
	list    atomic.Pointer[[]*Subscription]
	dropped atomic.Uint64 // over every subscription, for metrics
}

// Subscribe starts a subscription. Events delivered are copies shared
// between subscribers: read them, never modify them.
func (l *Logger) Subscribe(opt SubscribeOptions) *Subscription {
	if opt.Buffer <= 0 {
		opt.Buffer = 1024
	}
	s := &Subscription{l: l, ch: make(chan *Event, opt.Buffer), filter: opt.Filter}
	l.subs.mu.Lock()
	defer l.subs.mu.Unlock()
	var next []*Subscription
	if cur := l.subs.list.Load(); cur != nil {
		next = slices.Clone(*cur)
	}
	next = append(next, s)
	l.subs.list.Store(&next)
	return s
}

// Events delivers the events. It is never closed (Log may be sending
// while Close runs): readers stop on their own signal.
func (s *Subscription) Events() <-chan *Event { return s.ch }

// Dropped is how many events this subscription missed because its buffer
// was full.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close ends the subscription: no event is delivered once it returns
// (but for one Log already under way). It is safe to call more than once.
func (s *Subscription) Close() {
	s.once.Do(func() {
		subs := &s.l.subs
		subs.mu.Lock()
		defer subs.mu.Unlock()
		if cur := subs.list.Load(); cur != nil {
			next := slices.DeleteFunc(slices.Clone(*cur), func(x *Subscription) bool { return x == s })
			subs.list.Store(&next)
		}
	})
}

// Dropped is how many events subscribers missed in all, because their
// buffers were full.
func (l *Logger) Dropped() uint64 { return l.subs.dropped.Load() }

// publish hands e to every subscriber that wants it, without waiting.
// The copy is made once and only when someone subscribed, so that the
// caller may reuse or change e after Log returns.
func (l *Logger) publish(e *Event) {
	p := l.subs.list.Load()
	if p == nil || len(*p) == 0 {
		return
	}
	var cp *Event
	for _, s := range *p {
		if s.filter != nil && !s.filter(e) {
			continue
		}
		if cp == nil {
			cp = cloneEvent(e)
		}
		select {
		case s.ch <- cp:
		default:
			s.dropped.Add(1)
			l.subs.dropped.Add(1)
		}
	}
}

func cloneEvent(e *Event) *Event {
	cp := *e
	if e.MCP != nil {
		m := *e.MCP
		m.Redactions = slices.Clone(m.Redactions)
		cp.MCP = &m
	}
	// The DNS filter pools its events and clears them, DNS part included,
	// as soon as Log returns: a subscriber sharing that part read a
	// query's event without its qtype, answers or cache flag.
	if e.DNS != nil {
		d := *e.DNS
		d.Answers = slices.Clone(d.Answers)
		cp.DNS = &d
	}
	if e.LLM != nil {
		m := *e.LLM
		m.ToolCalls = slices.Clone(m.ToolCalls)
		cp.LLM = &m
	}
	if e.Approval != nil {
		a := *e.Approval
		cp.Approval = &a
	}
	return &cp
}

// JSON is e exactly as Log writes it to the log (one JSON object, with
// the newline), for those who pass events on, such as the admin API's
// event stream.
func JSON(e *Event) []byte {
	var buf bytes.Buffer
	tmp := Logger{zl: zerolog.New(&buf)}
	tmp.Log(e) // no subscribers: it only writes
	return buf.Bytes()
}

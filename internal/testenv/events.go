package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/agentg/agentg/admin"
)

// Waiting for an audit event: on the admin API's event stream (GET
// /v1/events), the audit subscription, rather than by re-reading the log
// file on a timer. The wait ends the moment the event is logged rather
// than at the next poll.
//
// The stream alone does not hold every event already logged: its replay
// (last=N) is served from the recent events, which the admin server fills
// from a subscription of its own, so an event logged before the admin
// server started (an approval denied at startup) or just before the
// stream subscribed is not in it. So once the stream is in place (every
// event from then on reaches it), the log file is read once for the
// events before; and when the wait's context ends without enough
// matches, the log is read once more (agentg flushes it every 100 ms)
// before the wait fails. Events are told apart by their id, so none
// counts twice.
//
// The admin server's recent events are filled by its own subscription,
// which may not have taken an event logged just before the stream
// subscribed when the replay is read; the log file holds it within its
// flush interval. So while the stream runs, the log is read again every
// logPoll too: such an event is found within a flush, not at the wait's
// end.
//
// An agentg whose admin API the test cannot reach (one started in a
// network namespace of its own, whose loopback is not the test's) has
// only its log: the wait then reads what is appended to it, every 20 ms.

// errEnough ends the stream once the wait has what it wants.
var errEnough = errors.New("enough events")

// WaitEvent waits until agentg logs an audit event that match accepts
// (match sees the event as logged, decoded from JSON) and returns it; it
// fails when ctx ends first. agentg must serve its admin API (the
// default of StartAgentg).
func (a *Agentg) WaitEvent(ctx context.Context, match func(map[string]any) bool) (map[string]any, error) {
	evs, err := a.WaitEvents(ctx, 1, match)
	if err != nil {
		return nil, err
	}
	return evs[0], nil
}

// WaitEvents waits until agentg has logged n audit events that match
// accepts and returns them in the order they were found (those already in
// the log file first, then the stream's). Each event counts once.
func (a *Agentg) WaitEvents(ctx context.Context, n int, match func(map[string]any) bool) ([]map[string]any, error) {
	if a.AdminAddr == "" {
		return nil, errors.New("wait for events: this agentg serves no admin API")
	}
	tok, err := a.AdminToken()
	if err != nil {
		return nil, fmt.Errorf("wait for events: %w", err)
	}
	c, err := admin.NewClient(a.AdminAddr, tok)
	if err != nil {
		return nil, fmt.Errorf("wait for events: %w", err)
	}
	w := &eventWait{n: n, match: match, seen: map[string]bool{}, rec: a.leaks}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	opened := func() {
		// Called on the stream's goroutine, as w.add is.
		if w.fromLog(a.LogFile) {
			cancel()
			return
		}
		go func() {
			t := time.NewTicker(logPoll)
			defer t.Stop()
			for {
				select {
				case <-sctx.Done():
					return
				case <-t.C:
					if w.fromLog(a.LogFile) {
						cancel()
						return
					}
				}
			}
		}()
	}
	req := admin.EventsRequest{Last: admin.DefaultRecentEvents, Follow: true}
	err = c.Events(sctx, req, opened, w.add)
	if errors.Is(err, errEnough) || w.enough() {
		return w.result(), nil
	}
	if errors.Is(err, admin.ErrNotRunning) {
		for !w.fromLog(a.LogFile) {
			select {
			case <-ctx.Done():
				return w.result(), fmt.Errorf("wait for events: %d of %d matching events in %s before %v (its admin API is out of reach: %v)",
					len(w.result()), n, a.LogFile, ctx.Err(), err)
			case <-time.After(20 * time.Millisecond):
			}
		}
		return w.result(), nil
	}
	if ctx.Err() == nil {
		return nil, fmt.Errorf("wait for events: the stream ended: %w", err)
	}
	if w.fromLog(a.LogFile) {
		return w.result(), nil
	}
	got := w.result()
	w.mu.Lock()
	dropped := w.dropped
	w.mu.Unlock()
	return got, fmt.Errorf("wait for events: %d of %d matching events before %v; dropped by the stream: %d",
		len(got), n, ctx.Err(), dropped)
}

// logPoll is how often a wait reads the log besides the stream.
const logPoll = 150 * time.Millisecond

// eventWait collects the matching events of one wait, from the stream's
// goroutine and the log poller's.
type eventWait struct {
	mu      sync.Mutex
	n       int
	match   func(map[string]any) bool
	seen    map[string]bool // by event id (or the whole event, without one)
	offset  int64           // how much of the log was read
	got     []map[string]any
	dropped uint64
	rec     *LeakCheck // the test's, which searches what the stream gave
}

func (w *eventWait) enough() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.got) >= w.n
}

// result is the first n matches, or all there are when fewer.
func (w *eventWait) result() []map[string]any {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.got[:min(len(w.got), w.n)])
}

// add takes one event of the stream.
func (w *eventWait) add(se admin.StreamEvent) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if se.Type == "dropped" {
		w.dropped = se.Dropped
		return nil
	}
	w.rec.Record("the admin API's event stream", se.Data)
	var ev map[string]any
	if err := json.Unmarshal(se.Data, &ev); err != nil {
		return fmt.Errorf("event %q: %w", se.Data, err)
	}
	if w.take(ev, string(se.Data)) {
		return errEnough
	}
	return nil
}

// fromLog takes the events appended to the log at path since it last
// looked (its operational lines, which have no kind, are not events) and
// reports whether there are enough.
func (w *eventWait) fromLog(path string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	lines, next, _ := readLogFrom(path, w.offset) // unreadable: nothing logged yet
	w.offset = next
	for _, m := range lines {
		if _, ok := m["kind"]; !ok {
			continue
		}
		b, _ := json.Marshal(m)
		if w.take(m, string(b)) {
			return true
		}
	}
	return len(w.got) >= w.n
}

// take counts ev (raw, its JSON, tells it apart when it has no id) if it
// matches and was not counted yet, and reports whether there are enough.
func (w *eventWait) take(ev map[string]any, raw string) bool {
	key, _ := ev["id"].(string)
	if key == "" {
		key = raw
	}
	if !w.seen[key] && w.match(ev) {
		w.seen[key] = true
		w.got = append(w.got, ev)
	}
	return len(w.got) >= w.n
}

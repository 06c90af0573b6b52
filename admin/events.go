package admin

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agentg/agentg/audit"
)

// The event stream, GET /v1/events: Server-Sent Events, one "decision"
// event per audit event (its data the event exactly as logged), filtered
// by the query. last=N first replays up to N of the recent events the
// filter picks (recent.go), oldest first; follow=false ends the stream
// there, else the live events follow, none of them sent twice. Each
// stream has a bounded buffer of its own: a reader that falls behind loses
// events, and is told how many in a "dropped" event, rather than slow
// anything down.

// EventsRequest is what a GET /v1/events asks for. The zero value follows
// nothing; Follow is what a plain GET /v1/events means.
type EventsRequest struct {
	Filter EventFilter
	Last   int  // replay up to this many recent events first
	Follow bool // then stay for the live ones
}

// Query is the request as query parameters.
func (r EventsRequest) Query() url.Values {
	q := r.Filter.Query()
	if r.Last > 0 {
		q.Set("last", strconv.Itoa(r.Last))
	}
	if !r.Follow {
		q.Set("follow", "false")
	}
	return q
}

// parseEventsRequest reads a request from a query; max bounds last.
func parseEventsRequest(q url.Values, max int) (EventsRequest, error) {
	r := EventsRequest{Follow: true}
	if v := q.Get("last"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > max {
			return r, fmt.Errorf("last=%q: a number from 0 to %d (the recent events agentg keeps)", v, max)
		}
		r.Last = n
	}
	if v := q.Get("follow"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return r, fmt.Errorf("follow=%q: true or false", v)
		}
		r.Follow = b
	}
	rest := url.Values{}
	for k, vs := range q {
		if k != "last" && k != "follow" {
			rest[k] = vs
		}
	}
	f, err := ParseEventFilter(rest)
	r.Filter = f
	return r, err
}

// EventFilter picks events by agent, kind and decision: within one field
// any of the values given matches, and every field given must match. The
// zero filter matches every event.
type EventFilter struct {
	Agents    []string
	Kinds     []string
	Decisions []string
}

// ParseEventFilter reads a filter from a query: agent, kind and decision,
// each repeated or comma-separated.
func ParseEventFilter(q url.Values) (EventFilter, error) {
	for k := range q {
		switch k {
		case "agent", "kind", "decision":
		default:
			return EventFilter{}, fmt.Errorf("unknown filter %q (want agent, kind, decision; or last, follow)", k)
		}
	}
	f := EventFilter{Agents: values(q["agent"]), Kinds: values(q["kind"]), Decisions: values(q["decision"])}
	if err := f.Check(); err != nil {
		return EventFilter{}, err
	}
	return f, nil
}

// Check refuses a kind or a decision no event can have: such a filter
// would match nothing and say nothing.
func (f EventFilter) Check() error {
	for _, k := range f.Kinds {
		if !slices.Contains(audit.Kinds, k) {
			return fmt.Errorf("kind %q: no event has it (kinds: %s)", k, strings.Join(audit.Kinds, ", "))
		}
	}
	for _, d := range f.Decisions {
		if !slices.Contains(audit.Outcomes, d) {
			return fmt.Errorf("decision %q: no event has it (decisions: %s)", d, strings.Join(audit.Outcomes, ", "))
		}
	}
	return nil
}

func values(vs []string) []string {
	var out []string
	for _, v := range vs {
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// Query is the filter as query parameters.
func (f EventFilter) Query() url.Values {
	q := url.Values{}
	for k, vs := range map[string][]string{"agent": f.Agents, "kind": f.Kinds, "decision": f.Decisions} {
		if len(vs) > 0 {
			q.Set(k, strings.Join(vs, ","))
		}
	}
	return q
}

// Match reports whether e passes the filter.
func (f EventFilter) Match(e *audit.Event) bool {
	return anyOf(f.Agents, e.Agent) && anyOf(f.Kinds, e.Kind) && anyOf(f.Decisions, e.Decision)
}

func anyOf(want []string, v string) bool { return len(want) == 0 || slices.Contains(want, v) }

const (
	// keepAlive is how often an idle stream gets a comment line, so that
	// proxies and load balancers in between do not close it.
	keepAlive = 15 * time.Second
	// writeTimeout drops a reader that stops reading.
	writeTimeout = 30 * time.Second
)

func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	req, err := parseEventsRequest(r.URL.Query(), s.cfg.RecentEvents)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_filter", err.Error())
		return
	}
	if !s.streams.acquire(s.cfg.MaxStreams) {
		writeError(w, http.StatusServiceUnavailable, "too_many_streams", fmt.Sprintf("%d event streams are open, the most agentg serves", s.cfg.MaxStreams))
		return
	}
	defer s.streams.release()
	f := req.Filter
	var sub *audit.Subscription
	if req.Follow {
		// Before the replay: an event logged meanwhile is then in one or
		// both, and sent once.
		sub = s.cfg.Log.Subscribe(audit.SubscribeOptions{Buffer: s.cfg.StreamBuffer, Filter: f.Match})
		defer sub.Close()
	}

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	var buf bytes.Buffer
	send := func() bool {
		rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		_, err := w.Write(buf.Bytes())
		buf.Reset()
		return err == nil && rc.Flush() == nil
	}
	// The comment says the subscription is in place: whoever waits for it
	// knows every event from now on reaches the stream.
	buf.WriteString(": agentg events\n\n")
	if !send() {
		return
	}
	var replayed map[string]bool
	if req.Last > 0 {
		replayed = map[string]bool{}
		for _, e := range s.recent.last(req.Last, f) {
			writeDecision(&buf, e)
			if e.ID != "" {
				replayed[e.ID] = true
			}
		}
		if !send() {
			return
		}
	}
	if !req.Follow {
		return
	}
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	var reported uint64
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		case <-tick.C:
			buf.WriteString(": keep-alive\n\n")
		case e := <-sub.Events():
			if e.ID != "" && replayed[e.ID] {
				delete(replayed, e.ID)
				continue
			}
			writeDecision(&buf, e)
		}
		if d := sub.Dropped(); d != reported {
			fmt.Fprintf(&buf, "event: dropped\ndata: {\"dropped\":%d}\n\n", d)
			reported = d
		}
		if !send() {
			return
		}
	}
}

// writeDecision writes e as one "decision" event.
func writeDecision(buf *bytes.Buffer, e *audit.Event) {
	line := bytes.TrimRight(audit.JSON(e), "\n")
	fmt.Fprintf(buf, "id: %s\nevent: decision\ndata: %s\n\n", oneLine(e.ID), line)
}

// oneLine keeps an SSE field on its line whatever the value holds.
func oneLine(s string) string {
	return strings.NewReplacer("\r", "", "\n", "").Replace(s)
}

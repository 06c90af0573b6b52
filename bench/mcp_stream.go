package bench

// The MCP streaming figures: how soon a slow tool's first progress event
// reaches the client (it must not wait for the rest of the answer), and
// what an open SSE stream costs agentg in memory.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/agentg/agentg/internal/testenv"
)

// FirstEvent is the time from sending a call of the slow tool (one step,
// with a progress token) until its first event, the progress
// notification, arrives; the tool then waits for the harness before it
// answers, so the event can only arrive early if every hop forwards it as
// it comes.
type FirstEvent struct {
	Mode    Mode          `json:"mode"`
	Samples int           `json:"samples"`
	P50     time.Duration `json:"p50_ns"`
	Max     time.Duration `json:"max_ns"`
	Errors  int           `json:"errors"`
	First   string        `json:"first_error,omitempty"`
}

// stuck is how long FirstEvent waits for the first event before letting
// the tool finish anyway (so a proxy that holds events back shows as a
// latency of stuck, not a hang).
const stuck = 2 * time.Second

// MeasureFirstEvent calls the slow tool n times on the SSE server in mode
// m, on one session.
func (e *MCPEnv) MeasureFirstEvent(m Mode, n int) FirstEvent {
	fe := FirstEvent{Mode: m}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(n)*(stuck+5*time.Second))
	defer cancel()
	r, err := e.openSession(ctx, testenv.MCPStateful, m)
	if err != nil {
		fe.Errors, fe.First = 1, err.Error()
		return fe
	}
	defer closeSession(r)
	srv := e.Servers[testenv.MCPStateful]
	var lat []time.Duration
	for i := range n {
		d, err := firstEvent(ctx, r, srv, i)
		if err != nil {
			fe.Errors++
			if fe.First == "" {
				fe.First = err.Error()
			}
			continue
		}
		lat = append(lat, d)
	}
	slices.Sort(lat)
	fe.Samples = len(lat)
	fe.P50 = percentile(lat, 0.5)
	if len(lat) > 0 {
		fe.Max = lat[len(lat)-1]
	}
	return fe
}

func firstEvent(ctx context.Context, r *testenv.MCPRaw, srv *testenv.MCPServer, i int) (time.Duration, error) {
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"slow","arguments":{"steps":1},"_meta":{"progressToken":"p%d"}}}`, i+1, i+1)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.Endpoint, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", r.Revision)
	req.Header.Set("Mcp-Session-Id", r.Session)
	// Let the tool finish after stuck whatever happens, so that nothing
	// hangs on a proxy that holds the event back.
	got := make(chan struct{})
	advanced := make(chan error, 1)
	go func() {
		select {
		case <-got:
		case <-time.After(stuck):
		}
		advanced <- srv.Advance(5 * time.Second)
	}()
	t0 := time.Now()
	resp, err := r.HTTP.Do(req)
	if err != nil {
		close(got)
		<-advanced
		return 0, err
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	ev, err := testenv.ReadSSE(br)
	d := time.Since(t0)
	close(got)
	if err != nil {
		<-advanced
		return 0, fmt.Errorf("slow: first event: %d %s: %w", resp.StatusCode, resp.Header.Get("Content-Type"), err)
	}
	if !strings.Contains(ev.Data, "notifications/progress") {
		<-advanced
		return 0, fmt.Errorf("slow: first event is not progress: %.200q", ev.Data)
	}
	if err := <-advanced; err != nil {
		return 0, err
	}
	rest, err := io.ReadAll(br)
	if err != nil || !strings.Contains(string(rest), "slow: done") {
		return 0, fmt.Errorf("slow: answer %.200q: %v", rest, err)
	}
	return d, nil
}

// StreamMemory is agentg's resident memory around opening Streams GET
// streams (each on its own session, connection and intercepted tunnel),
// and after Events events were sent down every one of them.
type StreamMemory struct {
	Mode      Mode  `json:"mode"`
	Streams   int   `json:"streams"`
	Events    int   `json:"events_per_stream"`
	Base      int64 `json:"rss_base"`     // before any session
	Open      int64 `json:"rss_sessions"` // sessions initialized, no stream yet
	Streams0  int64 `json:"rss_streams"`  // every stream open
	After     int64 `json:"rss_after_events"`
	Delivered int64 `json:"events_delivered"`
}

// PerStream is what each open stream added to agentg's RSS.
func (s StreamMemory) PerStream() int64 { return (s.Streams0 - s.Open) / int64(max(s.Streams, 1)) }

// PerSession is each session and stream together, connection and
// intercepted tunnel included, over the base.
func (s StreamMemory) PerSession() int64 { return (s.Streams0 - s.Base) / int64(max(s.Streams, 1)) }

// GrowthPerStream is what the events added per stream after they were
// delivered: bounded memory means about zero whatever the stream's length.
func (s StreamMemory) GrowthPerStream() int64 {
	return (s.After - s.Streams0) / int64(max(s.Streams, 1))
}

// MeasureStreamMemory opens n sessions on the SSE server in mode m
// (intercept or mcp-policy), reads agentg's RSS, opens each session's GET
// stream, reads it again, then changes a tool's description events times
// (each change sends notifications/tools/list_changed down every stream)
// and reads it once more.
func (e *MCPEnv) MeasureStreamMemory(m Mode, n, events int) (StreamMemory, error) {
	sm := StreamMemory{Mode: m, Streams: n, Events: events}
	a := e.agentg(m)
	if a == nil {
		return sm, fmt.Errorf("stream memory: mode %s has no agentg", m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var err error
	if sm.Base, err = rss(a.Pid()); err != nil {
		return sm, err
	}
	srv := e.Servers[testenv.MCPStateful]
	sessions := make([]*testenv.MCPRaw, 0, n)
	defer func() {
		for _, s := range sessions {
			closeSession(s)
		}
	}()
	for range n {
		r, err := e.openSession(ctx, testenv.MCPStateful, m)
		if err != nil {
			return sm, err
		}
		sessions = append(sessions, r)
	}
	time.Sleep(300 * time.Millisecond)
	if sm.Open, err = rss(a.Pid()); err != nil {
		return sm, err
	}
	counts := make(chan int64, n)
	bodies := make([]io.Closer, 0, n)
	defer func() {
		for _, b := range bodies {
			b.Close()
		}
	}()
	for _, r := range sessions {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.Endpoint, nil)
		if err != nil {
			return sm, err
		}
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("MCP-Protocol-Version", r.Revision)
		req.Header.Set("Mcp-Session-Id", r.Session)
		resp, err := r.HTTP.Do(req)
		if err != nil {
			return sm, fmt.Errorf("open GET stream: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			return sm, fmt.Errorf("open GET stream: %d %q", resp.StatusCode, b)
		}
		bodies = append(bodies, resp.Body)
		go func() {
			br := bufio.NewReader(resp.Body)
			var k int64
			for {
				if _, err := testenv.ReadSSE(br); err != nil {
					break
				}
				k++
			}
			counts <- k
		}()
	}
	time.Sleep(300 * time.Millisecond)
	if sm.Streams0, err = rss(a.Pid()); err != nil {
		return sm, err
	}
	for i := range events {
		if err := srv.SetDescription(testenv.MCPToolMutable, fmt.Sprintf("Reads the weather for a city, version %d. %s", i, strings.Repeat("padding ", 64))); err != nil {
			return sm, err
		}
		time.Sleep(20 * time.Millisecond) // the SDK coalesces list_changed sent in quick succession
	}
	time.Sleep(500 * time.Millisecond)
	if sm.After, err = rss(a.Pid()); err != nil {
		return sm, err
	}
	for _, b := range bodies {
		b.Close()
	}
	bodies = nil
	for range n {
		sm.Delivered += <-counts
	}
	return sm, nil
}

package audit

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSubscribeDelivers(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf)
	all := l.Subscribe(SubscribeOptions{})
	defer all.Close()
	mcpOnly := l.Subscribe(SubscribeOptions{Filter: func(e *Event) bool { return e.Kind == "mcp" }})
	defer mcpOnly.Close()

	ev := &Event{ID: "a", Kind: "mcp", Decision: "deny", MCP: &MCP{Tool: "t", Redactions: []string{"r"}}}
	l.Log(ev)
	l.Log(&Event{ID: "b", Kind: "http"})
	// The caller may change its event after Log: subscribers hold a copy.
	ev.Decision, ev.MCP.Tool, ev.MCP.Redactions[0] = "allow", "changed", "changed"

	got := recv(t, all)
	if got.ID != "a" || got.Decision != "deny" || got.MCP.Tool != "t" || got.MCP.Redactions[0] != "r" {
		t.Fatalf("first event %+v %+v: not the event as logged", got, got.MCP)
	}
	if got := recv(t, all); got.ID != "b" {
		t.Fatalf("second event %q, want b", got.ID)
	}
	if got := recv(t, mcpOnly); got.ID != "a" {
		t.Fatalf("filtered subscription got %q, want a", got.ID)
	}
	select {
	case e := <-mcpOnly.Events():
		t.Fatalf("filtered subscription got the http event %q", e.ID)
	case <-time.After(20 * time.Millisecond):
	}
	if strings.Count(buf.String(), "\n") != 2 {
		t.Fatalf("log has %q, want both events written", buf.String())
	}
}

// A subscriber that does not read never slows Log down: its events are
// dropped and counted, and the others still get theirs.
func TestSubscribeSlowReaderDrops(t *testing.T) {
	l := New(io.Discard)
	slow := l.Subscribe(SubscribeOptions{Buffer: 2})
	defer slow.Close()
	fast := l.Subscribe(SubscribeOptions{Buffer: 100})
	defer fast.Close()
	done := make(chan struct{})
	go func() {
		for range 10 {
			l.Log(&Event{Kind: "http"})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Log blocked on a subscriber that does not read")
	}
	if slow.Dropped() != 8 || l.Dropped() != 8 {
		t.Fatalf("dropped %d (logger %d), want 8: a buffer of 2 and 10 events", slow.Dropped(), l.Dropped())
	}
	if len(fast.Events()) != 10 || fast.Dropped() != 0 {
		t.Fatalf("fast subscriber has %d events and dropped %d, want 10 and 0", len(fast.Events()), fast.Dropped())
	}
}

func TestSubscribeClose(t *testing.T) {
	l := New(io.Discard)
	s := l.Subscribe(SubscribeOptions{})
	s.Close()
	s.Close()
	l.Log(&Event{Kind: "http"})
	if len(s.Events()) != 0 || s.Dropped() != 0 {
		t.Fatal("a closed subscription still receives events")
	}
}

// JSON is the line Log writes.
// Every part of an event a subscriber gets is its own: the DNS filter
// pools its events and clears them, DNS part and all, once Log returns.
func TestSubscribeCopiesEveryPart(t *testing.T) {
	l := New(io.Discard)
	s := l.Subscribe(SubscribeOptions{})
	defer s.Close()
	ev := &Event{ID: "q", Kind: "dns",
		DNS:      &DNS{Type: "A", Answers: []string{"192.0.2.1"}, Upstream: "u", Cached: true},
		Approval: &Approval{ID: "ap", Action: "held"}}
	l.Log(ev)
	ev.DNS.Answers[0] = "changed"
	*ev.DNS = DNS{}
	*ev.Approval = Approval{}
	ev.DNS, ev.Approval = nil, nil
	got := recv(t, s)
	if got.DNS == nil || got.DNS.Type != "A" || len(got.DNS.Answers) != 1 || got.DNS.Answers[0] != "192.0.2.1" || !got.DNS.Cached || got.DNS.Upstream != "u" {
		t.Fatalf("DNS part %+v: not the event as logged", got.DNS)
	}
	if got.Approval == nil || got.Approval.ID != "ap" || got.Approval.Action != "held" {
		t.Fatalf("approval part %+v: not the event as logged", got.Approval)
	}
}

func TestJSONIsTheLogLine(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf)
	e := &Event{ID: "x", Time: time.Unix(1, 0), Kind: "mcp", Agent: "a", Decision: "deny", Rule: "r", MCP: &MCP{Server: "s", Tool: "t"}}
	l.Log(e)
	if got := string(JSON(e)); got != buf.String() {
		t.Fatalf("JSON %q, log line %q", got, buf.String())
	}
	var m map[string]any
	if err := json.Unmarshal(JSON(e), &m); err != nil || m["tool"] != "t" {
		t.Fatalf("JSON not an event object: %v %v", m, err)
	}
}

func recv(t *testing.T, s *Subscription) *Event {
	t.Helper()
	select {
	case e := <-s.Events():
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event delivered")
		return nil
	}
}

// What a subscriber costs Log: none, and one that keeps up (the metrics).
func BenchmarkLogSubscribers(b *testing.B) {
	for _, n := range []int{0, 1} {
		b.Run(strconv.Itoa(n)+"-subscribers", func(b *testing.B) {
			l := New(io.Discard)
			for range n {
				s := l.Subscribe(SubscribeOptions{Buffer: 1 << 14})
				defer s.Close()
				go func() {
					for range s.Events() {
					}
				}()
			}
			e := &Event{Kind: "http", Agent: "a", Host: "example.com", Port: 443, Decision: "allow", Rule: "r", Time: time.Now()}
			b.ReportAllocs()
			for b.Loop() {
				l.Log(e)
			}
		})
	}
}

package otlp

import (
	"testing"
	"time"

	"github.com/agentg/agentg/audit"
)

// want is where one event's span must go: under parent ("" for a root),
// in the trace rooted at root.
type want struct{ parent, root string }

func TestLinker(t *testing.T) {
	open := func(tunnel string) *audit.Event {
		return &audit.Event{ID: "open-" + tunnel, Parent: tunnel, Kind: kindTunnelOpen}
	}
	ev := func(id, kind, parent, causedBy string) *audit.Event {
		return &audit.Event{ID: id, Kind: kind, Parent: parent, CausedBy: causedBy}
	}
	tests := []struct {
		name       string
		events     []*audit.Event
		maxPending int
		expire     bool // expire everything after the events
		want       map[string]want
	}{
		{
			name: "a model turn logged before its request, inside a tunnel",
			events: []*audit.Event{open("T"), ev("L", "llm", "H", ""), ev("H", "http", "T", ""),
				ev("T", "connect", "", "")},
			want: map[string]want{"L": {"H", "H"}, "H": {"", "H"}, "T": {"", "T"}},
		},
		{
			name: "a tool's requests logged before the call, the call before its request",
			events: []*audit.Event{open("T1"), open("T2"), ev("F", "http", "T1", "M"), ev("M", "mcp", "H2", ""),
				ev("H2", "http", "T2", "")},
			want: map[string]want{"F": {"M", "H2"}, "M": {"H2", "H2"}, "H2": {"", "H2"}},
		},
		{
			name:   "a tool's tunnel is the call's child",
			events: []*audit.Event{open("C"), ev("C", "connect", "", "M"), ev("M", "mcp", "", "")},
			want:   map[string]want{"C": {"M", "M"}, "M": {"", "M"}},
		},
		{
			name:   "a request whose tunnel-open was lost: under the tunnel, in its trace",
			events: []*audit.Event{ev("H", "http", "T", "")},
			expire: true,
			want:   map[string]want{"H": {"T", "T"}},
		},
		{
			name:       "past maxPending the oldest waiting is placed at once",
			events:     []*audit.Event{ev("A", "http", "", "X"), ev("B", "http", "", "Y")},
			maxPending: 1,
			want:       map[string]want{"A": {"X", "X"}},
		},
		{
			name:   "a cause seen as caused_by is preferred to a tunnel parent",
			events: []*audit.Event{open("T"), ev("M", "mcp", "", ""), ev("F", "http", "T", "M")},
			want:   map[string]want{"M": {"", "M"}, "F": {"M", "M"}},
		},
		{
			name: "an approval step under its held call, a chain three deep",
			events: []*audit.Event{ev("A", "approval", "M", ""), ev("F", "http", "", "A"), ev("M", "mcp", "H", ""),
				ev("H", "http", "", "")},
			want: map[string]want{"A": {"M", "H"}, "F": {"A", "H"}, "M": {"H", "H"}, "H": {"", "H"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]placed{}
			maxP := tc.maxPending
			if maxP == 0 {
				maxP = 100
			}
			l := newLinker(func(e *audit.Event, p placed) {
				if _, dup := got[e.ID]; dup {
					t.Errorf("event %s placed twice", e.ID)
				}
				got[e.ID] = p
			}, 100, maxP, time.Minute)
			now := time.Now()
			for _, e := range tc.events {
				l.add(e, now)
			}
			if tc.expire {
				l.expire(now.Add(time.Hour))
				if l.nwaiting != 0 || len(l.waiting) != 0 {
					t.Fatalf("still waiting after expiry: %d", l.nwaiting)
				}
			}
			for id, w := range tc.want {
				p, ok := got[id]
				if !ok {
					t.Errorf("%s: not placed", id)
					continue
				}
				if p.trace != traceOf(w.root) {
					t.Errorf("%s: trace %s, want the one rooted at %s", id, p.trace, w.root)
				}
				switch {
				case w.parent == "" && p.parent.IsValid():
					t.Errorf("%s: parent span %s, want a root", id, p.parent)
				case w.parent != "" && p.parent != spanOf(w.parent):
					t.Errorf("%s: parent span %s, want %s's", id, p.parent, w.parent)
				}
			}
			for id := range got {
				if _, ok := tc.want[id]; !ok && !tc.expire && tc.maxPending == 0 {
					t.Errorf("%s placed, not expected", id)
				}
			}
		})
	}
}

// A waiting event is given up on only after the wait, not before.
func TestLinkerWaits(t *testing.T) {
	var placedIDs []string
	l := newLinker(func(e *audit.Event, p placed) { placedIDs = append(placedIDs, e.ID) }, 100, 100, time.Second)
	t0 := time.Now()
	l.add(&audit.Event{ID: "F", Kind: "http", CausedBy: "M"}, t0)
	l.expire(t0.Add(999 * time.Millisecond))
	if len(placedIDs) != 0 {
		t.Fatalf("placed before the wait was over: %v", placedIDs)
	}
	l.expire(t0.Add(time.Second))
	if len(placedIDs) != 1 {
		t.Fatalf("not placed after the wait: %v", placedIDs)
	}
	// The cause, arriving late, is placed once and releases nothing twice.
	l.add(&audit.Event{ID: "M", Kind: "mcp"}, t0.Add(2*time.Second))
	if len(placedIDs) != 2 || l.nwaiting != 0 {
		t.Fatalf("placed %v, waiting %d", placedIDs, l.nwaiting)
	}
}

// The seen set is bounded: past maxSeen an old cause is forgotten.
func TestLinkerForgets(t *testing.T) {
	l := newLinker(func(*audit.Event, placed) {}, 4, 100, time.Second)
	for _, id := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i"} {
		l.add(&audit.Event{ID: id, Kind: "http"}, time.Now())
	}
	if _, ok := l.lookup("a"); ok {
		t.Fatal("a is still remembered after 8 newer events with maxSeen 4")
	}
	if _, ok := l.lookup("i"); !ok {
		t.Fatal("the newest is forgotten")
	}
	if n := len(l.cur) + len(l.prev); n > 8 {
		t.Fatalf("%d remembered, want at most 2*maxSeen", n)
	}
}

func TestIDsDerived(t *testing.T) {
	if traceOf("x") != traceOf("x") || spanOf("x") != spanOf("x") {
		t.Fatal("ids are not deterministic")
	}
	if traceOf("x") == traceOf("y") || spanOf("x") == spanOf("y") {
		t.Fatal("different events share ids")
	}
	if !traceOf("").IsValid() || !spanOf("").IsValid() {
		t.Fatal("invalid ids")
	}
}

package llm

import (
	"context"
	"testing"
	"time"
)

func TestClaim(t *testing.T) {
	var r Recent
	t0 := time.Unix(1000, 0)
	turn := func(names ...string) Turn {
		var tu Turn
		for _, n := range names {
			tu.ToolCalls = append(tu.ToolCalls, ToolCall{Name: n})
		}
		return tu
	}
	r.Add("a", RecentTurn{Event: "e1", At: t0, Turn: turn("x", "y", "x")})
	r.Add("a", RecentTurn{Event: "e2", At: t0.Add(time.Minute), Turn: turn("x")})
	is := func(n string) func(ToolCall) bool { return func(c ToolCall) bool { return c.Name == n } }
	for _, want := range []struct {
		event string
		index int
	}{{"e1", 0}, {"e1", 2}, {"e2", 0}} {
		rt, i, ok := r.Claim("a", t0, is("x"))
		if !ok || rt.Event != want.event || i != want.index {
			t.Fatalf("claim x = %v %d %v, want %v", rt.Event, i, ok, want)
		}
	}
	if _, _, ok := r.Claim("a", t0, is("x")); ok {
		t.Error("a tool call was claimed twice")
	}
	if _, _, ok := r.Claim("a", t0.Add(time.Second), is("y")); ok {
		t.Error("a turn before the window was claimed")
	}
	if _, _, ok := r.Claim("b", time.Time{}, is("y")); ok || r.Seen("b") || !r.Seen("a") {
		t.Error("another agent's turn was claimed, or Seen is wrong")
	}
}

func TestClaimWait(t *testing.T) {
	var r Recent
	is := func(c ToolCall) bool { return c.Name == "x" }
	// Nothing in flight: no wait at all.
	start := time.Now()
	if _, _, ok := r.ClaimWait(context.Background(), "a", time.Time{}, 5*time.Second, is); ok || time.Since(start) > time.Second {
		t.Fatalf("claimed %v after %v with nothing in flight", ok, time.Since(start))
	}
	// A model call in flight whose turn asks for x: the claim waits for it.
	end := r.Begin("a")
	go func() {
		time.Sleep(50 * time.Millisecond)
		r.Add("a", RecentTurn{Event: "late", At: time.Now(), Turn: Turn{ToolCalls: []ToolCall{{Name: "x"}}}})
		end()
	}()
	rt, _, ok := r.ClaimWait(context.Background(), "a", time.Time{}, 10*time.Second, is)
	if !ok || rt.Event != "late" {
		t.Fatalf("ClaimWait = %v %v, want the late turn", rt.Event, ok)
	}
	// A call in flight whose turn asks for something else: bounded.
	end = r.Begin("a")
	defer end()
	start = time.Now()
	if _, _, ok := r.ClaimWait(context.Background(), "a", time.Time{}, 100*time.Millisecond, is); ok {
		t.Fatal("claimed what no turn asked for")
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 5*time.Second {
		t.Errorf("waited %v, want the bound", d)
	}
}

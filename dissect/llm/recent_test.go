package llm

import (
	"strconv"
	"testing"
	"time"
)

func TestRecent(t *testing.T) {
	var r Recent
	t0 := time.Unix(1000, 0)
	for i := range RecentPerAgent + 4 {
		r.Add("a", RecentTurn{Event: strconv.Itoa(i), At: t0.Add(time.Duration(i) * time.Second)})
	}
	got := r.Since("a", time.Time{})
	if len(got) != RecentPerAgent || got[0].Event != "4" || got[len(got)-1].Event != strconv.Itoa(RecentPerAgent+3) {
		t.Fatalf("kept %d turns, %v .. %v", len(got), got[0].Event, got[len(got)-1].Event)
	}
	if got := r.Since("a", t0.Add(18*time.Second)); len(got) != 2 || got[0].Event != "18" {
		t.Errorf("since 18s: %v", got)
	}
	if r.Since("b", time.Time{}) != nil {
		t.Error("an agent without turns has some")
	}
	// Past RecentAgents, the agent whose last turn is oldest goes.
	for i := range RecentAgents {
		r.Add("x"+strconv.Itoa(i), RecentTurn{Event: "x"})
	}
	if r.Since("a", time.Time{}) != nil || r.Since("x1", time.Time{}) == nil || len(r.agents) != RecentAgents {
		t.Errorf("eviction: a kept %v, %d agents", r.Since("a", time.Time{}) != nil, len(r.agents))
	}
}

package llm

import (
	"sync"
	"time"
)

// Recent keeps each agent's last model turns, for whoever must tie what
// an agent does next to the turn that asked for it (the MCP guard, to
// link a tools/call to the turn whose tool call it carries out). It is
// bounded: RecentPerAgent turns per agent, RecentAgents agents (past
// that, an agent's first turn evicts the agent seen least recently). The
// zero value is ready; it is safe for concurrent use. One lock per model
// turn (not per request): turns are few and slow.
type Recent struct {
	mu     sync.Mutex
	agents map[string]*recentRing
	clock  uint64 // orders agents by their last turn, for eviction
}

// RecentPerAgent and RecentAgents bound a Recent.
const (
	RecentPerAgent = 16
	RecentAgents   = 4096
)

// RecentTurn is one turn as kept: the event that recorded it, when it
// ended, and what it said.
type RecentTurn struct {
	Event string // the llm event's id
	At    time.Time
	Turn  Turn
	// claimed marks the tool calls an MCP call was tied to (claim.go),
	// by index in Turn.ToolCalls; nil until the first.
	claimed []bool
}

type recentRing struct {
	turns [RecentPerAgent]RecentTurn
	n     int // turns added so far
	last  uint64
	// inflight counts the agent's model calls whose turns are still to
	// come, and changed is closed (and cleared) when a turn is added or
	// a call ends, for whoever waits for them (claim.go).
	inflight int
	changed  chan struct{}
}

// Add keeps t as agent's latest turn.
func (r *Recent) Add(agent string, t RecentTurn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ring := r.ringLocked(agent)
	r.clock++
	ring.last = r.clock
	ring.turns[ring.n%RecentPerAgent] = t
	ring.n++
	ring.notifyLocked()
}

// ringLocked is agent's ring, made (and another agent's evicted) if
// need be. Call with mu held.
func (r *Recent) ringLocked(agent string) *recentRing {
	if r.agents == nil {
		r.agents = map[string]*recentRing{}
	}
	ring := r.agents[agent]
	if ring == nil {
		if len(r.agents) >= RecentAgents {
			r.evict()
		}
		ring = &recentRing{}
		r.agents[agent] = ring
	}
	return ring
}

// evict drops the agent whose last turn is oldest. Call with mu held.
func (r *Recent) evict() {
	var oldest string
	var at uint64
	first := true
	for a, ring := range r.agents {
		// An agent with a model call in flight is kept while another
		// can go: its turn is about to be waited for (claim.go).
		if ring.inflight == 0 && (first || ring.last < at) {
			oldest, at, first = a, ring.last, false
		}
	}
	if first {
		for a := range r.agents {
			oldest = a
			break
		}
	}
	delete(r.agents, oldest)
}

// Since returns agent's kept turns that ended at or after t, oldest
// first.
func (r *Recent) Since(agent string, t time.Time) []RecentTurn {
	r.mu.Lock()
	defer r.mu.Unlock()
	ring := r.agents[agent]
	if ring == nil {
		return nil
	}
	var out []RecentTurn
	start := max(0, ring.n-RecentPerAgent)
	for i := start; i < ring.n; i++ {
		if rt := ring.turns[i%RecentPerAgent]; !rt.At.Before(t) {
			out = append(out, rt)
		}
	}
	return out
}

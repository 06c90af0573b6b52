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
}

type recentRing struct {
	turns [RecentPerAgent]RecentTurn
	n     int // turns added so far
	last  uint64
}

// Add keeps t as agent's latest turn.
func (r *Recent) Add(agent string, t RecentTurn) {
	r.mu.Lock()
	defer r.mu.Unlock()
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
	r.clock++
	ring.last = r.clock
	ring.turns[ring.n%RecentPerAgent] = t
	ring.n++
}

// evict drops the agent whose last turn is oldest. Call with mu held.
func (r *Recent) evict() {
	var oldest string
	var at uint64
	first := true
	for a, ring := range r.agents {
		if first || ring.last < at {
			oldest, at, first = a, ring.last, false
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

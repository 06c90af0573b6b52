package llm

import (
	"context"
	"time"
)

// Claiming a turn's tool calls. The MCP guard ties each tools/call to the
// model tool call it carries out: Claim finds the oldest tool call, in an
// agent's turns since a time, that a test accepts and no MCP call claimed
// yet, and claims it, so each model tool call is matched at most once.
//
// A turn is kept once its answer has passed (the proxy adds it when the
// exchange ends), but an agent may act on a tool call as soon as it has
// read it: a streamed answer's last event, or a sized body's last byte,
// can reach the agent a moment before the proxy has added the turn. So
// the proxy notes each model call in flight (Begin), and ClaimWait, when
// nothing matches while one of the agent's is in flight, waits for it to
// end and looks again: bounded, and only then.

// Begin notes a model call of agent's in flight, whose turn Add will keep;
// end (call it once, after Add) says it is over.
func (r *Recent) Begin(agent string) (end func()) {
	r.mu.Lock()
	ring := r.ringLocked(agent)
	ring.inflight++
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		// The ring may have been evicted and made anew: count down the
		// one that is there now, never below zero.
		if ring := r.agents[agent]; ring != nil && ring.inflight > 0 {
			ring.inflight--
			ring.notifyLocked()
		}
	}
}

// notifyLocked wakes whoever waits for the ring to change. Call with mu
// held.
func (ring *recentRing) notifyLocked() {
	if ring.changed != nil {
		close(ring.changed)
		ring.changed = nil
	}
}

// Seen reports whether a turn of agent's is kept: its model path goes
// through whoever adds them.
func (r *Recent) Seen(agent string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	ring := r.agents[agent]
	return ring != nil && ring.n > 0
}

// Claim claims the oldest tool call of agent's turns that ended at or
// after since, that match accepts and that no one claimed before; it
// returns its turn and the call's index in Turn.ToolCalls.
func (r *Recent) Claim(agent string, since time.Time, match func(ToolCall) bool) (RecentTurn, int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rt, i, ok, _ := r.claimLocked(agent, since, match)
	return rt, i, ok
}

// claimLocked is Claim; wait is a channel closed when the agent's turns
// change, when nothing was claimed while a model call of the agent's is
// in flight (nil otherwise). Call with mu held.
func (r *Recent) claimLocked(agent string, since time.Time, match func(ToolCall) bool) (RecentTurn, int, bool, chan struct{}) {
	ring := r.agents[agent]
	if ring == nil {
		return RecentTurn{}, 0, false, nil
	}
	for i := max(0, ring.n-RecentPerAgent); i < ring.n; i++ {
		rt := &ring.turns[i%RecentPerAgent]
		if rt.At.Before(since) {
			continue
		}
		for j, tc := range rt.Turn.ToolCalls {
			if j < len(rt.claimed) && rt.claimed[j] || !match(tc) {
				continue
			}
			if rt.claimed == nil {
				rt.claimed = make([]bool, len(rt.Turn.ToolCalls))
			}
			rt.claimed[j] = true
			return *rt, j, true, nil
		}
	}
	if ring.inflight == 0 {
		return RecentTurn{}, 0, false, nil
	}
	if ring.changed == nil {
		ring.changed = make(chan struct{})
	}
	return RecentTurn{}, 0, false, ring.changed
}

// ClaimWait is Claim that, when nothing matches while a model call of
// agent's is in flight, waits for the agent's turns to change and looks
// again, until wait has passed or ctx is done.
func (r *Recent) ClaimWait(ctx context.Context, agent string, since time.Time, wait time.Duration, match func(ToolCall) bool) (RecentTurn, int, bool) {
	var timer *time.Timer
	for {
		r.mu.Lock()
		rt, i, ok, ch := r.claimLocked(agent, since, match)
		r.mu.Unlock()
		if ok || ch == nil {
			return rt, i, ok
		}
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		}
		select {
		case <-ch:
		case <-timer.C:
			return RecentTurn{}, 0, false
		case <-ctx.Done():
			return RecentTurn{}, 0, false
		}
	}
}

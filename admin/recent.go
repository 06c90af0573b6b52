package admin

import (
	"sync"

	"github.com/agentg/agentg/audit"
)

// The recent events: the last Config.RecentEvents (default 1000) audit
// events, kept so that GET /v1/events?last=N (and `agentg events` without
// --follow) can answer "what just happened?" without the log file. They
// come from the same subscription as the metrics, so a burst that
// overflows it is missing here too (the log has everything); each is kept
// as the logger handed it over and encoded only when asked for.

// DefaultRecentEvents is Config.RecentEvents' default.
const DefaultRecentEvents = 1000

// recentEvents is a ring of the newest events. Safe for concurrent use.
type recentEvents struct {
	mu   sync.Mutex
	ring []*audit.Event
	next int // where the next event goes
	n    int // how many are held
}

func newRecentEvents(size int) *recentEvents {
	return &recentEvents{ring: make([]*audit.Event, size)}
}

func (r *recentEvents) add(e *audit.Event) {
	if len(r.ring) == 0 {
		return
	}
	r.mu.Lock()
	r.ring[r.next] = e
	r.next = (r.next + 1) % len(r.ring)
	r.n = min(r.n+1, len(r.ring))
	r.mu.Unlock()
}

// last returns up to n of the newest events f matches, oldest first.
func (r *recentEvents) last(n int, f EventFilter) []*audit.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*audit.Event
	for i := 1; i <= r.n && len(out) < n; i++ {
		e := r.ring[(r.next-i+len(r.ring))%len(r.ring)]
		if f.Match(e) {
			out = append(out, e)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

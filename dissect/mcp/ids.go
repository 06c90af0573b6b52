package mcp

import (
	"sync"

	"github.com/agentg/agentg/dissect/mcp/wire"
	store "github.com/agentg/agentg/state"
)

// inFlightIDs are the ids of the requests in flight in each session, across
// its POSTs (a POST's own are in its exchange): a second request with an
// equal id in the same session is refused. The zero value is ready;
// sharded, so that sessions rarely meet on a lock. An entry lives as long
// as its exchange: released when the answer is matched, or when the
// exchange ends without one.
type inFlightIDs struct {
	shards [32]idShard
}

type idShard struct {
	mu  sync.Mutex
	ids map[string]struct{}
}

func (s *inFlightIDs) shard(k string) *idShard {
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(k); i++ {
		h = (h ^ uint32(k[i])) * 16777619
	}
	return &s.shards[h%uint32(len(s.shards))]
}

// claim records id in flight in session; false if it already was.
func (s *inFlightIDs) claim(session, id string) bool {
	k := session + "\x00" + id
	sh := s.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, dup := sh.ids[k]; dup {
		return false
	}
	if sh.ids == nil {
		sh.ids = map[string]struct{}{}
	}
	sh.ids[k] = struct{}{}
	return true
}

// release ends what claim recorded.
func (s *inFlightIDs) release(session, id string) {
	k := session + "\x00" + id
	sh := s.shard(k)
	sh.mu.Lock()
	delete(sh.ids, k)
	sh.mu.Unlock()
}

// track puts c among the requests in flight: this POST's, and in a
// stateful session, the session's. It reports false, tracking nothing,
// when a request with an equal id (IDKey) is already in flight in either.
func (ex *exchange) track(c *call) bool {
	k := c.m.IDKey()
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if _, dup := ex.pending[k]; dup {
		return false
	}
	if ex.session != "" {
		sk := ex.x.stateServer() + "\x00" + ex.session
		if !ex.g.inflight.claim(sk, k) {
			return false
		}
		c.claimed = sk
	}
	ex.pending[k] = c
	return true
}

// untrackLocked ends c's claim on its id in the session; ex.mu is held.
func (ex *exchange) untrackLocked(c *call) {
	if c.claimed != "" {
		ex.g.inflight.release(c.claimed, c.m.IDKey())
		c.claimed = ""
	}
}

// duplicate refuses a request whose id is already in flight: two answers
// with equal ids could not be told apart, and one could be rewritten as
// the other (a tools/list answer read as a call's, unfiltered), so the
// second never passes.
func (ex *exchange) duplicate(c *call) []byte {
	c.ev.Decision, c.ev.Rule, c.ev.Reason = "deny", "builtin:mcp-inflight", store.ErrDuplicateID.Error()
	ex.g.emit(c.ev)
	return wire.ErrorResponse(c.m.ID, wire.CodeInvalidRequest, "agentg: "+store.ErrDuplicateID.Error(), map[string]any{"rule": "builtin:mcp-inflight"})
}
